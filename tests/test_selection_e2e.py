"""Selection through real Dagster runs: the alpha cycle on the demo partitions, point-in-time, checks that bite."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from assets.definitions import build_definitions
from partitions import partition_key, partition_tags
from resources import resources_for
from tests.conftest import DEMO_PARTITIONS
from tests.test_data_cycle import QUIET, checks_by_name, run_cycle, seed
from tsp_platform.lakehouse import Lakehouse

SELECTION_TABLES = ("features", "feature_probabilities", "selection_scores", "clusters", "selection_winners", "selection_runs")


def run_alpha(defs, instance, profile: str, day: str, raise_on_error: bool = True):
    return defs.resolve_job_def("alpha_cycle").execute_in_process(
        partition_key=partition_key(profile, day), instance=instance, raise_on_error=raise_on_error, run_config=QUIET
    )


def selection_metadata(result) -> dict:
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        if materialization.asset_key.to_user_string() == "selection":
            return {k: v.value for k, v in materialization.metadata.items()}
    raise AssertionError("selection was not materialised")


def test_alpha_cycle_on_the_demo_partitions(defs_for, instance, lakehouse):
    defs = defs_for()
    seed(defs, instance)
    for profile, day in DEMO_PARTITIONS:
        run_cycle(defs, instance, profile, day)
        result = run_alpha(defs, instance, profile, day)
        checks = checks_by_name(result)
        assert {k.split(":")[1] for k in checks} == {
            "winners_within_bounds", "cluster_cap_held", "sector_cap_held", "winners_traceable"
        }
        assert all(e.passed for e in checks.values()), profile
        meta = selection_metadata(result)
        assert meta["funnel_universe"] >= meta["funnel_discovered"] > 0
        assert meta["funnel_pool_atoms"] >= meta["funnel_with_returns"] >= meta["funnel_winners"] >= 1
        assert "universe → discovery → pool" in meta["funnel"]
        winners = lakehouse.read_partition("selection_winners", profile, date.fromisoformat(day))
        assert set(winners["scorer"]) == {"log_mps", "rank_sum"}  # champion and challenger, each tagged
        assert winners.filter(pl.col("is_champion"))["scorer"].unique().to_list() == ["log_mps"]
        raw = lakehouse.read_partition("features", profile, date.fromisoformat(day))
        probs = lakehouse.read_partition("feature_probabilities", profile, date.fromisoformat(day))
        assert raw.height and probs.height and probs["probability"].is_between(0, 1, closed="right").all()


def test_selection_idempotent(defs_for, instance, lakehouse):
    defs = defs_for()
    seed(defs, instance)
    profile, day = DEMO_PARTITIONS[0]
    run_cycle(defs, instance, profile, day)
    run_alpha(defs, instance, profile, day)
    first = {t: lakehouse.content_hash(t, profile, date.fromisoformat(day)) for t in SELECTION_TABLES}
    run_alpha(defs, instance, profile, day)
    assert {t: lakehouse.content_hash(t, profile, date.fromisoformat(day)) for t in SELECTION_TABLES} == first


@pytest.mark.parametrize("profile, cut", [("us_equities_sample", date(2021, 6, 30)), ("crypto_synthetic", date(2022, 6, 30))])
def test_selection_is_point_in_time(tmp_path, instance, profile, cut):
    """Perturbing every price after D leaves D's features, probabilities, scores, clusters and winners unchanged."""
    hashes = []
    for variant in ("clean", "perturbed"):
        path = tmp_path / f"{variant}.duckdb"
        defs = build_definitions(resources_for(path))
        seed(defs, instance)
        lake = Lakehouse(path)
        if variant == "perturbed":
            later = lake.query("SELECT * FROM ohlcv WHERE date > ?", [cut])
            step = pl.Series(range(later.height), dtype=pl.Float64)
            lake.upsert("ohlcv", later.with_columns(pl.col("close") * (1.0 + ((step * 7919) % 13 - 6) / 20)))
        run_cycle(defs, instance, profile, cut.isoformat(), raise_on_error=False)
        assert run_alpha(defs, instance, profile, cut.isoformat()).success
        hashes.append({t: lake.content_hash(t, profile, cut) for t in SELECTION_TABLES})
    assert hashes[0] == hashes[1]


def test_selection_checks_fail_on_a_tampered_winner_table(defs_for, instance, lakehouse):
    defs = defs_for()
    seed(defs, instance)
    profile, day = DEMO_PARTITIONS[0]
    as_of = date.fromisoformat(day)
    run_cycle(defs, instance, profile, day)
    run_alpha(defs, instance, profile, day)
    winners = lakehouse.read_partition("selection_winners", profile, as_of)
    champion = winners.filter(pl.col("is_champion"))
    crowd = champion.with_columns(pl.lit(1, pl.Int32).alias("cluster"), pl.lit("long").alias("direction"),
                                  pl.lit("Health Care").alias("sector"))
    untraced = crowd.head(1).with_columns(pl.lit(7, pl.Int32).alias("htr_stage"))
    tampered = pl.concat([winners.filter(~pl.col("is_champion")), crowd.slice(1), untraced])
    lakehouse.replace_partition("selection_winners", profile, as_of, tampered)
    result = defs.resolve_job_def("selection_gates").execute_in_process(
        tags=partition_tags(profile, day), instance=instance, raise_on_error=False, run_config=QUIET
    )
    checks = checks_by_name(result)
    assert not checks["selection:cluster_cap_held"].passed
    assert not checks["selection:sector_cap_held"].passed
    assert not checks["selection:winners_traceable"].passed
    assert checks["selection:winners_within_bounds"].passed
