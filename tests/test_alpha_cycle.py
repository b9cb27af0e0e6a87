"""The alpha cycle (selection and allocation) through real Dagster runs: demo partitions, point-in-time, checks."""

from __future__ import annotations

from datetime import date

import polars as pl

from partitions import partition_key, partition_tags
from tests.conftest import DEMO_PARTITIONS
from tests.test_data_cycle import QUIET, checks_by_name, run_cycle, seed

SELECTION_TABLES = ("features", "feature_probabilities", "selection_scores", "clusters", "selection_winners", "selection_runs")
ALLOCATION_TABLES = ("regimes", "portfolio_weights", "allocation_runs")
ALPHA_TABLES = SELECTION_TABLES + ALLOCATION_TABLES


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
        assert set(checks) == {
            "selection:winners_within_bounds", "selection:cluster_cap_held", "selection:sector_cap_held",
            "selection:winners_traceable", "portfolio_weights:weights_finite", "portfolio_weights:budget_held",
            "portfolio_weights:caps_held",
        }
        assert all(e.passed for e in checks.values()), profile
        meta = selection_metadata(result)
        assert meta["funnel_universe"] >= meta["funnel_discovered"] > 0
        assert meta["funnel_pool_atoms"] >= meta["funnel_with_returns"] >= meta["funnel_winners"] >= 1
        assert "universe → discovery → pool" in meta["funnel"]
        winners = lakehouse.read_partition("selection_winners", profile, date.fromisoformat(day))
        assert set(winners["scorer"]) == {"log_mps", "rank_sum"}  # champion and challenger, each tagged
        assert winners.filter(pl.col("is_champion"))["scorer"].unique().to_list() == ["log_mps"]
        assert_allocations(lakehouse, profile, date.fromisoformat(day))
        raw = lakehouse.read_partition("features", profile, date.fromisoformat(day))
        probs = lakehouse.read_partition("feature_probabilities", profile, date.fromisoformat(day))
        assert raw.height and probs.height and probs["probability"].is_between(0, 1, closed="right").all()


def assert_allocations(lakehouse, profile: str, as_of: date) -> None:
    """Every engine × profile is attempted; custom solves all but none silently substitutes; engines agree."""
    runs = lakehouse.read_partition("allocation_runs", profile, as_of)
    assert runs.height == 4 * 9  # engines × risk profiles, each recorded
    custom = runs.filter(pl.col("engine") == "custom")
    assert set(custom.filter(pl.col("status") == "ok")["risk_profile"]) == {
        "equal_weight", "min_variance", "hrp", "risk_parity", "max_sharpe", "barbell", "market_neutral", "market", "benchmark"
    }
    unsupported = set(runs.filter(pl.col("status") == "not_supported").select("engine", "risk_profile").iter_rows())
    assert ("cvxportfolio", "hrp") in unsupported and ("skfolio", "barbell") in unsupported
    weights = lakehouse.read_partition("portfolio_weights", profile, as_of)
    minvar = weights.filter((pl.col("risk_profile") == "min_variance") & (pl.col("level") == "atom"))
    wide = minvar.pivot(on="engine", index="name", values="weight")
    for engine in ("skfolio", "riskfolio", "cvxportfolio"):
        assert (wide[engine] - wide["custom"]).abs().max() < 1e-5, engine  # same problem, same answer
    # Flattening: each profile's physical net equals Σ ±atom weight (SHORT atoms count negative).
    custom_rows = weights.filter(pl.col("engine") == "custom")
    signed = custom_rows.filter(pl.col("level") == "atom").with_columns(
        pl.when(pl.col("name").str.ends_with("_short")).then(-pl.col("weight")).otherwise(pl.col("weight")).alias("signed")
    ).group_by("risk_profile").agg(pl.col("signed").sum())
    physical = custom_rows.filter(pl.col("level") == "physical").group_by("risk_profile").agg(pl.col("weight").sum())
    joined = signed.join(physical, on="risk_profile")
    assert joined.height == 8 and ((joined["signed"] - joined["weight"]).abs() < 1e-9).all()
    regime = lakehouse.read_partition("regimes", profile, as_of)
    assert regime.height == 1 and regime["regime"][0] in {"QUIET", "NORMAL", "TURBULENT", "CRISIS"}


def test_alpha_cycle_is_idempotent(defs_for, instance, lakehouse):
    defs = defs_for()
    seed(defs, instance)
    profile, day = DEMO_PARTITIONS[0]
    run_cycle(defs, instance, profile, day)
    run_alpha(defs, instance, profile, day)
    first = {t: lakehouse.content_hash(t, profile, date.fromisoformat(day)) for t in ALPHA_TABLES}
    run_alpha(defs, instance, profile, day)
    assert {t: lakehouse.content_hash(t, profile, date.fromisoformat(day)) for t in ALPHA_TABLES} == first


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
    result = defs.resolve_job_def("alpha_gates").execute_in_process(
        tags=partition_tags(profile, day), instance=instance, raise_on_error=False, run_config=QUIET
    )
    checks = checks_by_name(result)
    assert not checks["selection:cluster_cap_held"].passed
    assert not checks["selection:sector_cap_held"].passed
    assert not checks["selection:winners_traceable"].passed
    assert checks["selection:winners_within_bounds"].passed


def test_a_failing_solver_falls_back_and_the_run_records_it(defs_for, instance, lakehouse, monkeypatch):
    """Force the primary min-variance solver to fail: the declared fallback serves and allocation_runs says so."""
    from tsp_platform.allocation import custom
    from tsp_platform.config.allocation import RiskProfile

    chain = list(custom.FALLBACKS[RiskProfile.MIN_VARIANCE])
    primary_name, _ = chain[0]

    def broken(_inputs):
        raise custom.QPError("forced failure for the test")

    monkeypatch.setitem(custom.FALLBACKS, RiskProfile.MIN_VARIANCE, [(primary_name, broken), *chain[1:]])
    defs = defs_for()
    seed(defs, instance)
    profile, day = DEMO_PARTITIONS[0]
    run_cycle(defs, instance, profile, day)
    result = run_alpha(defs, instance, profile, day)
    assert result.success
    runs = lakehouse.read_partition("allocation_runs", profile, date.fromisoformat(day))
    row = runs.filter((pl.col("engine") == "custom") & (pl.col("risk_profile") == "min_variance")).row(0, named=True)
    assert row["status"] == "fallback" and row["fallback_used"] == chain[1][0]
    assert all(e.passed for e in checks_by_name(result).values())
