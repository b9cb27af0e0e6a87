"""Offline discovery as of a date: the lakehouse screener's fields from bars up to that date, the profile's
scanners over them, and the raw pool they admit. Pure (polars): the caller reads the bars and symbols.

The discovery stage runs it for its partition's date; the tournament runs it for every walk-forward window's
decision date from one read of the bars, so each window chooses from the universe it would have seen then.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl

from tsp_platform.config.models import PoolConfig
from tsp_platform.config.scanners import ScannerConfig
from tsp_platform.discovery.pool import build_raw_pool
from tsp_platform.discovery.scan import ScanEnvelope, apply_scanner, to_scan_results
from tsp_platform.discovery.screener import SCREENER_HISTORY_DAYS, compute_screener_fields
from tsp_platform.lakehouse.schema import SCAN_RESULTS

# Screener markets -> asset classes of the lakehouse symbols table (offline screener universe).
MARKET_ASSET_CLASSES = {
    "america": ("equity", "etf"),
    "crypto": ("crypto",),
    "forex": ("forex",),
    "futures": ("futures",),
}


@dataclass(frozen=True)
class DiscoveryResult:
    scans: pl.DataFrame  # scan_results rows
    per_scanner: dict[str, int]  # admitted rows per scanner
    universe_size: int  # distinct symbols the screener answered with
    universe_per_scanner: dict[str, int]
    new_symbols: pl.DataFrame | None = None  # metadata a live screener taught us (None offline)

    def runs(self) -> pl.DataFrame:
        """`discovery_runs` rows (without the partition columns): what each scanner saw and admitted."""
        return pl.DataFrame(
            {
                "scanner": list(self.per_scanner),
                "universe": [self.universe_per_scanner[s] for s in self.per_scanner],
                "admitted": list(self.per_scanner.values()),
            },
            schema={"scanner": pl.String, "universe": pl.Int32, "admitted": pl.Int32},
        )


def offline_universe(symbols: pl.DataFrame, scanners: list[ScannerConfig], profile: str) -> pl.DataFrame:
    """The symbols-table rows the offline screener of `scanners` can see; none is an error naming them."""
    classes = {c for s in scanners for m in s.markets for c in MARKET_ASSET_CLASSES.get(m, ())}
    exchanges = {e for s in scanners for e in s.exchanges}
    universe = symbols.filter(pl.col("asset_class").is_in(sorted(classes)))
    if exchanges:
        universe = universe.filter(pl.col("exchange").is_in(sorted(exchanges)))
    if universe.is_empty():
        raise LookupError(
            f"profile {profile!r}: the lakehouse holds no symbols for markets/exchanges "
            f"{sorted(classes)}/{sorted(exchanges)}; seed it (`tsp seed`) or import prices first"
        )
    return universe


def screener_start(as_of: date) -> date:
    """The first bar the offline screener reads for a scan as of `as_of`."""
    return as_of - timedelta(days=SCREENER_HISTORY_DAYS)


def discover_offline(
    scanners: list[ScannerConfig], universe: pl.DataFrame, bars: pl.DataFrame, envelope: ScanEnvelope
) -> DiscoveryResult:
    """Every scanner over the screener fields of the universe's symbols, computed from `bars` up to the
    envelope's as-of date (later bars, and other symbols' bars, if the caller passed any, are never seen)."""
    as_of = envelope.as_of
    bars = bars.filter(
        pl.col("symbol").is_in(universe["symbol"].implode()), pl.col("date") >= screener_start(as_of),
        pl.col("date") <= as_of,
    )
    rows = compute_screener_fields(bars, as_of, universe)
    frames, counts, seen = [], {}, {}
    for scanner in scanners:
        seen[scanner.name] = rows.height
        kept = apply_scanner(scanner, rows)
        frames.append(to_scan_results(scanner, kept, envelope))
        counts[scanner.name] = kept.height
    scans = pl.concat(frames) if frames else pl.DataFrame(schema=SCAN_RESULTS.column_names)
    return DiscoveryResult(scans=scans, per_scanner=counts, universe_size=rows.height, universe_per_scanner=seen)


def pool_from_scans(scans: pl.DataFrame, symbols: pl.DataFrame, config: PoolConfig) -> pl.DataFrame:
    """The raw pool the scans admit (empty, with the pool's key columns, when they admit nothing)."""
    if scans.is_empty():
        return pl.DataFrame(schema={"symbol": pl.String, "logic": pl.String, "direction": pl.String})
    return build_raw_pool(scans, symbols, config).pool
