"""Tournament assets: `tournament_inputs` (profile × date) → `tournament_cells` (dynamic) → `tournament_scoreboard`.

* `tournament_inputs` reads the lakehouse once and writes the partition's Parquet snapshot (pool `duckdb`).
* `tournament_cells` is one dynamic partition per profile × date × cell group (an allocation engine's cells, or
  the baselines). It reads the snapshot, never the database, so cells run in parallel as separate runs (no
  pool); its results wait as Parquet beside the snapshot.
* `tournament_scoreboard` stores every group's cells, stitched returns, weights and windows plus the scoreboard
  in one lakehouse transaction (pool `duckdb`) and judges the strict gates; its checks sit beside it.
"""

import dagster as dg
import polars as pl

from assets._audit import audited, record_outcomes
from assets._checks import check_results, check_specs
from assets._metadata import markdown_table
from assets.data_cycle import ohlcv_history, raw_pool, stage_context
from assets.selection import selection
from partitions import cell_key, cell_of, profile_date_partitions, tournament_cell_partitions
from resources import DUCKDB_POOL, LakehouseResource, ManifestResource
from tsp_platform.core.frame_files import FrameFilesError
from tsp_platform.core.identifiers import validate_run_id
from tsp_platform.tournament.snapshot import SnapshotError, TournamentSnapshot
from tsp_platform.tournament.stage import (
    CellBatch,
    build_snapshot,
    cells_directory,
    run_cell_group,
    snapshot_directory,
    store_tournament,
)
from tsp_platform.tournament.verify import failed_cells, metric_problems, parity_problems, snapshot_problems
from tsp_platform.tournament.walkforward import windows

TOURNAMENT_GROUP = "tournament"
BOARD_COLUMNS = ("strict_rank", "scorer", "risk_profile", "engine", "simulator", "cagr", "sharpe", "max_drawdown",
                 "avg_turnover", "friction_decay", "parity_gap", "failed_gates")


def _snapshot(context, lakehouse: LakehouseResource, manifest: ManifestResource) -> tuple[TournamentSnapshot, str]:
    ctx = stage_context(context, lakehouse, manifest)
    return TournamentSnapshot.read(snapshot_directory(lakehouse.snapshot_root(), ctx.profile.name, ctx.as_of))


@dg.asset(
    partitions_def=profile_date_partitions, deps=[ohlcv_history, raw_pool, selection], group_name=TOURNAMENT_GROUP,
    pool=DUCKDB_POOL, kinds={"duckdb", "parquet"},
)
@audited
def tournament_inputs(context: dg.AssetExecutionContext, lakehouse: LakehouseResource, manifest: ManifestResource) -> dg.MaterializeResult:
    """The partition's tournament snapshot as Parquet files: every window's pool as of its own date, returns over
    the tournament span, bars for the execution snapshots. An unusable snapshot (too short a span, an invalid
    return) is refused with the problems named, and nothing is written."""
    ctx = stage_context(context, lakehouse, manifest)
    snapshot = build_snapshot(ctx)
    lakehouse.seal_reads()  # the intent precedes the snapshot files
    directory = snapshot_directory(lakehouse.snapshot_root(), ctx.profile.name, ctx.as_of)
    content_id = snapshot.write(directory)
    panel, config = snapshot.panel, ctx.profile.tournament
    return dg.MaterializeResult(
        metadata={
            "snapshot": dg.MetadataValue.path(str(directory)),
            "snapshot_id": content_id,
            "symbols": len(panel.symbols),
            "atoms": snapshot.atoms.height,
            "rows": len(panel.dates),
            "first_date": str(panel.dates[0]) if len(panel.dates) else "",
            "walk_forward_windows": len(windows(len(panel.dates), config.windows)),
            "cell_groups": ", ".join(config.cell_groups()),
        }
    )


INPUT_CHECKS = {
    "span_covers_a_window": "The tournament span holds at least train + test return rows",
    "returns_valid": "Every snapshot return is finite and above −100 %",
}


@dg.multi_asset_check(specs=check_specs(tournament_inputs, INPUT_CHECKS), can_subset=True)
def tournament_inputs_checks(context: dg.AssetCheckExecutionContext, lakehouse: LakehouseResource, manifest: ManifestResource):
    """The stored snapshot, re-read from disk: a damaged or edited file fails both checks."""
    ctx = stage_context(context, lakehouse, manifest)
    try:
        snapshot, content_id = _snapshot(context, lakehouse, manifest)
    except SnapshotError as error:
        found, content_id = {name: [str(error)] for name in INPUT_CHECKS}, ""
    else:
        found = snapshot_problems(snapshot, ctx.profile.tournament)
    yield from check_results(context, tournament_inputs, INPUT_CHECKS, found, {"snapshot_id": content_id})


