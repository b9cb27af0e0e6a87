"""Resources, chosen by environment in one place (`build_resources`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from tsp_platform.config import Manifest, load_manifest
from tsp_platform.config.manifest import DEFAULT_MANIFEST
from tsp_platform.lakehouse import Lakehouse
from tsp_platform.lakehouse.lineage import Lineage

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DUCKDB_POOL = "duckdb"  # every lakehouse writer runs in this pool; its limit is 1 (see configs/dagster.yaml)
_RECORDING: ContextVar[Lineage | None] = ContextVar("tsp_lakehouse_recording", default=None)


class LakehouseResource(DuckDBResource):
    """The DuckDB lakehouse file, as dagster-duckdb's `DuckDBResource` (`database`, `connection_config`).

    `get_connection()` is `DuckDBResource`'s API served by the domain's `Lakehouse`: the same settings, but a
    lock held by another process is waited out for a bounded time and then named (DuckDB allows one writer per
    file; every writer is in the `duckdb` pool, and Dagster 1.13 can grant that pool's slot twice), and the
    file's schema is brought up to date first. `lakehouse()` is the domain object the stages use; during an
    audited step it records what the step reads and writes (`recording`). Connections open only for a read or
    a write, never at import time."""

    def lakehouse(self) -> Lakehouse:
        return Lakehouse(self.database, config=self._config(), lineage=_RECORDING.get())

    def unrecorded(self) -> Lakehouse:
        """The same file outside any step's lineage (the audit ledger's own appends)."""
        return Lakehouse(self.database, config=self._config())

    @contextmanager
    def get_connection(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        with self.unrecorded().connect(read_only=read_only) as conn:
            yield conn

    @contextmanager
    def recording(self, lineage: Lineage) -> Iterator[None]:
        """Within the block, every `lakehouse()` of this process records into `lineage` (one step at a time:
        the in-process executor runs steps one after another, the multiprocess executor one per process)."""
        token = _RECORDING.set(lineage)
        try:
            yield
        finally:
            _RECORDING.reset(token)

    def seal_reads(self) -> None:
        """The step has read what it needs and is about to write files: its audit intent is appended now (a step
        that writes lakehouse tables gets it before its first write anyway). No effect outside an audited step."""
        lineage = _RECORDING.get()
        if lineage is not None:
            lineage.seal()

    def _config(self) -> dict:
        # DuckDB refuses a second connection to one file with other settings in the same process, so only
        # what the user configured is passed (the domain opens the same file with the same settings).
        return dict(self.connection_config)

    def output_dir(self) -> Path:
        """Files the platform writes (snapshots, orders, reports, the ledger export) sit beside the database."""
        return Path(self.database).resolve().parent

    def audit_path(self) -> Path:
        return self.output_dir() / "audit.jsonl"

    def reports_root(self) -> Path:
        return self.output_dir() / "reports"

    def orders_root(self) -> Path:
        return self.output_dir() / "orders"

    def snapshot_root(self) -> Path:
        """Parquet snapshots for fan-out work, never read from the database file itself."""
        return self.output_dir() / "snapshots"


class ManifestResource(dg.ConfigurableResource):
    path: str = str(DEFAULT_MANIFEST)

    def manifest(self) -> Manifest:
        return load_manifest(self.path)


class LiveSourcesResource(dg.ConfigurableResource):
    """Live clients (TradingView screener, Binance through ccxt). Tests replace the transport, not this."""

    timeout_s: float = 10.0
    max_attempts: int = 5

    def screener(self):
        from tsp_platform.sources.tradingview import TradingViewScreener

        return TradingViewScreener(timeout=self.timeout_s, max_attempts=self.max_attempts).scan

    def bar_fetcher(self):
        from tsp_platform.sources.binance import BinanceOhlcvClient

        return BinanceOhlcvClient(max_attempts=self.max_attempts)


def lakehouse_path(manifest: Manifest | None = None) -> str:
    """`TSP_LAKEHOUSE` wins; otherwise the manifest's path, relative to the project root."""
    if os.environ.get("TSP_LAKEHOUSE"):
        return os.environ["TSP_LAKEHOUSE"]
    manifest = manifest or load_manifest(os.environ.get("TSP_MANIFEST") or None)
    path = Path(manifest.file.lakehouse_path)
    return str(path if path.is_absolute() else PROJECT_ROOT / path)


def build_resources(environment: str | None = None) -> dict[str, dg.ConfigurableResource]:
    """Resources for `local` (default) or `ci`; both use a local DuckDB file, paths from the environment."""
    environment = environment or os.environ.get("TSP_ENV", "local")
    if environment not in ("local", "ci"):
        raise ValueError(f"TSP_ENV={environment!r}: expected 'local' or 'ci'")
    manifest_path = os.environ.get("TSP_MANIFEST") or str(DEFAULT_MANIFEST)
    return resources_for(lakehouse_path(load_manifest(manifest_path)), manifest_path)


def resources_for(
    lakehouse: str | Path, manifest_path: str | Path = DEFAULT_MANIFEST, live_sources: LiveSourcesResource | None = None
) -> dict[str, dg.ConfigurableResource]:
    """The resource set for one lakehouse file (the environment picks the file; tests pick a temp one)."""
    from resources.dbt import dbt_resource

    return {
        "lakehouse": LakehouseResource(database=str(lakehouse)),
        "manifest": ManifestResource(path=str(manifest_path)),
        "live_sources": live_sources or LiveSourcesResource(),
        "dbt": dbt_resource(lakehouse),
    }
