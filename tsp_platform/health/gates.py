"""Data-health gates over daily bars, evaluated per symbol as of a date (bars after it are refused).

Each gate returns one row per symbol: (gate, symbol, passed, value, detail). A symbol with no bars fails
staleness and the history floor, and passes the others with the detail "no bars".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

import polars as pl

from tsp_platform.config.models import HealthThresholds
from tsp_platform.core.calendars import sessions_between
from tsp_platform.core.vocabulary import Calendar

RESULT_SCHEMA = {"gate": pl.String, "symbol": pl.String, "passed": pl.Boolean, "value": pl.Float64, "detail": pl.String}


class Gate(StrEnum):
    GAPS = "gaps"
    STALENESS = "staleness"
    TOXIC_RETURN = "toxic_return"
    OHLC_CONSISTENCY = "ohlc_consistency"
    FLAT_CLOSES = "flat_closes"
    HISTORY_FLOOR = "history_floor"
    WEEKEND_PADDING = "weekend_padding"


GATE_DESCRIPTIONS = {
    Gate.GAPS: "No gap longer than the tolerated missing sessions inside the lookback",
    Gate.STALENESS: "Last bar recent enough for the as-of date (crypto in hours, TradFi in sessions)",
    Gate.TOXIC_RETURN: "No daily close-to-close move beyond the toxic threshold (500 % by default)",
    Gate.OHLC_CONSISTENCY: "high >= max(open, close), low <= min(open, close), prices positive",
    Gate.FLAT_CLOSES: "No run of identical consecutive closes (a stalled feed)",
    Gate.HISTORY_FLOOR: "At least the profile's history floor of bars inside the lookback",
    Gate.WEEKEND_PADDING: "No weekend bars for a weekday (TradFi) calendar",
}


@dataclass(frozen=True)
class GateInputs:
    """Bars up to the as-of date and each symbol's calendar.

    `window_start` is the first date the gates judge. Bars before it (the closes that price the first return)
    are used only as the previous close of the first move, so a spike or a gap into the window is caught.
    """

    bars: pl.DataFrame
    universe: pl.DataFrame  # symbol, calendar
    as_of: date
    thresholds: HealthThresholds
    history_floor: int
    window_start: date | None = None

    def __post_init__(self):
        if self.bars.height and self.bars["date"].max() > self.as_of:
            raise ValueError(f"health gates got bars after the as-of date {self.as_of}")


def _result(universe: pl.DataFrame, gate: Gate, per_symbol: pl.DataFrame, no_bars_passes: bool) -> pl.DataFrame:
    """Left-join a gate's per-symbol verdicts onto the universe; symbols without bars get a verdict too."""
    joined = universe.select("symbol").join(per_symbol, on="symbol", how="left")
    return joined.select(
        pl.lit(gate.value).alias("gate"),
        "symbol",
        pl.col("passed").fill_null(no_bars_passes),
        pl.col("value").cast(pl.Float64),
        pl.col("detail").fill_null("no bars"),
    )


def _with_calendar(inputs: GateInputs, with_previous: bool = False) -> pl.DataFrame:
    """The universe's bars with their calendar: inside the window, plus (when asked) the last bar before it."""
    frame = inputs.bars.join(inputs.universe.select("symbol", "calendar"), on="symbol", how="inner").sort("symbol", "date")
    if inputs.window_start is None:
        return frame
    inside = pl.col("date") >= inputs.window_start
    if with_previous:
        return frame.filter(inside | (~inside & (pl.col("date") == pl.col("date").filter(~inside).max().over("symbol"))))
    return frame.filter(inside)


def _worst(frame: pl.DataFrame, value: str, when: str) -> pl.DataFrame:
    """Each symbol's row with the largest `value`; ties go to the earliest `when` (deterministic)."""
    ordered = frame.sort([value, when], descending=[True, False], nulls_last=True)
    return ordered.group_by("symbol", maintain_order=True).first()


