"""The DuckDB lakehouse: schema creation, transactional upserts and partition rewrites, point-in-time reads.

Every write runs in one transaction: a failure (or a killed process) leaves the previous state intact.
Bulk data moves through Arrow; nothing is inserted row by row.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import duckdb
import polars as pl

from tsp_platform.core.hashing import frame_hash
from tsp_platform.lakehouse.lineage import VOLATILE_COLUMNS, Lineage, content_frame, tables_named
from tsp_platform.lakehouse.schema import OHLCV, TABLES, Table

# The `duckdb` pool serialises writers, but Dagster 1.13 can grant its one slot twice when two steps claim it at
# the same instant (docs/deployment.md §4). A lock conflict is therefore waited out, for a bounded time.
LOCK_WAIT_S = 120.0


def _open(path: Path, read_only: bool, wait_s: float, config: Mapping | None = None) -> duckdb.DuckDBPyConnection:
    """Connect, retrying while another process holds the file's lock; past `wait_s` the error names the file."""
    deadline, delay = time.monotonic() + wait_s, 0.05
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only, config=dict(config or {}))
        except duckdb.IOException as error:
            if "lock" not in str(error).lower():
                raise
            if time.monotonic() + delay > deadline:
                raise LakehouseError(f"lakehouse {path} is locked by another process after {wait_s:.0f} s: {error}") from error
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


class LakehouseError(RuntimeError):
    """A lakehouse write was refused; nothing was changed."""


def _check_frame(table: Table, frame: pl.DataFrame) -> pl.DataFrame:
    missing = [c for c in table.column_names if c not in frame.columns]
    extra = [c for c in frame.columns if c not in table.column_names]
    if missing or extra:
        raise LakehouseError(f"{table.name}: frame columns do not match (missing {missing}, unexpected {extra})")
    ordered = frame.select(table.column_names)
    dupes = ordered.select(table.key).is_duplicated()
    if dupes.any():
        sample = ordered.filter(dupes).select(table.key).head(3).to_dicts()
        raise LakehouseError(f"{table.name}: duplicate keys in the frame, e.g. {sample}")
    return ordered


def _merge(conn: duckdb.DuckDBPyConnection, table: Table, frame: pl.DataFrame) -> dict[str, int]:
    """MERGE a checked frame into `table` inside the caller's transaction; returns the row counts."""
    compare = [c for c in table.value_columns if c not in VOLATILE_COLUMNS]
    on = " AND ".join(f"t.{k} = s.{k}" for k in table.key)
    changed = " OR ".join(f"t.{c} IS DISTINCT FROM s.{c}" for c in compare) or "FALSE"
    set_clause = ", ".join(f"{c} = s.{c}" for c in table.value_columns)
    cols = ", ".join(table.column_names)
    values = ", ".join(f"s.{c}" for c in table.column_names)
    # On failure the registration dies with the connection: unregistering inside an aborted transaction
    # would raise a second error that hides the real one.
    conn.register("staged_frame", frame.to_arrow())
    before = conn.execute(f"SELECT count(*) FROM {table.name}").fetchall()[0][0]
    updated = conn.execute(
        f"SELECT count(*) FROM {table.name} t JOIN staged_frame s ON {on} WHERE {changed}"
    ).fetchall()[0][0]
    conn.execute(
        f"MERGE INTO {table.name} t USING staged_frame s ON {on} "
        f"WHEN MATCHED AND ({changed}) THEN UPDATE SET {set_clause} "
        f"WHEN NOT MATCHED THEN INSERT ({cols}) VALUES ({values})"
    ).fetchall()
    after = conn.execute(f"SELECT count(*) FROM {table.name}").fetchall()[0][0]
    conn.unregister("staged_frame")
    inserted = after - before
    return {"inserted": inserted, "updated": updated, "unchanged": frame.height - inserted - updated}


