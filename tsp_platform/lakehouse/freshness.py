"""How current the lakehouse is for a profile: the newest as-of each partitioned table holds, against the
session its daily cycle should have stored by now.

Freshness is read from the tables themselves, not from Dagster's event log, so bars imported outside Dagster
(`tsp import-prices`) and a table restored from a backup are judged by what they actually hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from tsp_platform.core.calendars import session_count
from tsp_platform.core.vocabulary import Calendar
from tsp_platform.lakehouse.schema import TABLES
from tsp_platform.lakehouse.store import Lakehouse


@dataclass(frozen=True)
class TableFreshness:
    table: str
    profile: str
    latest_as_of: date | None  # None: the profile has never stored this table
    expected_as_of: date
    sessions_behind: int | None

    @property
    def fresh(self) -> bool:
        return self.latest_as_of is not None and self.latest_as_of >= self.expected_as_of

    def describe(self) -> str:
        if self.latest_as_of is None:
            return f"{self.profile}.{self.table}: never stored (expected as-of {self.expected_as_of})"
        return (f"{self.profile}.{self.table}: latest as-of {self.latest_as_of}, expected {self.expected_as_of} "
                f"({self.sessions_behind} sessions behind)")


def latest_as_of(lake: Lakehouse, table_name: str, profile: str) -> date | None:
    """The newest as-of date `profile` has stored in a partitioned table (None when it has none)."""
    table = TABLES[table_name]  # the identifier comes from the schema, never from the caller's text
    if table.partition != ("profile", "as_of"):
        raise ValueError(f"table {table_name!r} is not partitioned by (profile, as_of)")
    if not lake.exists():
        return None
    frame = lake.query(f"SELECT max(as_of) AS latest FROM {table.name} WHERE profile = ?", [profile])
    return frame["latest"][0] if frame.height else None


def table_freshness(
    lake: Lakehouse, tables: Sequence[str], profile: str, calendar: Calendar, expected_as_of: date
) -> list[TableFreshness]:
    """One verdict per table: fresh when the profile's newest stored as-of is at least `expected_as_of`."""
    verdicts = []
    for name in tables:
        latest = latest_as_of(lake, name, profile)
        behind = None if latest is None else session_count(latest, expected_as_of, calendar)
        verdicts.append(TableFreshness(name, profile, latest, expected_as_of, behind))
    return verdicts
