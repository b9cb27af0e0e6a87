"""Schedules, the gates sensor, the meta sensor and the lakehouse freshness checks, on real instances and runs."""

from __future__ import annotations

from datetime import date, datetime, timezone

import dagster as dg
import polars as pl
import pytest
import yaml

from assets.definitions import build_definitions
from assets.schedules import FRESHNESS_TABLES, data_cycle_schedule, expected_as_of, scheduled_as_of
from assets.sensors import DATA_GATES, alpha_after_gates, alpha_request, meta_after_sleeves
from assets.tournament_sensor import tournament_fanout
from partitions import meta_key, partition_key, partition_tags
from resources import resources_for
from tsp_cli.tournament import QUIET
from tsp_platform.config import ConfigError, load_manifest
from tsp_platform.config.manifest import DEFAULT_MANIFEST
from tsp_platform.config.models import ScheduleSettings
from tsp_platform.core.calendars import previous_session
from tsp_platform.lakehouse import TABLES

MANIFEST = load_manifest()
CRYPTO, DAY = "crypto_synthetic", "2022-12-31"
DUMMY = {pl.String: "x", pl.Float64: 0.5, pl.Int32: 1, pl.Boolean: True, pl.Datetime("us"): datetime(2020, 1, 1)}


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


# -- schedules ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("profile, tick, as_of", [
    ("binance_spot_ratings", utc(2026, 11, 21, 0, 30), "2026-11-20"),   # 24/7: the previous day
    ("binance_spot_ratings", utc(2026, 11, 16, 0, 30), "2026-11-15"),   # a Sunday is a crypto session
    ("us_stocks_tradingview", utc(2026, 11, 17, 6, 30), "2026-11-16"),  # Tuesday → Monday
    ("us_stocks_tradingview", utc(2026, 11, 21, 6, 30), "2026-11-20"),  # Saturday → Friday
])
def test_a_live_profiles_schedule_runs_the_data_cycle_for_the_previous_session(profile, tick, as_of, instance, defs_for):
    defs = defs_for()
    schedule = defs.resolve_schedule_def(f"{profile}_daily")
    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=tick,
                                        repository_def=defs.get_repository_def())
    result = schedule.evaluate_tick(context)
    [request] = result.run_requests
    assert request.partition_key == str(partition_key(profile, as_of))
    assert request.run_key == f"{profile}:{as_of}"  # one run per as-of, however often the tick is evaluated
    assert schedule.job_name == "data_cycle"


def test_live_schedules_are_defined_once_per_live_profile_and_start_stopped(defs_for):
    defs = defs_for()
    live = [p.name for p in MANIFEST.profiles() if p.live]
    names = {s.name for s in defs.schedules}
    assert {f"{p}_daily" for p in live} <= names
    assert not any(f"{p.name}_daily" in names for p in MANIFEST.profiles() if not p.live)
    for profile in live:
        assert defs.resolve_schedule_def(f"{profile}_daily").default_status == dg.DefaultScheduleStatus.STOPPED
    running = MANIFEST.profile(live[0]).model_copy(update={"schedule": ScheduleSettings(running=True, cron="15 1 * * *")})
    schedule = data_cycle_schedule(running)
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING and schedule.cron_schedule == "15 1 * * *"
    # when the cycle runs is not what it computes: the profile's result identity ignores its schedule
    assert running.config_id() == MANIFEST.profile(live[0]).config_id()


def test_a_malformed_cron_is_refused_naming_file_and_key(tmp_path):
    raw = yaml.safe_load(DEFAULT_MANIFEST.read_text())
    raw["profiles"]["binance_spot_ratings"]["schedule"] = {"cron": "every day at noon"}
    path = tmp_path / "manifest.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as error:
        load_manifest(path)
    assert str(path) in str(error.value) and "profiles.binance_spot_ratings.schedule.cron" in str(error.value)


def test_the_expected_as_of_waits_out_the_grace_period():
    crypto, stocks = MANIFEST.profile("binance_spot_ratings"), MANIFEST.profile("us_stocks_tradingview")
    assert expected_as_of(crypto, utc(2026, 11, 21, 1, 0)) == date(2026, 11, 19)  # today's 00:30 run may still run
    assert expected_as_of(crypto, utc(2026, 11, 21, 3, 0)) == date(2026, 11, 20)
    assert expected_as_of(stocks, utc(2026, 11, 23, 12, 0)) == date(2026, 11, 20)  # Monday: Saturday's tick, Friday
    assert scheduled_as_of(stocks, utc(2026, 11, 24, 6, 30)) == date(2026, 11, 23)


