"""Deployment (docs/deployment.md): the production instance config on a real PostgreSQL server, and two
partitions in progress at once, each its own run under the multiprocess executor, against one DuckDB lakehouse.

The PostgreSQL test starts its own server (initdb + pg_ctl as the `postgres` user, 127.0.0.1 and a free port,
data in a temp dir) and skips with the reason when PostgreSQL is not installed. The concurrency tests need
nothing beyond the venv. Run with -s to see the timings docs/deployment.md quotes.
"""

from __future__ import annotations

import glob
import json
import multiprocessing
import os
import pwd
import queue
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import dagster as dg
import psycopg2
import pytest
import yaml

from partitions import partition_tags
from resources import DUCKDB_POOL, resources_for
from tests.conftest import DEMO_PARTITIONS
from tests.test_data_cycle import PARTITION_TABLES, QUIET, run_cycle, seed
from tsp_cli.ui import free_port
from tsp_platform.audit import AuditLedger
from tsp_platform.lakehouse import Lakehouse

ROOT = Path(__file__).resolve().parents[1]
POSTGRES_CONFIG = ROOT / "configs" / "deploy" / "dagster.postgres.yaml"
LOCAL_CONFIG = ROOT / "configs" / "dagster.yaml"
LAKEHOUSE_ENV = "TSP_LAKEHOUSE"  # the step processes rebuild the job from it (see `data_cycle_job`)
# Step processes fork from a server that has imported the code once (`spawn`, the default, re-imports it for
# every step: ~5 s of a 2-core box's time per step, all of it while the step holds its pool slot).
MULTIPROCESS = {**QUIET, "execution": {"config": {"multiprocess": {
    "max_concurrent": 2, "start_method": {"forkserver": {"preload_modules": [__name__]}}}}}}
LOCK_ERRORS = ("Could not set lock", "IOException")
CYCLE_TABLES = (*PARTITION_TABLES, "discovery_runs")
SHARED_TABLES = ("symbols", "ohlcv")
TIMINGS: dict[str, float] = {}  # printed with -s; the figures in docs/deployment.md come from here

pytestmark = pytest.mark.slow


def data_cycle_job() -> dg.JobDefinition:
    """Reconstructable target of `execute_job`: every step process imports this module and calls it, so the
    lakehouse comes from the environment the run was launched with, not from a closure."""
    from assets.definitions import build_definitions

    return build_definitions(resources_for(os.environ[LAKEHOUSE_ENV])).resolve_job_def("data_cycle")


def execute_partition(instance: dg.DagsterInstance, profile: str, day: str):
    """One data-cycle partition as its own run under the multiprocess executor; (run id, success)."""
    with dg.execute_job(
        dg.reconstructable(data_cycle_job), instance=instance, run_config=MULTIPROCESS,
        tags=partition_tags(profile, day), raise_on_error=False,
    ) as result:
        return result.run_id, result.success


def _run_worker(ref, profile: str, day: str, ready, go, results) -> None:
    """What a run launcher starts: a process of its own with an instance rebuilt from the ref. It reports ready,
    waits for its go, then runs one partition."""
    # Start this run's step forkserver (the preload MULTIPROCESS names) and let it finish importing before the
    # release, so that its imports overlap the sibling's instead of running while the first step holds the pool
    # slot. The server imports its preload after it starts: the first process forked from it waits for that.
    forkserver = multiprocessing.get_context("forkserver")
    forkserver.set_forkserver_preload(["dagster._core.executor.multiprocess", __name__])
    warm = forkserver.Process(target=os.getpid)
    warm.start()
    warm.join(timeout=180)
    with dg.DagsterInstance.from_ref(ref) as instance:
        ready.wait(timeout=180)
        if not go.wait(timeout=300):
            return
        results.put((profile, *execute_partition(instance, profile, day)))


