"""The ledger in the lakehouse: appends are transactions that read the chain's tip and extend it.

One chain per lakehouse file. Every append runs in one DuckDB transaction (the file has one writer at a time,
and every Dagster writer is in the `duckdb` pool), so two appends cannot fork the chain. The first record a
run appends is preceded by that run's genesis record.
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Mapping, Sequence
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import polars as pl

from tsp_platform.audit.ledger import GENESIS_PREV, Verification, canonical_json, seal, verify_lines
from tsp_platform.core.files import atomic_path
from tsp_platform.core.hashing import HASH_SCHEME
from tsp_platform.lakehouse import Lakehouse
from tsp_platform.lakehouse.schema import AUDIT_LEDGER
from tsp_platform.lakehouse.store import _rollback

PACKAGES = ("dagster", "duckdb", "polars", "numpy", "scipy", "skfolio", "riskfolio-lib", "cvxportfolio",
            "nautilus_trader", "quantstats", "pydantic")
SOURCE_ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIRS = ("tsp_platform", "assets", "resources", "partitions", "configs")


@lru_cache(maxsize=1)
def code_version() -> str:
    """SHA-256 over the project's source and configuration files (path and bytes, in path order)."""
    digest = hashlib.sha256()
    for folder in SOURCE_DIRS:
        for path in sorted((SOURCE_ROOT / folder).rglob("*")):
            if path.is_file() and path.suffix in (".py", ".yaml", ".yml", ".csv") and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(SOURCE_ROOT)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"


def environment_body(manifest_path: str | Path) -> dict:
    """A genesis body: what code, configuration and environment the run used."""
    manifest = Path(manifest_path)
    return {
        "code_version": code_version(),
        "manifest": str(manifest.name),
        "manifest_hash": hashlib.sha256(manifest.read_bytes()).hexdigest(),
        "python": platform.python_version(),
        "packages": {name: _version(name) for name in PACKAGES},
        "table_hash": HASH_SCHEME,
    }


class AuditLedger:
    """Append to, read, export and verify the chain stored in one lakehouse file."""

    def __init__(self, lakehouse: Lakehouse):
        self.lakehouse = lakehouse

    def append(
        self, run_id: str, entries: Sequence[tuple[str, Mapping]], genesis: Mapping | None = None
    ) -> list[dict]:
        """Append (kind, body) entries for `run_id` in one transaction; a run's first append is preceded by
        its genesis record (`genesis` is then required)."""
        with self.lakehouse.connect() as conn:
            conn.execute("BEGIN TRANSACTION")
            try:
                tip = conn.execute("SELECT seq, hash FROM audit_ledger ORDER BY seq DESC LIMIT 1").fetchall()
                seq, prev = (tip[0][0] + 1, tip[0][1]) if tip else (0, GENESIS_PREV)
                opened = conn.execute(
                    "SELECT count(*) FROM audit_ledger WHERE run_id = ? AND kind = 'genesis'", [run_id]
                ).fetchall()[0][0]
                todo = list(entries)
                if not opened:
                    if genesis is None:
                        raise ValueError(f"run {run_id} has no genesis record yet: pass its genesis body")
                    todo.insert(0, ("genesis", genesis))
                records = []
                for kind, body in todo:
                    record = seal(seq, kind, run_id, body, prev)
                    conn.execute(
                        "INSERT INTO audit_ledger VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        [seq, kind, run_id, body.get("step"), body.get("partition"), prev, record["hash"],
                         canonical_json(record)],
                    )
                    records.append(record)
                    seq, prev = seq + 1, record["hash"]
                conn.execute("COMMIT")
            except Exception:
                _rollback(conn)
                raise
        return records

    def rows(self) -> pl.DataFrame:
        if not self.lakehouse.exists():
            return pl.DataFrame(schema=AUDIT_LEDGER.polars_schema)
        return self.lakehouse.query("SELECT * FROM audit_ledger ORDER BY seq")

    def lines(self) -> list[str]:
        return self.rows()["record"].to_list()

    def verify(self, anchor: tuple[int, str] | None = None) -> Verification:
        """The chain, and every indexed column against the record it was copied from."""
        rows = self.rows()
        result = verify_lines(rows["record"].to_list(), anchor)
        if not result.ok:
            return result
        for number, row in enumerate(rows.iter_rows(named=True), start=1):
            record = json.loads(row["record"])
            body = record.get("body", {})
            expected = {"seq": record["seq"], "kind": record["kind"], "run_id": record["run_id"],
                        "step": body.get("step"), "partition_key": body.get("partition"),
                        "prev_hash": record["prev_hash"], "hash": record["hash"]}
            differs = [column for column, value in expected.items() if row[column] != value]
            if differs:
                return Verification(number - 1, number, f"columns {differs} differ from the stored record", result.head)
        return result

    def export(self, path: str | Path) -> Path:
        """Write `audit.jsonl` (one record per line, in order), replacing the file atomically."""
        path = Path(path)
        with atomic_path(path) as staging:
            with staging.open("w", encoding="utf-8") as out:
                out.writelines(line + "\n" for line in self.lines())
        return path


def verify_file(path: str | Path, anchor: tuple[int, str] | None = None) -> Verification:
    """Verify an exported `audit.jsonl` (against an earlier anchor: record count, that record's hash)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no ledger file at {path}")
    with path.open(encoding="utf-8") as handle:
        return verify_lines((line.rstrip("\n") for line in handle), anchor)
