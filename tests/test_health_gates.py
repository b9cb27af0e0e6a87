"""Data-health gates: every gate fails a crafted bad input (naming the symbol and a detail) and passes clean data."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

from tsp_platform.config.models import HealthThresholds
from tsp_platform.core.vocabulary import Calendar
from tsp_platform.health.gates import GATES, Gate, GateInputs, evaluate_gates

# Mon 2024-01-01 .. Fri 2024-01-12 is two full weekday weeks; as-of Friday 2024-01-12.
AS_OF = date(2024, 1, 12)
START = date(2024, 1, 1)
WEEKDAYS = Calendar.WEEKDAYS.value
ALWAYS = Calendar.ALWAYS.value


def days(start: date, end: date, weekdays_only: bool) -> list[date]:
    out, d = [], start
    while d <= end:
        if not weekdays_only or d.weekday() < 5:
            out.append(d)
        d += timedelta(days=1)
    return out


def bars(symbol: str, dates: list[date], closes=None, ohlc: bool = True) -> pl.DataFrame:
    closes = list(closes) if closes is not None else [100.0 + i * (1 if i % 2 else -0.5) + i for i in range(len(dates))]
    n = len(dates)
    return pl.DataFrame(
        {
            "symbol": [symbol] * n,
            "date": dates,
            "open": [c * 0.99 for c in closes] if ohlc else [None] * n,
            "high": [c * 1.02 for c in closes] if ohlc else [None] * n,
            "low": [c * 0.97 for c in closes] if ohlc else [None] * n,
            "close": closes,
            "volume": [1000.0] * n,
        },
        schema={
            "symbol": pl.String, "date": pl.Date, "open": pl.Float64, "high": pl.Float64,
            "low": pl.Float64, "close": pl.Float64, "volume": pl.Float64,
        },
    )


def equity(symbol: str = "NYSE:AAA", **kw) -> pl.DataFrame:
    return bars(symbol, days(START, AS_OF, True), **kw)


def coin(symbol: str = "SYNTH:BTCUSDT", **kw) -> pl.DataFrame:
    return bars(symbol, days(START, AS_OF, False), **kw)


def universe(**calendars: str) -> pl.DataFrame:
    return pl.DataFrame({"symbol": list(calendars), "calendar": list(calendars.values())})


def run(frame: pl.DataFrame, cal: dict[str, str], gate: Gate, floor: int = 5, as_of: date = AS_OF, **thresholds) -> dict:
    """One gate over one or more symbols; returns {symbol: row}."""
    inputs = GateInputs(frame, universe(**cal), as_of, HealthThresholds(**thresholds), floor)
    result = GATES[gate](inputs)
    assert set(result["gate"]) == {gate.value}
    return {row["symbol"]: row for row in result.iter_rows(named=True)}


def with_close(frame: pl.DataFrame, day: date, close: float) -> pl.DataFrame:
    return frame.with_columns(
        pl.when(pl.col("date") == day).then(close).otherwise(pl.col("close")).alias("close")
    ).with_columns(
        pl.col("close").mul(0.99).alias("open"), pl.col("close").mul(1.02).alias("high"), pl.col("close").mul(0.97).alias("low")
    )


def drop_days(frame: pl.DataFrame, *drop: date) -> pl.DataFrame:
    return frame.filter(~pl.col("date").is_in(list(drop)))


# One crafted bad input per gate: (bars, calendar, expected detail fragment). Weekday symbol unless noted.
def _bad_gaps():
    return drop_days(equity(), date(2024, 1, 9), date(2024, 1, 10)), WEEKDAYS, "2 missing sessions between 2024-01-08 and 2024-01-11"


def _bad_staleness():
    return equity().filter(pl.col("date") <= date(2024, 1, 4)), WEEKDAYS, "last bar 2024-01-04 (6 sessions"


def _bad_toxic():
    return with_close(equity(), date(2024, 1, 8), 1000.0), WEEKDAYS, "largest daily move"


def _bad_ohlc():
    frame = equity().with_columns(
        pl.when(pl.col("date") == date(2024, 1, 5)).then(pl.col("close") * 0.5).otherwise(pl.col("high")).alias("high")
    )
    return frame, WEEKDAYS, "1 inconsistent bars, first on 2024-01-05"


def _bad_flat():
    frame = equity()
    frame = with_close(with_close(with_close(frame, date(2024, 1, 8), 77.0), date(2024, 1, 9), 77.0), date(2024, 1, 10), 77.0)
    return frame, WEEKDAYS, "3 bars from 2024-01-08"


def _bad_history():
    return equity().filter(pl.col("date") >= date(2024, 1, 10)), WEEKDAYS, "3 bars in the lookback (floor 5)"


def _bad_weekend():
    frame = pl.concat([equity(), bars("NYSE:AAA", [date(2024, 1, 6)], [111.0])]).sort("date")
    return frame, WEEKDAYS, "1 weekend bars on a weekday calendar, first 2024-01-06"


BAD = {
    Gate.GAPS: _bad_gaps,
    Gate.STALENESS: _bad_staleness,
    Gate.TOXIC_RETURN: _bad_toxic,
    Gate.OHLC_CONSISTENCY: _bad_ohlc,
    Gate.FLAT_CLOSES: _bad_flat,
    Gate.HISTORY_FLOOR: _bad_history,
    Gate.WEEKEND_PADDING: _bad_weekend,
}


def test_every_gate_has_a_bad_case():
    assert set(BAD) == set(Gate) == set(GATES)


@pytest.mark.parametrize("gate", list(Gate), ids=lambda g: g.value)
def test_each_gate_fails_its_bad_input_naming_symbol_and_detail(gate):
    frame, cal, fragment = BAD[gate]()
    clean = equity("NYSE:CLEAN")
    rows = run(pl.concat([frame, clean]), {"NYSE:AAA": cal, "NYSE:CLEAN": WEEKDAYS}, gate)
    assert rows["NYSE:AAA"]["passed"] is False
    assert fragment in rows["NYSE:AAA"]["detail"], rows["NYSE:AAA"]["detail"]
    assert rows["NYSE:CLEAN"]["passed"] is True


@pytest.mark.parametrize("gate", list(Gate), ids=lambda g: g.value)
@pytest.mark.parametrize("calendar", [WEEKDAYS, ALWAYS])
def test_each_gate_passes_clean_data(gate, calendar):
    frame = equity() if calendar == WEEKDAYS else coin("NYSE:AAA")
    row = run(frame, {"NYSE:AAA": calendar}, gate)["NYSE:AAA"]
    assert row["passed"] is True, row
    assert row["detail"] != "no bars"


def test_gates_evaluate_a_mixed_calendar_book():
    """A book holding a weekday (TradFi) symbol and a 24/7 (crypto) symbol: each is judged on its own calendar.
    The per-calendar parts of `gaps` and `staleness` must concatenate (same value dtype on both calendars)."""
    inputs = GateInputs(
        pl.concat([equity(), coin()]), universe(**{"NYSE:AAA": WEEKDAYS, "SYNTH:BTCUSDT": ALWAYS}), AS_OF, HealthThresholds(), 5
    )
    result = evaluate_gates(inputs)
    assert result.height == 2 * len(Gate)
    assert result["passed"].all(), result.filter(~pl.col("passed"))
    assert result.columns == ["gate", "symbol", "passed", "value", "detail"]


def test_evaluate_gates_reports_one_row_per_gate_and_symbol():
    frame = pl.concat([equity(), drop_days(equity("NYSE:BBB"), date(2024, 1, 10), date(2024, 1, 11))])
    result = evaluate_gates(GateInputs(frame, universe(**{"NYSE:AAA": WEEKDAYS, "NYSE:BBB": WEEKDAYS}), AS_OF, HealthThresholds(), 5))
    assert result.height == 2 * len(Gate)
    failed = result.filter(~pl.col("passed"))
    assert failed.select("gate", "symbol").rows() == [("gaps", "NYSE:BBB")]
    only = evaluate_gates(GateInputs(frame, universe(**{"NYSE:AAA": WEEKDAYS}), AS_OF, HealthThresholds(), 5), [Gate.GAPS])
    assert only.rows() == [("gaps", "NYSE:AAA", True, 0.0, "no gaps")]


# ----------------------------------------------------------------------------------------------- gaps


def test_gaps_one_missing_weekday_session_is_tolerated_two_are_not():
    one = run(drop_days(equity(), date(2024, 1, 10)), {"NYSE:AAA": WEEKDAYS}, Gate.GAPS)["NYSE:AAA"]
    assert one["passed"] is True and one["value"] == 1
    two = run(drop_days(equity(), date(2024, 1, 10), date(2024, 1, 11)), {"NYSE:AAA": WEEKDAYS}, Gate.GAPS)["NYSE:AAA"]
    assert two["passed"] is False and two["value"] == 2


def test_weekend_is_not_a_gap_on_weekdays_but_is_on_24_7():
    weekday = run(equity(), {"NYSE:AAA": WEEKDAYS}, Gate.GAPS)["NYSE:AAA"]
    assert weekday["passed"] is True and weekday["value"] == 0 and weekday["detail"] == "no gaps"
    no_weekend = drop_days(coin(), date(2024, 1, 6), date(2024, 1, 7))
    crypto = run(no_weekend, {"SYNTH:BTCUSDT": ALWAYS}, Gate.GAPS)["SYNTH:BTCUSDT"]
    assert crypto["passed"] is False and crypto["value"] == 2
    assert "between 2024-01-05 and 2024-01-08" in crypto["detail"]


def test_gap_tolerance_follows_the_threshold():
    frame = drop_days(equity(), date(2024, 1, 10), date(2024, 1, 11))
    assert run(frame, {"NYSE:AAA": WEEKDAYS}, Gate.GAPS, max_missing_sessions=2)["NYSE:AAA"]["passed"] is True
    single = drop_days(equity(), date(2024, 1, 10))
    assert run(single, {"NYSE:AAA": WEEKDAYS}, Gate.GAPS, max_missing_sessions=0)["NYSE:AAA"]["passed"] is False


# ------------------------------------------------------------------------------------------ staleness


def test_crypto_staleness_boundary_is_24_hours():
    fresh = run(coin().filter(pl.col("date") <= AS_OF - timedelta(days=1)), {"SYNTH:BTCUSDT": ALWAYS}, Gate.STALENESS)
    assert fresh["SYNTH:BTCUSDT"]["passed"] is True and fresh["SYNTH:BTCUSDT"]["value"] == 24
    stale = run(coin().filter(pl.col("date") <= AS_OF - timedelta(days=2)), {"SYNTH:BTCUSDT": ALWAYS}, Gate.STALENESS)
    assert stale["SYNTH:BTCUSDT"]["passed"] is False and stale["SYNTH:BTCUSDT"]["value"] == 48
    assert "48 h" in stale["SYNTH:BTCUSDT"]["detail"]


def test_tradfi_staleness_counts_five_sessions():
    # as-of Friday 2024-01-12: last bar the previous Friday is 5 sessions old, the Thursday before is 6
    ok = run(equity().filter(pl.col("date") <= date(2024, 1, 5)), {"NYSE:AAA": WEEKDAYS}, Gate.STALENESS)["NYSE:AAA"]
    assert ok["passed"] is True and ok["value"] == 5
    old = run(equity().filter(pl.col("date") <= date(2024, 1, 4)), {"NYSE:AAA": WEEKDAYS}, Gate.STALENESS)["NYSE:AAA"]
    assert old["passed"] is False and old["value"] == 6


def test_tradfi_weekend_as_of_is_not_stale():
    sunday = date(2024, 1, 14)
    row = run(equity(), {"NYSE:AAA": WEEKDAYS}, Gate.STALENESS, as_of=sunday)["NYSE:AAA"]
    assert row["passed"] is True and row["value"] == 0


# ------------------------------------------------------------------------------------- toxic / ohlc / flat


def test_toxic_threshold_is_500_percent():
    closes = [10.0, 10.5, 10.2, 60.0, 61.0]  # 10.2 -> 60 is +488 %
    dates = days(date(2024, 1, 8), AS_OF, True)
    ok = run(bars("NYSE:AAA", dates, closes), {"NYSE:AAA": WEEKDAYS}, Gate.TOXIC_RETURN)["NYSE:AAA"]
    assert ok["passed"] is True and ok["value"] == pytest.approx(60 / 10.2 - 1)
    toxic = run(bars("NYSE:AAA", dates, [10.0, 10.5, 10.0, 61.0, 62.0]), {"NYSE:AAA": WEEKDAYS}, Gate.TOXIC_RETURN)["NYSE:AAA"]
    assert toxic["passed"] is False and toxic["value"] == pytest.approx(5.1)
    assert "on 2024-01-11" in toxic["detail"]
    crash = run(bars("NYSE:AAA", dates, [10.0, 10.5, 10.0, 61.0, 9.0]), {"NYSE:AAA": WEEKDAYS}, Gate.TOXIC_RETURN)
    assert crash["NYSE:AAA"]["passed"] is False  # the spike up is still toxic when it reverts


def test_ohlc_high_below_close_fails_and_close_only_passes_explicitly():
    dates = days(date(2024, 1, 8), AS_OF, True)
    broken = bars("NYSE:AAA", dates).with_columns(
        pl.when(pl.col("date") == date(2024, 1, 9)).then(pl.col("close") - 0.01).otherwise(pl.col("high")).alias("high")
    )
    row = run(broken, {"NYSE:AAA": WEEKDAYS}, Gate.OHLC_CONSISTENCY)["NYSE:AAA"]
    assert row["passed"] is False and row["value"] == 1 and "2024-01-09" in row["detail"]
    close_only = run(bars("NYSE:CLO", dates, ohlc=False), {"NYSE:CLO": WEEKDAYS}, Gate.OHLC_CONSISTENCY)["NYSE:CLO"]
    assert close_only["passed"] is True
    assert close_only["detail"] == "close-only source: OHLC range not applicable, closes positive"
    consistent = run(bars("NYSE:OK", dates), {"NYSE:OK": WEEKDAYS}, Gate.OHLC_CONSISTENCY)["NYSE:OK"]
    assert consistent["passed"] is True and consistent["detail"] == "consistent"


@pytest.mark.parametrize(
    "column, value",
    [("low", 0.0), ("close", -1.0), ("low", 1e9)],
    ids=["zero-low", "negative-close", "low-above-high"],
)
def test_ohlc_other_inconsistencies_fail(column, value):
    dates = days(date(2024, 1, 8), AS_OF, True)
    frame = bars("NYSE:AAA", dates).with_columns(
        pl.when(pl.col("date") == date(2024, 1, 10)).then(value).otherwise(pl.col(column)).alias(column)
    )
    row = run(frame, {"NYSE:AAA": WEEKDAYS}, Gate.OHLC_CONSISTENCY)["NYSE:AAA"]
    assert row["passed"] is False and "2024-01-10" in row["detail"]


def test_close_only_non_positive_close_fails():
    frame = bars("NYSE:CLO", days(date(2024, 1, 8), AS_OF, True), [5.0, 6.0, 0.0, 6.0, 7.0], ohlc=False)
    assert run(frame, {"NYSE:CLO": WEEKDAYS}, Gate.OHLC_CONSISTENCY)["NYSE:CLO"]["passed"] is False


def test_flat_close_run_of_three_fails_two_passes():
    dates = days(date(2024, 1, 8), AS_OF, True)
    two = run(bars("NYSE:AAA", dates, [5.0, 6.0, 6.0, 7.0, 6.0]), {"NYSE:AAA": WEEKDAYS}, Gate.FLAT_CLOSES)["NYSE:AAA"]
    assert two["passed"] is True and two["value"] == 2
    three = run(bars("NYSE:AAA", dates, [5.0, 6.0, 6.0, 6.0, 7.0]), {"NYSE:AAA": WEEKDAYS}, Gate.FLAT_CLOSES)["NYSE:AAA"]
    assert three["passed"] is False and three["value"] == 3
    assert "3 bars from 2024-01-09" in three["detail"]
    # the same price on two separate occasions is not a run
    apart = run(bars("NYSE:AAA", dates, [6.0, 6.0, 7.0, 6.0, 6.0]), {"NYSE:AAA": WEEKDAYS}, Gate.FLAT_CLOSES)["NYSE:AAA"]
    assert apart["passed"] is True and apart["value"] == 2


# ------------------------------------------------------------------------------ history / weekend / no bars


def test_history_floor_boundary():
    frame = equity()  # 10 weekday bars
    assert run(frame, {"NYSE:AAA": WEEKDAYS}, Gate.HISTORY_FLOOR, floor=10)["NYSE:AAA"]["passed"] is True
    short = run(frame, {"NYSE:AAA": WEEKDAYS}, Gate.HISTORY_FLOOR, floor=11)["NYSE:AAA"]
    assert short["passed"] is False and short["value"] == 10
    assert short["detail"] == "10 bars in the lookback (floor 11)"


def test_weekend_padding_only_for_the_weekday_calendar():
    padded = pl.concat([equity(), bars("NYSE:AAA", [date(2024, 1, 7)], [100.0])]).sort("date")
    tradfi = run(padded, {"NYSE:AAA": WEEKDAYS}, Gate.WEEKEND_PADDING)["NYSE:AAA"]
    assert tradfi["passed"] is False and tradfi["value"] == 1
    crypto = run(coin(), {"SYNTH:BTCUSDT": ALWAYS}, Gate.WEEKEND_PADDING)["SYNTH:BTCUSDT"]
    assert crypto["passed"] is True and crypto["value"] == 0
    assert crypto["detail"] == "24/7 calendar keeps weekends"
    assert run(equity(), {"NYSE:AAA": WEEKDAYS}, Gate.WEEKEND_PADDING)["NYSE:AAA"]["detail"] == "no weekend bars"


def test_symbol_without_bars_fails_staleness_and_history_only():
    inputs = GateInputs(equity(), universe(**{"NYSE:AAA": WEEKDAYS, "NYSE:GHOST": WEEKDAYS}), AS_OF, HealthThresholds(), 5)
    result = evaluate_gates(inputs).filter(pl.col("symbol") == "NYSE:GHOST")
    assert result.height == len(Gate)
    verdicts = dict(zip(result["gate"], result["passed"]))
    assert verdicts.pop(Gate.STALENESS.value) is False
    assert verdicts.pop(Gate.HISTORY_FLOOR.value) is False
    assert all(verdicts.values()), verdicts
    assert set(result["detail"]) == {"no bars"}


def test_gates_refuse_bars_after_the_as_of_date():
    with pytest.raises(ValueError, match="after the as-of date"):
        GateInputs(equity(), universe(**{"NYSE:AAA": WEEKDAYS}), AS_OF - timedelta(days=1), HealthThresholds(), 5)


def test_the_close_before_the_window_prices_its_first_move():
    """A spike or a gap from the last bar before the window into it is judged; older bars are not."""
    from datetime import date as _date

    start = _date(2024, 1, 8)  # a Monday
    days = [start - timedelta(days=7), start - timedelta(days=3)] + [start + timedelta(days=i) for i in range(0, 40)]
    days = [d for d in days if d.weekday() < 5]
    closes = [100.0] * len(days)
    closes[0] = 1.0  # an old bad print outside the window: never judged (it is not the previous close)
    closes[1] = 10.0  # the previous close: 10 -> 100 is a +900 % move into the window
    bars = pl.DataFrame(
        {"symbol": "NYSE:X", "date": days, "open": None, "high": None, "low": None,
         "close": [c + i * 0.01 for i, c in enumerate(closes)], "volume": None},
        schema_overrides={c: pl.Float64 for c in ("open", "high", "low", "volume")},
    )
    universe = pl.DataFrame({"symbol": ["NYSE:X"], "calendar": ["weekdays"]})
    as_of = days[-1]
    inputs = GateInputs(bars, universe, as_of, HealthThresholds(), 20, window_start=start)
    result = {r["gate"]: r for r in evaluate_gates(inputs).iter_rows(named=True)}
    assert not result["toxic_return"]["passed"] and result["toxic_return"]["value"] > 5
    assert result["gaps"]["passed"]  # Thursday -> Monday: one missing session, tolerated
    assert result["history_floor"]["value"] == sum(1 for d in days if d >= start)  # earlier bars do not count
