"""The data cycle through real Dagster runs on a real DuckDB file: demo partitions, gates, idempotency, blocking."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl


from partitions import partition_key, partition_tags
from tests.conftest import DEMO_PARTITIONS
from tsp_platform.lakehouse import Lakehouse
from tsp_platform.sources.synthetic_crypto import generate_synthetic_crypto

FAULT_GATE = {
    "toxic_spike": "toxic_return",
    "gap": "gaps",
    "stale": "staleness",
    "flat_closes": "flat_closes",
    "ohlc_inconsistent": "ohlc_consistency",
}
PARTITION_TABLES = ("scan_results", "raw_pool", "health_results", "returns_matrix", "returns_exclusions")


QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def run_cycle(defs, instance, profile: str, day: str, raise_on_error: bool = True):
    return defs.resolve_job_def("data_cycle").execute_in_process(
        partition_key=partition_key(profile, day), instance=instance, raise_on_error=raise_on_error, run_config=QUIET
    )


def seed(defs, instance):
    assert defs.resolve_job_def("seed_lakehouse").execute_in_process(instance=instance, run_config=QUIET).success


def checks_by_name(result) -> dict[str, object]:
    return {f"{e.asset_key.to_user_string()}:{e.check_name}": e for e in result.get_asset_check_evaluations()}


def test_demo_partitions_and_crypto_faults(defs_for, instance, lakehouse):
    defs = defs_for()
    seed(defs, instance)
    equities = run_cycle(defs, instance, *DEMO_PARTITIONS[0])
    assert equities.success
    eq_checks = checks_by_name(equities)
    assert len(eq_checks) == 12 and all(e.passed for e in eq_checks.values())

    crypto = run_cycle(defs, instance, *DEMO_PARTITIONS[1])
    assert crypto.success  # crypto_synthetic is non-strict: failures WARN and are quarantined
    checks = checks_by_name(crypto)
    faults = generate_synthetic_crypto(seed=7, end=date(2022, 12, 31)).faults
    assert faults.height == len(FAULT_GATE)
    for kind, symbol in faults.select("kind", "symbol").iter_rows():
        evaluation = checks[f"ohlcv_history:{FAULT_GATE[kind]}"]
        assert not evaluation.passed, kind
        assert symbol in evaluation.description, (kind, evaluation.description)
        assert evaluation.severity.value == "WARN"
    for name in ("history_floor", "weekend_padding"):
        assert checks[f"ohlcv_history:{name}"].passed
    assert all(e.passed for k, e in checks.items() if k.startswith("returns_matrix:"))

    exclusions = lakehouse.read_partition("returns_exclusions", "crypto_synthetic", date(2022, 12, 31))
    quarantined = set(exclusions.filter(pl.col("reason") == "quarantined")["symbol"])
    assert set(faults["symbol"]) <= quarantined
    returns = lakehouse.read_partition("returns_matrix", "crypto_synthetic", date(2022, 12, 31))
    assert not set(returns["symbol"]) & set(faults["symbol"])
    # crypto keeps weekends
    assert returns.filter(pl.col("date").dt.weekday() > 5).height > 0


def partition_hashes(lakehouse: Lakehouse, profile: str, day: date) -> dict[str, str]:
    return {t: lakehouse.content_hash(t, profile, day) for t in PARTITION_TABLES}


def test_rematerialising_is_idempotent(defs_for, instance, lakehouse):
    defs = defs_for()
    seed(defs, instance)
    bars_before = lakehouse.content_hash("ohlcv")
    seed(defs, instance)
    assert lakehouse.content_hash("ohlcv") == bars_before
    profile, day = DEMO_PARTITIONS[0]
    run_cycle(defs, instance, profile, day)
    first = partition_hashes(lakehouse, profile, date.fromisoformat(day))
    counts = {t: lakehouse.read_partition(t, profile, date.fromisoformat(day)).height for t in PARTITION_TABLES}
    run_cycle(defs, instance, profile, day)
    assert partition_hashes(lakehouse, profile, date.fromisoformat(day)) == first
    assert {t: lakehouse.read_partition(t, profile, date.fromisoformat(day)).height for t in PARTITION_TABLES} == counts
    assert all(counts[t] > 0 for t in ("scan_results", "raw_pool", "health_results", "returns_matrix"))


def test_strict_gate_blocks_the_returns_matrix(defs_for, instance, lakehouse):
    defs = defs_for()
    seed(defs, instance)
    spike = pl.DataFrame(
        {"symbol": ["NYSE:KO"], "date": [date(2022, 6, 15)], "open": [None], "high": [None], "low": [None],
         "close": [600.0], "volume": [None], "source": ["test"], "ingested_at": [datetime(2026, 1, 1)]},
        schema_overrides={c: pl.Float64 for c in ("open", "high", "low", "volume")},
    )
    lakehouse.upsert("ohlcv", spike)
    result = run_cycle(defs, instance, "us_equities_sample", "2022-12-28", raise_on_error=False)
    assert not result.success
    toxic = checks_by_name(result)["ohlcv_history:toxic_return"]
    assert not toxic.passed and toxic.severity.value == "ERROR" and "NYSE:KO" in toxic.description
    materialised = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "ohlcv_history" in materialised and "returns_matrix" not in materialised
    # The verdict carries to the alpha cycle, a separate job: it refuses the partition and names the failure.
    alpha = defs.resolve_job_def("alpha_cycle").execute_in_process(
        partition_key=partition_key("us_equities_sample", "2022-12-28"), instance=instance, raise_on_error=False,
        run_config=QUIET,
    )
    assert not alpha.success
    failure = next(e for e in alpha.all_events if e.event_type_value == "STEP_FAILURE")
    assert "data-health gate failures" in failure.event_specific_data.error.to_string()
    assert "toxic_return NYSE:KO" in failure.event_specific_data.error.to_string()


def test_returns_checks_fail_on_a_corrupted_matrix(defs_for, instance, lakehouse):
    """The returns_matrix checks re-read the stored matrix: a weekend row or a quarantined symbol fails them."""
    defs = defs_for()
    seed(defs, instance)
    profile, day = "us_equities_sample", date(2022, 12, 28)
    run_cycle(defs, instance, profile, day.isoformat())
    matrix = lakehouse.read_partition("returns_matrix", profile, day)
    weekend = matrix.head(1).with_columns(pl.lit(date(2022, 12, 24)).alias("date"))  # a Saturday
    lakehouse.replace_partition("returns_matrix", profile, day, pl.concat([matrix, weekend]))
    result = defs.resolve_job_def("health_gates").execute_in_process(
        tags=partition_tags(profile, day), instance=instance, raise_on_error=False, run_config=QUIET
    )
    checks = checks_by_name(result)
    assert not checks["returns_matrix:no_weekend_padding"].passed
    assert checks["returns_matrix:quarantine_respected"].passed
