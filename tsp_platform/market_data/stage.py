"""Market-data stages: keep the lookback of the pool in the lakehouse, then build the returns matrix."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Protocol

import polars as pl

from tsp_platform.config.models import MarketDataSource
from tsp_platform.context import StageContext
from tsp_platform.core.clock import utc_now
from tsp_platform.health.gates import Gate, GateInputs, evaluate_gates
from tsp_platform.health.verdicts import quarantine_list
from tsp_platform.market_data.returns import ReturnsResult, build_returns
from tsp_platform.market_data.universe import symbol_calendars
from tsp_platform.sources.base import SourceDataError
from tsp_platform.sources.symbols import record_symbols

# Sources whose bars are already complete in the lakehouse (seeded or imported): nothing to fetch.
STORED_SOURCES = (MarketDataSource.EMBEDDED_SP500, MarketDataSource.SYNTHETIC_CRYPTO, MarketDataSource.LAKEHOUSE)


class FetchedBars(Protocol):
    frame: pl.DataFrame


class DailyBarFetcher(Protocol):
    """A live market-data client: daily bars for one symbol over [since, until] (see sources.binance)."""

    def fetch_daily(self, symbol: str, since, until) -> FetchedBars: ...

    def fetch_markets(self) -> pl.DataFrame: ...


@dataclass(frozen=True)
class HistoryResult:
    coverage: pl.DataFrame  # symbol, first, last, bars
    fetched_rows: int
    repaired_gaps: int
    missing: list[str]
    refused: dict[str, str]  # symbol -> why the source refused it (the health gates then quarantine it)


def pool_universe(ctx: StageContext) -> pl.DataFrame:
    """The partition's pool symbols plus the profile's benchmark, with each symbol's calendar."""
    pool = ctx.read("raw_pool")
    if pool.is_empty():
        raise LookupError(f"no raw pool for {ctx.profile.name} as of {ctx.as_of}: materialise raw_pool first")
    return symbol_calendars(ctx.read("symbols"), pool["symbol"].unique().to_list(), ctx.profile)


def _coverage(ctx: StageContext, symbols: list[str], start: date | None = None) -> pl.DataFrame:
    bars = ctx.bars(symbols, start or ctx.lookback_start)
    stats = bars.group_by("symbol").agg(
        pl.col("date").min().alias("first"), pl.col("date").max().alias("last"), pl.len().alias("bars")
    )
    return pl.DataFrame({"symbol": symbols}).join(stats, on="symbol", how="left").sort("symbol")


def _with_ingest_time(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.lit(utc_now()).alias("ingested_at"))


def sync_history(ctx: StageContext, fetcher: DailyBarFetcher | None = None) -> HistoryResult:
    """Incremental fetch (live sources) of the lookback for the pool, then a repair pass over inner gaps."""
    universe = pool_universe(ctx)
    symbols = universe["symbol"].to_list()
    fetched, repaired, refused = 0, 0, {}
    if ctx.profile.market_data not in STORED_SOURCES:
        if fetcher is None:
            raise RuntimeError(f"profile {ctx.profile.name!r} needs a live market-data client; none was configured")
        markets = fetcher.fetch_markets()
        record_symbols(ctx.lakehouse, markets.filter(pl.col("symbol").is_in(symbols)))
        for row in _coverage(ctx, symbols, ctx.history_start).iter_rows(named=True):
            for since, until in _missing_ranges(ctx, row["first"], row["last"]):
                try:
                    bars = fetcher.fetch_daily(row["symbol"], since, until).frame
                except SourceDataError as exc:  # this symbol only; an unreachable source still fails the step
                    refused[row["symbol"]] = str(exc)
                    break
                if bars.height:
                    fetched += ctx.lakehouse.upsert("ohlcv", _with_ingest_time(bars))["inserted"]
        if ctx.profile.features.feat_repair_gaps:
            repaired = _repair_gaps(ctx, universe.filter(~pl.col("symbol").is_in(list(refused))), fetcher)
    coverage = _coverage(ctx, symbols)
    missing = coverage.filter(pl.col("bars").is_null())["symbol"].to_list()
    return HistoryResult(coverage=coverage, fetched_rows=fetched, repaired_gaps=repaired, missing=missing, refused=refused)


