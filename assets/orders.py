"""`rebalance_orders` (profile × date): the final physical weights as a lot-rounded order list, never sent."""

import dagster as dg

from assets._audit import audited
from assets._metadata import markdown_table
from assets.allocation import portfolio_weights
from assets.data_cycle import stage_context
from partitions import profile_date_partitions
from resources import DUCKDB_POOL, PROJECT_ROOT, LakehouseResource, ManifestResource
from tsp_platform.orders import write_orders
from tsp_platform.orders.stage import orders_csv_path, run_orders, store_orders


@dg.asset(
    partitions_def=profile_date_partitions, deps=[portfolio_weights], group_name="orders", pool=DUCKDB_POOL,
    kinds={"duckdb", "csv"},
)
@audited
def rebalance_orders(context: dg.AssetExecutionContext, lakehouse: LakehouseResource, manifest: ManifestResource) -> dg.MaterializeResult:
    """Orders that move the current positions to the configured engine × risk profile's weights."""
    ctx = stage_context(context, lakehouse, manifest)
    orders, inputs = run_orders(ctx, PROJECT_ROOT)
    rows = store_orders(ctx, orders)
    path = write_orders(orders, orders_csv_path(lakehouse.orders_root(), ctx.profile.name, ctx.as_of))
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows.height,
            "orders_csv": dg.MetadataValue.path(str(path)),
            "weights_from": f"{ctx.profile.orders.engine.value} × {ctx.profile.orders.risk_profile.value}",
            "gross_notional": orders.gross_notional,
            "estimated_cost": orders.total_estimated_cost,
            "cash_after_trades": orders.cash_after_trades,
            "skipped": orders.skipped.height,
            "orders": markdown_table(orders.orders, limit=40),
            **inputs,  # recorded in the audit ledger's outcome as input ids
        }
    )


ORDER_ASSETS = [rebalance_orders]
