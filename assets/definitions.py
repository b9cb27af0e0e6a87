"""The one module that assembles `Definitions` (workspace.yaml and `[tool.dagster]` point here)."""

from __future__ import annotations

import dagster as dg

import tsp_platform  # noqa: F401  (pins BLAS threads before numpy loads elsewhere)
from assets.allocation import ALLOCATION_ASSETS, portfolio_weights_checks
from assets.audit import AUDIT_ASSETS, AUDIT_CHECKS
from assets.data_cycle import DATA_CYCLE_ASSETS, embedded_market_data
from assets.dbt_checks import dbt_check_assets
from assets.health_checks import HEALTH_CHECKS
from assets.jobs import JOBS
from assets.meta import META_ASSETS
from assets.orders import ORDER_ASSETS
from assets.reports import REPORT_ASSETS
from assets.schedules import FRESHNESS_CHECKS, OPERATIONS_ASSETS, SCHEDULES, freshness_job
from assets.selection import SELECTION_ASSETS, selection_checks
from assets.sensors import SENSORS
from assets.tournament import TOURNAMENT_ASSETS, TOURNAMENT_CHECKS
from assets.tournament_sensor import TOURNAMENT_JOBS, tournament_fanout
from resources import build_resources


def build_definitions(resources: dict | None = None) -> dg.Definitions:
    """All assets, checks, jobs, schedules and sensors; `resources` replaces the environment's (tests point at a
    temp lakehouse)."""
    return dg.Definitions(
        assets=[embedded_market_data, *DATA_CYCLE_ASSETS, *SELECTION_ASSETS, *ALLOCATION_ASSETS, *TOURNAMENT_ASSETS,
                *ORDER_ASSETS, *REPORT_ASSETS, *META_ASSETS, *AUDIT_ASSETS,
                dbt_check_assets, *OPERATIONS_ASSETS],
        asset_checks=[*HEALTH_CHECKS, selection_checks, portfolio_weights_checks, *TOURNAMENT_CHECKS, *AUDIT_CHECKS,
                      *FRESHNESS_CHECKS],
        jobs=[*JOBS, *TOURNAMENT_JOBS, freshness_job],
        schedules=SCHEDULES,
        sensors=[tournament_fanout, *SENSORS],
        resources=resources if resources is not None else build_resources(),
    )


defs = build_definitions()
