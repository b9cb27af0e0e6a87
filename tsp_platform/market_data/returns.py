"""Calendar-aware daily returns as of a date, in long form (symbol, date, ret).

Each symbol keeps its own sessions: TradFi is never padded with weekends, crypto keeps them, and a mixed
book is not truncated to common dates (aligning is the consumer's explicit choice). Every exclusion is
recorded with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from tsp_platform.core.vocabulary import Calendar
from tsp_platform.health.gates import daily_returns


class ExclusionReason:
    NO_BARS = "no_bars"
    QUARANTINED = "quarantined"
    HISTORY_FLOOR = "history_floor"
    ZERO_VARIANCE = "zero_variance"


@dataclass(frozen=True)
class ReturnsResult:
    returns: pl.DataFrame  # symbol, date, ret
    exclusions: pl.DataFrame  # symbol, reason, detail


def build_returns(
    bars: pl.DataFrame,
    universe: pl.DataFrame,
    as_of: date,
    start: date,
    history_floor: int,
    quarantine: pl.DataFrame | None = None,
) -> ReturnsResult:
    """`bars` may start before `start` (the previous close prices the first return); none may follow `as_of`.

    `universe` has symbol and calendar; `quarantine` (symbol, detail) lists symbols a health gate failed.
    """
    if bars.height and bars["date"].max() > as_of:
        raise ValueError(f"returns got bars after the as-of date {as_of}: point-in-time violated upstream")
    quarantine = quarantine if quarantine is not None else pl.DataFrame(schema={"symbol": pl.String, "detail": pl.String})
    on_calendar = bars.join(universe.select("symbol", "calendar"), on="symbol", how="inner").filter(
        (pl.col("calendar") == Calendar.ALWAYS.value) | (pl.col("date").dt.weekday() <= 5)
    )
    rets = (
        on_calendar.sort("symbol", "date")
        .with_columns(daily_returns().alias("ret"))
        .filter(pl.col("date") >= start, pl.col("ret").is_not_null())
        .select("symbol", "date", "ret")
    )
    stats = rets.group_by("symbol").agg(pl.len().alias("n"), pl.col("ret").std().alias("sd"))
    status = universe.select("symbol").join(stats, on="symbol", how="left").join(
        quarantine.rename({"detail": "q_detail"}), on="symbol", how="left"
    )
    status = status.with_columns(
        pl.when(pl.col("q_detail").is_not_null())
        .then(pl.lit(ExclusionReason.QUARANTINED))
        .when(pl.col("n").is_null())
        .then(pl.lit(ExclusionReason.NO_BARS))
        .when(pl.col("n") < history_floor)
        .then(pl.lit(ExclusionReason.HISTORY_FLOOR))
        .when(pl.col("sd").fill_null(0) == 0)
        .then(pl.lit(ExclusionReason.ZERO_VARIANCE))
        .alias("reason")
    ).with_columns(
        pl.when(pl.col("reason") == ExclusionReason.QUARANTINED)
        .then(pl.col("q_detail"))
        .when(pl.col("reason") == ExclusionReason.NO_BARS)
        .then(pl.lit("no bars in the lookback"))
        .when(pl.col("reason") == ExclusionReason.HISTORY_FLOOR)
        .then(pl.format("{} returns < floor {}", "n", pl.lit(history_floor)))
        .otherwise(pl.lit("constant prices"))
        .alias("detail")
    )
    exclusions = status.filter(pl.col("reason").is_not_null()).select("symbol", "reason", "detail").sort("symbol")
    kept = rets.join(exclusions.select("symbol"), on="symbol", how="anti").sort("symbol", "date")
    return ReturnsResult(returns=kept, exclusions=exclusions)
