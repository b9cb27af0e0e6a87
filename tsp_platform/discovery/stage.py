"""Discovery stages: run a profile's scanners as of a date, then aggregate the raw pool."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import polars as pl

from tsp_platform.config.models import DiscoverySource
from tsp_platform.config.scanners import ScannerConfig, load_scanner
from tsp_platform.context import StageContext, utc_now
from tsp_platform.discovery.pool import PoolResult, build_raw_pool
from tsp_platform.discovery.scan import ScanEnvelope, apply_scanner, to_scan_results
from tsp_platform.discovery.screener import SCREENER_HISTORY_DAYS, compute_screener_fields
from tsp_platform.lakehouse.schema import SCAN_RESULTS
from tsp_platform.sources.symbols import symbols_from_scans

# Screener markets -> asset classes of the lakehouse symbols table (offline screener universe).
MARKET_ASSET_CLASSES = {
    "america": ("equity", "etf"),
    "crypto": ("crypto",),
    "forex": ("forex",),
    "futures": ("futures",),
}

LiveScreener = Callable[[ScannerConfig], pl.DataFrame]


@dataclass(frozen=True)
class DiscoveryResult:
    scans: pl.DataFrame  # scan_results rows
    per_scanner: dict[str, int]  # admitted rows per scanner
    universe_size: int  # distinct symbols the screener answered with
    universe_per_scanner: dict[str, int]
    new_symbols: pl.DataFrame | None = None  # metadata a live screener taught us (None offline)

    def runs(self, profile: str, as_of) -> pl.DataFrame:
        """`discovery_runs` rows: what each scanner saw and admitted."""
        return pl.DataFrame(
            {
                "profile": profile, "as_of": as_of, "scanner": list(self.per_scanner),
                "universe": [self.universe_per_scanner[s] for s in self.per_scanner],
                "admitted": list(self.per_scanner.values()),
            },
            schema_overrides={"universe": pl.Int32, "admitted": pl.Int32},
        )


def offline_universe(ctx: StageContext, scanners: list[ScannerConfig] | None = None) -> pl.DataFrame:
    """The symbols-table rows the offline screener of the profile's scanners can see."""
    scanners = scanners if scanners is not None else [load_scanner(name) for name in ctx.profile.scanners]
    symbols = ctx.lakehouse.read_table("symbols")
    classes = {c for s in scanners for m in s.markets for c in MARKET_ASSET_CLASSES.get(m, ())}
    exchanges = {e for s in scanners for e in s.exchanges}
    universe = symbols.filter(pl.col("asset_class").is_in(sorted(classes)))
    if exchanges:
        universe = universe.filter(pl.col("exchange").is_in(sorted(exchanges)))
    if universe.is_empty():
        raise LookupError(
            f"profile {ctx.profile.name!r}: the lakehouse holds no symbols for markets/exchanges "
            f"{sorted(classes)}/{sorted(exchanges)}; seed it (`tsp seed`) or import prices first"
        )
    return universe


def _offline_rows(ctx: StageContext, scanners: list[ScannerConfig]) -> pl.DataFrame:
    universe = offline_universe(ctx, scanners)
    start = ctx.as_of - timedelta(days=SCREENER_HISTORY_DAYS)
    bars = ctx.lakehouse.ohlcv(universe["symbol"].to_list(), ctx.as_of, start)
    return compute_screener_fields(bars, ctx.as_of, universe)


def offline_pool(ctx: StageContext) -> pl.DataFrame:
    """The raw pool offline discovery admits as of `ctx.as_of`, computed from bars up to that date and not
    stored: how a walk-forward window gets the universe it would have seen then. Empty when no scanner admits
    anything. (A live screener cannot be asked about the past; see `tournament.stage`.)"""
    if ctx.profile.discovery is not DiscoverySource.LAKEHOUSE:
        raise ValueError(f"profile {ctx.profile.name!r} discovers on a live screener: its past pools are stored ones")
    scans = _discover(ctx, None).scans
    if scans.is_empty():
        return pl.DataFrame(schema={"symbol": pl.String, "logic": pl.String, "direction": pl.String})
    return build_raw_pool(scans, ctx.lakehouse.read_table("symbols"), ctx.profile.pool).pool


def run_discovery(ctx: StageContext, live_screener: LiveScreener | None = None) -> DiscoveryResult:
    """Run every L4 scanner of the profile; an empty discovery is an error naming what each scanner saw."""
    result = _discover(ctx, live_screener)
    if result.scans.is_empty():
        seen = ", ".join(f"{s}: {result.universe_per_scanner[s]} seen, 0 admitted" for s in result.per_scanner)
        raise LookupError(f"discovery for {ctx.profile.name} as of {ctx.as_of} admitted no symbol ({seen})")
    return result


def _discover(ctx: StageContext, live_screener: LiveScreener | None) -> DiscoveryResult:
    """Run the scanners: the offline screener computes its fields from bars up to the as-of date."""
    scanners = [load_scanner(name) for name in ctx.profile.scanners]
    envelope = ScanEnvelope(ctx.profile.name, ctx.as_of, ctx.run_id, utc_now(), ctx.profile.discovery.value)
    frames, counts = [], {}
    if ctx.profile.discovery is DiscoverySource.LAKEHOUSE:
        rows = _offline_rows(ctx, scanners)
        universe_size, seen_per = rows.height, {}
        for scanner in scanners:
            seen_per[scanner.name] = rows.height
            kept = apply_scanner(scanner, rows)
            frames.append(to_scan_results(scanner, kept, envelope))
            counts[scanner.name] = kept.height
    else:
        if live_screener is None:
            raise RuntimeError(f"profile {ctx.profile.name!r} discovers on a live screener but none was configured")
        seen, seen_per = [], {}
        for scanner in scanners:
            rows = live_screener(scanner)
            seen_per[scanner.name] = rows.height
            seen.append(symbols_from_scans(rows, _asset_class(scanner), ctx.profile.calendar, ctx.profile.discovery.value))
            kept = apply_scanner(scanner, rows, server_filtered=True)
            frames.append(to_scan_results(scanner, kept, envelope))
            counts[scanner.name] = kept.height
        new_symbols = pl.concat(seen).unique("symbol", keep="first").sort("symbol")
        return DiscoveryResult(
            scans=pl.concat(frames), per_scanner=counts, universe_size=new_symbols.height,
            universe_per_scanner=seen_per, new_symbols=new_symbols,
        )
    scans = pl.concat(frames) if frames else pl.DataFrame(schema=SCAN_RESULTS.column_names)
    return DiscoveryResult(scans=scans, per_scanner=counts, universe_size=universe_size, universe_per_scanner=seen_per)


def _asset_class(scanner: ScannerConfig) -> str:
    classes = {c for m in scanner.markets for c in MARKET_ASSET_CLASSES.get(m, ())[:1]}
    if len(classes) != 1:
        raise ValueError(f"scanner {scanner.name!r}: markets {scanner.markets} do not name one asset class")
    return classes.pop()


def run_raw_pool(ctx: StageContext) -> PoolResult:
    scans = ctx.lakehouse.read_partition("scan_results", ctx.profile.name, ctx.as_of)
    if scans.is_empty():
        raise LookupError(f"no scan results for {ctx.profile.name} as of {ctx.as_of}: materialise discovery_scan first")
    symbols = ctx.lakehouse.read_table("symbols")
    pool = build_raw_pool(scans, symbols, ctx.profile.pool)
    return pool