def _by_calendar(frame: pl.DataFrame, make) -> pl.DataFrame:
    """Apply a calendar-specific expression builder to each calendar's rows."""
    parts = [
        make(part, Calendar(cal)) for (cal,), part in frame.partition_by("calendar", as_dict=True).items()
    ]
    return pl.concat(parts) if parts else frame.clear()


def gaps(inputs: GateInputs) -> pl.DataFrame:
    tolerated = inputs.thresholds.max_missing_sessions

    def missing(part: pl.DataFrame, cal: Calendar) -> pl.DataFrame:
        prev = pl.col("date").shift(1).over("symbol")
        return part.with_columns((sessions_between(prev, pl.col("date"), cal) - 1).alias("missing"), prev.alias("prev"))

    frame = _by_calendar(_with_calendar(inputs, with_previous=True), missing)
    worst = _worst(frame, "missing", "date")
    per_symbol = worst.select(
        "symbol",
        pl.col("missing").fill_null(0).alias("value"),
        (pl.col("missing").fill_null(0) <= tolerated).alias("passed"),
        pl.when(pl.col("missing").fill_null(0) > 0)
        .then(pl.format("largest gap: {} missing sessions between {} and {}", pl.col("missing"), pl.col("prev"), pl.col("date")))
        .otherwise(pl.lit("no gaps"))
        .alias("detail"),
    )
    return _result(inputs.universe, Gate.GAPS, per_symbol, True)


def staleness(inputs: GateInputs) -> pl.DataFrame:
    t = inputs.thresholds

    def age(part: pl.DataFrame, cal: Calendar) -> pl.DataFrame:
        last = part.group_by("symbol").agg(pl.col("date").max().alias("last"))
        as_of = pl.lit(inputs.as_of)
        if cal is Calendar.ALWAYS:
            hours = (as_of - pl.col("last")).dt.total_days() * 24
            return last.with_columns(hours.cast(pl.Float64).alias("value"), (hours <= t.stale_hours_crypto).alias("passed"),
                                     pl.format("last bar {} ({} h before the as-of date)", "last", hours).alias("detail"))
        sessions = sessions_between(pl.col("last"), as_of, cal)
        return last.with_columns(sessions.cast(pl.Float64).alias("value"), (sessions <= t.stale_sessions_tradfi).alias("passed"),
                                 pl.format("last bar {} ({} sessions before the as-of date)", "last", sessions).alias("detail"))

    per_symbol = _by_calendar(_with_calendar(inputs), age).select("symbol", "value", "passed", "detail")
    return _result(inputs.universe, Gate.STALENESS, per_symbol, False)


def daily_returns() -> pl.Expr:
    """Close-to-close return per symbol over consecutive stored bars."""
    return pl.col("close") / pl.col("close").shift(1).over("symbol") - 1


def toxic_return(inputs: GateInputs) -> pl.DataFrame:
    limit = inputs.thresholds.toxic_daily_return
    frame = _with_calendar(inputs, with_previous=True).with_columns(daily_returns().abs().alias("move"))
    worst = _worst(frame, "move", "date")
    per_symbol = worst.select(
        "symbol",
        pl.col("move").alias("value"),
        (pl.col("move").fill_null(0) <= limit).alias("passed"),
        pl.format("largest daily move {} on {}", pl.col("move").round(4), pl.col("date")).alias("detail"),
    )
    return _result(inputs.universe, Gate.TOXIC_RETURN, per_symbol, True)


