"""Jobs: what the UI's launchpad, the schedules, the sensors and the CLI run. Defined once, imported by each.

Every job runs its steps in the run's own process by default (`IN_PROCESS`): each step of these chains takes
about a second, every lakehouse writer waits for the one `duckdb` pool slot anyway, and the multiprocess
executor's fresh process per step re-imports the code location (about 7 s a step here). Parallelism comes
from runs (partitions, tournament cells), not from steps. A launch may still choose the multiprocess
executor in its run config.
"""

import dagster as dg

from assets.allocation import ALLOCATION_ASSETS, portfolio_weights_checks
from assets.audit import AUDIT_ASSETS
from assets.data_cycle import DATA_CYCLE_ASSETS, embedded_market_data
from assets.dbt_checks import dbt_check_assets
from assets.health_checks import HEALTH_CHECKS
from assets.meta import META_ASSETS
from assets.orders import ORDER_ASSETS
from assets.selection import SELECTION_ASSETS, selection_checks
from assets.tournament import TOURNAMENT_CHECKS

IN_PROCESS = {"execution": {"config": {"in_process": {}}}}


def asset_job(name: str, selection: dg.AssetSelection, description: str):
    return dg.define_asset_job(name, selection=selection, description=description, config=IN_PROCESS)

seed_job = asset_job("seed_lakehouse", dg.AssetSelection.assets(embedded_market_data),
                     "Load the embedded offline data into the lakehouse")
data_cycle_job = asset_job(
    "data_cycle",
    # The partitioned Python gates only: dbt's whole-table tests run in their own job (dbt_health_gates).
    selection=dg.AssetSelection.assets(*DATA_CYCLE_ASSETS).without_checks() | dg.AssetSelection.checks(*HEALTH_CHECKS),
    description="discovery_scan → raw_pool → ohlcv_history → returns_matrix, with their health gates",
)

health_gates_job = asset_job(
    "health_gates",
    selection=dg.AssetSelection.checks(*HEALTH_CHECKS),
    # A checks-only job has no assets to infer partitions from: launch it with `partitions.partition_tags`.
    description="Re-run the data-health gates of a partition without re-materialising its assets",
)
alpha_gates_job = asset_job(
    "alpha_gates",
    selection=dg.AssetSelection.checks(selection_checks, portfolio_weights_checks),
    description="Re-run the selection and allocation checks of a partition (launch with `partitions.partition_tags`)",
)
tournament_gates_job = asset_job(
    "tournament_gates",
    selection=dg.AssetSelection.checks(*TOURNAMENT_CHECKS),
    description="Re-run the tournament checks of a partition: the stored snapshot re-read from disk, the stored "
    "cells and scoreboard (launch with `partitions.partition_tags`)",
)
meta_job = asset_job(
    "meta_portfolio_job", selection=dg.AssetSelection.assets(*META_ASSETS),
    description="Allocate a meta profile across its sleeves' out-of-sample streams (partition: meta × date)",
)
audit_job = asset_job(
    "audit_ledger_job", selection=dg.AssetSelection.assets(*AUDIT_ASSETS),
    description="Export the audit ledger to audit.jsonl and verify the whole chain",
)
alpha_cycle_job = asset_job(
    "alpha_cycle",
    selection=dg.AssetSelection.assets(*SELECTION_ASSETS, *ALLOCATION_ASSETS, *ORDER_ASSETS),
    description="feature_store → selection → regime → portfolio_weights → rebalance_orders on a gated data cycle "
    "(the tournament_fanout sensor takes selection on to the tournament)",
)

# dbt tests judge whole tables (not partitions), so they run as their own unpartitioned job after data cycles.
dbt_checks_job = asset_job(
    "dbt_health_gates", selection=dg.AssetSelection.assets(dbt_check_assets), description="SQL health gates in dbt_checks/"
)

JOBS = [seed_job, data_cycle_job, health_gates_job, alpha_cycle_job, alpha_gates_job, dbt_checks_job,
        tournament_gates_job, meta_job, audit_job]
