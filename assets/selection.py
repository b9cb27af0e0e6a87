"""Selection assets: `feature_store` (point-in-time features per atom) and `selection` (scores, clusters,
HTR winners per scorer), with the checks that guard the winners."""

import json

import dagster as dg
import polars as pl

from assets._audit import audited
from assets._checks import check_results, check_specs
from assets._metadata import markdown_table
from assets.data_cycle import returns_matrix, stage_context
from partitions import profile_date_partitions
from resources import DUCKDB_POOL, LakehouseResource, ManifestResource
from tsp_platform.selection.stage import run_feature_store, run_selection_stage

SELECTION_GROUP = "selection"


@dg.asset(
    partitions_def=profile_date_partitions, deps=[returns_matrix], group_name=SELECTION_GROUP, pool=DUCKDB_POOL,
    kinds={"duckdb", "numpy"},
)
@audited
def feature_store(context: dg.AssetExecutionContext, lakehouse: LakehouseResource, manifest: ManifestResource) -> dg.MaterializeResult:
    """Raw features of every atom in the pool, computed only from data up to the as-of date."""
    ctx = stage_context(context, lakehouse, manifest)
    sc, rows = run_feature_store(ctx)
    summary = sc.features.drop("atom_id").select(
        [pl.col(c).cast(pl.Float64).null_count().alias(c) for c in sc.features.columns if c != "atom_id"]
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows.height,
            "atoms": sc.atoms.height,
            "features": len(sc.features.columns) - 1,
            "panel_last_date": str(sc.panel.last_date),
            "null_counts": markdown_table(summary.transpose(include_header=True, header_name="feature", column_names=["nulls"])),
            "preview": markdown_table(sc.features.head(10)),
        }
    )


@dg.asset(
    partitions_def=profile_date_partitions, deps=[feature_store], group_name=SELECTION_GROUP, pool=DUCKDB_POOL,
    kinds={"duckdb", "scipy"},
)
@audited
def selection(context: dg.AssetExecutionContext, lakehouse: LakehouseResource, manifest: ManifestResource) -> dg.MaterializeResult:
    """Log-MPS (champion) and challenger scores, correlation clusters, HTR winners per scorer."""
    ctx = stage_context(context, lakehouse, manifest)
    sc, winners, funnel = run_selection_stage(ctx)
    champion = winners.filter(pl.col("is_champion"))
    funnel_md = " → ".join(f"{name} {count}" for name, count in funnel.as_dict().items())
    runs = {s: r for s, r in sc.policies.items()}
    return dg.MaterializeResult(
        metadata={
            "funnel": dg.MetadataValue.md(f"**universe → discovery → pool → with returns → selection**\n\n{funnel_md}"),
            **{f"funnel_{k}": v for k, v in funnel.as_dict().items()},
            "clusters": sc.clusters.n_clusters,
            "cluster_method": sc.clusters.method,
            "missing_features": ", ".join(sc.missing_features) or "none",
            "htr": dg.MetadataValue.json(
                {s: {"final_stage": r.final_stage, "stage_counts": r.stage_counts, "hardened": r.hardened,
                     "shortfall": r.shortfall} for s, r in runs.items()}
            ),
            "winners": markdown_table(champion.select("rank", "atom_id", "direction", "sector", "cluster", "htr_stage", "score")),
        }
    )


SELECTION_CHECKS_SPEC = {
    "winners_within_bounds": "Every scorer's winners lie within [floor, cap], or the shortfall is explained",
    "cluster_cap_held": "No cluster holds more than top-N winners per direction",
    "sector_cap_held": "No classified sector holds more than the sector cap of the winners",
    "winners_traceable": "Every winner has its HTR stage (1-4), its score and its veto record",
}


@dg.multi_asset_check(specs=check_specs(selection, SELECTION_CHECKS_SPEC), pool=DUCKDB_POOL, can_subset=True)
def selection_checks(context: dg.AssetCheckExecutionContext, lakehouse: LakehouseResource, manifest: ManifestResource):
    ctx = stage_context(context, lakehouse, manifest)
    policy = ctx.profile.selection.policy
    winners, runs, scores, vetoes = ctx.read("selection_winners"), ctx.read("selection_runs"), ctx.read("selection_scores"), ctx.read("selection_vetoes")
    problems: dict[str, list[str]] = {name: [] for name in SELECTION_CHECKS_SPEC}
    if runs.is_empty():
        for name in problems:
            problems[name].append("no selection stored for this partition")
    for run in runs.iter_rows(named=True):
        mine = winners.filter(pl.col("scorer") == run["scorer"])
        n = mine.height
        if n > policy.cap or (n < policy.floor and not run["shortfall"]):
            problems["winners_within_bounds"].append(f"{run['scorer']}: {n} winners outside [{policy.floor}, {policy.cap}] unexplained")
        crowded = mine.group_by("cluster", "direction").len().filter(pl.col("len") > policy.top_n)
        problems["cluster_cap_held"] += [f"{run['scorer']}: cluster {c} {d} has {k}" for c, d, k in crowded.iter_rows()]
        if n:
            limit = max(1, int(policy.sector_cap * n))
            heavy = mine.filter(pl.col("sector").is_not_null()).group_by("sector").len().filter(pl.col("len") > limit)
            problems["sector_cap_held"] += [f"{run['scorer']}: {s} has {k} of {n} (limit {limit})" for s, k in heavy.iter_rows()]
        scored = set(scores.filter(pl.col("scorer") == run["scorer"])["atom_id"])
        vetoed_atoms = set(vetoes["atom_id"])
        untraced = mine.filter(
            ~pl.col("htr_stage").is_between(1, 4) | ~pl.col("atom_id").is_in(list(scored)) | ~pl.col("atom_id").is_in(list(vetoed_atoms))
        )
        problems["winners_traceable"] += [f"{run['scorer']}: {a}" for a in untraced["atom_id"]]
    metadata = {"winners": winners.height, "runs": dg.MetadataValue.json(json.loads(runs.write_json()) if runs.height else [])}
    yield from check_results(context, selection, SELECTION_CHECKS_SPEC, problems, metadata)


SELECTION_ASSETS = [feature_store, selection]
