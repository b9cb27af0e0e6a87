"""Which calendar each symbol trades on: the symbols table's, else the profile's."""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from tsp_platform.config.models import Profile


def symbol_calendars(symbols: pl.DataFrame, names: Iterable[str], profile: Profile) -> pl.DataFrame:
    """symbol, calendar for `names` plus the profile's benchmark (unknown symbols get the profile's calendar)."""
    wanted = sorted(set(names) | ({profile.benchmark} if profile.benchmark else set()))
    universe = pl.DataFrame({"symbol": wanted}, schema={"symbol": pl.String})
    universe = universe.join(symbols.select("symbol", "calendar"), on="symbol", how="left")
    return universe.with_columns(pl.col("calendar").fill_null(profile.calendar.value))