# -- lakehouse freshness --------------------------------------------------------------------------------------


def _store_stub_rows(lake, profile: str, as_of: date, tables=tuple(FRESHNESS_TABLES)) -> None:
    """One schema-valid row per table for (profile, as-of): freshness reads only which as-of dates are stored."""
    frames = {}
    for name in tables:
        schema = TABLES[name].polars_schema
        row = {c: profile if c == "profile" else as_of if dtype == pl.Date else DUMMY.get(dtype)
               for c, dtype in schema.items()}
        frames[name] = pl.DataFrame([row], schema=schema)
    lake.replace_partitions(profile, as_of, frames)


def _freshness(defs, instance) -> dict[str, dg.AssetCheckEvaluation]:
    result = defs.resolve_job_def("lakehouse_freshness_job").execute_in_process(
        instance=instance, raise_on_error=False, run_config=QUIET)
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_freshness_fails_naming_each_stale_live_table_and_passes_once_current(defs_for, lakehouse, instance):
    defs = defs_for()
    live = [p for p in MANIFEST.profiles() if p.live]
    stale = _freshness(defs, instance)
    assert set(stale) == {f"{t}_fresh" for t in FRESHNESS_TABLES}
    for name, evaluation in stale.items():
        assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
        assert all(f"{p.name}.{name.removesuffix('_fresh')}: never stored" in evaluation.description for p in live)

    now = datetime.now(timezone.utc)
    for profile in live:
        _store_stub_rows(lakehouse, profile.name, expected_as_of(profile, now))
    fresh = _freshness(defs, instance)
    assert all(e.passed for e in fresh.values()), {n: e.description for n, e in fresh.items() if not e.passed}

    # one live profile a session behind in one table: only that table's check fails, naming it
    behind = live[0]
    expected = expected_as_of(behind, now)
    with lakehouse.connect() as conn:
        conn.execute("DELETE FROM returns_matrix WHERE profile = ? AND as_of = ?", [behind.name, expected])
    earlier = previous_session(expected, behind.calendar)
    _store_stub_rows(lakehouse, behind.name, earlier, tables=("returns_matrix",))
    late = _freshness(defs, instance)
    assert [n for n, e in late.items() if not e.passed] == ["returns_matrix_fresh"]
    assert f"{behind.name}.returns_matrix: latest as-of {earlier}" in late["returns_matrix_fresh"].description
    assert late["returns_matrix_fresh"].metadata["max_sessions_behind"].value == 1


# -- alpha_after_gates ----------------------------------------------------------------------------------------


@pytest.fixture
def data_cycle(defs_for, instance):
    """crypto_synthetic's data cycle on its latest date (its gates WARN: the synthetic faults are quarantined)."""
    defs = defs_for()
    assert defs.resolve_job_def("seed_lakehouse").execute_in_process(instance=instance, run_config=QUIET).success
    result = defs.resolve_job_def("data_cycle").execute_in_process(
        partition_key=partition_key(CRYPTO, DAY), instance=instance, run_config=QUIET)
    assert result.success
    return defs


def tick(sensor, instance, defs, cursor=None):
    return sensor(dg.build_sensor_context(instance=instance, definitions=defs, cursor=cursor, resources=defs.resources))


def test_the_alpha_cycle_starts_once_the_data_cycles_gates_pass(data_cycle, instance):
    key = str(partition_key(CRYPTO, DAY))
    first = tick(alpha_after_gates, instance, data_cycle)
    [request] = first.run_requests
    assert request.job_name == "alpha_cycle" and request.partition_key == key
    assert request.tags["tsp/trigger"] == "alpha_after_gates"
    assert not tick(alpha_after_gates, instance, data_cycle, first.cursor).run_requests  # nothing new since

    run = data_cycle.resolve_job_def("alpha_cycle").execute_in_process(
        partition_key=key, instance=instance, run_config=QUIET, tags=request.tags)
    assert run.success
    request, reason = alpha_request(instance, key)
    assert request is None and reason == "the alpha cycle already ran on this data"
    assert not tick(alpha_after_gates, instance, data_cycle).run_requests  # a cursor-less first tick is safe


