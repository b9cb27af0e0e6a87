"""The SYNTHETIC crypto market: determinism, schema, labels, stylised facts and the injected faults."""

from __future__ import annotations

import time
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from tsp_platform.lakehouse.schema import SYMBOLS
from tsp_platform.sources.base import OHLCV_SCHEMA
from tsp_platform.sources.synthetic_crypto import (
    FAULT_KINDS,
    FAULT_SYMBOLS,
    FAULTS_SCHEMA,
    FLAT_DAYS,
    GAP_DAYS,
    REGIME_NAMES,
    SOURCE,
    STALE_DAYS,
    SYMBOLS_SCHEMA,
    SYNTHETIC_LABEL,
    SyntheticMarket,
    clean_symbols,
    generate_synthetic_crypto,
    latest_date,
)

SPANS = [
    (7, date(2020, 1, 1), date(2022, 12, 31)),  # the default
    (123, date(2021, 3, 15), date(2021, 12, 31)),
]


@pytest.fixture(scope="module")
def market() -> SyntheticMarket:
    return generate_synthetic_crypto()


@pytest.fixture(scope="module", params=SPANS, ids=lambda s: f"seed{s[0]}-{s[1]}-{s[2]}")
def any_market(request) -> SyntheticMarket:
    seed, start, end = request.param
    return generate_synthetic_crypto(seed=seed, start=start, end=end)


def _with_returns(ohlcv: pl.DataFrame) -> pl.DataFrame:
    return ohlcv.sort("symbol", "date").with_columns(
        (pl.col("close") / pl.col("close").shift(1).over("symbol") - 1).alias("ret"),
        pl.col("close").shift(1).over("symbol").alias("prev_close"),
        pl.col("date").shift(1).over("symbol").alias("prev_date"),
    )


# --- detectors, one per fault kind: each returns the (symbol, first affected date) pairs it sees


def _detect_toxic_spike(m: SyntheticMarket) -> set[tuple[str, date]]:
    rows = _with_returns(m.ohlcv).filter(pl.col("ret") > 5.0)
    return set(rows.select("symbol", "date").iter_rows())


def _detect_gap(m: SyntheticMarket) -> set[tuple[str, date]]:
    rows = _with_returns(m.ohlcv).filter((pl.col("date") - pl.col("prev_date")).dt.total_days() > 1)
    return {(s, d + timedelta(days=1)) for s, d in rows.select("symbol", "prev_date").iter_rows()}


def _detect_stale(m: SyntheticMarket) -> set[tuple[str, date]]:
    last = m.ohlcv.group_by("symbol").agg(pl.col("date").max()).filter(pl.col("date") < m.end)
    return {(s, d + timedelta(days=1)) for s, d in last.iter_rows()}


def _flat_runs(m: SyntheticMarket, min_len: int = 3) -> list[tuple[str, date, int]]:
    """Runs of >= min_len identical consecutive closes: (symbol, first date, length)."""
    runs = (
        m.ohlcv.sort("symbol", "date")
        .with_columns(
            (pl.col("close") != pl.col("close").shift(1)).fill_null(True).cum_sum().over("symbol").alias("run")
        )
        .group_by("symbol", "run")
        .agg(pl.col("date").min().alias("first"), pl.len().alias("n"))
        .filter(pl.col("n") >= min_len)
    )
    return [(s, d, n) for s, d, n in runs.select("symbol", "first", "n").iter_rows()]


def _detect_flat_closes(m: SyntheticMarket) -> set[tuple[str, date]]:
    return {(s, d) for s, d, _ in _flat_runs(m)}


def _ohlc_bad(m: SyntheticMarket) -> pl.DataFrame:
    return m.ohlcv.filter(
        (pl.col("high") < pl.max_horizontal("open", "close"))
        | (pl.col("low") > pl.min_horizontal("open", "close"))
        | (pl.col("low") > pl.col("high"))
        | (pl.col("low") <= 0)
    )


def _detect_ohlc_inconsistent(m: SyntheticMarket) -> set[tuple[str, date]]:
    return set(_ohlc_bad(m).select("symbol", "date").iter_rows())


DETECTORS = {
    "toxic_spike": _detect_toxic_spike,
    "gap": _detect_gap,
    "stale": _detect_stale,
    "flat_closes": _detect_flat_closes,
    "ohlc_inconsistent": _detect_ohlc_inconsistent,
}


