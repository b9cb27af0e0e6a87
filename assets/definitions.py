"""The one module that assembles `Definitions` (workspace.yaml and `[tool.dagster]` point here)."""

from __future__ import annotations

import dagster as dg

import tsp_platform  # noqa: F401  (pins BLAS threads before numpy loads elsewhere)
from assets.data_cycle import DATA_CYCLE_ASSETS, embedded_market_data
from assets.allocation import ALLOCATION_ASSETS, portfolio_weights_checks
from assets.audit import AUDIT_ASSETS, AUDIT_CHECKS
from assets.meta import META_ASSETS
from assets.orders import ORDER_ASSETS
from assets.reports import REPORT_ASSETS
from assets.dbt_checks import dbt_check_assets
from assets.health_checks import HEALTH_CHECKS
from assets.selection import SELECTION_ASSETS, selection_checks
from assets.tournament import TOURNAMENT_ASSETS, TOURNAMENT_CHECKS
from assets.tournament_sensor import TOURNAMENT_JOBS, tournament_fanout
from resources import build_resources

seed_job = dg.define_asset_job("seed_lakehouse", selection=dg.AssetSelection.assets(embedded_market_data))
data_cycle_job = dg.define_asset_job(
    "data_cycle",
    # The partitioned Python gates only: dbt's whole-table tests run in their own job (dbt_health_gates).
    selection=dg.AssetSelection.assets(*DATA_CYCLE_ASSETS).without_checks() | dg.AssetSelection.checks(*HEALTH_CHECKS),
    description="discovery_scan → raw_pool → ohlcv_history → returns_matrix, with their health gates",
)

health_gates_job = dg.define_asset_job(
    "health_gates",
    selection=dg.AssetSelection.checks(*HEALTH_CHECKS),
    # A checks-only job has no assets to infer partitions from: launch it with `partitions.partition_tags`.
    description="Re-run the data-health gates of a partition without re-materialising its assets",
)
alpha_gates_job = dg.define_asset_job(
    "alpha_gates",
    selection=dg.AssetSelection.checks(selection_checks, portfolio_weights_checks),
    description="Re-run the selection and allocation checks of a partition (launch with `partitions.partition_tags`)",
)
tournament_gates_job = dg.define_asset_job(
    "tournament_gates",
    selection=dg.AssetSelection.checks(*TOURNAMENT_CHECKS),
    description="Re-run the tournament checks of a partition: the stored snapshot re-read from disk, the stored "
    "cells and scoreboard (launch with `partitions.partition_tags`)",
)
meta_job = dg.define_asset_job(
    "meta_portfolio_job", selection=dg.AssetSelection.assets(*META_ASSETS),
    description="Allocate a meta profile across its sleeves' out-of-sample streams (partition: meta × date)",
)
audit_job = dg.define_asset_job(
    "audit_ledger_job", selection=dg.AssetSelection.assets(*AUDIT_ASSETS),
    description="Export the audit ledger to audit.jsonl and verify the whole chain",
)
alpha_cycle_job = dg.define_asset_job(
    "alpha_cycle",
    selection=dg.AssetSelection.assets(*SELECTION_ASSETS, *ALLOCATION_ASSETS, *ORDER_ASSETS),
    description="feature_store → selection → regime → portfolio_weights → rebalance_orders on a gated data cycle "
    "(the tournament_fanout sensor takes selection on to the tournament)",
)

# dbt tests judge whole tables (not partitions), so they run as their own unpartitioned job after data cycles.
dbt_checks_job = dg.define_asset_job(
    "dbt_health_gates", selection=dg.AssetSelection.assets(dbt_check_assets), description="SQL health gates in dbt_checks/"
)


def build_definitions(resources: dict | None = None) -> dg.Definitions:
    """All assets, checks and jobs; `resources` replaces the environment's (tests point at a temp lakehouse)."""
    return dg.Definitions(
        assets=[embedded_market_data, *DATA_CYCLE_ASSETS, *SELECTION_ASSETS, *ALLOCATION_ASSETS, *TOURNAMENT_ASSETS,
                *ORDER_ASSETS, *REPORT_ASSETS, *META_ASSETS, *AUDIT_ASSETS,
                dbt_check_assets],
        asset_checks=[*HEALTH_CHECKS, selection_checks, portfolio_weights_checks, *TOURNAMENT_CHECKS, *AUDIT_CHECKS],
        jobs=[seed_job, data_cycle_job, health_gates_job, alpha_cycle_job, alpha_gates_job, dbt_checks_job,
              *TOURNAMENT_JOBS, tournament_gates_job, meta_job, audit_job],
        sensors=[tournament_fanout],
        resources=resources if resources is not None else build_resources(),
    )


defs = build_definitions()