def _rollback(conn: duckdb.DuckDBPyConnection) -> None:
    """Roll back, unless the failure was the COMMIT itself (DuckDB has then rolled back already): a second error
    from ROLLBACK would hide the real one."""
    try:
        conn.execute("ROLLBACK")
    except duckdb.Error:
        pass


def _reconcile_schema(conn: duckdb.DuckDBPyConnection) -> None:
    """Create missing tables and add columns a newer schema declares as nullable to an older file; any other
    difference is an error naming the table and columns (no column is added then)."""
    for table in TABLES.values():
        conn.execute(table.ddl())
    rows = conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'main'"
    ).fetchall()
    present: dict[str, set[str]] = {}
    for table_name, column in rows:
        present.setdefault(table_name, set()).add(column)
    additions, problems = [], []
    for table in TABLES.values():
        have = present.get(table.name, set())
        missing = [(name, sql_type) for name, sql_type in table.columns if name not in have]
        unknown = sorted(have - set(table.column_names))
        required = [name for name, sql_type in missing if "NOT NULL" in sql_type]
        if unknown or required:
            problems.append(f"{table.name}: columns {unknown} are no longer declared, {required} are required")
        additions += [f"ALTER TABLE {table.name} ADD COLUMN {name} {sql_type}" for name, sql_type in missing]
    if problems:
        raise LakehouseError("the lakehouse file predates its schema and cannot be upgraded in place: "
                             + "; ".join(problems))
    for statement in additions:
        conn.execute(statement)


