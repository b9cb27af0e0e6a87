"""`portfolio_report` (profile × date): the dashboard, charts and QuantStats tear-sheets of a partition.

The dashboard and the key charts are also the materialisation's metadata (markdown with inline images), so
people read the results in the Dagster UI.
"""

import dagster as dg

from assets._audit import audited
from assets.data_cycle import stage_context
from assets.orders import rebalance_orders
from assets.tournament import tournament_scoreboard
from partitions import profile_date_partitions
from resources import DUCKDB_POOL, LakehouseResource, ManifestResource
from tsp_platform.reports.stage import build_report, image_markdown


@dg.asset(
    partitions_def=profile_date_partitions, deps=[tournament_scoreboard, rebalance_orders], group_name="reports",
    pool=DUCKDB_POOL, kinds={"html", "markdown"},
)
@audited
def portfolio_report(context: dg.AssetExecutionContext, lakehouse: LakehouseResource, manifest: ManifestResource) -> dg.MaterializeResult:
    """Dashboard (scoreboard, data health, funnel, regime, final weights), PNG charts and tear-sheets."""
    ctx = stage_context(context, lakehouse, manifest)
    report = build_report(ctx, lakehouse.reports_root())
    charts = "\n\n".join(image_markdown(path, title) for title, path in report.plots.items()
                         if title in ("Equity", "Drawdowns"))
    return dg.MaterializeResult(
        metadata={
            "dashboard_path": dg.MetadataValue.path(str(report.dashboard)),
            "dashboard": dg.MetadataValue.md(report.markdown),
            "charts": dg.MetadataValue.md(charts),
            "tearsheets": len(report.tearsheets),
            "candidates_without_tearsheet": report.candidates_without_tearsheet,
        }
    )


REPORT_ASSETS = [portfolio_report]