def _usdt_returns(m: SyntheticMarket) -> tuple[np.ndarray, list[str]]:
    """Daily log returns (T-1, n) of the clean, non-stable USDT pairs, and each column's sector."""
    info = m.symbols.filter(
        (pl.col("quote") == "USDT") & ~pl.col("is_stablecoin") & pl.col("symbol").is_in(clean_symbols(m))
    ).sort("symbol")
    wide = (
        m.ohlcv.filter(pl.col("symbol").is_in(info["symbol"].implode()))
        .pivot(on="symbol", index="date", values="close")
        .sort("date")
        .select(info["symbol"].to_list())
    )
    closes = wide.to_numpy()
    return np.diff(np.log(closes), axis=0), info["sector"].to_list()


# --- determinism and contract


def test_same_seed_is_bit_for_bit_identical():
    a, b = generate_synthetic_crypto(seed=11), generate_synthetic_crypto(seed=11)
    for name in ("symbols", "ohlcv", "faults", "regimes"):
        assert getattr(a, name).equals(getattr(b, name)), name
    assert a.ohlcv.hash_rows().to_list() == b.ohlcv.hash_rows().to_list()


def test_different_seed_changes_prices_not_reference_data():
    a, b = generate_synthetic_crypto(seed=1), generate_synthetic_crypto(seed=2)
    assert a.symbols.equals(b.symbols)  # the universe is seed independent
    assert a.faults.select("symbol", "kind", "date").equals(b.faults.select("symbol", "kind", "date"))
    assert not np.allclose(a.ohlcv["close"].to_numpy(), b.ohlcv["close"].to_numpy())


def test_default_span_and_latest_date(market):
    assert (market.seed, market.start, market.end) == (7, date(2020, 1, 1), date(2022, 12, 31))
    assert latest_date(market) == market.end == market.ohlcv["date"].max()
    assert market.ohlcv["date"].min() == market.start


def test_runtime_under_a_second():
    t0 = time.perf_counter()
    generate_synthetic_crypto(seed=99)
    assert time.perf_counter() - t0 < 1.0


def test_too_short_span_rejected():
    with pytest.raises(ValueError, match="at least"):
        generate_synthetic_crypto(start=date(2022, 12, 1), end=date(2022, 12, 31))


def test_schemas(market):
    assert market.ohlcv.schema == pl.Schema(OHLCV_SCHEMA)
    assert market.symbols.columns == SYMBOLS.column_names
    assert market.symbols.schema == pl.Schema(SYMBOLS_SCHEMA)
    assert market.faults.schema == pl.Schema(FAULTS_SCHEMA)
    assert market.regimes.columns == ["date", "regime"]
    assert market.ohlcv.select(pl.struct("symbol", "date").is_unique().all()).item()
    assert market.symbols["symbol"].is_unique().all()
    assert market.ohlcv.equals(market.ohlcv.sort("symbol", "date"))
    assert set(market.ohlcv["source"].unique()) == {SOURCE} == {"synthetic_crypto"}
    assert set(market.ohlcv["symbol"].unique()) == set(market.symbols["symbol"])
    not_null = ["symbol", "exchange", "ticker", "asset_class", "calendar", "is_stablecoin", "is_synthetic", "source"]
    assert market.symbols.select(pl.col(not_null).null_count().sum()).row(0) == (0,) * len(not_null)
    assert market.ohlcv.null_count().sum_horizontal().item() == 0


def test_everything_labelled_synthetic(market):
    s = market.symbols
    assert SYNTHETIC_LABEL == "SYNTHETIC"
    assert s["is_synthetic"].all()
    assert s["description"].str.starts_with("SYNTHETIC —").all()
    assert (s["exchange"] == "SYNTH").all() and (s["source"] == "synthetic_crypto").all()
    assert (s["calendar"] == "24/7").all() and (s["asset_class"] == "crypto").all()
    assert (s["currency"] == s["quote"]).all()
    assert s["base"].str.starts_with("SYN").all()
    assert (s["ticker"] == s["base"] + s["quote"]).all()
    assert (s["symbol"] == "SYNTH:" + s["ticker"]).all()
    assert s["sector"].str.starts_with("Synthetic ").all()
    assert ((s["tick_size"] > 0) & (s["lot_size"] > 0)).all()


