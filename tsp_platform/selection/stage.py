"""Selection stages against the lakehouse: `feature_store` (ingestion + features) and `selection`
(inference → partitioning → policy → synthesis), one (profile, as-of) partition at a time.

Everything read here is as of the partition's date: the returns matrix stops there, and the snapshot
features come from bars up to that date (never a scan-date value reused for another window).
"""

from __future__ import annotations

import json

import polars as pl

from tsp_platform.context import StageContext
from tsp_platform.core.atoms import atoms_frame
from tsp_platform.core.panel import ReturnsPanel
from tsp_platform.health.verdicts import require_healthy
from tsp_platform.selection.context import SelectionContext
from tsp_platform.selection.execution import execution_metadata, execution_snapshot, snapshot_start
from tsp_platform.selection.funnel import Funnel, build_funnel
from tsp_platform.selection.pipeline import apply_policy, cluster_frame, engineer_features, infer, partition, synthesize

ATOM_COLUMNS = ("atom_id", "symbol", "logic", "direction", "identity", "sector", "asset_class")


def selection_inputs(ctx: StageContext) -> SelectionContext:
    """Ingestion: the partition's pool as atoms, its returns panel and the as-of execution snapshot."""
    if ctx.profile.features.feat_strict_health:
        require_healthy(ctx.read("health_results"), ctx.profile.name, ctx.as_of)
    pool, returns = ctx.read("raw_pool"), ctx.read("returns_matrix")
    if pool.is_empty() or returns.is_empty():
        raise LookupError(f"{ctx.profile.name} as of {ctx.as_of}: raw_pool and returns_matrix must be materialised first")
    panel = ReturnsPanel.from_long(returns.select("symbol", "date", "ret"))
    atoms = atoms_frame(pool.filter(pl.col("symbol").is_in(list(panel.symbols)))).select(ATOM_COLUMNS)
    symbols = sorted(set(atoms["symbol"]))
    execution = execution_snapshot(
        ctx.bars(symbols, snapshot_start(ctx.as_of)), execution_metadata(ctx.read("symbols")), symbols, ctx.as_of
    )
    return SelectionContext(
        config=ctx.profile.selection,
        annualisation=ctx.profile.annualisation,
        allow_short=ctx.profile.features.feat_short_direction,
        benchmark=ctx.profile.benchmark,
        atoms=atoms,
        panel=panel.select(symbols),
        execution=execution,
    )


def features_long(sc: SelectionContext) -> pl.DataFrame:
    value_columns = [c for c in sc.features.columns if c not in ("atom_id", "has_execution_metadata")]
    wide = sc.features.with_columns(pl.col(value_columns).cast(pl.Float64),
                                    pl.col("has_execution_metadata").cast(pl.Float64))
    long = wide.unpivot(index="atom_id", variable_name="feature", value_name="value")
    return long.join(sc.atoms.select("atom_id", "symbol", "logic", "direction"), on="atom_id", how="left")


def run_feature_store(ctx: StageContext) -> tuple[SelectionContext, pl.DataFrame]:
    """Compute and store the raw features of the partition's atoms (long rows: atom, feature, value)."""
    sc = engineer_features(selection_inputs(ctx))
    rows = features_long(sc)
    ctx.write(features=rows)
    return sc, rows


def stored_features(ctx: StageContext, sc: SelectionContext) -> SelectionContext:
    stored = ctx.read("features")
    if stored.is_empty():
        raise LookupError(f"no features for {ctx.profile.name} as of {ctx.as_of}: materialise feature_store first")
    wide = stored.pivot(on="feature", index="atom_id", values="value").with_columns(
        pl.col("has_execution_metadata").cast(pl.Boolean)
    )
    return sc.evolve(features=sc.atoms.select("atom_id").join(wide, on="atom_id", how="left"))


def run_selection_stage(ctx: StageContext) -> tuple[SelectionContext, pl.DataFrame, Funnel]:
    """Inference → partitioning → policy → synthesis on the stored features; stores every intermediate."""
    sc = apply_policy(partition(infer(stored_features(ctx, selection_inputs(ctx)))))
    winners = synthesize(sc)
    probabilities = sc.probabilities.unpivot(index="atom_id", variable_name="feature", value_name="probability")
    runs = pl.DataFrame(
        [
            {
                "scorer": scorer, "is_champion": bool(sc.scores.filter(pl.col("scorer") == scorer)["is_champion"][0]),
                "final_stage": r.final_stage, "hardened": r.hardened, "winners": r.winners.height,
                "stage_counts": json.dumps({str(k): v for k, v in r.stage_counts.items()}), "shortfall": r.shortfall,
            }
            for scorer, r in sc.policies.items()
        ],
        schema_overrides={"final_stage": pl.Int32, "winners": pl.Int32, "shortfall": pl.String},
    )
    champion = next(iter(r for s, r in sc.policies.items() if runs.filter(pl.col("scorer") == s)["is_champion"][0]))
    clusters = cluster_frame(sc).with_columns(pl.lit(sc.clusters.method).alias("method"))
    funnel = build_funnel(ctx.read("discovery_runs"), ctx.read("scan_results"), ctx.read("raw_pool"),
                          with_returns=sc.atoms.height, winners=champion.winners.height)
    ctx.write(
        feature_probabilities=probabilities, selection_scores=sc.scores, clusters=clusters,
        selection_vetoes=champion.vetoes, selection_winners=winners, selection_runs=runs,
    )
    return sc, winners, funnel