def _missing_ranges(ctx: StageContext, first: date | None, last: date | None) -> list[tuple[date, date]]:
    """The head and tail of [history start, as-of] not yet stored (a backfill of an older date needs the head)."""
    if first is None:
        return [(ctx.history_start, ctx.as_of)]
    ranges = []
    if first > ctx.history_start:
        ranges.append((ctx.history_start, first - timedelta(days=1)))
    if last < ctx.as_of:
        ranges.append((last + timedelta(days=1), ctx.as_of))
    return ranges


def _repair_gaps(ctx: StageContext, universe: pl.DataFrame, fetcher: DailyBarFetcher) -> int:
    """Re-fetch each gap the gaps gate finds; the source fills what it has (returns rows inserted)."""
    if universe.is_empty():  # every symbol was refused: nothing to repair (the gates need at least one symbol)
        return 0
    bars = ctx.bars(universe["symbol"].to_list(), ctx.lookback_start)
    inputs = GateInputs(bars, universe, ctx.as_of, ctx.profile.health.model_copy(update={"max_missing_sessions": 0}), 1)
    failing = evaluate_gates(inputs, [Gate.GAPS]).filter(~pl.col("passed"), pl.col("value") > 0)
    inserted = 0
    for symbol in failing["symbol"].to_list():
        dates = bars.filter(pl.col("symbol") == symbol)["date"].sort()
        steps = dates.diff().dt.total_days()
        for prev, gap in zip(dates.shift(1).to_list(), steps.to_list()):
            if prev is not None and gap is not None and gap > 1:
                since, until = prev + timedelta(days=1), prev + timedelta(days=int(gap) - 1)
                refill = fetcher.fetch_daily(symbol, since, until).frame
                if refill.height:
                    inserted += ctx.lakehouse.upsert("ohlcv", _with_ingest_time(refill))["inserted"]
    return inserted


def run_health(ctx: StageContext, refused: dict[str, str] | None = None) -> pl.DataFrame:
    """Evaluate every gate on the pool's bars as of the date and store the partition's health results.

    A symbol the source refused this cycle (`HistoryResult.refused`) fails the staleness gate with the source's
    reason: its stored bars could not be brought up to date, even when they are recent enough to pass on age."""
    universe = pool_universe(ctx)
    # From the history start: the close before the lookback prices the first return, so the gates judge it too.
    bars = ctx.bars(universe["symbol"].to_list(), ctx.history_start)
    inputs = GateInputs(
        bars, universe, ctx.as_of, ctx.profile.health, ctx.profile.history_floor_days, window_start=ctx.lookback_start
    )
    results = evaluate_gates(inputs)
    if refused:
        reasons = pl.DataFrame({"symbol": list(refused), "reason": list(refused.values())},
                               schema={"symbol": pl.String, "reason": pl.String})
        hit = (pl.col("gate") == Gate.STALENESS.value) & pl.col("reason").is_not_null()
        results = results.join(reasons, on="symbol", how="left", maintain_order="left").with_columns(
            passed=pl.when(hit).then(False).otherwise("passed"),
            detail=pl.when(hit).then(pl.format("refused by the source ({}); {}", "reason", "detail")).otherwise("detail"),
        ).drop("reason")
    ctx.write(health_results=results)
    return results


def run_returns(ctx: StageContext) -> ReturnsResult:
    """Returns for the pool as of the date; symbols that failed a health gate are quarantined, not used."""
    health = ctx.read("health_results")
    if health.is_empty():
        raise LookupError(f"no health results for {ctx.profile.name} as of {ctx.as_of}: materialise ohlcv_history first")
    universe = pool_universe(ctx)
    bars = ctx.bars(universe["symbol"].to_list(), ctx.history_start)
    result = build_returns(bars, universe, ctx.as_of, ctx.lookback_start, ctx.profile.history_floor_days, quarantine_list(health))
    ctx.write(returns_matrix=result.returns, returns_exclusions=result.exclusions)
    return result


