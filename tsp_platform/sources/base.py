"""Contracts shared by every data source: errors, the screener field vocabulary and frame schemas."""

from __future__ import annotations

import polars as pl


class SourceUnavailableError(RuntimeError):
    """A source could not be reached or kept failing; never turned into an empty success."""

    def __init__(self, source: str, detail: str):
        self.source = source
        super().__init__(f"source {source!r} unavailable: {detail}")


class SourceDataError(ValueError):
    """A source answered, but with data we cannot accept (malformed, short, inconsistent)."""

    def __init__(self, source: str, detail: str):
        self.source = source
        super().__init__(f"source {source!r} returned bad data: {detail}")


# TradingView field name -> lakehouse column name. Scanner filters use the TradingView names.
SCREENER_FIELDS: dict[str, str] = {
    "close": "close",
    "change": "change",
    "Perf.W": "perf_w",
    "Perf.1M": "perf_1m",
    "Perf.3M": "perf_3m",
    "Volatility.D": "volatility_d",
    "volume": "volume",
    "Value.Traded": "value_traded",
    "ADX": "adx",
    "Recommend.All": "recommend_all",
    "Recommend.MA": "recommend_ma",
    "Recommend.Other": "recommend_other",
}

# A screener answer: one row per symbol; every field Float64 (null where the source has no value).
SCREENER_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.String,  # "EXCHANGE:TICKER"
    "exchange": pl.String,
    "sector": pl.String,
    **{column: pl.Float64 for column in SCREENER_FIELDS.values()},
}

# Daily bars from a market-data source (the lakehouse adds `ingested_at`).
OHLCV_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.String,
    "date": pl.Date,
    "open": pl.Float64,
    "high": pl.Float64,
    "low": pl.Float64,
    "close": pl.Float64,
    "volume": pl.Float64,
    "source": pl.String,
}


def empty_frame(schema: dict[str, pl.DataType]) -> pl.DataFrame:
    return pl.DataFrame(schema=schema)


def conform(frame: pl.DataFrame, schema: dict[str, pl.DataType], source: str) -> pl.DataFrame:
    """Select and cast a frame to `schema`, failing with the source named when a column is missing."""
    missing = [c for c in schema if c not in frame.columns]
    if missing:
        raise SourceDataError(source, f"missing columns {missing}")
    return frame.select([pl.col(c).cast(t, strict=False) for c, t in schema.items()])
