"""Symbol metadata from several sources, merged without losing what an earlier source knew."""

from __future__ import annotations

import polars as pl

from tsp_platform.core.vocabulary import Calendar
from tsp_platform.lakehouse.schema import SYMBOLS

STABLECOINS = frozenset({"USDT", "USDC", "FDUSD", "TUSD", "BUSD", "DAI", "USDP", "USDS", "PYUSD", "FUSD", "USDD"})
KNOWN_QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "DAI", "USD", "EUR", "BTC", "ETH")
KEEP_EXISTING = ("asset_class", "calendar", "is_stablecoin", "is_synthetic", "exchange", "ticker")


def split_ticker(ticker: str, quotes: tuple[str, ...] = KNOWN_QUOTES) -> tuple[str, str | None]:
    """Base and quote from a ticker when no metadata says ('BTCUSDT' -> ('BTC', 'USDT'))."""
    core = ticker.upper().removesuffix(".P")
    for quote in sorted(quotes, key=len, reverse=True):
        if core.endswith(quote) and len(core) > len(quote):
            return core[: -len(quote)], quote
    return core, None


def merge_symbol_metadata(new: pl.DataFrame, existing: pl.DataFrame) -> pl.DataFrame:
    """`new` rows with each null filled from the stored row; identity columns of a stored row are kept."""
    if existing.is_empty():
        return new.select(SYMBOLS.column_names)
    old = existing.select(SYMBOLS.column_names).rename({c: f"{c}__old" for c in SYMBOLS.value_columns})
    joined = new.select(SYMBOLS.column_names).join(old, on="symbol", how="left")
    merged = []
    for column in SYMBOLS.value_columns:
        if column in KEEP_EXISTING:
            merged.append(pl.coalesce(f"{column}__old", column).alias(column))
        else:
            merged.append(pl.coalesce(column, f"{column}__old").alias(column))
    return joined.select("symbol", *merged).select(SYMBOLS.column_names)


def symbols_from_scans(scans: pl.DataFrame, asset_class: str, calendar: Calendar, source: str) -> pl.DataFrame:
    """Minimal symbol rows for what a live screener returned (sector from the screener, base/quote parsed)."""
    rows = scans.group_by("symbol").agg(pl.col("exchange").first(), pl.col("sector").drop_nulls().first())
    tickers = rows["symbol"].str.split(":").list.last()
    parsed = [split_ticker(t) if asset_class == "crypto" else (t, None) for t in tickers]
    bases = pl.Series([b for b, _ in parsed], dtype=pl.String)
    return pl.DataFrame(
        {
            "symbol": rows["symbol"], "exchange": rows["exchange"], "ticker": tickers,
            "base": bases, "quote": pl.Series([q for _, q in parsed], dtype=pl.String),
            "asset_class": asset_class, "sector": rows["sector"], "industry": None,
            "currency": pl.Series([q for _, q in parsed], dtype=pl.String), "calendar": calendar.value,
            "tick_size": None, "lot_size": None, "is_stablecoin": bases.is_in(list(STABLECOINS)),
            "is_synthetic": False, "source": source, "description": None,
        },
        schema_overrides={"industry": pl.String, "tick_size": pl.Float64, "lot_size": pl.Float64, "description": pl.String},
    ).select(SYMBOLS.column_names).sort("symbol")


def record_symbols(lakehouse, rows: pl.DataFrame) -> dict[str, int]:
    """Upsert symbol rows, merged with what the lakehouse already knows about them."""
    existing = lakehouse.read_table("symbols") if lakehouse.exists() else pl.DataFrame(schema=rows.schema)
    mine = existing.filter(pl.col("symbol").is_in(rows["symbol"].implode()))
    return lakehouse.upsert("symbols", merge_symbol_metadata(rows, mine))
