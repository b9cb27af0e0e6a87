"""The tournament through real Dagster: the fan-out sensor, dynamic cell partitions, the scoreboard and its checks.

A small tournament (two engines, three risk profiles, all three simulators, 40-row test windows) keeps the
runs short; the default configuration is what `make demo` runs.
"""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
import yaml

from assets.definitions import build_definitions
from assets.tournament_sensor import tournament_fanout
from partitions import cell_key, partition_key, partition_tags, tournament_cell_partitions
from resources import ManifestResource, resources_for
from tests.test_alpha_cycle import run_alpha
from tests.test_data_cycle import QUIET, checks_by_name, run_cycle, seed
from tests.test_point_in_time import perturb_after
from tsp_platform.config import load_manifest
from tsp_platform.config.manifest import DEFAULT_MANIFEST
from tsp_platform.config.models import DiscoverySource
from tsp_platform.context import StageContext
from tsp_platform.core.atoms import atoms_frame
from tsp_platform.lakehouse import Lakehouse
from tsp_platform.tournament.snapshot import TournamentSnapshot
from tsp_platform.tournament.stage import build_snapshot, cells_directory, snapshot_directory

PROFILE, DAY = "us_equities_sample", "2022-12-28"
SMALL = {
    "history_days": 560,
    "windows": {"train": 252, "test": 40, "step": 40},
    "engines": ["custom", "skfolio"],
    "risk_profiles": ["equal_weight", "min_variance", "hrp"],
    "simulators": ["custom", "cvxportfolio", "nautilus"],
}
GROUPS = ("custom", "skfolio", "baseline")
TOURNAMENT_TABLES = ("tournament_cells", "tournament_returns", "tournament_weights", "tournament_windows",
                     "tournament_scoreboard")


def small_manifest(directory: Path, tournament: dict = SMALL) -> Path:
    raw = yaml.safe_load(DEFAULT_MANIFEST.read_text())
    raw["profiles"][PROFILE]["tournament"] = tournament
    raw["profiles"]["crypto_synthetic"]["tournament"] = tournament
    path = directory / "manifest.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def tick(instance, manifest_path: Path, cursor: str | None = None) -> dg.SensorResult:
    context = dg.build_sensor_context(instance=instance, cursor=cursor,
                                      resources={"manifest": ManifestResource(path=str(manifest_path))})
    return tournament_fanout(context)


def apply(instance, result: dg.SensorResult) -> None:
    """What the daemon does with a tick's dynamic-partition requests."""
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))


def execute(defs, instance, request: dg.RunRequest, raise_on_error: bool = True):
    return defs.resolve_job_def(request.job_name).execute_in_process(
        partition_key=request.partition_key, instance=instance, run_config=QUIET, raise_on_error=raise_on_error
    )


def drive(defs, instance, manifest_path: Path, max_ticks: int = 6) -> list[list[dg.RunRequest]]:
    """Tick the real sensor and run what it requests until it has nothing to request; returns each tick's requests."""
    history, cursor = [], None
    for _ in range(max_ticks):
        result = tick(instance, manifest_path, cursor)
        cursor = result.cursor
        apply(instance, result)
        history.append(list(result.run_requests or []))
        if not result.run_requests:
            return history
        for request in result.run_requests:
            assert execute(defs, instance, request).success, request
    raise AssertionError(f"the sensor kept requesting runs: {history}")


def prepare(tmp_path: Path, instance, profile: str = PROFILE, day: str = DAY, perturb: date | None = None):
    manifest_path = small_manifest(tmp_path)
    lake_path = tmp_path / "lake.duckdb"
    defs = build_definitions(resources_for(lake_path, manifest_path))
    seed(defs, instance)
    if perturb is not None:
        assert perturb_after(Lakehouse(lake_path), perturb) > 1000
    run_cycle(defs, instance, profile, day, raise_on_error=False)
    assert run_alpha(defs, instance, profile, day).success
    return defs, manifest_path, Lakehouse(lake_path)


