"""Selection stages against the lakehouse: `feature_store` (ingestion + features) and `selection`
(inference → partitioning → policy → synthesis), one (profile, as-of) partition at a time.

Everything read here is as of the partition's date: the returns matrix stops there, and the snapshot
features come from bars up to that date (never a scan-date value reused for another window).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta

import polars as pl

from tsp_platform.context import StageContext
from tsp_platform.discovery.screener import SCREENER_HISTORY_DAYS, compute_screener_fields
from tsp_platform.lakehouse.schema import (
    CLUSTERS, FEATURE_PROBABILITIES, FEATURES, SELECTION_RUNS, SELECTION_SCORES, SELECTION_VETOES, SELECTION_WINNERS,
)
from tsp_platform.selection.atoms import atoms_frame
from tsp_platform.selection.context import SelectionContext
from tsp_platform.selection.panel import ReturnsPanel
from tsp_platform.selection.pipeline import apply_policy, cluster_frame, engineer_features, infer, partition, synthesize

ADV_SESSIONS = 20


@dataclass(frozen=True)
class Funnel:
    universe: int  # symbols the screener saw (largest scanner universe)
    discovered: int  # distinct symbols some scanner admitted
    pool_atoms: int
    with_returns: int  # atoms whose asset survived the returns matrix
    winners: int  # champion winners

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def execution_snapshot(bars: pl.DataFrame, meta: pl.DataFrame, symbols: list[str], as_of) -> pl.DataFrame:
    """As-of snapshot per symbol from `bars` (up to `as_of`; earlier rows beyond the screener's history are
    ignored): locally computed ADX and ratings, average value traded, and `meta`'s execution metadata flag
    (columns symbol, has_execution_metadata)."""
    bars = bars.filter(pl.col("date") >= as_of - timedelta(days=SCREENER_HISTORY_DAYS), pl.col("date") <= as_of)
    fields = compute_screener_fields(bars, as_of).select(
        "symbol", "adx", "recommend_all", "recommend_ma", "recommend_other"
    )
    adv = (
        bars.sort("symbol", "date")
        .group_by("symbol", maintain_order=True)
        .agg((pl.col("close") * pl.col("volume")).tail(ADV_SESSIONS).mean().alias("adv"))
    )
    base = pl.DataFrame({"symbol": symbols})
    return base.join(fields, on="symbol", how="left").join(adv, on="symbol", how="left").join(meta, on="symbol", how="left")


def execution_metadata(ctx: StageContext) -> pl.DataFrame:
    """symbol, has_execution_metadata (tick and lot sizes known) for every registered symbol."""
    return ctx.lakehouse.read_table("symbols").select(
        "symbol", (pl.col("tick_size").is_not_null() & pl.col("lot_size").is_not_null()).alias("has_execution_metadata")
    )


def _execution_snapshot(ctx: StageContext, symbols: list[str]) -> pl.DataFrame:
    bars = ctx.lakehouse.ohlcv(symbols, ctx.as_of, ctx.as_of - timedelta(days=SCREENER_HISTORY_DAYS))
    return execution_snapshot(bars, execution_metadata(ctx), symbols, ctx.as_of)


class DataHealthFailed(RuntimeError):
    """A strict profile's data-health gates failed for this partition: the alpha cycle does not run on it."""


def require_healthy_data(ctx: StageContext) -> None:
    """Gates block within a run; this carries the verdict across runs (the alpha cycle is its own job)."""
    if not ctx.profile.features.feat_strict_health:
        return  # non-strict profiles run on the quarantined returns matrix
    health = ctx.lakehouse.read_partition("health_results", ctx.profile.name, ctx.as_of)
    failed = health.filter(~pl.col("passed"))
    if failed.height:
        named = "; ".join(f"{g} {s}: {d}" for g, s, d in failed.select("gate", "symbol", "detail").head(5).iter_rows())
        raise DataHealthFailed(
            f"{ctx.profile.name} as of {ctx.as_of}: {failed.height} data-health gate failures (strict profile), "
            f"the alpha cycle does not run: {named}"
        )