def test_a_gate_that_now_fails_with_error_holds_the_alpha_cycle(data_cycle, instance, lakehouse_path, tmp_path):
    # The gates are re-judged under a strict configuration: the synthetic faults now fail with ERROR.
    raw = yaml.safe_load(DEFAULT_MANIFEST.read_text())
    raw["profiles"][CRYPTO]["features"]["feat_strict_health"] = True
    strict = tmp_path / "strict.yaml"
    strict.write_text(yaml.safe_dump(raw))
    strict_defs = build_definitions(resources_for(lakehouse_path, strict))
    gates = strict_defs.resolve_job_def("health_gates").execute_in_process(
        tags=partition_tags(CRYPTO, DAY), instance=instance, raise_on_error=False, run_config=QUIET)
    failed = [e for e in gates.get_asset_check_evaluations() if not e.passed]
    assert failed and all(e.severity == dg.AssetCheckSeverity.ERROR for e in failed)

    request, reason = alpha_request(instance, str(partition_key(CRYPTO, DAY)))
    assert request is None and reason.startswith("gates not passed")
    assert all(f"ohlcv_history:{e.check_name} failed" in reason for e in failed)
    assert not tick(alpha_after_gates, instance, data_cycle).run_requests
    assert {k.asset_key.to_user_string() for k in DATA_GATES} == {"ohlcv_history", "returns_matrix"}


def test_materialising_without_the_gates_does_not_start_the_alpha_cycle(data_cycle, instance):
    key = str(partition_key(CRYPTO, DAY))
    rematerialised = dg.materialize(
        [data_cycle.get_assets_def("returns_matrix")], partition_key=key, instance=instance,
        resources=data_cycle.resources, selection=dg.AssetSelection.assets("returns_matrix").without_checks(),
        run_config=QUIET,
    )
    assert rematerialised.success
    request, reason = alpha_request(instance, key)
    assert request is None and "returns_matrix:point_in_time judged an older materialisation" in reason


def test_a_backfills_alpha_runs_inherit_its_tags_and_fan_out_tournaments_only_on_request(data_cycle, instance):
    key = str(partition_key(CRYPTO, DAY))
    backfill_tags = {"dagster/backfill": "testbackfill", "tsp/tournaments": "false"}
    rerun = data_cycle.resolve_job_def("data_cycle").execute_in_process(
        partition_key=key, instance=instance, run_config=QUIET, tags=backfill_tags)
    assert rerun.success
    [request] = tick(alpha_after_gates, instance, data_cycle).run_requests
    assert request.tags["tsp/backfill"] == "testbackfill" and request.tags["tsp/tournaments"] == "false"

    alpha = data_cycle.resolve_job_def("alpha_cycle").execute_in_process(
        partition_key=key, instance=instance, run_config=QUIET, tags=request.tags)
    assert alpha.success
    quiet = tick(tournament_fanout, instance, data_cycle)
    assert not quiet.run_requests and not quiet.dynamic_partitions_requests  # no tournament for a backfilled date

    asked = data_cycle.resolve_job_def("alpha_cycle").execute_in_process(
        partition_key=key, instance=instance, run_config=QUIET, tags={**request.tags, "tsp/tournaments": "true"})
    assert asked.success
    [snapshot] = tick(tournament_fanout, instance, data_cycle, quiet.cursor).run_requests
    assert snapshot.job_name == "tournament_inputs_job" and snapshot.partition_key == key


# -- meta_after_sleeves ---------------------------------------------------------------------------------------


def _report(instance, asset: str, partition: str) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=asset, partition=partition))


def test_a_meta_portfolio_runs_once_every_sleeve_has_a_scoreboard_and_again_when_one_changes(instance, defs_for):
    defs = defs_for()
    [(name, meta)] = MANIFEST.file.meta_profiles.items()
    first, second = meta.sleeves
    day = "2022-12-28"
    _report(instance, "tournament_scoreboard", str(partition_key(first, day)))
    waiting = tick(meta_after_sleeves, instance, defs)
    assert not waiting.run_requests  # the other sleeve has no scoreboard on that date yet

    _report(instance, "tournament_scoreboard", str(partition_key(second, day)))
    ready = tick(meta_after_sleeves, instance, defs, waiting.cursor)
    [request] = ready.run_requests
    assert request.job_name == "meta_portfolio_job" and request.partition_key == str(meta_key(name, day))

    _report(instance, "meta_portfolio", str(meta_key(name, day)))
    _report(instance, "tournament_scoreboard", str(partition_key(first, "2022-12-27")))  # another date: waits
    assert not tick(meta_after_sleeves, instance, defs, ready.cursor).run_requests

    _report(instance, "tournament_scoreboard", str(partition_key(first, day)))  # a sleeve re-scored
    [again] = tick(meta_after_sleeves, instance, defs, ready.cursor).run_requests
    assert again.partition_key == request.partition_key and again.run_key != request.run_key
