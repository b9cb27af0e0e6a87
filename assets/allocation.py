"""Allocation assets: `regime` and `portfolio_weights` (engines × risk profiles), checks beside them."""

import dagster as dg
import polars as pl

from assets._audit import audited
from assets._checks import check_results, check_specs
from assets._metadata import markdown_table
from assets.data_cycle import stage_context
from assets.selection import selection
from partitions import profile_date_partitions
from resources import DUCKDB_POOL, LakehouseResource, ManifestResource
from tsp_platform.allocation.stage import run_allocation, run_regime
from tsp_platform.allocation.verify import verify_allocations

ALLOCATION_GROUP = "allocation"


@dg.asset(
    partitions_def=profile_date_partitions, deps=[selection], group_name=ALLOCATION_GROUP, pool=DUCKDB_POOL,
    kinds={"duckdb", "numpy"},
)
@audited
def regime(context: dg.AssetExecutionContext, lakehouse: LakehouseResource, manifest: ManifestResource) -> dg.MaterializeResult:
    """QUIET / NORMAL / TURBULENT / CRISIS from the volatility ratio, permutation entropy and DWT turbulence."""
    ctx = stage_context(context, lakehouse, manifest)
    reading = run_regime(ctx)
    config = ctx.profile.allocation
    return dg.MaterializeResult(
        metadata={
            "regime": reading.regime.value,
            "vol_ratio": float(reading.vol_ratio or 0.0),
            "entropy": float(reading.entropy or 0.0),
            "turbulence": float(reading.turbulence or 0.0),
            "cluster_cap": config.cluster_caps[reading.regime],
            "aggressor_sleeve": config.aggressor_sleeve[reading.regime],
            "reason": reading.reason,
        }
    )


@dg.asset(
    partitions_def=profile_date_partitions, deps=[selection, regime], group_name=ALLOCATION_GROUP, pool=DUCKDB_POOL,
    kinds={"duckdb", "numpy"},
)
@audited
def portfolio_weights(context: dg.AssetExecutionContext, lakehouse: LakehouseResource, manifest: ManifestResource) -> dg.MaterializeResult:
    """Atom and flattened physical weights per engine × risk profile, with the fallback used and the solve time."""
    ctx = stage_context(context, lakehouse, manifest)
    runs, weights = run_allocation(ctx)
    grid = runs.pivot(on="engine", index="risk_profile", values="status")
    physical = weights.filter((pl.col("level") == "physical") & (pl.col("engine") == "custom"))
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": weights.height,
            "solved": runs.filter(pl.col("status").is_in(["ok", "fallback"])).height,
            "fallbacks": runs.filter(pl.col("status") == "fallback").height,
            "failed": runs.filter(pl.col("status") == "failed").height,
            "engine_x_profile": markdown_table(grid, limit=20),
            "solve_ms": markdown_table(runs.pivot(on="engine", index="risk_profile", values="solve_ms"), limit=20),
            "custom_physical_weights": markdown_table(
                physical.pivot(on="risk_profile", index="name", values="weight").sort("name"), limit=40
            ),
        }
    )


PORTFOLIO_CHECKS = {
    "weights_finite": "Every stored weight is finite",
    "budget_held": "Weights sum to 1; the market-neutral book keeps beta in its band and gross bounded",
    "caps_held": "Long-only profiles hold their per-asset and regime-aware cluster caps",
}


@dg.multi_asset_check(specs=check_specs(portfolio_weights, PORTFOLIO_CHECKS), pool=DUCKDB_POOL, can_subset=True)
def portfolio_weights_checks(context: dg.AssetCheckExecutionContext, lakehouse: LakehouseResource, manifest: ManifestResource):
    ctx = stage_context(context, lakehouse, manifest)
    weights, runs, regimes = ctx.read("portfolio_weights"), ctx.read("allocation_runs"), ctx.read("regimes")
    if weights.is_empty() or regimes.is_empty():
        found = {name: ["no allocation stored for this partition"] for name in PORTFOLIO_CHECKS}
    else:
        found = verify_allocations(weights, runs, float(regimes["cluster_cap"][0]), ctx.profile.allocation)
    yield from check_results(context, portfolio_weights, PORTFOLIO_CHECKS, found, {"allocations": runs.height})


ALLOCATION_ASSETS = [regime, portfolio_weights]