def test_universe_shape(market):
    s = market.symbols
    crypto = s.filter(~pl.col("is_stablecoin"))
    assert 35 <= crypto["base"].n_unique() <= 45
    assert 4 <= crypto["sector"].n_unique() <= 5
    assert 2 <= s.filter(pl.col("is_stablecoin"))["base"].n_unique() <= 3


# --- stylised facts


def test_clean_symbols_trade_every_calendar_day(any_market):
    m = any_market
    n_days = (m.end - m.start).days + 1
    full = pl.date_range(m.start, m.end, "1d", eager=True)
    clean = clean_symbols(m)
    assert len(clean) == m.symbols.height - len(FAULT_KINDS)
    per_symbol = m.ohlcv.filter(pl.col("symbol").is_in(clean)).group_by("symbol").agg(pl.col("date"))
    assert per_symbol.height == len(clean)
    for symbol, dates in per_symbol.iter_rows():
        assert len(dates) == n_days and dates == full.to_list(), symbol


def test_cluster_structure(market):
    returns, sectors = _usdt_returns(market)
    corr = np.corrcoef(returns, rowvar=False)
    same = np.equal.outer(np.array(sectors), np.array(sectors))
    off_diagonal = ~np.eye(len(sectors), dtype=bool)
    within = corr[same & off_diagonal].mean()
    between = corr[~same].mean()
    assert within > between + 0.15, (within, between)
    assert between > 0.2  # a common market factor


def test_fat_tails(market):
    returns, _ = _usdt_returns(market)
    z = (returns - returns.mean(axis=0)) / returns.std(axis=0)
    excess_kurtosis = float((z**4).mean() - 3.0)
    assert excess_kurtosis > 1.0, excess_kurtosis


def test_regimes_change_volatility(market):
    regimes = market.regimes
    assert set(regimes["regime"].unique()) == set(REGIME_NAMES)
    assert regimes["date"].to_list() == pl.date_range(market.start, market.end, "1d", eager=True).to_list()
    returns, _ = _usdt_returns(market)
    state = regimes["regime"].to_numpy()[1:]
    abs_move = np.abs(returns).mean(axis=1)
    assert abs_move[state == "crash"].mean() > 1.5 * abs_move[state == "calm"].mean()


def test_bars_are_plausible_for_clean_symbols(market):
    bars = _with_returns(market.ohlcv.filter(pl.col("symbol").is_in(clean_symbols(market)))).drop_nulls("ret")
    assert (bars["volume"] > 0).all()
    assert ((bars["open"] / bars["prev_close"] - 1).abs() < 0.005).all()  # open ~ previous close
    assert bars["ret"].max() < 1.0 and bars["ret"].min() > -0.5
    # volume correlates with |return| inside each symbol
    corr = (
        bars.with_columns(pl.col("ret").abs().alias("absret"), pl.col("volume").log().alias("logvol"))
        .group_by("symbol")
        .agg(pl.corr("absret", "logvol").alias("c"))
    )
    assert corr["c"].mean() > 0.2


def test_multiple_quotes_per_base(market):
    s = market.symbols
    quotes = s.group_by("base").agg(pl.col("quote"))
    assert all("USDT" in q for q in quotes["quote"])
    assert quotes.filter(pl.col("quote").list.len() >= 2).height >= 10
    assert quotes.filter(pl.col("quote").list.len() == 3).height >= 5
    assert {"USDT", "USDC", "FDUSD"} <= set(s["quote"])

    clean = clean_symbols(market)
    bars = market.ohlcv.filter(pl.col("symbol").is_in(clean)).join(s.select("symbol", "base", "quote"), on="symbol")
    wide_close = bars.pivot(on="quote", index=["base", "date"], values="close")
    for quote in ("USDC", "FDUSD"):
        pair = wide_close.drop_nulls([quote, "USDT"])
        assert pair.height > 0
        assert ((pair[quote] / pair["USDT"] - 1).abs() < 0.005).all()  # same underlying, tiny basis
    notional = (
        bars.group_by("base", "quote")
        .agg((pl.col("close") * pl.col("volume")).mean().alias("notional"))
        .pivot(on="quote", index="base", values="notional")
    )
    for quote in ("USDC", "FDUSD"):
        pair = notional.drop_nulls(quote)
        assert (pair["USDT"] > pair[quote]).all(), quote  # USDT most liquid


