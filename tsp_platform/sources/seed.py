"""Seed the lakehouse with the embedded offline data every profile of the manifest relies on."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from tsp_platform.config.manifest import Manifest
from tsp_platform.config.models import MarketDataSource
from tsp_platform.core.clock import utc_now
from tsp_platform.lakehouse import Lakehouse


@dataclass(frozen=True)
class SeedReport:
    source: str
    symbols: int
    bars: dict[str, int]  # inserted / updated / unchanged


def _embedded_frames(source: MarketDataSource, manifest: Manifest) -> tuple[pl.DataFrame, pl.DataFrame]:
    if source is MarketDataSource.EMBEDDED_SP500:
        from tsp_platform.sources.embedded_sp500 import load_embedded_sp500

        market = load_embedded_sp500()
        return market.symbols, market.ohlcv
    from tsp_platform.sources.synthetic_crypto import generate_synthetic_crypto

    profile = next(p for p in manifest.profiles() if p.market_data is source)
    kwargs = {"seed": profile.synthetic_seed}
    if profile.latest_date is not None:
        kwargs["end"] = profile.latest_date
    market = generate_synthetic_crypto(**kwargs)
    return market.symbols, market.ohlcv


def seed_embedded(lakehouse: Lakehouse, manifest: Manifest) -> list[SeedReport]:
    """Upsert symbols and bars of every embedded source a profile uses (idempotent: re-runs change nothing)."""
    sources = sorted(
        {p.market_data for p in manifest.profiles()} & {MarketDataSource.EMBEDDED_SP500, MarketDataSource.SYNTHETIC_CRYPTO}
    )
    reports = []
    for source in sources:
        symbols, bars = _embedded_frames(source, manifest)
        counts = lakehouse.upsert_many(
            {"symbols": symbols, "ohlcv": bars.with_columns(pl.lit(utc_now()).alias("ingested_at"))}
        )["ohlcv"]
        reports.append(SeedReport(source=source.value, symbols=symbols.height, bars=counts))
    return reports