def ohlc_consistency(inputs: GateInputs) -> pl.DataFrame:
    tol = inputs.thresholds.ohlc_tolerance
    o, h, low, c = pl.col("open"), pl.col("high"), pl.col("low"), pl.col("close")
    has_ohlc = o.is_not_null() & h.is_not_null() & low.is_not_null()
    bad_range = has_ohlc & (
        (h < pl.max_horizontal(o, c) - tol) | (low > pl.min_horizontal(o, c) + tol) | (low > h) | (low <= 0)
    )
    bad = (c <= 0) | bad_range
    frame = _with_calendar(inputs).with_columns(bad.fill_null(False).alias("bad"), has_ohlc.alias("has_ohlc"))
    per_symbol = frame.group_by("symbol").agg(
        pl.col("bad").sum().alias("value"),
        pl.col("has_ohlc").any().alias("any_ohlc"),
        pl.col("date").filter(pl.col("bad")).first().alias("first_bad"),
    ).select(
        "symbol",
        "value",
        (pl.col("value") == 0).alias("passed"),
        pl.when(pl.col("value") > 0)
        .then(pl.format("{} inconsistent bars, first on {}", "value", "first_bad"))
        .when(~pl.col("any_ohlc"))
        .then(pl.lit("close-only source: OHLC range not applicable, closes positive"))
        .otherwise(pl.lit("consistent"))
        .alias("detail"),
    )
    return _result(inputs.universe, Gate.OHLC_CONSISTENCY, per_symbol, True)


def flat_closes(inputs: GateInputs) -> pl.DataFrame:
    limit = inputs.thresholds.flat_close_run
    frame = _with_calendar(inputs).with_columns(
        (pl.col("close") != pl.col("close").shift(1).over("symbol")).fill_null(True).cum_sum().over("symbol").alias("run_id")
    )
    runs = frame.group_by("symbol", "run_id").agg(pl.len().alias("length"), pl.col("date").min().alias("start"))
    worst = _worst(runs, "length", "start")
    per_symbol = worst.select(
        "symbol",
        pl.col("length").alias("value"),
        (pl.col("length") < limit).alias("passed"),
        pl.format("longest run of identical closes: {} bars from {}", "length", "start").alias("detail"),
    )
    return _result(inputs.universe, Gate.FLAT_CLOSES, per_symbol, True)


def history_floor(inputs: GateInputs) -> pl.DataFrame:
    floor = inputs.history_floor
    per_symbol = _with_calendar(inputs).group_by("symbol").agg(pl.len().alias("value")).select(
        "symbol", "value", (pl.col("value") >= floor).alias("passed"),
        pl.format("{} bars in the lookback (floor {})", "value", pl.lit(floor)).alias("detail"),
    )
    return _result(inputs.universe, Gate.HISTORY_FLOOR, per_symbol, False)


def weekend_padding(inputs: GateInputs) -> pl.DataFrame:
    frame = _with_calendar(inputs).with_columns(
        ((pl.col("calendar") == Calendar.WEEKDAYS.value) & (pl.col("date").dt.weekday() > 5)).alias("weekend")
    )
    per_symbol = frame.group_by("symbol").agg(
        pl.col("weekend").sum().alias("value"), pl.col("date").filter(pl.col("weekend")).first().alias("first"),
        pl.col("calendar").first(),
    ).select(
        "symbol", "value", (pl.col("value") == 0).alias("passed"),
        pl.when(pl.col("value") > 0).then(pl.format("{} weekend bars on a weekday calendar, first {}", "value", "first"))
        .when(pl.col("calendar") == Calendar.ALWAYS.value).then(pl.lit("24/7 calendar keeps weekends"))
        .otherwise(pl.lit("no weekend bars")).alias("detail"),
    )
    return _result(inputs.universe, Gate.WEEKEND_PADDING, per_symbol, True)


GATES = {
    Gate.GAPS: gaps,
    Gate.STALENESS: staleness,
    Gate.TOXIC_RETURN: toxic_return,
    Gate.OHLC_CONSISTENCY: ohlc_consistency,
    Gate.FLAT_CLOSES: flat_closes,
    Gate.HISTORY_FLOOR: history_floor,
    Gate.WEEKEND_PADDING: weekend_padding,
}


def evaluate_gates(inputs: GateInputs, gates: list[Gate] | None = None) -> pl.DataFrame:
    """All (or the named) gates, one row per gate and symbol."""
    frames = [GATES[g](inputs) for g in (gates or list(Gate))]
    return pl.concat(frames).cast(RESULT_SCHEMA).sort("gate", "symbol")