def selection_inputs(ctx: StageContext) -> SelectionContext:
    """Ingestion: the partition's pool as atoms, its returns panel and the as-of execution snapshot."""
    require_healthy_data(ctx)
    pool = ctx.lakehouse.read_partition("raw_pool", ctx.profile.name, ctx.as_of)
    returns = ctx.lakehouse.read_partition("returns_matrix", ctx.profile.name, ctx.as_of)
    if pool.is_empty() or returns.is_empty():
        raise LookupError(f"{ctx.profile.name} as of {ctx.as_of}: raw_pool and returns_matrix must be materialised first")
    panel = ReturnsPanel.from_long(returns.select("symbol", "date", "ret"))
    atoms = atoms_frame(pool.filter(pl.col("symbol").is_in(list(panel.symbols)))).select(
        "atom_id", "symbol", "logic", "direction", "identity", "sector", "asset_class"
    )
    return SelectionContext(
        config=ctx.profile.selection,
        annualisation=ctx.profile.annualisation,
        allow_short=ctx.profile.features.feat_short_direction,
        benchmark=ctx.profile.benchmark,
        atoms=atoms,
        panel=panel.select(sorted(set(atoms["symbol"]))),
        execution=_execution_snapshot(ctx, sorted(set(atoms["symbol"]))),
    )


def _tag(ctx: StageContext, frame: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    return frame.with_columns(pl.lit(ctx.profile.name).alias("profile"), pl.lit(ctx.as_of).alias("as_of")).select(columns)


def features_long(sc: SelectionContext) -> pl.DataFrame:
    value_columns = [c for c in sc.features.columns if c not in ("atom_id", "has_execution_metadata")]
    wide = sc.features.with_columns(pl.col(value_columns).cast(pl.Float64),
                                    pl.col("has_execution_metadata").cast(pl.Float64))
    long = wide.unpivot(index="atom_id", variable_name="feature", value_name="value")
    return long.join(sc.atoms.select("atom_id", "symbol", "logic", "direction"), on="atom_id", how="left")


def run_feature_store(ctx: StageContext) -> tuple[SelectionContext, pl.DataFrame]:
    """Compute and store the raw features of the partition's atoms (long rows: atom, feature, value)."""
    sc = engineer_features(selection_inputs(ctx))
    rows = _tag(ctx, features_long(sc), FEATURES.column_names)
    ctx.lakehouse.replace_partition("features", ctx.profile.name, ctx.as_of, rows)
    return sc, rows


def stored_features(ctx: StageContext, sc: SelectionContext) -> SelectionContext:
    stored = ctx.lakehouse.read_partition("features", ctx.profile.name, ctx.as_of)
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
    ctx.lakehouse.replace_partitions(
        ctx.profile.name,
        ctx.as_of,
        {
            "feature_probabilities": _tag(ctx, probabilities, FEATURE_PROBABILITIES.column_names),
            "selection_scores": _tag(ctx, sc.scores, SELECTION_SCORES.column_names),
            "clusters": _tag(ctx, clusters, CLUSTERS.column_names),
            "selection_vetoes": _tag(ctx, champion.vetoes, SELECTION_VETOES.column_names),
            "selection_winners": _tag(ctx, winners, SELECTION_WINNERS.column_names),
            "selection_runs": _tag(ctx, runs, SELECTION_RUNS.column_names),
        },
    )
    return sc, winners, partition_funnel(ctx, with_returns=sc.atoms.height, winners=champion.winners.height)


def partition_funnel(ctx: StageContext, with_returns: int, winners: int) -> Funnel:
    """The funnel of a partition: the discovery side read from its stored tables, the selection side given."""
    read = lambda table: ctx.lakehouse.read_partition(table, ctx.profile.name, ctx.as_of)  # noqa: E731
    runs_seen, scans = read("discovery_runs"), read("scan_results")
    return Funnel(
        universe=int(runs_seen["universe"].max() or 0) if runs_seen.height else 0,
        discovered=scans["symbol"].n_unique() if scans.height else 0,
        pool_atoms=read("raw_pool").height,
        with_returns=with_returns,
        winners=winners,
    )