@dg.asset(
    partitions_def=tournament_cell_partitions,
    deps=[dg.AssetDep(tournament_inputs, partition_mapping=dg.AllPartitionMapping())],
    group_name=TOURNAMENT_GROUP, kinds={"parquet", "numpy"},
)
def tournament_cells(context: dg.AssetExecutionContext, lakehouse: LakehouseResource, manifest: ManifestResource) -> dg.MaterializeResult:
    """One cell group's walk-forward cells (scorer × risk profile × simulator, or the baselines) from the snapshot."""
    profile_name, as_of, group = cell_of(context.partition_key)
    profile = manifest.manifest().profile(profile_name)
    root = lakehouse.snapshot_root()
    snapshot, content_id = TournamentSnapshot.read(snapshot_directory(root, profile.name, as_of))
    batch = run_cell_group(snapshot, profile, group, validate_run_id(context.run.run_id), content_id)
    directory = cells_directory(root, profile.name, as_of, group)
    batch.write(directory)
    cells = batch.cells
    status = cells.group_by("status").len().sort("status")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": cells.height,
            "results": dg.MetadataValue.path(str(directory)),
            "snapshot_id": content_id,
            "config_id": profile.config_id(),
            **{f"cells_{s}": n for s, n in status.iter_rows()},
            "seconds_by_simulator": markdown_table(cells.group_by("simulator").agg(pl.col("seconds").sum()).sort("simulator")),
            "cells": markdown_table(
                cells.select("scorer", "risk_profile", "simulator", "status", "cagr", "sharpe", "friction_decay")
                .sort("scorer", "risk_profile", "simulator"), limit=60,
            ),
        }
    )


@dg.asset(
    partitions_def=profile_date_partitions,
    deps=[dg.AssetDep(tournament_cells, partition_mapping=dg.AllPartitionMapping())],
    group_name=TOURNAMENT_GROUP, pool=DUCKDB_POOL, kinds={"duckdb", "polars"},
)
@audited
def tournament_scoreboard(context: dg.AssetExecutionContext, lakehouse: LakehouseResource, manifest: ManifestResource) -> dg.MaterializeResult:
    """Every cell's results stored in the lakehouse, and the strict scoreboard of the profile × date."""
    ctx = stage_context(context, lakehouse, manifest)
    root = lakehouse.snapshot_root()
    batches, unusable = [], []
    for group in ctx.profile.tournament.cell_groups():
        try:
            batches.append(CellBatch.read(cells_directory(root, ctx.profile.name, ctx.as_of, group)))
        except FrameFilesError as error:
            unusable.append(f"{group} ({error})")
    if unusable:
        raise LookupError(
            f"{ctx.profile.name} as of {ctx.as_of}: no usable results for cell groups {unusable}; materialise their "
            "tournament_cells partitions (the tournament sensor requests them when selection materialises)"
        )
    content_id = TournamentSnapshot.content_id(snapshot_directory(root, ctx.profile.name, ctx.as_of))
    board = store_tournament(ctx, batches, content_id)
    record_outcomes(context, lakehouse, manifest, [
        {"step": "tournament_cells", "partition": cell_key(ctx.profile.name, ctx.as_of, b.group), "status": "success",
         "outputs": {"batch_id": b.content_id, "snapshot_id": b.snapshot_id, "config_id": b.config_id},
         "summary": {"cells": b.cells.height, "failed": b.cells.filter(pl.col("status") == "failed").height,
                     "cell_run_id": b.cells["run_id"][0] if b.cells.height else ""}}
        for b in batches
    ])
    strict = board.filter(pl.col("strict"))
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": board.height,
            "strict_candidates": strict.height,
            "cells": board.filter(~pl.col("is_baseline")).height,
            "gates_id": ctx.profile.tournament.gates.config_id(),
            "strict": markdown_table(strict.select(BOARD_COLUMNS), limit=30),
            "baselines": markdown_table(board.filter(pl.col("is_baseline")).select(BOARD_COLUMNS[1:])),
            "failed_gates": markdown_table(
                board.filter(~pl.col("strict") & ~pl.col("is_baseline")).select(BOARD_COLUMNS[1:]), limit=30
            ),
        }
    )


SCOREBOARD_CHECKS = {
    "all_cells_ran": "No cell's allocation or simulation raised",
    "simulators_agree": "On the same weights, every simulator's annual return is within the parity gate of the reference",
    "metrics_reproduce": "Stored CAGR, Sharpe and max drawdown equal those of the stored daily returns (1e-9)",
}


@dg.multi_asset_check(specs=check_specs(tournament_scoreboard, SCOREBOARD_CHECKS), pool=DUCKDB_POOL, can_subset=True)
def tournament_scoreboard_checks(context: dg.AssetCheckExecutionContext, lakehouse: LakehouseResource, manifest: ManifestResource):
    ctx = stage_context(context, lakehouse, manifest)
    cells, returns, board = ctx.read("tournament_cells"), ctx.read("tournament_returns"), ctx.read("tournament_scoreboard")
    if cells.is_empty() or board.is_empty():
        found = {name: ["no tournament stored for this partition"] for name in SCOREBOARD_CHECKS}
    else:
        found = {
            "all_cells_ran": failed_cells(cells),
            "simulators_agree": parity_problems(board, ctx.profile.tournament),
            "metrics_reproduce": metric_problems(cells, returns, ctx.profile.annualisation),
        }
    yield from check_results(context, tournament_scoreboard, SCOREBOARD_CHECKS, found, {"cells": cells.height})


TOURNAMENT_ASSETS = [tournament_inputs, tournament_cells, tournament_scoreboard]
TOURNAMENT_CHECKS = [tournament_inputs_checks, tournament_scoreboard_checks]
