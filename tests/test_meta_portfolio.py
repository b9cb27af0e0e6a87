"""The meta-portfolio through Dagster: two sleeves' tournaments, then HRP across their common out-of-sample days."""

from __future__ import annotations

from datetime import date

import dagster as dg
import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError

from assets.definitions import build_definitions
from partitions import meta_key, partition_key
from resources import resources_for
from tests.test_alpha_cycle import run_alpha
from tests.test_data_cycle import QUIET, run_cycle, seed
from tests.test_tournament_dagster import drive, small_manifest
from tsp_platform.config.meta import MetaProfile
from tsp_platform.lakehouse import Lakehouse

DAY = "2022-12-28"
SLEEVES = ("us_equities_sample", "crypto_synthetic")


def test_meta_allocates_across_its_sleeves_common_days_and_nets_positions(tmp_path):
    manifest = small_manifest(tmp_path)
    lake_path = tmp_path / "lake.duckdb"
    defs = build_definitions(resources_for(lake_path, manifest))
    with dg.instance_for_test() as instance:
        seed(defs, instance)
        for sleeve in SLEEVES:
            run_cycle(defs, instance, sleeve, DAY, raise_on_error=False)
            assert run_alpha(defs, instance, sleeve, DAY).success
        drive(defs, instance, manifest)
        result = defs.resolve_job_def("meta_portfolio_job").execute_in_process(
            partition_key=meta_key("meta_sample", DAY), instance=instance, run_config=QUIET)
        assert result.success
    lake, as_of = Lakehouse(lake_path), date.fromisoformat(DAY)
    sleeves = lake.read_partition("meta_sleeve_weights", "meta_sample", as_of)
    assert set(sleeves["sleeve"]) == set(SLEEVES)
    assert abs(sleeves["weight"].sum() - 1) < 1e-9 and sleeves["weight"].is_between(0.05, 0.95).all()
    # the common days are the days both chosen streams have: weekdays the equity sleeve traded
    chosen = (pl.col("engine") == "custom") & (pl.col("risk_profile") == "hrp") & (pl.col("simulator") == "custom")
    streams = lake.read_partition("tournament_returns", "us_equities_sample", as_of).filter(chosen)
    crypto = lake.read_partition("tournament_returns", "crypto_synthetic", as_of).filter(chosen)
    days = set(streams["date"]) & set(crypto["date"])
    assert sleeves["common_days"][0] == len(days) and all(d.weekday() < 5 for d in days)
    # flattening: Σ sleeve weight × the sleeve's final physical weight, by symbol
    expected: dict[str, float] = {}
    for sleeve, weight in zip(sleeves["sleeve"], sleeves["weight"]):
        book = lake.read_partition("portfolio_weights", sleeve, as_of).filter(
            (pl.col("engine") == "custom") & (pl.col("risk_profile") == "hrp") & (pl.col("level") == "physical"))
        for symbol, w in zip(book["name"], book["weight"]):
            expected[symbol] = expected.get(symbol, 0.0) + weight * w
    physical = lake.read_partition("meta_physical_weights", "meta_sample", as_of)
    got = dict(zip(physical["symbol"], physical["weight"]))
    assert set(got) == set(expected) and max(abs(got[s] - expected[s]) for s in got) < 1e-12
    assert np.isclose(physical["weight"].sum(), sum(expected.values()))


def test_the_meta_dependency_on_its_sleeves_is_declared():
    defs = build_definitions(resources_for("/nonexistent/lake.duckdb"))
    graph = defs.resolve_asset_graph()
    mapping = graph.get(dg.AssetKey("meta_portfolio")).partition_mappings[dg.AssetKey("tournament_scoreboard")]
    upstream = mapping.get_upstream_mapped_partitions_result_for_partitions(
        graph.get(dg.AssetKey("meta_portfolio")).partitions_def.subset_with_partition_keys([meta_key("meta_sample", DAY)]),
        graph.get(dg.AssetKey("meta_portfolio")).partitions_def,
        graph.get(dg.AssetKey("tournament_scoreboard")).partitions_def,
    ).partitions_subset.get_partition_keys()
    assert sorted(map(str, upstream)) == sorted(str(partition_key(s, DAY)) for s in SLEEVES)


def test_meta_profiles_are_validated():
    with pytest.raises(ValidationError, match="cannot sum to 1"):
        MetaProfile(sleeves=("a", "b", "c"), min_weight=0.4)
    with pytest.raises(ValidationError, match="distinct"):
        MetaProfile(sleeves=("a", "a"))
    with pytest.raises(ValidationError, match="extra"):
        MetaProfile(sleeves=("a", "b"), weigths=1)


def test_streams_fold_a_sleeves_extra_days_into_the_next_common_day():
    from tsp_platform.core.panel import compound_onto

    frame = pl.DataFrame({"date": [date(2022, 1, d) for d in (7, 8, 9, 10)], "x": [0.01, 0.02, -0.01, 0.03]})
    common = [date(2022, 1, 7), date(2022, 1, 10)]  # Friday and Monday; the weekend is the crypto sleeve's own
    got = compound_onto(frame, "x", common)
    assert got[0] == pytest.approx(0.01)
    assert got[1] == pytest.approx(1.02 * 0.99 * 1.03 - 1)


def test_sleeve_weights_respect_the_bounds_and_hrp_favours_the_quieter_sleeve():
    from tsp_platform.meta.sleeves import sleeve_weights

    rng = np.random.default_rng(3)
    returns = np.column_stack([0.002 * rng.standard_normal(500), 0.04 * rng.standard_normal(500)])
    meta = MetaProfile(sleeves=("calm", "wild"), min_weight=0.2, max_weight=0.8)
    weights, raw = sleeve_weights(returns, meta)
    assert raw[0] > 0.99  # HRP: inverse variance across two clusters
    assert weights == pytest.approx([0.8, 0.2]) and weights.sum() == pytest.approx(1.0)
    equal = MetaProfile(sleeves=("calm", "wild"), method="equal_weight")
    assert sleeve_weights(returns, equal)[0] == pytest.approx([0.5, 0.5])
