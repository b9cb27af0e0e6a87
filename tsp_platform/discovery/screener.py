"""The offline lakehouse screener: TradingView's screener fields computed from stored daily bars as of a date.

Vectorised across symbols with polars window expressions. Fields a source cannot support stay null:
close-only data has no Value.Traded, no ADX and no stochastic; every consumer treats null explicitly.
Definitions (percentages, like TradingView): change = last bar's close-to-close move; Perf.W/1M/3M =
move since the last close at or before 7 days / 1 month / 3 months earlier; Volatility.D = standard
deviation of the last 20 daily returns; Value.Traded = close × volume of the last bar; ratings are votes in
[-1, 1] (moving averages: SMA and EMA of 10/20/30/50/100/200 bars; oscillators: RSI 14, momentum 10,
MACD 12/26/9, stochastic 14 where high and low exist); Recommend.All is the mean of the two ratings.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from tsp_platform.sources.base import SCREENER_SCHEMA

# Calendar days of history the screener needs before the as-of date (200-bar averages on weekday data).
SCREENER_HISTORY_DAYS = 420
MA_WINDOWS = (10, 20, 30, 50, 100, 200)
RSI_N, MOM_N, ADX_N, STOCH_N, VOL_N = 14, 10, 14, 14, 20


def _rma(expr: pl.Expr, n: int) -> pl.Expr:
    """Wilder's running average, per symbol."""
    return expr.ewm_mean(alpha=1 / n, adjust=False, min_samples=n).over("symbol")


def _vote(buy: pl.Expr, sell: pl.Expr, valid: pl.Expr) -> pl.Expr:
    return pl.when(~valid).then(None).when(buy).then(1.0).when(sell).then(-1.0).otherwise(0.0)


def _indicator_columns() -> list[pl.Expr]:
    close, prev = pl.col("close"), pl.col("close").shift(1).over("symbol")
    high, low = pl.col("high"), pl.col("low")
    exprs = []
    for n in MA_WINDOWS:
        sma = close.rolling_mean(n, min_samples=n).over("symbol")
        ema = close.ewm_mean(span=n, adjust=False, min_samples=n).over("symbol")
        exprs += [
            _vote(close > sma, close < sma, sma.is_not_null()).alias(f"_ma_sma{n}"),
            _vote(close > ema, close < ema, ema.is_not_null()).alias(f"_ma_ema{n}"),
        ]
    gain, loss = (close - prev).clip(lower_bound=0), (prev - close).clip(lower_bound=0)
    rsi = 100 - 100 / (1 + _rma(gain, RSI_N) / _rma(loss, RSI_N))
    mom = close - close.shift(MOM_N).over("symbol")
    macd = (
        close.ewm_mean(span=12, adjust=False, min_samples=26).over("symbol")
        - close.ewm_mean(span=26, adjust=False, min_samples=26).over("symbol")
    )
    lowest = low.rolling_min(STOCH_N, min_samples=STOCH_N).over("symbol")
    highest = high.rolling_max(STOCH_N, min_samples=STOCH_N).over("symbol")
    stoch = 100 * (close - lowest) / (highest - lowest)
    exprs += [
        _vote(rsi < 30, rsi > 70, rsi.is_not_null()).alias("_osc_rsi"),
        _vote(mom > 0, mom < 0, mom.is_not_null()).alias("_osc_mom"),
        macd.alias("_macd"),
        _vote(stoch < 20, stoch > 80, stoch.is_not_null() & stoch.is_finite()).alias("_osc_stoch"),
        ((close / prev - 1).rolling_std(VOL_N, min_samples=VOL_N).over("symbol") * 100).alias("volatility_d"),
        ((close / prev - 1) * 100).alias("change"),
        (close * pl.col("volume")).alias("value_traded"),
    ]
    return exprs


def _adx() -> pl.Expr:
    high, low = pl.col("high"), pl.col("low")
    prev_close = pl.col("close").shift(1).over("symbol")
    up, down = high - high.shift(1).over("symbol"), low.shift(1).over("symbol") - low
    true_range = pl.max_horizontal(high - low, (high - prev_close).abs(), (low - prev_close).abs())
    plus_dm = pl.when((up > down) & (up > 0)).then(up).otherwise(0.0)
    minus_dm = pl.when((down > up) & (down > 0)).then(down).otherwise(0.0)
    atr = _rma(true_range, ADX_N)
    plus_di, minus_di = 100 * _rma(plus_dm, ADX_N) / atr, 100 * _rma(minus_dm, ADX_N) / atr
    dx = 100 * (plus_di - minus_di).abs() / (plus_di + minus_di)
    has_range = high.is_not_null() & low.is_not_null()
    return pl.when(has_range).then(_rma(dx.fill_nan(0.0), ADX_N)).otherwise(None).alias("adx")


def _performance(bars: pl.DataFrame, last: pl.DataFrame, column: str, offset: str) -> pl.DataFrame:
    """Percent move from the last close at or before (last date - offset) to the last close."""
    targets = last.select("symbol", pl.col("date").dt.offset_by(f"-{offset}").alias("target"), "close")
    earlier = bars.select("symbol", pl.col("date").alias("target"), pl.col("close").alias("earlier"))
    joined = targets.sort("target").join_asof(earlier.sort("target"), on="target", by="symbol", strategy="backward", check_sortedness=False
    )
    return joined.select("symbol", ((pl.col("close") / pl.col("earlier") - 1) * 100).alias(column))


def compute_screener_fields(bars: pl.DataFrame, as_of: date, sectors: pl.DataFrame | None = None) -> pl.DataFrame:
    """One row per symbol with the screener fields as of `as_of` (bars after it are refused, not ignored)."""
    if bars.height and bars["date"].max() > as_of:
        raise ValueError(f"screener got bars after the as-of date {as_of}: point-in-time violated upstream")
    if bars.is_empty():
        return pl.DataFrame(schema=SCREENER_SCHEMA)
    ordered = bars.sort("symbol", "date")
    enriched = ordered.with_columns(*_indicator_columns(), _adx())
    ma_cols = [f"_ma_{kind}{n}" for n in MA_WINDOWS for kind in ("sma", "ema")]
    enriched = enriched.with_columns(
        _vote(
            pl.col("_macd") > pl.col("_macd").ewm_mean(span=9, adjust=False, min_samples=9).over("symbol"),
            pl.col("_macd") <= pl.col("_macd").ewm_mean(span=9, adjust=False, min_samples=9).over("symbol"),
            pl.col("_macd").is_not_null(),
        ).alias("_osc_macd")
    )
    osc_cols = ["_osc_rsi", "_osc_mom", "_osc_macd", "_osc_stoch"]
    last = enriched.group_by("symbol").agg(pl.all().sort_by("date").last())
    last = last.with_columns(
        pl.mean_horizontal(ma_cols).alias("recommend_ma"),
        pl.mean_horizontal(osc_cols).alias("recommend_other"),
    ).with_columns(pl.mean_horizontal("recommend_ma", "recommend_other").alias("recommend_all"))
    for column, offset in (("perf_w", "7d"), ("perf_1m", "1mo"), ("perf_3m", "3mo")):
        last = last.join(_performance(ordered, last, column, offset), on="symbol", how="left")
    last = last.with_columns(pl.col("symbol").str.split(":").list.first().alias("exchange"))
    if sectors is not None:
        last = last.join(sectors.select("symbol", "sector"), on="symbol", how="left")
    else:
        last = last.with_columns(pl.lit(None, pl.String).alias("sector"))
    return last.select([pl.col(c).cast(t) for c, t in SCREENER_SCHEMA.items()]).sort("symbol")
