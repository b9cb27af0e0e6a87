"""What one step read from the lakehouse and what it wrote, recorded as it happens.

A `Lakehouse` given a `Lineage` reports every read (the tables a statement names, as DuckDB's own parser finds
them, and the content hash of the rows returned) and every write (the tables a transaction changes). The audit
ledger fills a step's intent and outcome records from it, so they name what the step did, not what it was
declared to do.

The intent is sealed before the step's first write (`before_first_write`), because an intent must precede
every change it explains; a step that never writes seals it at its end. Reads made after the seal are kept
apart (`late_inputs`) and land in the outcome record.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

import duckdb
import polars as pl

from tsp_platform.core.hashing import frame_hash

# Columns that record *when* (or how fast) something was written, not *what*: excluded from change detection
# and content hashes.
VOLATILE_COLUMNS = frozenset({"ingested_at", "generated_at", "run_id", "solve_ms", "seconds"})


def content_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame without its write-time columns: what content hashes are taken of."""
    return frame.drop([c for c in frame.columns if c in VOLATILE_COLUMNS])


UNPARSED = "<statement DuckDB could not parse>"


def tables_named(sql: str) -> set[str]:
    """The tables a statement reads, by DuckDB's own parser. Our statements take every value as a `?`
    parameter (never inline text), which the parser cannot bind: each `?` is parsed as NULL. A statement the
    parser refuses is recorded as `UNPARSED` rather than failing the read (the lineage test fails on it)."""
    try:
        return set(duckdb.get_table_names(sql.replace("?", "NULL"), qualified=False))
    except duckdb.Error:
        return {UNPARSED}


def _combined(hashes: list[str]) -> str:
    """One hash for a table read several times: its reads' hashes in the order they happened."""
    if len(hashes) == 1:
        return hashes[0]
    return hashlib.sha256("\n".join(hashes).encode()).hexdigest()


class Lineage:
    """A step's reads and writes, in the order they happened."""

    def __init__(self, before_first_write: Callable[[], None] | None = None):
        self._before_first_write = before_first_write
        self._reads: dict[str, list[str]] = {}
        self._late_reads: dict[str, list[str]] = {}
        self._written: list[str] = []
        self.sealed = False

    def read(self, tables: Iterable[str], frame: pl.DataFrame) -> None:
        digest = frame_hash(content_frame(frame))
        target = self._late_reads if self.sealed else self._reads
        for table in sorted(set(tables)):
            target.setdefault(table, []).append(digest)

    def seal(self) -> None:
        """Call `before_first_write` once (the intent is appended there); later reads are late."""
        if not self.sealed:
            self.sealed = True
            if self._before_first_write is not None:
                self._before_first_write()

    def will_write(self, tables: Iterable[str]) -> None:
        self.seal()
        for table in tables:
            if table not in self._written:
                self._written.append(table)

    @property
    def inputs(self) -> dict[str, str]:
        """Table → content hash of what was read before the first write."""
        return {table: _combined(hashes) for table, hashes in sorted(self._reads.items())}

    @property
    def late_inputs(self) -> dict[str, str]:
        """Table → content hash of what was read after the first write."""
        return {table: _combined(hashes) for table, hashes in sorted(self._late_reads.items())}

    @property
    def written(self) -> tuple[str, ...]:
        return tuple(self._written)
