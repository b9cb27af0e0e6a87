"""Embedded real data: skfolio's bundled S&P 500 sample, its S&P 500 index and five factor ETFs.

The files ship inside the skfolio wheel (adjusted daily closes, true dates). They carry no OHLC and no
volume: those columns stay null and every consumer handles that explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from tsp_platform.config.manifest import CONFIG_DIR, read_yaml
from tsp_platform.lakehouse.schema import SYMBOLS
from tsp_platform.sources.base import OHLCV_SCHEMA, conform

SOURCE = "embedded_sp500"
METADATA_FILE = CONFIG_DIR / "reference" / "sp500_sample.yaml"
EQUITY_TICK, EQUITY_LOT = 0.01, 1.0


@dataclass(frozen=True)
class EmbeddedMarket:
    symbols: pl.DataFrame
    ohlcv: pl.DataFrame


def _symbol_row(symbol: str, ticker: str, asset_class: str, info: dict) -> dict:
    exchange = symbol.split(":")[0]
    return {
        "symbol": symbol,
        "exchange": exchange,
        "ticker": ticker,
        "base": ticker,
        "quote": "USD",
        "asset_class": asset_class,
        "sector": info.get("sector"),
        "industry": info.get("industry"),
        "currency": "USD",
        "calendar": "weekdays",
        "tick_size": EQUITY_TICK if asset_class != "index" else None,
        "lot_size": EQUITY_LOT if asset_class != "index" else None,
        "is_stablecoin": False,
        "is_synthetic": False,
        "source": SOURCE,
        "description": info.get("name"),
    }


def _long_closes(wide, symbol_of: dict[str, str]) -> pl.DataFrame:
    """A pandas wide close frame (date index) -> long OHLCV rows with close only."""
    frame = pl.from_pandas(wide.rename(columns=symbol_of).rename_axis("date").reset_index())
    long = frame.unpivot(index="date", variable_name="symbol", value_name="close").drop_nulls("close")
    return long.with_columns(
        pl.col("date").cast(pl.Date),
        pl.lit(None, pl.Float64).alias("open"),
        pl.lit(None, pl.Float64).alias("high"),
        pl.lit(None, pl.Float64).alias("low"),
        pl.lit(None, pl.Float64).alias("volume"),
        pl.lit(SOURCE).alias("source"),
    )


def load_embedded_sp500() -> EmbeddedMarket:
    """Read the three bundled skfolio datasets and their metadata from `configs/reference/`."""
    from skfolio.datasets import load_factors_dataset, load_sp500_dataset, load_sp500_index

    meta = read_yaml(METADATA_FILE)
    rows, symbol_of = [], {}
    for ticker, info in meta["equities"].items():
        symbol = f"{info['exchange']}:{ticker}"
        symbol_of[ticker] = symbol
        rows.append(_symbol_row(symbol, ticker, "equity", info))
    for ticker, info in meta["factor_etfs"].items():
        symbol = f"{info['exchange']}:{ticker}"
        symbol_of[ticker] = symbol
        rows.append(_symbol_row(symbol, ticker, "etf", {"sector": "Factor ETF", **info}))
    index_info = meta["index"]["SP500"]
    symbol_of["SP500"] = index_info["symbol"]
    ticker = index_info["symbol"].split(":")[1]
    rows.append(_symbol_row(index_info["symbol"], ticker, "index", {"sector": "Index", **index_info}))

    prices = load_sp500_dataset()
    unknown = sorted(set(prices.columns) - set(meta["equities"]))
    if unknown:
        raise ValueError(f"{METADATA_FILE}: equities: no metadata for {unknown}")
    frames = [_long_closes(prices, symbol_of), _long_closes(load_sp500_index(), symbol_of)]
    frames.append(_long_closes(load_factors_dataset(), symbol_of))
    ohlcv = conform(pl.concat(frames, how="diagonal_relaxed"), OHLCV_SCHEMA, SOURCE).sort("symbol", "date")
    symbols = pl.DataFrame(rows).select(SYMBOLS.column_names)
    return EmbeddedMarket(symbols=symbols, ohlcv=ohlcv)
