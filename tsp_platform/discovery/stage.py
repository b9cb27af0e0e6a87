"""Discovery stages: run a profile's scanners as of a date, then aggregate the raw pool."""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from tsp_platform.config.models import DiscoverySource
from tsp_platform.config.scanners import ScannerConfig, load_scanner
from tsp_platform.context import StageContext
from tsp_platform.core.clock import utc_now
from tsp_platform.discovery.offline import (
    MARKET_ASSET_CLASSES,
    DiscoveryResult,
    discover_offline,
    offline_universe,
    screener_start,
)
from tsp_platform.discovery.pool import PoolResult, build_raw_pool
from tsp_platform.discovery.scan import ScanEnvelope, apply_scanner, to_scan_results
from tsp_platform.sources.symbols import record_symbols, symbols_from_scans

LiveScreener = Callable[[ScannerConfig], pl.DataFrame]


def run_discovery(ctx: StageContext, live_screener: LiveScreener | None = None) -> DiscoveryResult:
    """Run every L4 scanner of the profile and store the scans; an empty discovery is an error naming what each
    scanner saw. A live screener's symbol metadata is recorded first."""
    result = _discover(ctx, live_screener)
    if result.scans.is_empty():
        seen = ", ".join(f"{s}: {result.universe_per_scanner[s]} seen, 0 admitted" for s in result.per_scanner)
        raise LookupError(f"discovery for {ctx.profile.name} as of {ctx.as_of} admitted no symbol ({seen})")
    if result.new_symbols is not None:
        record_symbols(ctx.lakehouse, result.new_symbols)
    ctx.write(scan_results=result.scans, discovery_runs=result.runs())
    return result


def _discover(ctx: StageContext, live_screener: LiveScreener | None) -> DiscoveryResult:
    """Run the scanners: the offline screener computes its fields from bars up to the as-of date."""
    scanners = [load_scanner(name) for name in ctx.profile.scanners]
    envelope = ScanEnvelope(ctx.profile.name, ctx.as_of, ctx.run_id, utc_now(), ctx.profile.discovery.value)
    if ctx.profile.discovery is DiscoverySource.LAKEHOUSE:
        universe = offline_universe(ctx.read("symbols"), scanners, ctx.profile.name)
        bars = ctx.bars(universe["symbol"].to_list(), screener_start(ctx.as_of))
        return discover_offline(scanners, universe, bars, envelope)
    if live_screener is None:
        raise RuntimeError(f"profile {ctx.profile.name!r} discovers on a live screener but none was configured")
    frames, counts, seen, seen_per = [], {}, [], {}
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


def _asset_class(scanner: ScannerConfig) -> str:
    classes = {c for m in scanner.markets for c in MARKET_ASSET_CLASSES.get(m, ())[:1]}
    if len(classes) != 1:
        raise ValueError(f"scanner {scanner.name!r}: markets {scanner.markets} do not name one asset class")
    return classes.pop()


def run_raw_pool(ctx: StageContext) -> PoolResult:
    """Aggregate the partition's scans into the raw pool and store it."""
    scans = ctx.read("scan_results")
    if scans.is_empty():
        raise LookupError(f"no scan results for {ctx.profile.name} as of {ctx.as_of}: materialise discovery_scan first")
    result = build_raw_pool(scans, ctx.read("symbols"), ctx.profile.pool)
    ctx.write(raw_pool=result.pool)
    return result
