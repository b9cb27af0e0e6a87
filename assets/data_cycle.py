"""Data-cycle assets: seed → discovery_scan → raw_pool → ohlcv_history → returns_matrix.

Each asset is a thin shell over a domain stage (tsp_platform); all lakehouse writers share the `duckdb` pool.
"""


import dagster as dg
import polars as pl

from assets._audit import audited
from assets._metadata import markdown_table
from partitions import partition_of, profile_date_partitions
from resources import DUCKDB_POOL, LakehouseResource, LiveSourcesResource, ManifestResource
from tsp_platform.context import StageContext
from tsp_platform.core.identifiers import validate_run_id
from tsp_platform.discovery.stage import run_discovery, run_raw_pool
from tsp_platform.market_data.stage import STORED_SOURCES, run_health, run_returns, sync_history
from tsp_platform.sources.seed import seed_embedded

DATA_GROUP = "data_cycle"


def stage_context(context, lakehouse: LakehouseResource, manifest: ManifestResource) -> StageContext:
    profile_name, as_of = partition_of(context)
    profile = manifest.manifest().profile(profile_name)
    return StageContext(lakehouse.lakehouse(), profile, as_of, run_id=validate_run_id(context.run.run_id))


@dg.asset(group_name="ingest", pool=DUCKDB_POOL, kinds={"duckdb", "python"})
@audited
def embedded_market_data(context: dg.AssetExecutionContext, lakehouse: LakehouseResource, manifest: ManifestResource) -> dg.MaterializeResult:
    """Seed the lakehouse with the offline data: skfolio's S&P 500 sample and the SYNTHETIC crypto market."""
    reports = seed_embedded(lakehouse.lakehouse(), manifest.manifest())
    metadata = {}
    for report in reports:
        metadata[f"{report.source}_symbols"] = report.symbols
        for kind, count in report.bars.items():
            metadata[f"{report.source}_bars_{kind}"] = count
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(
    partitions_def=profile_date_partitions,
    deps=[embedded_market_data],
    group_name=DATA_GROUP,
    pool=DUCKDB_POOL,
    kinds={"duckdb", "polars"},
)
@audited
def discovery_scan(
    context: dg.AssetExecutionContext,
    lakehouse: LakehouseResource,
    manifest: ManifestResource,
    live_sources: LiveSourcesResource,
) -> dg.MaterializeResult:
    """Run the profile's L4 scanners as of the date (live screener or the offline lakehouse screener)."""
    ctx = stage_context(context, lakehouse, manifest)
    live = live_sources.screener() if ctx.profile.discovery.value == "tradingview" else None
    result = run_discovery(ctx, live)
    counts = pl.DataFrame({"scanner": list(result.per_scanner), "rows": list(result.per_scanner.values())})
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": result.scans.height,
            "universe_rows": result.universe_size,
            "per_scanner": markdown_table(counts),
            "preview": markdown_table(result.scans.select("scanner", "rank", "symbol", "direction", "perf_3m", "recommend_all")),
            "source": ctx.profile.discovery.value,
        }
    )


@dg.asset(
    partitions_def=profile_date_partitions, deps=[discovery_scan], group_name=DATA_GROUP, pool=DUCKDB_POOL,
    kinds={"duckdb", "polars"},
)
@audited
def raw_pool(context: dg.AssetExecutionContext, lakehouse: LakehouseResource, manifest: ManifestResource) -> dg.MaterializeResult:
    """Aggregate scans into candidate atoms: dedup, one quote per base, stablecoins out, floors, cap."""
    ctx = stage_context(context, lakehouse, manifest)
    result = run_raw_pool(ctx)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": result.pool.height,
            "distinct_symbols": result.pool["symbol"].n_unique(),
            "rejected": result.rejected.height,
            "rejections": markdown_table(result.rejected),
            "preview": markdown_table(result.pool.select("rank", "symbol", "logic", "direction", "value_traded", "alternatives")),
        }
    )


@dg.asset(
    partitions_def=profile_date_partitions, deps=[raw_pool], group_name=DATA_GROUP, pool=DUCKDB_POOL,
    kinds={"duckdb", "polars"},
)
@audited
def ohlcv_history(
    context: dg.AssetExecutionContext,
    lakehouse: LakehouseResource,
    manifest: ManifestResource,
    live_sources: LiveSourcesResource,
) -> dg.MaterializeResult:
    """Hold the lookback of the pool's daily bars (incremental fetch + gap repair for live sources), then
    evaluate the data-health gates and store them in `health_results` for the checks."""
    ctx = stage_context(context, lakehouse, manifest)
    fetcher = None if ctx.profile.market_data in STORED_SOURCES else live_sources.bar_fetcher()
    history = sync_history(ctx, fetcher)
    health = run_health(ctx, history.refused)
    failed = health.filter(~pl.col("passed"))
    return dg.MaterializeResult(
        metadata={
            "symbols": history.coverage.height,
            "bars_in_lookback": int(history.coverage["bars"].fill_null(0).sum()),
            "fetched_rows": history.fetched_rows,
            "repaired_rows": history.repaired_gaps,
            "missing_symbols": ", ".join(history.missing) or "none",
            "refused_by_source": markdown_table(pl.DataFrame({"symbol": list(history.refused), "reason": list(history.refused.values())},
                                                             schema={"symbol": pl.String, "reason": pl.String})),
            "gate_failures": failed.height,
            "failures": markdown_table(failed.select("gate", "symbol", "value", "detail")),
            "coverage": markdown_table(history.coverage),
        }
    )


@dg.asset(
    partitions_def=profile_date_partitions, deps=[ohlcv_history], group_name=DATA_GROUP, pool=DUCKDB_POOL,
    kinds={"duckdb", "polars"},
)
@audited
def returns_matrix(context: dg.AssetExecutionContext, lakehouse: LakehouseResource, manifest: ManifestResource) -> dg.MaterializeResult:
    """Calendar-aware daily returns over the lookback, long form; quarantined and short histories excluded."""
    ctx = stage_context(context, lakehouse, manifest)
    result = run_returns(ctx)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": result.returns.height,
            "symbols": result.returns["symbol"].n_unique(),
            "first_date": str(result.returns["date"].min()),
            "last_date": str(result.returns["date"].max()),
            "excluded": result.exclusions.height,
            "exclusions": markdown_table(result.exclusions),
            "content_hash": ctx.lakehouse.content_hash("returns_matrix", ctx.profile.name, ctx.as_of),
        }
    )


DATA_CYCLE_ASSETS = [discovery_scan, raw_pool, ohlcv_history, returns_matrix]
