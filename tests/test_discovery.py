"""Discovery: running scanners over screener rows, aggregating the raw pool, and the offline screener."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from tsp_platform.config.models import PoolConfig
from tsp_platform.config.scanners import Layer, ScannerConfig, ScreenFilter, TrendGate, load_scanner
from tsp_platform.core.vocabulary import Direction
from tsp_platform.discovery.pool import build_raw_pool
from tsp_platform.discovery.scan import ScanError, apply_scanner
from tsp_platform.discovery.screener import compute_screener_fields
from tsp_platform.lakehouse.schema import RAW_POOL
from tsp_platform.sources.base import SCREENER_SCHEMA
from tsp_platform.sources.symbols import split_ticker

AS_OF = date(2024, 6, 28)

# ---------------------------------------------------------------------------------------------- helpers


def screener_rows(rows: list[dict]) -> pl.DataFrame:
    """Screener rows with every SCREENER_SCHEMA column (absent values are null)."""
    full = [{c: r.get(c) for c in SCREENER_SCHEMA} for r in rows]
    return pl.DataFrame(full, schema=SCREENER_SCHEMA)


def scanner(**fields) -> ScannerConfig:
    base = {"name": "test/scan", "layer": Layer.L4, "direction": Direction.LONG, "exchanges": ()}
    return ScannerConfig(**(base | fields))


def symbols_of(frame: pl.DataFrame) -> list[str]:
    return frame["symbol"].to_list()


# ---------------------------------------------------------------------------------------- apply_scanner

OP_ROWS = screener_rows(
    [{"symbol": f"X:{s}", "exchange": "X", "close": v, "value_traded": 1.0} for s, v in zip("ABCDE", [1, 2, 3, 4, 5])]
    + [{"symbol": "X:N", "exchange": "X", "close": None, "value_traded": 1.0}]
)


@pytest.mark.parametrize(
    "operation, right, expected",
    [
        ("greater", 3, {"D", "E"}),
        ("less", 3, {"A", "B"}),
        ("egreater", 3, {"C", "D", "E"}),
        ("eless", 3, {"A", "B", "C"}),
        ("equal", 3, {"C"}),
        ("nequal", 3, {"A", "B", "D", "E"}),
        ("in_range", [2, 4], {"B", "C", "D"}),
        ("not_in_range", [2, 4], {"A", "E"}),
    ],
)
def test_each_filter_operation_and_null_fails(operation, right, expected):
    scan = scanner(filters=(ScreenFilter(left="close", operation=operation, right=right),))
    kept = apply_scanner(scan, OP_ROWS)
    assert {s.split(":")[1] for s in symbols_of(kept)} == expected
    assert "X:N" not in symbols_of(kept)  # a null value fails every rule, even the negated ones


def test_string_equality_filter_on_a_live_column():
    rows = screener_rows([{"symbol": "B:A", "exchange": "B"}, {"symbol": "B:B", "exchange": "B"}]).with_columns(
        pl.Series("type", ["spot", "futures"])
    )
    kept = apply_scanner(scanner(filters=(ScreenFilter(left="type", operation="equal", right="spot"),)), rows)
    assert symbols_of(kept) == ["B:A"]


def test_value_traded_floor_rejects_nulls_and_keeps_the_boundary():
    rows = screener_rows(
        [
            {"symbol": "X:LOW", "value_traded": 999.0},
            {"symbol": "X:EDGE", "value_traded": 1000.0},
            {"symbol": "X:HIGH", "value_traded": 5000.0},
            {"symbol": "X:NULL", "value_traded": None},
        ]
    )
    kept = apply_scanner(scanner(value_traded_min=1000), rows)
    assert symbols_of(kept) == ["X:HIGH", "X:EDGE"]


TREND_ROWS = screener_rows(
    [
        {"symbol": "X:BULL", "recommend_all": 0.6, "perf_1m": 5.0, "perf_3m": 12.0, "adx": 30.0, "value_traded": 1.0},
        {"symbol": "X:BEAR", "recommend_all": -0.6, "perf_1m": -5.0, "perf_3m": -20.0, "adx": 30.0, "value_traded": 1.0},
        {"symbol": "X:MILDBEAR", "recommend_all": -0.3, "perf_1m": -1.0, "perf_3m": -4.0, "adx": 30.0, "value_traded": 1.0},
        {"symbol": "X:WEAKADX", "recommend_all": -0.6, "perf_1m": -5.0, "perf_3m": -20.0, "adx": 10.0, "value_traded": 1.0},
        {"symbol": "X:MIXED", "recommend_all": 0.6, "perf_1m": -5.0, "perf_3m": 12.0, "adx": 30.0, "value_traded": 1.0},
        {"symbol": "X:NEAR0", "recommend_all": -0.05, "perf_1m": -5.0, "perf_3m": -20.0, "adx": 30.0, "value_traded": 1.0},
        {"symbol": "X:NULLREC", "recommend_all": None, "perf_1m": -5.0, "perf_3m": -20.0, "adx": 30.0, "value_traded": 1.0},
    ]
)
GATE = TrendGate(recommendation_min=0.1, adx_min=20, momentum={"Perf.1M": 0, "Perf.3M": 0})


def test_trend_gate_long_keeps_only_bullish_rows():
    kept = apply_scanner(scanner(direction=Direction.LONG, trend=GATE), TREND_ROWS)
    assert symbols_of(kept) == ["X:BULL"]


def test_trend_gate_short_keeps_bearish_rows_and_never_the_bullish_one():
    kept = symbols_of(apply_scanner(scanner(direction=Direction.SHORT, trend=GATE), TREND_ROWS))
    assert set(kept) == {"X:BEAR", "X:MILDBEAR"}
    assert "X:BULL" not in kept and "X:MIXED" not in kept
    assert "X:NEAR0" not in kept  # -0.05 is not <= -0.1: the recommendation threshold flips sign too
    assert "X:WEAKADX" not in kept  # ADX (trend strength) is not flipped for shorts
    assert "X:NULLREC" not in kept


def test_shipped_short_scanner_keeps_bearish_names_most_bearish_first():
    short = load_scanner("tradfi/sample_trend_short")
    long = load_scanner("tradfi/sample_trend_long")
    base = {"exchange": "NYSE", "volatility_d": 1.5}
    rows = screener_rows(
        [
            base | {"symbol": "NYSE:UP", "recommend_all": 0.5, "perf_1m": 4.0, "perf_3m": 10.0},
            base | {"symbol": "NYSE:DOWN", "recommend_all": -0.5, "perf_1m": -4.0, "perf_3m": -10.0},
            base | {"symbol": "NYSE:CRASH", "recommend_all": -0.2, "perf_1m": -9.0, "perf_3m": -30.0},
            base | {"symbol": "NYSE:DRIFT", "recommend_all": -0.1, "perf_1m": -1.0, "perf_3m": -2.0},
        ]
    )
    shorts = apply_scanner(short, rows)
    assert symbols_of(shorts) == ["NYSE:CRASH", "NYSE:DOWN", "NYSE:DRIFT"]
    assert shorts["rank"].to_list() == [1, 2, 3]
    assert symbols_of(apply_scanner(long, rows)) == ["NYSE:UP"]


def test_shipped_rating_short_sorts_by_rating_ascending():
    short = load_scanner("crypto/synthetic_rating_all_short")
    base = {"exchange": "SYNTH", "volatility_d": 3.0, "value_traded": 1e7}
    rows = screener_rows(
        [
            base | {"symbol": "SYNTH:AUSDT", "recommend_all": -0.2},
            base | {"symbol": "SYNTH:BUSDT", "recommend_all": -0.9},
            base | {"symbol": "SYNTH:CUSDT", "recommend_all": 0.7},
            base | {"symbol": "SYNTH:DUSDT", "recommend_all": -0.5, "value_traded": 1000.0},  # below the floor
        ]
    )
    assert symbols_of(apply_scanner(short, rows)) == ["SYNTH:BUSDT", "SYNTH:AUSDT"]


def test_limit_and_rank_with_symbol_tie_break():
    rows = screener_rows(
        [
            {"symbol": "X:C", "value_traded": 10.0},
            {"symbol": "X:B", "value_traded": 30.0},
            {"symbol": "X:A", "value_traded": 30.0},
            {"symbol": "X:D", "value_traded": 5.0},
            {"symbol": "X:E", "value_traded": None},
        ]
    )
    kept = apply_scanner(scanner(limit=3), rows)
    assert symbols_of(kept) == ["X:A", "X:B", "X:C"]
    assert kept["rank"].to_list() == [1, 2, 3]
    assert kept["rank"].dtype == pl.Int32
    ascending = apply_scanner(scanner(sort_order="asc", limit=10), rows)
    assert symbols_of(ascending) == ["X:D", "X:C", "X:A", "X:B", "X:E"]  # nulls last either way


def test_exchange_symbol_and_exclusion_lists():
    rows = screener_rows(
        [
            {"symbol": "A:ONE", "exchange": "A", "value_traded": 1.0},
            {"symbol": "A:TWO", "exchange": "A", "value_traded": 2.0},
            {"symbol": "B:ONE", "exchange": "B", "value_traded": 3.0},
        ]
    )
    assert symbols_of(apply_scanner(scanner(exchanges=("A",)), rows)) == ["A:TWO", "A:ONE"]
    assert symbols_of(apply_scanner(scanner(exchanges=("A",), exclude_symbols=("A:TWO",)), rows)) == ["A:ONE"]
    assert symbols_of(apply_scanner(scanner(symbols=("B:ONE", "A:ONE")), rows)) == ["B:ONE", "A:ONE"]


@pytest.mark.parametrize(
    "fields",
    [
        {"filters": (ScreenFilter(left="Bogus.Field", operation="greater", right=0),)},
        {"sort_by": "Bogus.Field"},
        {"trend": TrendGate(momentum={"Bogus.Field": 0})},
    ],
    ids=["filter", "sort", "trend"],
)
def test_unknown_field_is_a_scan_error_naming_scanner_and_field(fields):
    with pytest.raises(ScanError) as info:
        apply_scanner(scanner(name="my/scanner", **fields), OP_ROWS)
    assert "my/scanner" in str(info.value) and "Bogus.Field" in str(info.value)


def test_trend_field_missing_from_the_source_is_a_scan_error():
    rows = OP_ROWS.drop("adx")
    with pytest.raises(ScanError, match="ADX"):
        apply_scanner(scanner(trend=TrendGate(adx_min=20)), rows)


def test_server_filtered_skips_filters_but_keeps_trend_gate_and_liquidity_floor():
    scan = scanner(
        filters=(ScreenFilter(left="close", operation="greater", right=100),),
        trend=TrendGate(recommendation_min=0.0),
        value_traded_min=1000,
    )
    rows = screener_rows(
        [
            {"symbol": "X:OK", "close": 5.0, "recommend_all": 0.5, "value_traded": 5000.0},  # fails only `filters`
            {"symbol": "X:BEAR", "close": 500.0, "recommend_all": -0.5, "value_traded": 5000.0},
            {"symbol": "X:THIN", "close": 500.0, "recommend_all": 0.5, "value_traded": 10.0},
            {"symbol": "X:ALL", "close": 500.0, "recommend_all": 0.5, "value_traded": 2000.0},
        ]
    )
    assert symbols_of(apply_scanner(scan, rows, server_filtered=True)) == ["X:OK", "X:ALL"]
    assert symbols_of(apply_scanner(scan, rows)) == ["X:ALL"]


# --------------------------------------------------------------------------------------- build_raw_pool


def scans_frame(rows: list[tuple]) -> pl.DataFrame:
    """(scanner, symbol, direction, logic, rank, value_traded) tuples."""
    return pl.DataFrame(
        {
            "profile": ["p"] * len(rows),
            "as_of": [AS_OF] * len(rows),
            "scanner": [r[0] for r in rows],
            "symbol": [r[1] for r in rows],
            "direction": [r[2] for r in rows],
            "logic": [r[3] for r in rows],
            "rank": [r[4] for r in rows],
            "value_traded": [r[5] for r in rows],
            "sector": [None] * len(rows),
        },
        schema_overrides={"value_traded": pl.Float64, "sector": pl.String, "rank": pl.Int32},
    )


def symbols_table(rows: list[tuple]) -> pl.DataFrame:
    """(symbol, base, quote, asset_class, is_stablecoin) tuples."""
    return pl.DataFrame(
        {
            "symbol": [r[0] for r in rows],
            "base": [r[1] for r in rows],
            "quote": [r[2] for r in rows],
            "asset_class": [r[3] for r in rows],
            "sector": [None] * len(rows),
            "is_stablecoin": [r[4] for r in rows],
        },
        schema_overrides={"sector": pl.String, "base": pl.String, "quote": pl.String},
    )


def crypto(symbol: str, stable: bool = False) -> tuple:
    base, quote = split_ticker(symbol.split(":")[1])
    return (symbol, base, quote, "crypto", stable)


def pool_row(pool: pl.DataFrame, symbol: str, direction: str = "long", logic: str = "trend") -> dict:
    rows = pool.filter(pl.col("symbol") == symbol, pl.col("direction") == direction, pl.col("logic") == logic)
    assert rows.height == 1, f"{symbol} {direction} {logic}: {rows.height} rows"
    return rows.row(0, named=True)


def rejection(result, symbol: str) -> str:
    reasons = result.rejected.filter(pl.col("symbol") == symbol)["reason"].to_list()
    assert len(reasons) == 1, f"{symbol}: {reasons}"
    return reasons[0]


def test_split_ticker():
    assert split_ticker("BTCUSDT") == ("BTC", "USDT")
    assert split_ticker("ETHFDUSD") == ("ETH", "FDUSD")
    assert split_ticker("BTCUSDT.P") == ("BTC", "USDT")
    assert split_ticker("AAPL") == ("AAPL", None)


def test_atoms_dedup_by_symbol_logic_direction_keeping_all_scanners():
    scans = scans_frame(
        [
            ("s2", "NYSE:AAA", "long", "trend", 3, 100.0),
            ("s1", "NYSE:AAA", "long", "trend", 1, 100.0),
            ("s3", "NYSE:AAA", "short", "trend", 2, 100.0),
            ("s4", "NYSE:AAA", "long", "universe", 5, 100.0),
        ]
    )
    symbols = symbols_table([("NYSE:AAA", "AAA", None, "equity", False)])
    result = build_raw_pool(scans, symbols, PoolConfig())
    assert result.pool.height == 3
    long_trend = pool_row(result.pool, "NYSE:AAA", "long", "trend")
    assert json.loads(long_trend["scanners"]) == ["s1", "s2"]
    assert json.loads(long_trend["alternatives"]) == []
    assert long_trend["identity"] == "NYSE:AAA"
    assert json.loads(pool_row(result.pool, "NYSE:AAA", "short", "trend")["scanners"]) == ["s3"]
    assert json.loads(pool_row(result.pool, "NYSE:AAA", "long", "universe")["scanners"]) == ["s4"]
    assert result.pool.columns == RAW_POOL.column_names
    assert result.rejected.is_empty()


def test_crypto_keeps_one_quote_per_base_by_priority_unless_illiquid():
    scans = scans_frame(
        [
            ("s", "BINANCE:BTCUSDT", "long", "t", 1, 40.0),  # 40 > 0.3 x 100: priority wins
            ("s", "BINANCE:BTCUSDC", "long", "t", 2, 100.0),
            ("s", "BINANCE:ETHUSDT", "long", "t", 3, 20.0),  # 20 <= 0.3 x 100: the deeper book wins
            ("s", "BINANCE:ETHUSDC", "long", "t", 4, 100.0),
            ("s", "BINANCE:ETHFDUSD", "long", "t", 5, 60.0),
        ]
    )
    symbols = symbols_table([crypto(s) for s in scans["symbol"]])
    result = build_raw_pool(scans, symbols, PoolConfig(liquidity_tie_ratio=0.3))
    assert sorted(result.pool["symbol"]) == ["BINANCE:BTCUSDT", "BINANCE:ETHUSDC"]
    btc = pool_row(result.pool, "BINANCE:BTCUSDT", "long", "t")
    assert btc["identity"] == "BTC" and btc["quote"] == "USDT"
    assert json.loads(btc["alternatives"]) == ["BINANCE:BTCUSDC"]
    eth = pool_row(result.pool, "BINANCE:ETHUSDC", "long", "t")
    assert set(json.loads(eth["alternatives"])) == {"BINANCE:ETHUSDT", "BINANCE:ETHFDUSD"}
    assert result.rejected.is_empty()  # alternatives are recorded, not rejected


def test_crypto_quote_tie_ratio_boundary_is_exclusive():
    scans = scans_frame([("s", "BINANCE:SOLUSDT", "long", "t", 1, 50.0), ("s", "BINANCE:SOLUSDC", "long", "t", 2, 100.0)])
    symbols = symbols_table([crypto(s) for s in scans["symbol"]])
    at_boundary = build_raw_pool(scans, symbols, PoolConfig(liquidity_tie_ratio=0.5))
    assert at_boundary.pool["symbol"].to_list() == ["BINANCE:SOLUSDC"]  # 50 <= 0.5 x 100
    above = build_raw_pool(scans, symbols, PoolConfig(liquidity_tie_ratio=0.49))
    assert above.pool["symbol"].to_list() == ["BINANCE:SOLUSDT"]


def test_quote_choice_is_per_direction():
    scans = scans_frame(
        [
            ("l", "BINANCE:BTCUSDT", "long", "t", 1, 40.0),
            ("l", "BINANCE:BTCUSDC", "long", "t", 2, 100.0),
            ("s", "BINANCE:BTCUSDC", "short", "t", 1, 100.0),
        ]
    )
    symbols = symbols_table([crypto(s) for s in ("BINANCE:BTCUSDT", "BINANCE:BTCUSDC")])
    pool = build_raw_pool(scans, symbols, PoolConfig()).pool
    assert pool_row(pool, "BINANCE:BTCUSDT", "long", "t")
    assert pool_row(pool, "BINANCE:BTCUSDC", "short", "t")
    assert pool.height == 2


def test_stablecoins_excluded_by_flag_and_by_base_name():
    scans = scans_frame(
        [
            ("s", "BINANCE:BTCUSDT", "long", "t", 1, 1000.0),
            ("s", "BINANCE:WEIRDUSDT", "long", "t", 2, 900.0),  # flagged in the symbols table
            ("s", "BINANCE:USDCUSDT", "long", "t", 3, 800.0),  # not in the table: base parsed from the ticker
            ("s", "BINANCE:DAIUSDT", "long", "t", 4, 700.0),
        ]
    )
    symbols = symbols_table([crypto("BINANCE:BTCUSDT"), crypto("BINANCE:WEIRDUSDT", stable=True), crypto("BINANCE:DAIUSDT")])
    result = build_raw_pool(scans, symbols, PoolConfig())
    assert result.pool["symbol"].to_list() == ["BINANCE:BTCUSDT"]
    for symbol in ("BINANCE:WEIRDUSDT", "BINANCE:USDCUSDT", "BINANCE:DAIUSDT"):
        assert rejection(result, symbol) == "stablecoin"
    kept = build_raw_pool(scans, symbols, PoolConfig(exclude_stablecoins=False))
    assert kept.pool.height == 4 and kept.rejected.is_empty()


def test_forex_pair_identity_dedups_venues():
    scans = scans_frame(
        [
            ("s", "FX:EURUSD", "long", "t", 1, 10.0),
            ("s", "OANDA:EURUSD", "long", "t", 2, 50.0),
            ("s", "FX:GBPUSD", "long", "t", 3, 30.0),
        ]
    )
    symbols = symbols_table(
        [
            ("FX:EURUSD", "EUR", "USD", "forex", False),
            ("OANDA:EURUSD", "EUR", "USD", "forex", False),
            ("FX:GBPUSD", "GBP", "USD", "forex", False),
        ]
    )
    pool = build_raw_pool(scans, symbols, PoolConfig()).pool
    assert sorted(pool["identity"]) == ["EURUSD", "GBPUSD"]
    eur = pool_row(pool, "OANDA:EURUSD", "long", "t")  # same quote: the more liquid venue
    assert json.loads(eur["alternatives"]) == ["FX:EURUSD"]


def test_min_value_traded_floor_rejects_with_reason():
    scans = scans_frame(
        [
            ("s", "NYSE:BIG", "long", "t", 1, 5e6),
            ("s", "NYSE:SMALL", "long", "t", 2, 5e5),
            ("s", "NYSE:NONE", "long", "t", 3, None),
        ]
    )
    symbols = symbols_table([(s, s[5:], None, "equity", False) for s in scans["symbol"]])
    result = build_raw_pool(scans, symbols, PoolConfig(min_value_traded=1e6))
    assert result.pool["symbol"].to_list() == ["NYSE:BIG"]
    for symbol in ("NYSE:SMALL", "NYSE:NONE"):
        reason = rejection(result, symbol)
        assert "value_traded below" in reason and "1,000,000" in reason


def test_cap_keeps_the_most_liquid_and_rejects_the_rest():
    values = {"NYSE:A": 100.0, "NYSE:B": 400.0, "NYSE:C": 300.0, "NYSE:D": 200.0}
    scans = scans_frame([("s", sym, "long", "t", i, v) for i, (sym, v) in enumerate(values.items(), 1)])
    symbols = symbols_table([(s, s[5:], None, "equity", False) for s in values])
    result = build_raw_pool(scans, symbols, PoolConfig(cap=2))
    assert result.pool["symbol"].to_list() == ["NYSE:B", "NYSE:C"]
    assert result.pool["rank"].to_list() == [1, 2]
    assert sorted(result.rejected["symbol"]) == ["NYSE:A", "NYSE:D"]
    assert set(result.rejected["reason"]) == {"beyond the pool cap of 2"}


def test_pool_ranks_are_one_to_n_by_liquidity():
    values = [("NYSE:A", 5.0), ("NYSE:B", 50.0), ("NYSE:C", 500.0), ("NYSE:D", 50.0)]
    scans = scans_frame([("s", sym, "long", "t", i, v) for i, (sym, v) in enumerate(values, 1)])
    symbols = symbols_table([(s, s[5:], None, "equity", False) for s, _ in values])
    pool = build_raw_pool(scans, symbols, PoolConfig()).pool
    assert pool["rank"].to_list() == [1, 2, 3, 4]
    assert pool["symbol"].to_list() == ["NYSE:C", "NYSE:B", "NYSE:D", "NYSE:A"]  # ties: better scan rank first


# --------------------------------------------------------------------------------- compute_screener_fields


def daily_bars(symbol: str, closes, end: date = AS_OF, ohlc: tuple | None = None, volume: float = 10.0) -> pl.DataFrame:
    n = len(closes)
    frame = pl.DataFrame(
        {
            "symbol": [symbol] * n,
            "date": [end - timedelta(days=n - 1 - i) for i in range(n)],
            "open": ohlc[0] if ohlc else [None] * n,
            "high": ohlc[1] if ohlc else [None] * n,
            "low": ohlc[2] if ohlc else [None] * n,
            "close": list(closes),
            "volume": [volume] * n,
        },
        schema_overrides={c: pl.Float64 for c in ("open", "high", "low", "close", "volume")},
    )
    return frame


def row_of(fields: pl.DataFrame, symbol: str) -> dict:
    return fields.filter(pl.col("symbol") == symbol).row(0, named=True)


N = 300
GROWTH = 1.01


@pytest.fixture(scope="module")
def geometric_fields() -> pl.DataFrame:
    up = daily_bars("X:UP", [100 * GROWTH**i for i in range(N)])
    down = daily_bars("X:DOWN", [100 * 0.99**i for i in range(N)])
    return compute_screener_fields(pl.concat([up, down]), AS_OF)


def test_screener_change_and_performance_on_a_geometric_series(geometric_fields):
    up = row_of(geometric_fields, "X:UP")
    assert up["exchange"] == "X"
    assert up["close"] == pytest.approx(100 * GROWTH ** (N - 1))
    assert up["change"] == pytest.approx(1.0)
    assert up["perf_w"] == pytest.approx((GROWTH**7 - 1) * 100)
    # 2024-06-28 minus one month is 2024-05-28 (31 days); minus three months is 2024-03-28 (92 days)
    assert up["perf_1m"] == pytest.approx((GROWTH**31 - 1) * 100)
    assert up["perf_3m"] == pytest.approx((GROWTH**92 - 1) * 100)
    down = row_of(geometric_fields, "X:DOWN")
    assert down["change"] == pytest.approx(-1.0)
    assert down["perf_w"] == pytest.approx((0.99**7 - 1) * 100)


def test_screener_value_traded_and_zero_volatility(geometric_fields):
    up = row_of(geometric_fields, "X:UP")
    assert up["value_traded"] == pytest.approx(up["close"] * 10.0)
    assert up["volume"] == 10.0
    assert up["volatility_d"] == pytest.approx(0.0, abs=1e-9)


def test_screener_ma_rating_is_plus_one_rising_minus_one_falling(geometric_fields):
    assert row_of(geometric_fields, "X:UP")["recommend_ma"] == pytest.approx(1.0)
    assert row_of(geometric_fields, "X:DOWN")["recommend_ma"] == pytest.approx(-1.0)
    assert row_of(geometric_fields, "X:UP")["recommend_all"] > 0 > row_of(geometric_fields, "X:DOWN")["recommend_all"]


def test_screener_volatility_is_std_of_last_20_returns():
    pattern = [0.01, -0.02, 0.03, 0.005, -0.012]
    rets = [pattern[i % len(pattern)] for i in range(59)]
    closes = list(100 * np.cumprod([1.0] + [1 + r for r in rets]))
    fields = compute_screener_fields(daily_bars("X:VOL", closes), AS_OF)
    expected = np.std(rets[-20:], ddof=1) * 100
    assert row_of(fields, "X:VOL")["volatility_d"] == pytest.approx(expected, rel=1e-9)
    assert row_of(fields, "X:VOL")["change"] == pytest.approx(rets[-1] * 100)


def test_screener_performance_uses_the_last_close_at_or_before_the_target():
    bars = daily_bars("X:GAP", [100 * GROWTH**i for i in range(40)])
    target = AS_OF - timedelta(days=7)
    bars = bars.filter(pl.col("date") != target)  # the week-ago bar is missing: use the one before it
    fields = compute_screener_fields(bars, AS_OF)
    assert row_of(fields, "X:GAP")["perf_w"] == pytest.approx((GROWTH**8 - 1) * 100)


def test_screener_adx_null_for_close_only_and_in_range_with_ohlc():
    rng = np.random.default_rng(42)
    closes = 100 * np.exp(np.cumsum(rng.normal(0.001, 0.02, 120)))
    opens = closes * (1 + rng.normal(0, 0.005, 120))
    highs = np.maximum(opens, closes) * (1 + rng.uniform(0.001, 0.02, 120))
    lows = np.minimum(opens, closes) * (1 - rng.uniform(0.001, 0.02, 120))
    bars = pl.concat(
        [
            daily_bars("X:OHLC", closes, ohlc=(opens, highs, lows)),
            daily_bars("X:CLOSE", closes),
        ]
    )
    fields = compute_screener_fields(bars, AS_OF)
    adx = row_of(fields, "X:OHLC")["adx"]
    assert adx is not None and np.isfinite(adx) and 0 < adx < 100
    assert row_of(fields, "X:CLOSE")["adx"] is None


def test_screener_short_history_leaves_fields_null_not_wrong():
    fields = compute_screener_fields(daily_bars("X:NEW", [10.0, 11.0, 12.0]), AS_OF)
    row = row_of(fields, "X:NEW")
    assert row["change"] == pytest.approx((12 / 11 - 1) * 100)
    assert row["volatility_d"] is None and row["perf_1m"] is None and row["recommend_ma"] is None


def test_screener_refuses_bars_after_as_of():
    bars = daily_bars("X:UP", [1.0, 2.0, 3.0], end=AS_OF + timedelta(days=1))
    with pytest.raises(ValueError, match="after the as-of date"):
        compute_screener_fields(bars, AS_OF)


def test_screener_empty_bars_give_an_empty_frame_with_schema():
    empty = daily_bars("X", []).clear()
    fields = compute_screener_fields(empty, AS_OF)
    assert fields.is_empty() and fields.schema == pl.Schema(SCREENER_SCHEMA)


def test_scan_results_carry_the_envelope_and_scanner_identity():
    from tsp_platform.discovery.scan import ScanEnvelope, to_scan_results
    from tsp_platform.lakehouse.schema import SCAN_RESULTS

    scan = scanner(name="t/short", direction=Direction.SHORT, logic="trend")
    kept = apply_scanner(scan, OP_ROWS.filter(pl.col("close").is_not_null()))
    env = ScanEnvelope("p", AS_OF, "run-1", datetime(2024, 6, 28, 12), "lakehouse")
    out = to_scan_results(scan, kept, env)
    assert out.columns == SCAN_RESULTS.column_names
    assert out.height == 5
    assert set(out["direction"]) == {"short"} and set(out["scanner"]) == {"t/short"}
    assert set(out["run_id"]) == {"run-1"} and set(out["as_of"]) == {AS_OF}
