"""The execution snapshot selection scores with: as of a date, per symbol, from bars up to that date only.

Locally computed ADX and ratings (the offline screener's), the average value traded of the last
`ADV_SESSIONS` bars, and whether the symbol's execution metadata (tick and lot sizes) is known. Pure
(polars): the alpha cycle builds it for its partition's date, the tournament for every window's decision date.
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from tsp_platform.discovery.screener import SCREENER_HISTORY_DAYS, compute_screener_fields

ADV_SESSIONS = 20


def execution_metadata(symbols: pl.DataFrame) -> pl.DataFrame:
    """symbol, has_execution_metadata (tick and lot sizes known) for every row of the symbols table."""
    return symbols.select(
        "symbol", (pl.col("tick_size").is_not_null() & pl.col("lot_size").is_not_null()).alias("has_execution_metadata")
    )


def snapshot_start(as_of: date) -> date:
    """The first bar an execution snapshot as of `as_of` reads."""
    return as_of - timedelta(days=SCREENER_HISTORY_DAYS)


def execution_snapshot(bars: pl.DataFrame, meta: pl.DataFrame, symbols: list[str], as_of) -> pl.DataFrame:
    """As-of snapshot per symbol from `bars` (up to `as_of`; earlier rows beyond the screener's history are
    ignored): locally computed ADX and ratings, average value traded, and `meta`'s execution metadata flag
    (columns symbol, has_execution_metadata)."""
    bars = bars.filter(pl.col("date") >= snapshot_start(as_of), pl.col("date") <= as_of)
    fields = compute_screener_fields(bars, as_of).select(
        "symbol", "adx", "recommend_all", "recommend_ma", "recommend_other"
    )
    adv = (
        bars.sort("symbol", "date")
        .group_by("symbol", maintain_order=True)
        .agg((pl.col("close") * pl.col("volume")).tail(ADV_SESSIONS).mean().alias("adv"))
    )
    base = pl.DataFrame({"symbol": symbols})
    return base.join(fields, on="symbol", how="left").join(adv, on="symbol", how="left").join(meta, on="symbol", how="left")
