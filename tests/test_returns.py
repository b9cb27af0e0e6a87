"""Calendar-aware daily returns: each symbol keeps its own sessions; exclusions carry their reason."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

from tsp_platform.core.vocabulary import Calendar
from tsp_platform.market_data.returns import ExclusionReason, build_returns

WEEKDAYS = Calendar.WEEKDAYS.value
ALWAYS = Calendar.ALWAYS.value
AS_OF = date(2024, 1, 14)  # Sunday
START = date(2024, 1, 2)  # Tuesday


def bars(symbol: str, closes: dict[date, float]) -> pl.DataFrame:
    dates = sorted(closes)
    return pl.DataFrame(
        {"symbol": [symbol] * len(dates), "date": dates, "close": [closes[d] for d in dates]},
        schema={"symbol": pl.String, "date": pl.Date, "close": pl.Float64},
    )


def series(symbol: str, start: date, end: date, weekdays_only: bool, first: float = 100.0) -> pl.DataFrame:
    closes, d, i = {}, start, 0
    while d <= end:
        if not weekdays_only or d.weekday() < 5:
            closes[d] = first * (1 + 0.01 * ((-1) ** i) * (1 + i % 3))  # varies, never constant
            i += 1
        d += timedelta(days=1)
    return bars(symbol, closes)


def universe(**calendars: str) -> pl.DataFrame:
    return pl.DataFrame({"symbol": list(calendars), "calendar": list(calendars.values())})


def rets_of(result, symbol: str) -> dict[date, float]:
    frame = result.returns.filter(pl.col("symbol") == symbol)
    return dict(zip(frame["date"], frame["ret"]))


def test_tradfi_weekend_bars_are_never_used():
    closes = {
        date(2024, 1, 4): 100.0,  # Thu
        date(2024, 1, 5): 110.0,  # Fri
        date(2024, 1, 6): 500.0,  # Sat: padding a TradFi feed must not create returns
        date(2024, 1, 7): 510.0,  # Sun
        date(2024, 1, 8): 121.0,  # Mon
        date(2024, 1, 9): 121.0 * 1.02,  # Tue
    }
    result = build_returns(bars("NYSE:AAA", closes), universe(**{"NYSE:AAA": WEEKDAYS}), AS_OF, START, 2)
    rets = rets_of(result, "NYSE:AAA")
    assert sorted(rets) == [date(2024, 1, 5), date(2024, 1, 8), date(2024, 1, 9)]
    assert all(d.weekday() < 5 for d in rets)
    assert rets[date(2024, 1, 8)] == pytest.approx(121 / 110 - 1)  # Monday against Friday, not Sunday
    assert result.exclusions.is_empty()


def test_crypto_keeps_weekend_returns():
    frame = series("SYNTH:BTCUSDT", date(2024, 1, 1), AS_OF, weekdays_only=False)
    result = build_returns(frame, universe(**{"SYNTH:BTCUSDT": ALWAYS}), AS_OF, START, 2)
    rets = rets_of(result, "SYNTH:BTCUSDT")
    assert len(rets) == 13  # 2024-01-02 .. 2024-01-14, every day
    assert {date(2024, 1, 6), date(2024, 1, 7), date(2024, 1, 13), date(2024, 1, 14)} <= set(rets)
    closes = dict(zip(frame["date"], frame["close"]))
    assert rets[date(2024, 1, 7)] == pytest.approx(closes[date(2024, 1, 7)] / closes[date(2024, 1, 6)] - 1)


def test_mixed_book_is_not_truncated_to_common_dates():
    equity = series("NYSE:AAA", date(2024, 1, 1), AS_OF, weekdays_only=True)
    coin = series("SYNTH:BTCUSDT", date(2024, 1, 1), AS_OF, weekdays_only=False)
    result = build_returns(
        pl.concat([equity, coin]), universe(**{"NYSE:AAA": WEEKDAYS, "SYNTH:BTCUSDT": ALWAYS}), AS_OF, START, 2
    )
    eq, cr = rets_of(result, "NYSE:AAA"), rets_of(result, "SYNTH:BTCUSDT")
    assert len(eq) == 9  # Tue 2 .. Fri 12 January, weekdays only
    assert len(cr) == 13
    assert set(eq) < set(cr)  # crypto keeps dates the equity does not have
    assert result.returns.height == 22
    assert result.returns.columns == ["symbol", "date", "ret"]
    assert result.exclusions.is_empty()


def test_exclusions_carry_reasons_and_details():
    good = series("NYSE:GOOD", date(2024, 1, 1), AS_OF, weekdays_only=True)
    short = series("NYSE:SHORT", date(2024, 1, 9), AS_OF, weekdays_only=True)  # 3 returns: Wed..Fri
    flat = bars("NYSE:FLAT", {d: 50.0 for d in good["date"]})
    bad = series("NYSE:BAD", date(2024, 1, 1), AS_OF, weekdays_only=True)
    quarantine = pl.DataFrame({"symbol": ["NYSE:BAD"], "detail": ["toxic_return: largest daily move 9.0 on 2024-01-05"]})
    cal = {s: WEEKDAYS for s in ("NYSE:GOOD", "NYSE:SHORT", "NYSE:FLAT", "NYSE:BAD", "NYSE:NONE")}
    result = build_returns(pl.concat([good, short, flat, bad]), universe(**cal), AS_OF, START, 5, quarantine)
    reasons = {r["symbol"]: (r["reason"], r["detail"]) for r in result.exclusions.iter_rows(named=True)}
    assert reasons == {
        "NYSE:BAD": (ExclusionReason.QUARANTINED, "toxic_return: largest daily move 9.0 on 2024-01-05"),
        "NYSE:FLAT": (ExclusionReason.ZERO_VARIANCE, "constant prices"),
        "NYSE:NONE": (ExclusionReason.NO_BARS, "no bars in the lookback"),
        "NYSE:SHORT": (ExclusionReason.HISTORY_FLOOR, "3 returns < floor 5"),
    }
    assert set(result.returns["symbol"]) == {"NYSE:GOOD"}


def test_history_floor_boundary_counts_returns_not_bars():
    frame = series("NYSE:AAA", date(2024, 1, 8), date(2024, 1, 12), weekdays_only=True)  # 5 bars, 4 returns
    cal = universe(**{"NYSE:AAA": WEEKDAYS})
    assert build_returns(frame, cal, AS_OF, START, 4).exclusions.is_empty()
    excluded = build_returns(frame, cal, AS_OF, START, 5).exclusions
    assert excluded.rows() == [("NYSE:AAA", ExclusionReason.HISTORY_FLOOR, "4 returns < floor 5")]


def test_quarantine_wins_over_other_reasons():
    quarantine = pl.DataFrame({"symbol": ["NYSE:NONE"], "detail": ["staleness: no bars"]})
    result = build_returns(
        series("NYSE:AAA", date(2024, 1, 1), AS_OF, True), universe(**{"NYSE:AAA": WEEKDAYS, "NYSE:NONE": WEEKDAYS}),
        AS_OF, START, 2, quarantine,
    )
    assert result.exclusions.rows() == [("NYSE:NONE", "quarantined", "staleness: no bars")]


def test_first_return_uses_the_close_before_start():
    closes = {date(2023, 12, 29): 80.0, date(2024, 1, 2): 100.0, date(2024, 1, 3): 101.0, date(2024, 1, 4): 99.0}
    result = build_returns(bars("NYSE:AAA", closes), universe(**{"NYSE:AAA": WEEKDAYS}), AS_OF, START, 2)
    rets = rets_of(result, "NYSE:AAA")
    assert min(rets) == START
    assert rets[START] == pytest.approx(100 / 80 - 1)
    assert date(2023, 12, 29) not in rets  # nothing before start is reported
    # without the earlier close, the first return is the second bar's
    later = build_returns(
        bars("NYSE:AAA", {d: c for d, c in closes.items() if d >= START}), universe(**{"NYSE:AAA": WEEKDAYS}), AS_OF, START, 2
    )
    assert min(rets_of(later, "NYSE:AAA")) == date(2024, 1, 3)


def test_bars_outside_the_universe_are_ignored():
    frame = pl.concat([series("NYSE:AAA", date(2024, 1, 1), AS_OF, True), series("NYSE:XXX", date(2024, 1, 1), AS_OF, True)])
    result = build_returns(frame, universe(**{"NYSE:AAA": WEEKDAYS}), AS_OF, START, 2)
    assert set(result.returns["symbol"]) == {"NYSE:AAA"}


def test_returns_refuse_bars_after_as_of():
    frame = series("NYSE:AAA", date(2024, 1, 1), AS_OF + timedelta(days=1), weekdays_only=True)
    with pytest.raises(ValueError, match="after the as-of date"):
        build_returns(frame, universe(**{"NYSE:AAA": WEEKDAYS}), AS_OF, START, 2)