class Lakehouse:
    """One DuckDB file. Connections are short-lived; open one only to read or write.

    `config` passes DuckDB settings to every connection (`memory_limit`, `threads`, ...); `lineage`, when
    given, records every read and write made through this object (the audit ledger's intents and outcomes)."""

    _reconciled: set[Path] = set()  # files whose schema this process has brought up to date

    def __init__(self, path: str | Path, lock_wait_s: float = LOCK_WAIT_S, config: Mapping | None = None,
                 lineage: Lineage | None = None):
        self.path = Path(path)
        self.lock_wait_s = lock_wait_s
        self.config = dict(config or {})
        self.lineage = lineage

    def unrecorded(self) -> "Lakehouse":
        """The same file without lineage: reads and writes that are not the step's own (its audit records)."""
        return Lakehouse(self.path, self.lock_wait_s, self.config)

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        if read_only and not self.path.exists():
            raise LakehouseError(f"lakehouse {self.path} does not exist yet: seed or ingest first")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = _open(self.path, read_only, self.lock_wait_s, self.config)
        try:
            if not read_only and self.path.resolve() not in Lakehouse._reconciled:
                _reconcile_schema(conn)
                Lakehouse._reconciled.add(self.path.resolve())
            yield conn
        finally:
            conn.close()

    # -- writes ---------------------------------------------------------------------------------------------

    def _will_write(self, tables) -> None:
        if self.lineage is not None:
            self.lineage.will_write(tables)

    def upsert(self, table_name: str, frame: pl.DataFrame) -> dict[str, int]:
        """Insert new keys and update changed rows, in one transaction; unchanged rows keep their write time."""
        return self.upsert_many({table_name: frame})[table_name]

    def upsert_many(self, frames: dict[str, pl.DataFrame]) -> dict[str, dict[str, int]]:
        """Upsert several tables in one transaction: all of it lands, or none of it."""
        staged = {name: _check_frame(TABLES[name], frame) for name, frame in frames.items()}
        self._will_write(staged)
        counts: dict[str, dict[str, int]] = {}
        with self.connect() as conn:
            conn.execute("BEGIN TRANSACTION")
            try:
                for name, frame in staged.items():
                    counts[name] = _merge(conn, TABLES[name], frame)
                conn.execute("COMMIT")
            except Exception:
                _rollback(conn)
                raise
        return counts

    def replace_partition(self, table_name: str, profile: str, as_of: date, frame: pl.DataFrame) -> int:
        """Atomically replace one (profile, as_of) slice of a partitioned table."""
        return self.replace_partitions(profile, as_of, {table_name: frame})[table_name]

    def replace_partitions(self, profile: str, as_of: date, frames: dict[str, pl.DataFrame]) -> dict[str, int]:
        """Replace the (profile, as_of) slice of several tables in one transaction: all or nothing."""
        staged: dict[str, pl.DataFrame] = {}
        for table_name, frame in frames.items():
            table = TABLES[table_name]
            if table.partition != ("profile", "as_of"):
                raise LakehouseError(f"{table.name} is not partitioned by profile and as-of date")
            checked = _check_frame(table, frame)
            foreign = checked.filter((pl.col("profile") != profile) | (pl.col("as_of") != as_of))
            if foreign.height:
                raise LakehouseError(f"{table.name}: {foreign.height} rows belong to another partition than {profile}/{as_of}")
            staged[table_name] = checked
        self._will_write(staged)
        with self.connect() as conn:
            conn.execute("BEGIN TRANSACTION")
            try:
                for table_name, frame in staged.items():
                    table = TABLES[table_name]
                    conn.register("staged_frame", frame.to_arrow())
                    conn.execute(f"DELETE FROM {table.name} WHERE profile = ? AND as_of = ?", [profile, as_of])
                    conn.execute(f"INSERT INTO {table.name} ({', '.join(table.column_names)}) SELECT * FROM staged_frame")
                    conn.unregister("staged_frame")
                conn.execute("COMMIT")
            except Exception:
                _rollback(conn)
                raise
        return {name: frame.height for name, frame in staged.items()}

    # -- reads ----------------------------------------------------------------------------------------------

    def query(self, sql: str, params: Sequence | None = None, record: bool = True) -> pl.DataFrame:
        """Run a parameterised read; identifiers must come from the schema, never from user input. The read is
        recorded in the lineage unless `record` is False (an integrity read, such as a content hash)."""
        with self.connect(read_only=True) as conn:
            frame = pl.from_arrow(conn.sql(sql, params=list(params or [])).to_arrow_table())
        if record and self.lineage is not None:
            self.lineage.read(tables_named(sql), frame)
        return frame

    def read_partition(self, table_name: str, profile: str, as_of: date, record: bool = True) -> pl.DataFrame:
        table = TABLES[table_name]
        return self.query(
            f"SELECT * FROM {table.name} WHERE profile = ? AND as_of = ? ORDER BY {', '.join(table.key)}",
            [profile, as_of], record=record,
        )

    def read_table(self, table_name: str, record: bool = True) -> pl.DataFrame:
        table = TABLES[table_name]
        return self.query(f"SELECT * FROM {table.name} ORDER BY {', '.join(table.key)}", record=record)

    def ohlcv(self, symbols: Sequence[str], as_of: date, start: date | None = None) -> pl.DataFrame:
        """Daily bars for `symbols` up to and including `as_of` (point-in-time: nothing after it is read)."""
        if not symbols:
            return pl.DataFrame(schema={c: pl.Null for c in OHLCV.column_names})
        sql = "SELECT * FROM ohlcv WHERE symbol IN (SELECT unnest(?)) AND date <= ?"
        params: list = [list(symbols), as_of]
        if start is not None:
            sql += " AND date >= ?"
            params.append(start)
        return self.query(sql + " ORDER BY symbol, date", params)

    def content_hash(self, table_name: str, profile: str | None = None, as_of: date | None = None) -> str:
        """SHA-256 of a table's (or a partition's) content, ordered by key, ignoring write-time columns. An
        integrity read, not an input: never recorded as the step's read."""
        table = TABLES[table_name]
        if profile is not None and as_of is not None:
            frame = self.read_partition(table_name, profile, as_of, record=False)
        else:
            frame = self.read_table(table_name, record=False)
        return frame_hash(content_frame(frame), table.key)

    def exists(self) -> bool:
        return self.path.exists()

