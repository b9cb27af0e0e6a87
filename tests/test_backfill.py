"""`tsp backfill` through a real instance and the real daemon: 2 profiles × 3 dates, data then alpha cycles."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from assets.definitions import build_definitions
from partitions import partition_key
from resources import resources_for
from tsp_cli.backfill import BackfillError, plan_backfill, wait
from tsp_cli.main import main
from tsp_cli.tournament import QUIET
from tsp_cli.ui import kill_group
from tsp_platform.config import ConfigError, load_manifest
from tsp_platform.lakehouse import Lakehouse

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PROFILES = ("us_equities_sample", "crypto_synthetic")
DATES = ("2022-12-26", "2022-12-27", "2022-12-28")  # Monday to Wednesday: a session for both calendars
TIMEOUT_S = 900


def test_a_backfill_plan_holds_each_profiles_sessions_and_refuses_bad_requests():
    manifest = load_manifest()
    plan = plan_backfill(manifest, ["equities", "crypto"], "2022-12-23", "2022-12-26", today=date(2026, 11, 21))
    assert plan.profiles == PROFILES and plan.job == "data_cycle"
    days = {"us_equities_sample": ["2022-12-23", "2022-12-26"],  # no weekend for a weekday profile
            "crypto_synthetic": ["2022-12-23", "2022-12-24", "2022-12-25", "2022-12-26"]}
    assert sorted(plan.partitions) == sorted(str(partition_key(p, d)) for p, ds in days.items() for d in ds)
    refusals = {
        ("2022-12-28", "2022-12-26", "data_cycle"): "--start 2022-12-28 is after --end 2022-12-26",
        ("2018-12-31", "2019-01-02", "data_cycle"): "precedes the partitions' first date 2019-01-01",
        ("2026-11-20", "2026-11-21", "data_cycle"): "--end 2026-11-21 is after the last closed day 2026-11-20",
        ("2022-12-26", "2022-12-27", "tournament"): "--job 'tournament'",
        ("26/12/2022", "2022-12-27", "data_cycle"): "--start/--end must be YYYY-MM-DD",
    }
    for (start, end, job), message in refusals.items():
        with pytest.raises(BackfillError, match=message.replace("(", r"\(").replace(")", r"\)")):
            plan_backfill(manifest, ["equities"], start, end, job, today=date(2026, 11, 21))
    with pytest.raises(BackfillError, match="no session"):
        plan_backfill(manifest, ["equities"], "2022-12-24", "2022-12-25", today=date(2026, 11, 21))
    with pytest.raises(ConfigError, match="unknown profile 'nope'"):
        plan_backfill(manifest, ["nope"], "2022-12-26", "2022-12-27", today=date(2026, 11, 21))


def _runs(instance, job: str) -> list[dg.DagsterRun]:
    return list(instance.get_runs(dg.RunsFilter(job_name=job)))


@pytest.mark.slow
def test_a_backfill_over_three_dates_and_two_profiles_runs_through_the_daemon(tmp_path, monkeypatch, capsys):
    home, lake_path = tmp_path / "dagster_home", tmp_path / "lake.duckdb"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "configs" / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("TSP_LAKEHOUSE", str(lake_path))
    with dg.DagsterInstance.get() as instance:
        seeded = build_definitions(resources_for(lake_path)).resolve_job_def("seed_lakehouse").execute_in_process(
            instance=instance, run_config=QUIET)
        assert seeded.success

        argv = ["backfill", "--start", DATES[0], "--end", DATES[-1]]
        for profile in PROFILES:
            argv += ["--profile", profile]
        assert main(argv) == 0
        [backfill] = instance.get_backfills()
        assert backfill.backfill_id in capsys.readouterr().out

        log = open(tmp_path / "daemon.log", "w")
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        daemon = subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", str(PROJECT_ROOT / "workspace.yaml")],
            cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            status = wait(instance, backfill.backfill_id, TIMEOUT_S, poll_s=2, echo=lambda _: None)
            assert status == "COMPLETED_SUCCESS", (tmp_path / "daemon.log").read_text()[-3000:]
            deadline = time.monotonic() + TIMEOUT_S
            while time.monotonic() < deadline:
                alpha = _runs(instance, "alpha_cycle")
                if len(alpha) == len(PROFILES) * len(DATES) and all(r.is_finished for r in alpha):
                    break
                time.sleep(2)
        finally:
            kill_group(daemon, timeout=20)  # the daemon and the run workers it started
            log.close()

        expected = {str(partition_key(p, d)) for p in PROFILES for d in DATES}
        data = _runs(instance, "data_cycle")
        # one run per partition: the backfill policy (docs/runbook.md)
        assert sorted(r.tags["dagster/partition"] for r in data) == sorted(expected)
        assert all(r.tags["dagster/backfill"] == backfill.backfill_id and r.is_success for r in data)

        alpha = _runs(instance, "alpha_cycle")
        assert sorted(r.tags["dagster/partition"] for r in alpha) == sorted(expected), "alpha_after_gates followed"
        for run in alpha:
            assert run.is_success, run.run_id
            assert run.tags["tsp/trigger"] == "alpha_after_gates" and run.tags["tsp/backfill"] == backfill.backfill_id
            assert run.tags["tsp/tournaments"] == "false"
        assert not _runs(instance, "tournament_inputs_job")  # a backfill fans out tournaments only on request

    stored = Lakehouse(lake_path).query(
        "SELECT DISTINCT profile, CAST(as_of AS VARCHAR) AS as_of FROM portfolio_weights ORDER BY ALL")
    assert {str(partition_key(p, d)) for p, d in stored.iter_rows()} == expected