def test_stablecoins_priced_near_one(market):
    stable = market.symbols.filter(pl.col("is_stablecoin"))["symbol"]
    bars = market.ohlcv.filter(pl.col("symbol").is_in(stable.implode()))
    assert bars.height > 0
    for column in ("open", "high", "low", "close"):
        assert ((bars[column] - 1.0).abs() < 0.01).all(), column
    assert bars["close"].std() > 0  # not constant: a stale gate must not confuse them with frozen feeds
    others = market.ohlcv.filter(~pl.col("symbol").is_in(stable.implode()))
    assert (others.group_by("symbol").agg(((pl.col("close") - 1).abs() > 0.02).any().alias("moves"))["moves"]).all()


# --- injected faults


def test_fault_table(any_market):
    m = any_market
    f = m.faults
    assert f.height == len(FAULT_KINDS) and set(f["kind"]) == set(FAULT_KINDS)
    assert f["symbol"].is_unique().all()
    assert dict(zip(f["kind"], f["symbol"])) == FAULT_SYMBOLS
    assert set(f["symbol"]) <= set(m.symbols["symbol"])
    # all inside the last 120 days, so a 500-day lookback as of the last date sees them
    assert (f["date"] > m.end - timedelta(days=120)).all() and (f["date"] <= m.end).all()
    assert (f["detail"].str.len_chars() > 0).all()


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_each_fault_exactly_where_listed(any_market, kind):
    m = any_market
    listed = set(m.faults.filter(pl.col("kind") == kind).select("symbol", "date").iter_rows())
    assert DETECTORS[kind](m) == listed


def test_fault_details(any_market):
    m = any_market
    fault = {k: (s, d) for s, k, d in m.faults.select("symbol", "kind", "date").iter_rows()}
    bars = _with_returns(m.ohlcv)

    symbol, day = fault["toxic_spike"]
    spike = bars.filter(pl.col("symbol") == symbol)
    ret_on = dict(zip(spike["date"], spike["ret"]))
    assert ret_on[day] > 5.0
    assert ret_on[day + timedelta(days=1)] < -0.8  # reversal

    symbol, day = fault["gap"]
    dates = set(bars.filter(pl.col("symbol") == symbol)["date"])
    missing = {day + timedelta(days=i) for i in range(GAP_DAYS)}
    assert not dates & missing
    assert day - timedelta(days=1) in dates and day + timedelta(days=GAP_DAYS) in dates

    symbol, day = fault["stale"]
    assert bars.filter(pl.col("symbol") == symbol)["date"].max() == m.end - timedelta(days=STALE_DAYS)
    assert day == m.end - timedelta(days=STALE_DAYS - 1)

    symbol, day = fault["flat_closes"]
    assert _flat_runs(m) == [(symbol, day, FLAT_DAYS)]
    flat = bars.filter(
        (pl.col("symbol") == symbol) & pl.col("date").is_between(day, day + timedelta(days=FLAT_DAYS - 1))
    )
    assert flat.height == FLAT_DAYS and (flat["volume"] == 0).all()
    assert flat.select(pl.col("open", "high", "low", "close").n_unique()).row(0) == (1, 1, 1, 1)
    assert set(m.ohlcv.filter(pl.col("volume") == 0)["symbol"]) == {symbol}

    symbol, day = fault["ohlc_inconsistent"]
    bad = _ohlc_bad(m)
    assert bad.height == 1
    assert bad.row(0, named=True)["high"] < bad.row(0, named=True)["close"]


def test_clean_symbols_have_no_fault(any_market):
    m = any_market
    clean = set(clean_symbols(m))
    for kind, detect in DETECTORS.items():
        assert not {s for s, _ in detect(m)} & clean, kind
    # faulted symbols carry only their own fault
    for kind, detect in DETECTORS.items():
        assert {s for s, _ in detect(m)} == {FAULT_SYMBOLS[kind]}, kind
    assert {s for s, _, _ in _flat_runs(m, min_len=2)} == {FAULT_SYMBOLS["flat_closes"]}  # not even 2 repeats
