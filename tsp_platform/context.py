"""The typed context every partitioned stage receives, and how such a stage reads and writes.

`StageContext` names the lakehouse, the profile and the as-of date of one (profile, as-of) partition.
`read(table)` returns the partition's rows of a partitioned table (a whole table otherwise), `bars(...)` the
daily bars up to the as-of date, and `write(**frames)` tags frames with the partition's profile and as-of
date, checks them against the table schema and replaces the partition's slice of every table in one
transaction. The few reads that need their own SQL (an earlier partition's weights, every stored pool up to
the date) and the bar upserts of a live fetch use `ctx.lakehouse` itself. Everything goes through that one
lakehouse object, so a lakehouse with a `Lineage` records it all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

import polars as pl

from tsp_platform.config.models import Profile
from tsp_platform.core.clock import utc_now
from tsp_platform.core.identifiers import validate_run_id
from tsp_platform.lakehouse import TABLES, Lakehouse

PRICING_BUFFER_DAYS = 7
PARTITION_COLUMNS = ("profile", "as_of")


@dataclass(frozen=True)
class StageContext:
    lakehouse: Lakehouse
    profile: Profile
    as_of: date
    run_id: str = field(default_factory=lambda: utc_now().strftime("%Y%m%d-%H%M%S"))

    def __post_init__(self):
        validate_run_id(self.run_id)

    @property
    def lookback_start(self) -> date:
        """First date inside the profile's lookback window ending at the as-of date."""
        return self.as_of - timedelta(days=self.profile.lookback_days - 1)

    @property
    def history_start(self) -> date:
        """First bar the stages need: a week before the lookback prices its first return."""
        return self.lookback_start - timedelta(days=PRICING_BUFFER_DAYS)

    # -- reads ----------------------------------------------------------------------------------------------

    def read(self, table: str) -> pl.DataFrame:
        """This partition's rows of a (profile, as-of) table; the whole table when it is not partitioned."""
        if TABLES[table].partition == PARTITION_COLUMNS:
            return self.lakehouse.read_partition(table, self.profile.name, self.as_of)
        return self.lakehouse.read_table(table)

    def bars(self, symbols: Sequence[str], start: date | None = None) -> pl.DataFrame:
        """Daily bars of `symbols` from `start` up to and including the as-of date (never after it)."""
        return self.lakehouse.ohlcv(symbols, self.as_of, start)

    # -- writes ---------------------------------------------------------------------------------------------

    def tag(self, table: str, frame: pl.DataFrame) -> pl.DataFrame:
        """`frame` as rows of this partition of `table`: profile and as-of columns set, columns in table order."""
        return TABLES[table].partition_rows(frame, self.profile.name, self.as_of)

    def write(self, **frames: pl.DataFrame) -> dict[str, int]:
        """Replace this partition's slice of every named table with its frame, in one transaction."""
        tagged = {table: self.tag(table, frame) for table, frame in frames.items()}
        return self.lakehouse.replace_partitions(self.profile.name, self.as_of, tagged)
