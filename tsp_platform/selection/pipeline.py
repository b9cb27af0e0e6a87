"""The selection stages over a SelectionContext: features → inference → partitioning → policy → synthesis.

Pure functions of their inputs (the lakehouse I/O lives in selection/stage.py), so a walk-forward window can
run them on its train slice alone.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from tsp_platform.core.atoms import atom_returns
from tsp_platform.selection.clustering import cluster_assets
from tsp_platform.selection.context import SelectionContext
from tsp_platform.selection.features import compute_features
from tsp_platform.selection.policy import run_policy
from tsp_platform.selection.scoring import probabilities, run_scorers

# Cost impact of trading $1M against the average daily value traded, annualised by volatility.
ECI_NOTIONAL = 1e6
SNAPSHOT_FEATURES = ("adx", "recommend_all", "recommend_ma", "recommend_other", "liquidity", "eci")
DIRECTIONAL_SNAPSHOT = ("recommend_all", "recommend_ma", "recommend_other")  # bullish for a long is bearish for a short


def engineer_features(ctx: SelectionContext) -> SelectionContext:
    """Return-based features per atom (SHORT atoms on negated returns) plus the as-of snapshot features."""
    atom_panel = atom_returns(ctx.panel, ctx.atoms)
    raw = compute_features(atom_panel, ctx.config.features, ctx.annualisation).rename({"symbol": "atom_id"})
    snapshot = ctx.atoms.select("atom_id", "symbol", "direction", "asset_class").join(ctx.execution, on="symbol", how="left")
    sign = pl.when(pl.col("direction") == "short").then(-1.0).otherwise(1.0)
    baseline = pl.when(pl.col("asset_class") == "crypto").then(ctx.config.features.liquidity_baseline_crypto).otherwise(
        ctx.config.features.liquidity_baseline_other
    )
    snapshot = snapshot.with_columns(
        *(pl.col(c) * sign for c in DIRECTIONAL_SNAPSHOT),
        (pl.col("adv") / baseline).clip(upper_bound=1.0).alias("liquidity"),
    )
    features = raw.join(
        snapshot.select("atom_id", *DIRECTIONAL_SNAPSHOT, "adx", "liquidity", "adv", "has_execution_metadata"),
        on="atom_id",
        how="left",
    )
    features = features.with_columns(
        (pl.col("volatility") * (ECI_NOTIONAL / pl.col("adv")).sqrt()).alias("eci"),
    ).drop("adv")
    return ctx.evolve(features=features)


def infer(ctx: SelectionContext) -> SelectionContext:
    """Probability transforms (their own table) and every scorer's scores, tagged champion or challenger."""
    table = probabilities(ctx.features.rename({"atom_id": "symbol"}), ctx.config.scoring)
    scores = run_scorers(table, ctx.config.scoring).rename({"symbol": "atom_id"})
    return ctx.evolve(
        probabilities=table.frame.rename({"symbol": "atom_id"}),
        missing_features=tuple(table.missing_features),
        scores=scores,
    )


def partition(ctx: SelectionContext) -> SelectionContext:
    """Correlation clusters of the physical assets behind the atoms."""
    symbols = sorted(set(ctx.atoms["symbol"]))
    return ctx.evolve(clusters=cluster_assets(ctx.panel.select(symbols), ctx.config.clustering))


def cluster_frame(ctx: SelectionContext) -> pl.DataFrame:
    result = ctx.clusters
    symbols = sorted(set(ctx.atoms["symbol"]))
    return pl.DataFrame({"symbol": symbols, "cluster": np.asarray(result.labels, dtype=np.int32)})


def apply_policy(ctx: SelectionContext) -> SelectionContext:
    """The HTR policy once per scorer (champion and challengers), on the same features and clusters."""
    base = (
        ctx.atoms.select("atom_id", "symbol", "logic", "direction", "identity", "sector")
        .join(cluster_frame(ctx), on="symbol", how="left")
        .join(ctx.features, on="atom_id", how="left")
        .with_columns(
            (pl.col("symbol") == (ctx.benchmark or "")).alias("is_benchmark"),
            pl.col("has_execution_metadata").fill_null(False),
        )
    )
    policies = {}
    for scorer in ctx.scores["scorer"].unique(maintain_order=True):
        scored = ctx.scores.filter(pl.col("scorer") == scorer).select("atom_id", "score")
        candidates = base.join(scored, on="atom_id", how="inner")
        policies[scorer] = run_policy(candidates, ctx.config.vetoes, ctx.config.policy, ctx.allow_short)
    return ctx.evolve(policies=policies)


def synthesize(ctx: SelectionContext) -> pl.DataFrame:
    """The winners of every scorer as strategy atoms for allocation (champion flagged)."""
    champions = dict(ctx.scores.select("scorer", "is_champion").unique().iter_rows())
    frames = [
        result.winners.select(
            pl.lit(scorer).alias("scorer"), "atom_id", "symbol", "logic", "direction", "identity", "sector",
            "cluster", "score", "htr_stage", "rank", pl.lit(champions[scorer]).alias("is_champion"),
        )
        for scorer, result in ctx.policies.items()
    ]
    return pl.concat(frames)


def run_selection(ctx: SelectionContext) -> SelectionContext:
    """Features through policy; `synthesize` then reads the winners."""
    return apply_policy(partition(infer(engineer_features(ctx))))