@pytest.fixture(scope="module")
def tournament(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("tournament")
    with dg.instance_for_test() as instance:
        defs, manifest_path, lake = prepare(tmp_path, instance)
        history = drive(defs, instance, manifest_path)
        yield {"defs": defs, "manifest": manifest_path, "lake": lake, "instance": instance, "history": history,
               "root": tmp_path / "snapshots"}


def test_sensor_fans_out_snapshot_then_cells_then_scoreboard(tournament):
    history = tournament["history"]
    key = str(partition_key(PROFILE, DAY))
    assert [[(r.job_name, r.partition_key) for r in tick_requests] for tick_requests in history] == [
        [("tournament_inputs_job", key)],
        [("tournament_cells_job", cell_key(PROFILE, DAY, g)) for g in GROUPS],
        [("tournament_scoreboard_job", key)],
        [("portfolio_report_job", key)],
        [],
    ]
    partitions = tournament["instance"].get_dynamic_partitions(tournament_cell_partitions.name)
    assert sorted(partitions) == sorted(cell_key(PROFILE, DAY, g) for g in GROUPS)


def test_a_step_is_requested_under_the_same_run_key_until_it_succeeds(tmp_path):
    """Two ticks before anything runs ask for the same runs under the same keys, so the daemon launches each once
    (and a failed step is not relaunched in a loop)."""
    with dg.instance_for_test() as instance:
        defs, manifest_path, _ = prepare(tmp_path, instance)
        first, second = tick(instance, manifest_path), tick(instance, manifest_path)
        assert [r.run_key for r in first.run_requests] == [r.run_key for r in second.run_requests]
        assert [r.job_name for r in first.run_requests] == ["tournament_inputs_job"]
        assert execute(defs, instance, first.run_requests[0]).success
        apply(instance, first)
        cells = tick(instance, manifest_path, first.cursor)
        again = tick(instance, manifest_path, first.cursor)
        assert len(cells.run_requests) == len(GROUPS)
        assert [r.run_key for r in cells.run_requests] == [r.run_key for r in again.run_requests]


def test_the_cursor_pages_through_each_asset_without_skipping(tournament, monkeypatch):
    import assets._events as events

    instance = tournament["instance"]
    selections = instance.fetch_materializations(dg.AssetKey("selection"), limit=100, ascending=True).records
    cells = instance.fetch_materializations(dg.AssetKey("tournament_cells"), limit=100, ascending=True).records
    assert len(cells) >= len(GROUPS)
    monkeypatch.setattr(events, "RECORDS_PER_TICK", 1)
    result = tick(instance, tournament["manifest"])
    positions = json.loads(result.cursor)
    # one record per asset and tick: each asset's position is its own first record, not the newest overall
    assert positions["selection"] == selections[0].storage_id
    assert positions["tournament_cells"] == cells[0].storage_id
    for _ in range(len(cells) - 1):
        result = tick(instance, tournament["manifest"], result.cursor)
    assert json.loads(result.cursor)["tournament_cells"] == cells[-1].storage_id


def test_every_cell_is_stored_with_its_returns_weights_and_windows(tournament):
    lake, as_of = tournament["lake"], date.fromisoformat(DAY)
    read = lambda t: lake.read_partition(t, PROFILE, as_of)  # noqa: E731
    cells, returns, weights, windows = (read(t) for t in TOURNAMENT_TABLES[:4])
    engine_cells = cells.filter(pl.col("engine") != "baseline")
    assert engine_cells.height == 2 * 3 * 2 * 3  # engines × risk profiles × scorers × simulators
    assert set(cells.filter(pl.col("is_baseline"))["scorer"]) == {"market", "selected_ew", "raw_pool_ew"}
    assert (cells["status"] != "failed").all()
    simulated = cells.filter(pl.col("status").is_in(["ok", "partial"]))
    # Stitched out-of-sample returns: one row per test day for every simulated cell, equity compounding them.
    per_cell = returns.group_by("scorer", "risk_profile", "engine", "simulator").agg(
        pl.len().alias("days"), (1 + pl.col("ret")).product().alias("growth"), pl.col("equity").last().alias("equity")
    )
    assert per_cell.height == simulated.height
    assert per_cell["days"].n_unique() == 1 and per_cell["days"][0] == simulated["windows"][0] * 40
    assert (per_cell["growth"] - per_cell["equity"]).abs().max() < 1e-9
    # Weights per rebalance (the simulators share them) and per-window turnover and costs.
    assert weights.height and set(weights["engine"]) == {"custom", "skfolio", "baseline"}
    gross = weights.group_by("scorer", "risk_profile", "engine", "window_index").agg(pl.col("weight").abs().sum())
    listed = gross.join(windows.filter(pl.col("simulator") == "custom"),
                        on=["scorer", "risk_profile", "engine", "window_index"])
    assert listed.height == gross.height and (listed["weight"] - listed["gross"]).abs().max() < 1e-9
    assert windows.height == simulated.height * simulated["windows"][0]
    costs = windows.group_by("scorer", "risk_profile", "engine", "simulator").agg(pl.col("cost").sum())
    joined = costs.join(cells, on=["scorer", "risk_profile", "engine", "simulator"])
    assert (joined["cost"] - joined["costs_paid"]).abs().max() < 1e-12


def test_scoreboard_judges_every_cell_and_its_checks_pass(tournament):
    lake, as_of = tournament["lake"], date.fromisoformat(DAY)
    board = lake.read_partition("tournament_scoreboard", PROFILE, as_of)
    cells = lake.read_partition("tournament_cells", PROFILE, as_of)
    assert board.height == cells.height
    strict = board.filter(pl.col("strict"))
    assert not strict.filter(pl.col("is_baseline")).height
    assert (strict["failed_gates"] == "").all()
    assert sorted(strict["strict_rank"].to_list()) == list(range(1, strict.height + 1))
    others = board.filter(~pl.col("strict") & ~pl.col("is_baseline"))
    assert (others["failed_gates"] != "").all()
    simulated = board.filter(pl.col("status") == "ok")
    assert simulated["parity_gap"].max() < 0.015 and simulated["tail_risk_ratio"].is_not_null().all()
    market = board.filter((pl.col("scorer") == "market") & (pl.col("simulator") == "custom"))
    assert market["tail_risk_ratio"][0] == pytest.approx(1.0)

    instance = tournament["instance"]
    for name in ("all_cells_ran", "simulators_agree", "metrics_reproduce"):
        record = instance.get_latest_asset_check_evaluation_record(
            dg.AssetCheckKey(dg.AssetKey("tournament_scoreboard"), name))
        assert record is not None and record.evaluation.passed, name


def test_one_cell_reruns_alone_and_the_scoreboard_follows(tournament):
    defs, instance, root = tournament["defs"], tournament["instance"], tournament["root"]
    as_of = date.fromisoformat(DAY)
    stamps = {g: (cells_directory(root, PROFILE, as_of, g) / "manifest.json").stat().st_mtime_ns for g in GROUPS}
    request = dg.RunRequest(job_name="tournament_cells_job", partition_key=cell_key(PROFILE, DAY, "skfolio"))
    result = execute(defs, instance, request)
    assert result.success
    after = {g: (cells_directory(root, PROFILE, as_of, g) / "manifest.json").stat().st_mtime_ns for g in GROUPS}
    assert after["skfolio"] > stamps["skfolio"]
    assert after["custom"] == stamps["custom"] and after["baseline"] == stamps["baseline"]
    follow = tick(instance, tournament["manifest"])
    assert [(r.job_name, r.partition_key) for r in follow.run_requests] == [
        ("tournament_scoreboard_job", str(partition_key(PROFILE, DAY)))
    ]
    assert execute(defs, instance, follow.run_requests[0]).success
    drive(defs, instance, tournament["manifest"])  # and the report after it


def test_scoreboard_refuses_missing_or_stale_cell_groups(tmp_path, tournament):
    defs, instance, root = tournament["defs"], tournament["instance"], tournament["root"]
    as_of = date.fromisoformat(DAY)
    board_before = tournament["lake"].content_hash("tournament_scoreboard", PROFILE, as_of)
    scoreboard = dg.RunRequest(job_name="tournament_scoreboard_job", partition_key=str(partition_key(PROFILE, DAY)))
    baseline = cells_directory(root, PROFILE, as_of, "baseline")
    shutil.move(baseline, tmp_path / "baseline")
    try:
        result = execute(defs, instance, scoreboard, raise_on_error=False)
        assert not result.success
        assert "cell groups ['baseline" in failure_message(result)
    finally:
        shutil.move(tmp_path / "baseline", baseline)
    # A snapshot of changed data (one close revised inside the span) makes every stored cell group stale.
    lake = tournament["lake"]
    bar = lake.query("SELECT * FROM ohlcv WHERE symbol = (SELECT min(symbol) FROM raw_pool) AND date = ?",
                     [date(2022, 6, 1)])
    assert bar.height == 1
    lake.upsert("ohlcv", bar.with_columns(pl.col("close") * 1.01))
    inputs = dg.RunRequest(job_name="tournament_inputs_job", partition_key=str(partition_key(PROFILE, DAY)))
    assert execute(defs, instance, inputs).success
    result = execute(defs, instance, scoreboard, raise_on_error=False)
    assert not result.success and "older tournament snapshot" in failure_message(result)
    assert lake.content_hash("tournament_scoreboard", PROFILE, as_of) == board_before
    # The sensor sees the new snapshot and re-requests every cell, then the scoreboard.
    history = drive(defs, instance, tournament["manifest"])
    assert [r.job_name for r in history[0]] == ["tournament_cells_job"] * len(GROUPS)
    assert [r.job_name for r in history[1]] == ["tournament_scoreboard_job"]
    assert [r.job_name for r in history[2]] == ["portfolio_report_job"]
    assert lake.content_hash("tournament_scoreboard", PROFILE, as_of) != board_before


def failure_message(result) -> str:
    """Every step failure's message, with the errors that caused it."""
    messages = []
    for event in result.all_events:
        error = event.event_specific_data.error if event.is_step_failure else None
        while error is not None:
            messages.append(error.message)
            error = error.cause
    return " ".join(messages)


def test_tournament_for_a_date_reads_nothing_after_it(tmp_path):
    """Perturbing every price after D leaves every tournament table of D unchanged."""
    cut = "2021-06-30"
    hashes = []
    for variant in ("clean", "perturbed"):
        with dg.instance_for_test() as instance:
            directory = tmp_path / variant
            directory.mkdir()
            defs, manifest_path, lake = prepare(directory, instance, day=cut,
                                                perturb=date.fromisoformat(cut) if variant == "perturbed" else None)
            drive(defs, instance, manifest_path)
            hashes.append({t: lake.content_hash(t, PROFILE, date.fromisoformat(cut)) for t in TOURNAMENT_TABLES})
            assert lake.read_partition("tournament_returns", PROFILE, date.fromisoformat(cut)).height > 0
    assert hashes[0] == hashes[1]


def test_a_configuration_change_reruns_the_cells(tmp_path, tournament):
    defs, instance, lake = tournament["defs"], tournament["instance"], tournament["lake"]
    changed = small_manifest(tmp_path, {**SMALL, "gates": {"max_avg_turnover": 0.4}})
    changed_defs = build_definitions(resources_for(lake.path, changed))
    scoreboard = dg.RunRequest(job_name="tournament_scoreboard_job", partition_key=str(partition_key(PROFILE, DAY)))
    result = execute(changed_defs, instance, scoreboard, raise_on_error=False)
    assert not result.success and "another configuration" in failure_message(result)
    requests = tick(instance, changed).run_requests  # no cursor: the partition is looked at afresh
    assert [r.job_name for r in requests] == ["tournament_cells_job"] * len(GROUPS)
    drive(changed_defs, instance, changed)
    board = lake.read_partition("tournament_scoreboard", PROFILE, date.fromisoformat(DAY))
    assert set(board["gates_id"]) == {load_manifest(changed).profile(PROFILE).tournament.gates.config_id()}
    drive(defs, instance, tournament["manifest"])  # back to the module's configuration


def test_tournament_gates_fail_on_a_damaged_snapshot_or_tampered_returns(tournament):
    defs, instance, lake, root = tournament["defs"], tournament["instance"], tournament["lake"], tournament["root"]
    as_of = date.fromisoformat(DAY)
    gates = defs.resolve_job_def("tournament_gates")
    run = lambda: gates.execute_in_process(instance=instance, tags=partition_tags(PROFILE, DAY),  # noqa: E731
                                           run_config=QUIET, raise_on_error=False)
    assert all(c.passed for c in checks_by_name(run()).values())
    returns_file = snapshot_directory(root, PROFILE, as_of).resolve() / "returns.parquet"
    original = returns_file.read_bytes()
    returns_file.write_bytes(original[:-100])
    try:
        checks = checks_by_name(run())
        assert not checks["tournament_inputs:returns_valid"].passed
        assert "content does not match" in checks["tournament_inputs:returns_valid"].description
    finally:
        returns_file.write_bytes(original)
    stored = lake.read_partition("tournament_returns", PROFILE, as_of)
    lake.replace_partition("tournament_returns", PROFILE, as_of,
                           stored.with_columns(pl.when(pl.int_range(pl.len()) == 3).then(pl.col("ret") + 0.01)
                                               .otherwise(pl.col("ret")).alias("ret")))
    try:
        checks = checks_by_name(run())
        assert not checks["tournament_scoreboard:metrics_reproduce"].passed
        assert checks["tournament_scoreboard:all_cells_ran"].passed
    finally:
        lake.replace_partition("tournament_returns", PROFILE, as_of, stored)


def test_a_snapshot_too_short_for_one_window_is_refused_and_nothing_is_written(tournament):
    lake, as_of = tournament["lake"], date.fromisoformat(DAY)
    profile = load_manifest(tournament["manifest"]).profile(PROFILE)
    short = profile.model_copy(update={"tournament": profile.tournament.model_copy(update={"history_days": 200})})
    with pytest.raises(ValueError, match="fewer than train \\+ test = 292"):
        build_snapshot(StageContext(lake, short, as_of))


def test_windows_choose_from_their_own_pools(tournament):
    """Each window's pool is discovery as of its own date: the pools differ over time, none is dated after its
    window, and every stored selection comes from its window's pool."""
    lake, as_of = tournament["lake"], date.fromisoformat(DAY)
    snapshot, _ = TournamentSnapshot.read(snapshot_directory(tournament["root"], PROFILE, as_of))
    pools = snapshot.pool_map()
    assert len(pools) > 1 and max(pools) <= as_of
    assert len({frozenset(p) for p in pools.values()}) > 1  # the universe changes through time
    windows = lake.read_partition("tournament_windows", PROFILE, as_of).filter(
        (pl.col("engine") == "custom") & (pl.col("simulator") == "custom"))
    for row in windows.iter_rows(named=True):
        assert row["pool_date"] is not None and row["pool_date"] <= row["rebalance_date"]
        chosen = [a for a in row["selected_ids"].split(",") if a]
        assert set(chosen) <= pools[row["pool_date"]], row["window_index"]


def test_a_live_profile_replays_only_the_pools_it_stored(tournament):
    """A live screener cannot be asked about the past: the snapshot offers the pools the data cycle stored (here
    only D's), so every earlier window will hold cash instead of trading today's survivors."""
    lake, as_of = tournament["lake"], date.fromisoformat(DAY)
    profile = load_manifest(tournament["manifest"]).profile(PROFILE)
    live = profile.model_copy(update={"discovery": DiscoverySource.TRADINGVIEW})
    snapshot = build_snapshot(StageContext(lake, live, as_of))
    assert list(snapshot.pool_map()) == [as_of]
    assert snapshot.pool_map()[as_of] == frozenset(
        atoms_frame(lake.read_partition("raw_pool", PROFILE, as_of))["atom_id"])


def test_the_report_writes_dashboard_charts_and_tearsheets_and_shows_them_in_the_ui(tournament):
    from PIL import Image

    from tsp_platform.reports import read_tearsheet_metrics

    defs, instance = tournament["defs"], tournament["instance"]
    result = execute(defs, instance, dg.RunRequest(job_name="portfolio_report_job",
                                                   partition_key=str(partition_key(PROFILE, DAY))))
    [event] = result.get_asset_materialization_events()
    meta = event.event_specific_data.materialization.metadata
    dashboard = Path(meta["dashboard_path"].value)
    text = dashboard.read_text()
    for section in ("## Funnel", "## Regime", "## Data health", "## Scoreboard", "## Final weights"):
        assert section in text, section
    assert meta["dashboard"].value == text and "data:image/png;base64," in meta["charts"].value
    pngs = sorted(dashboard.parent.glob("*.png"))
    assert {p.name for p in pngs} >= {"equity.png", "drawdowns.png", "dendrogram.png", "correlation.png"}
    for png in pngs:
        with Image.open(png) as image:
            image.verify()
    sheets = sorted((dashboard.parent / "tearsheets").glob("*.html"))
    assert len(sheets) == meta["tearsheets"].value >= 3  # every baseline, then the strict candidates
    board = tournament["lake"].read_partition("tournament_scoreboard", PROFILE, date.fromisoformat(DAY))
    market = board.filter((pl.col("scorer") == "market") & (pl.col("simulator") == "custom")).row(0, named=True)
    page = read_tearsheet_metrics(next(p for p in sheets if p.name.startswith("market__")))
    sharpe = next(v for k, v in page.items() if k.strip().lower() == "sharpe")
    assert abs(float(next(iter(sharpe.values()))) - market["sharpe"]) < 0.01


def test_checks_are_reported_on_the_snapshot(tournament):
    defs, instance = tournament["defs"], tournament["instance"]
    result = execute(defs, instance, dg.RunRequest(job_name="tournament_inputs_job",
                                                   partition_key=str(partition_key(PROFILE, DAY))))
    checks = checks_by_name(result)
    assert set(checks) == {"tournament_inputs:span_covers_a_window", "tournament_inputs:returns_valid"}
    assert all(c.passed for c in checks.values())