def wait_for_pool_holder(instance: dg.DagsterInstance, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while instance.event_log_storage.get_concurrency_info(DUCKDB_POOL).active_slot_count == 0:
        if time.monotonic() > deadline:
            raise AssertionError(f"no step took the {DUCKDB_POOL!r} pool slot within {timeout} s")
        time.sleep(0.02)


def launch_runs(instance: dg.DagsterInstance, partitions) -> list[tuple[str, bool]]:
    """Each partition's run in its own process; [(run id, success)] in the order given.

    All processes start and get ready together. The first run is released at once, the others the moment a
    step holds the `duckdb` slot: the runs then overlap for nearly all of their length, and every later claim
    meets a busy pool. Releasing them at the very same instant is not safe in Dagster 1.13.27: two processes
    whose first claims on an idle pool coincide can both win its one slot (the claim reads a free slot, then
    writes it, with nothing held in between; see docs/deployment.md), and the lakehouse then refuses the second
    writer with "Could not set lock".

    Processes, as Dagster's run launchers use, rather than threads: `execute_job` in two threads of one process
    deadlocked here in `logging.config.dictConfig`, which Dagster calls at the start of every run of an instance
    with settings. A process per run also keeps each run's step forkserver, and the environment it captured
    (the lakehouse path, DAGSTER_PG_*), from outliving the run."""
    spawn = multiprocessing.get_context("spawn")
    ready, results = spawn.Barrier(len(partitions) + 1), spawn.Queue()
    go = [spawn.Event() for _ in partitions]
    workers = [spawn.Process(target=_run_worker, args=(instance.get_ref(), p, d, ready, event, results))
               for (p, d), event in zip(partitions, go)]
    for worker in workers:
        worker.start()
    try:
        ready.wait(timeout=180)
        for number, event in enumerate(go):
            if number:
                wait_for_pool_holder(instance)
            event.set()
        done: dict[str, tuple[str, bool]] = {}
        deadline = time.monotonic() + 600
        while len(done) < len(workers):
            try:
                profile, run_id, success = results.get(timeout=2)
                done[profile] = (run_id, success)
            except queue.Empty:
                crashed = [w.exitcode for w in workers if w.exitcode not in (None, 0)]
                if crashed or time.monotonic() > deadline:
                    raise AssertionError(f"run processes crashed ({crashed}) or timed out; got {done}") from None
    finally:
        for worker in workers:  # on an error above, workers still waiting for their go end here
            worker.join(timeout=60)
            if worker.exitcode is None:
                worker.kill()
                worker.join()
    assert [worker.exitcode for worker in workers] == [0] * len(workers)
    return [done[profile] for profile, _ in partitions]


def messages(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """Every log message and error text of a run."""
    texts = []
    for entry in instance.all_logs(run_id):
        texts.append(entry.user_message or "")
        event = entry.dagster_event
        error = getattr(event.event_specific_data, "error", None) if event is not None else None
        if error is not None:
            texts.append(error.to_string())
    return texts


def step_intervals(instance: dg.DagsterInstance, run_id: str) -> dict[str, tuple[float, float]]:
    """step key → (STEP_START, step end) timestamps of a run."""
    starts, ends = {}, {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_START:
            starts[event.step_key] = entry.timestamp
        elif event.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
            ends[event.step_key] = entry.timestamp
    assert starts.keys() == ends.keys(), (starts, ends)
    return {key: (starts[key], ends[key]) for key in starts}


def run_bounds(instance: dg.DagsterInstance, run_id: str) -> tuple[float, float]:
    """Timestamps of a run's RUN_START and RUN_SUCCESS."""
    stamps = {e.dagster_event.event_type: e.timestamp for e in instance.all_logs(run_id) if e.dagster_event}
    return stamps[dg.DagsterEventType.RUN_START], stamps[dg.DagsterEventType.RUN_SUCCESS]


def run_timeline(instance: dg.DagsterInstance, run_id: str) -> dict[str, float]:
    """Seconds from the run's start to its first step, in its steps (start to end, summed), and in all."""
    start, end = run_bounds(instance, run_id)
    steps = step_intervals(instance, run_id)
    return {"to_first_step": round(min(s for s, _ in steps.values()) - start, 1),
            "in_steps": round(sum(e - s for s, e in steps.values()), 1), "run": round(end - start, 1)}


def ledger_bodies(lake: Lakehouse, partition: str) -> list[str]:
    """The audit records of one partition without what differs between runs (seq, run id, time, chain hashes)."""
    rows = lake.query("SELECT record FROM audit_ledger WHERE partition_key = ?", [partition])
    return sorted(json.dumps({"kind": r["kind"], "body": r["body"]}, sort_keys=True)
                  for r in map(json.loads, rows["record"].to_list()))


# -- the instance on PostgreSQL ----------------------------------------------------------------------------


def postgres_bin() -> Path | None:
    """The directory holding initdb and pg_ctl: PATH first, then Debian's /usr/lib/postgresql/<version>/bin."""
    found = shutil.which("initdb")
    candidates = [Path(found).resolve().parent] if found else []
    candidates += sorted((Path(d) for d in glob.glob("/usr/lib/postgresql/*/bin")),
                         key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0, reverse=True)
    return next((d for d in candidates if (d / "initdb").exists() and (d / "pg_ctl").exists()), None)


def stop_orphaned_servers(pg_ctl: Path, runner: list[str]) -> None:
    """Stop the servers of earlier test processes that died before their teardown (killed by a timeout): each
    server's directory names the test process that started it, and a server whose owner is gone is an orphan."""
    for marker in Path(tempfile.gettempdir()).glob("tsp-pg-*/owner.pid"):
        try:
            os.kill(int(marker.read_text()), 0)
            continue  # its test process is still running (another session, another xdist worker)
        except ProcessLookupError:
            pass
        except (ValueError, PermissionError):
            continue
        data = marker.parent / "data"
        if (data / "postmaster.pid").exists():
            subprocess.run([*runner, str(pg_ctl), "-D", str(data), "-m", "immediate", "-w", "-t", "30", "stop"],
                           capture_output=True, timeout=60)
        shutil.rmtree(marker.parent, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres():
    """A throwaway PostgreSQL server on 127.0.0.1: trust on its private Unix socket, a password over TCP (so the
    instance's DAGSTER_PG_PASSWORD is really checked), one database owned by a `dagster` role; always stopped."""
    bindir = postgres_bin()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (no initdb/pg_ctl on PATH or in /usr/lib/postgresql/*/bin; "
                    "`apt-get install postgresql`)")
    runner: list[str] = []
    owner = None
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no `postgres` OS user to run the server as")
        if shutil.which("runuser") is None:
            pytest.skip("running as root and `runuser` is missing: cannot start PostgreSQL as `postgres`")
        runner = ["runuser", "-u", "postgres", "--"]
    stop_orphaned_servers(bindir / "pg_ctl", runner)
    root = Path(tempfile.mkdtemp(prefix="tsp-pg-"))
    (root / "owner.pid").write_text(str(os.getpid()))
    data, log, pwfile = root / "data", root / "server.log", root / "superuser.pw"
    superuser_password, dagster_password = secrets.token_hex(16), secrets.token_hex(16)
    pwfile.write_text(superuser_password + "\n")
    if owner is not None:
        for path in (root, pwfile):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    port, started = free_port(), False

    def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([*runner, *args], capture_output=True, text=True, timeout=timeout, check=True)

    try:
        run(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", f"--pwfile={pwfile}", "--auth-local=trust",
            "--auth-host=scram-sha-256", "-E", "UTF8", "--no-locale", "--no-sync")
        options = f"-h 127.0.0.1 -p {port} -k {root} -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        started = True
        run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start")
        admin = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", password=superuser_password,
                                 dbname="postgres")
        try:
            admin.autocommit = True  # CREATE DATABASE cannot run in a transaction
            with admin.cursor() as cursor:
                cursor.execute("CREATE ROLE dagster LOGIN PASSWORD %s", [dagster_password])
                cursor.execute("CREATE DATABASE dagster_instance OWNER dagster")
        finally:
            admin.close()
        yield {"DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": str(port), "DAGSTER_PG_USERNAME": "dagster",
               "DAGSTER_PG_PASSWORD": dagster_password, "DAGSTER_PG_DB": "dagster_instance"}
    except subprocess.CalledProcessError as error:
        server_log = log.read_text() if log.exists() else ""
        raise AssertionError(f"{error.cmd[len(runner)]} failed: {error.stderr}\n{server_log}") from error
    finally:
        if started:
            stop = subprocess.run([*runner, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "30",
                                   "stop"], capture_output=True, text=True, timeout=60)
            if stop.returncode != 0 and (data / "postmaster.pid").exists():  # not stopped in time: end it by its id
                pid = int((data / "postmaster.pid").read_text().split()[0])
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(root, ignore_errors=True)


def pg_rows(env: dict[str, str], sql: str, params=()) -> list[tuple]:
    """Read the instance's tables straight from PostgreSQL, not through Dagster."""
    conn = psycopg2.connect(host=env["DAGSTER_PG_HOST"], port=int(env["DAGSTER_PG_PORT"]), user=env["DAGSTER_PG_USERNAME"],
                            password=env["DAGSTER_PG_PASSWORD"], dbname=env["DAGSTER_PG_DB"])
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    finally:
        conn.close()


def test_instance_on_postgres_runs_and_stores_a_data_cycle(postgres, tmp_path, monkeypatch):
    """configs/deploy/dagster.postgres.yaml, unchanged, as $DAGSTER_HOME/dagster.yaml with the DAGSTER_PG_*
    variables set: the instance stores runs, events, checks and the pool on the server; a seed and a data-cycle
    partition (multiprocess: every step process reconnects from the same config) land there and read back."""
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

    started = time.perf_counter()
    home, lake = tmp_path / "dagster_home", tmp_path / "lake" / "lake.duckdb"
    home.mkdir()
    shutil.copyfile(POSTGRES_CONFIG, home / "dagster.yaml")
    for name, value in postgres.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv(LAKEHOUSE_ENV, str(lake))
    fields = yaml.safe_load(POSTGRES_CONFIG.read_text())["storage"]["postgres"]["postgres_db"]
    assert {name: fields[name] for name in ("hostname", "port", "username", "password", "db_name")} == {
        "hostname": {"env": "DAGSTER_PG_HOST"}, "port": {"env": "DAGSTER_PG_PORT"},
        "username": {"env": "DAGSTER_PG_USERNAME"}, "password": {"env": "DAGSTER_PG_PASSWORD"},
        "db_name": {"env": "DAGSTER_PG_DB"}}  # every value that differs between machines, and no secret, in the file

    migrate = subprocess.run([str(Path(sys.executable).with_name("dagster")), "instance", "migrate"],
                             capture_output=True, text=True, timeout=120)
    assert migrate.returncode == 0, migrate.stderr

    with dg.DagsterInstance.get() as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        concurrency = instance.get_concurrency_config()
        assert concurrency.pool_config.default_pool_limit == 1
        assert concurrency.run_queue_config.max_concurrent_runs == 4
        assert [(limit["key"], limit["limit"]) for limit in concurrency.run_queue_config.tag_concurrency_limits] == [
            ("dagster/backfill", 2)]

        from assets.definitions import build_definitions

        seed(build_definitions(resources_for(lake)), instance)
        profile, day = DEMO_PARTITIONS[0]
        [(run_id, success)] = launch_runs(instance, [(profile, day)])
        assert success
        check_events = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
        assert len(check_events) == 12 and all(r.event_log_entry.dagster_event.event_specific_data.passed
                                               for r in check_events)

    # Straight from PostgreSQL: both runs, the data cycle's four materialisations, its checks and the pool.
    runs = dict(pg_rows(postgres, "SELECT run_id, status FROM runs"))
    assert runs[run_id] == "SUCCESS" and len(runs) == 2 and set(runs.values()) == {"SUCCESS"}
    materialised = pg_rows(postgres, "SELECT asset_key FROM event_logs WHERE run_id = %s AND dagster_event_type = "
                           "'ASSET_MATERIALIZATION' ORDER BY id", [run_id])
    assert [json.loads(key) for (key,) in materialised] == [
        ["discovery_scan"], ["raw_pool"], ["ohlcv_history"], ["returns_matrix"]]
    assert pg_rows(postgres, "SELECT count(*) FROM asset_check_executions WHERE run_id = %s "
                   "AND execution_status = 'SUCCEEDED'", [run_id]) == [(12,)]
    assert pg_rows(postgres, 'SELECT concurrency_key, "limit", using_default_limit FROM concurrency_limits') == [
        (DUCKDB_POOL, 1, True)]
    assert pg_rows(postgres, "SELECT count(*) FROM concurrency_slots WHERE concurrency_key = %s AND NOT deleted "
                   "AND run_id IS NULL", [DUCKDB_POOL]) == [(1,)]

    # A second instance from the same home (a webserver or daemon would do this) reads it all back.
    with dg.DagsterInstance.get() as reader:
        record = reader.get_run_record_by_id(run_id)
        assert record.dagster_run.status == dg.DagsterRunStatus.SUCCESS
        assert record.dagster_run.tags["dagster/partition"] == str(partition_tags(profile, day)["dagster/partition"])
        latest = reader.fetch_materializations(dg.AssetKey("returns_matrix"), limit=1).records[0]
        assert latest.run_id == run_id and latest.partition_key == record.dagster_run.tags["dagster/partition"]
        info = reader.event_log_storage.get_concurrency_info(DUCKDB_POOL)
        assert (info.slot_count, info.active_slot_count, info.pending_step_count) == (1, 0, 0)
        assert not [t for t in messages(reader, run_id) if any(err in t for err in LOCK_ERRORS)]
        timeline = run_timeline(reader, run_id)
    assert Lakehouse(lake).read_partition("returns_matrix", profile, date.fromisoformat(day)).height > 0
    TIMINGS["postgres_test_s"] = time.perf_counter() - started
    print(f"\npostgres test: {TIMINGS['postgres_test_s']:.1f} s; its data-cycle run: {timeline}")


# -- two partitions at once ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def concurrent(tmp_path_factory):
    """Both demo partitions launched together, each as its own multiprocess run, on one lakehouse and one
    instance configured by configs/dagster.yaml; and the same partitions one after the other on a second file."""
    tmp = tmp_path_factory.mktemp("concurrent")
    shared, sequential = Lakehouse(tmp / "shared" / "lake.duckdb"), Lakehouse(tmp / "sequential" / "lake.duckdb")
    local = yaml.safe_load(LOCAL_CONFIG.read_text())
    with pytest.MonkeyPatch.context() as env, dg.instance_for_test(overrides=local) as instance:
        from assets.definitions import build_definitions

        env.setenv(LAKEHOUSE_ENV, str(shared.path))
        seed(build_definitions(resources_for(shared.path)), instance)
        start = time.perf_counter()
        runs = launch_runs(instance, DEMO_PARTITIONS)
        TIMINGS["parallel_multiprocess_s"] = time.perf_counter() - start

        env.setenv(LAKEHOUSE_ENV, str(sequential.path))
        defs = build_definitions(resources_for(sequential.path))
        seed(defs, instance)
        start = time.perf_counter()
        for profile, day in DEMO_PARTITIONS:
            assert run_cycle(defs, instance, profile, day).success
        TIMINGS["sequential_in_process_s"] = time.perf_counter() - start
        bounds = [run_bounds(instance, run_id) for run_id, _ in runs]
        TIMINGS["parallel_runs_span_s"] = max(end for _, end in bounds) - min(start for start, _ in bounds)
        print(f"\ntwo partitions together, multiprocess: {TIMINGS['parallel_multiprocess_s']:.1f} s with the run "
              f"processes' start, {TIMINGS['parallel_runs_span_s']:.1f} s from the first run's start to the last "
              f"one's end, runs {[run_timeline(instance, r) for r, _ in runs]}; one after the other in process: "
              f"{TIMINGS['sequential_in_process_s']:.1f} s")
        yield {"instance": instance, "runs": runs, "shared": shared, "sequential": sequential, "job": defs.resolve_job_def("data_cycle")}


def test_both_runs_succeed_without_a_lock_error(concurrent):
    instance = concurrent["instance"]
    assert [success for _, success in concurrent["runs"]] == [True, True]
    for run_id, _ in concurrent["runs"]:
        run = instance.get_run_by_id(run_id)
        assert run.status == dg.DagsterRunStatus.SUCCESS
        assert run.run_config["execution"]["config"]["multiprocess"]["max_concurrent"] == 2
        texts = messages(instance, run_id)
        assert any("Executing steps using multiprocess executor" in t for t in texts), run_id  # a process per step
        assert not [t for t in texts if any(err in t for err in LOCK_ERRORS)]
    assert [instance.get_run_by_id(run_id).tags["dagster/partition"] for run_id, _ in concurrent["runs"]] == [
        partition_tags(profile, day)["dagster/partition"] for profile, day in DEMO_PARTITIONS]


def test_the_duckdb_pool_serialised_the_two_runs(concurrent):
    """Every data-cycle step is in the `duckdb` pool, whose one slot no two steps held at once across both runs,
    although the two runs were in progress together."""
    instance = concurrent["instance"]
    assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
    info = instance.event_log_storage.get_concurrency_info(DUCKDB_POOL)
    assert (info.slot_count, info.active_slot_count, info.pending_step_count) == (1, 0, 0)

    pools = {node.name: node.definition.pool for node in concurrent["job"].graph.node_dict.values()}
    assert set(pools.values()) == {DUCKDB_POOL}, pools  # four assets and two multi-asset-check steps

    intervals, run_spans = [], []
    for run_id, _ in concurrent["runs"]:
        steps = step_intervals(instance, run_id)
        assert steps.keys() == pools.keys(), steps
        intervals += [(start, end, run_id, key) for key, (start, end) in steps.items()]
        run_spans.append((min(s for s, _ in steps.values()), max(e for _, e in steps.values())))
    (first_start, first_end), (second_start, second_end) = run_spans
    assert first_start < second_end and second_start < first_end, "the two runs did not overlap: nothing was tested"
    intervals.sort()
    for before, after in zip(intervals, intervals[1:]):
        assert after[0] >= before[1], f"{before[3]} ({before[2][:8]}) overlapped {after[3]} ({after[2][:8]})"
    interleaved = [run_id for _, _, run_id, _ in intervals]
    switches = sum(a != b for a, b in zip(interleaved, interleaved[1:]))
    assert switches >= 2, f"the pool never passed between the runs: {interleaved}"


def test_no_lost_rows(concurrent):
    """Each partition's rows equal those of the same partition computed alone, and the shared audit chain holds
    every record of both runs."""
    shared, sequential = concurrent["shared"], concurrent["sequential"]
    for profile, day in DEMO_PARTITIONS:
        as_of = date.fromisoformat(day)
        for table in CYCLE_TABLES:
            alone = sequential.read_partition(table, profile, as_of)
            together = shared.read_partition(table, profile, as_of)
            assert together.height == alone.height, (table, profile)
            assert shared.content_hash(table, profile, as_of) == sequential.content_hash(table, profile, as_of), (table, profile)
        key = str(partition_tags(profile, day)["dagster/partition"])
        assert ledger_bodies(shared, key) == ledger_bodies(sequential, key) and ledger_bodies(shared, key)
    for table in SHARED_TABLES:
        assert shared.content_hash(table) == sequential.content_hash(table), table
    for lake in (shared, sequential):
        verification = AuditLedger(lake).verify()
        assert verification.ok, verification
    assert AuditLedger(shared).rows().height == AuditLedger(sequential).rows().height
