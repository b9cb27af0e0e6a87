"""`meta_portfolio` (meta profile × date): allocation across sleeves' out-of-sample streams, net positions.

Its dependency on the sleeves is declared: each meta × date partition depends on the `tournament_scoreboard`
and `portfolio_weights` partitions of its sleeves on the same date (`partitions.sleeve_mapping`).
"""

from datetime import date

import dagster as dg

from assets._audit import audited
from assets._metadata import markdown_table
from assets.allocation import portfolio_weights
from assets.tournament import tournament_scoreboard
from partitions import DATE_DIM, META_DIM, meta_partitions, sleeve_mapping
from resources import DUCKDB_POOL, LakehouseResource, ManifestResource
from tsp_platform.meta.stage import run_meta, store_meta


@dg.asset(
    partitions_def=meta_partitions, group_name="meta", pool=DUCKDB_POOL, kinds={"duckdb", "numpy"},
    deps=[dg.AssetDep(tournament_scoreboard, partition_mapping=sleeve_mapping()),
          dg.AssetDep(portfolio_weights, partition_mapping=sleeve_mapping())],
)
@audited
def meta_portfolio(context: dg.AssetExecutionContext, lakehouse: LakehouseResource, manifest: ManifestResource) -> dg.MaterializeResult:
    """Sleeve weights (HRP by default, bounded) over the sleeves' common out-of-sample days, flattened to net
    physical weights across sleeves."""
    keys = context.partition_key.keys_by_dimension
    name, as_of = keys[META_DIM], date.fromisoformat(keys[DATE_DIM])
    meta = manifest.manifest().file.meta_profiles[name]
    lake = lakehouse.lakehouse()
    result = run_meta(lake, name, meta, as_of)
    store_meta(lake, name, as_of, result)
    return dg.MaterializeResult(
        metadata={
            "common_days": result.common_days,
            "first_day": str(result.first_day),
            "last_day": str(result.last_day),
            "sleeves": markdown_table(result.sleeves),
            "net_physical_weights": markdown_table(result.physical, limit=60),
            "dagster/row_count": result.physical.height,
            **result.inputs,  # the sleeves' streams and weights, recorded in the audit ledger as input ids
        }
    )


META_ASSETS = [meta_portfolio]
