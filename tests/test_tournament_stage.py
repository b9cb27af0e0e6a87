"""Tournament stage pieces without Dagster: snapshot files, cell groups, failures recorded, scoreboard rows."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError

import partitions
from tests.test_tournament_cell import make_panel, pool_atoms
from tsp_platform.config import load_manifest
from tsp_platform.config.tournament import TournamentConfig
from tsp_platform.core.frame_files import FrameFilesError, read_frames, write_frames
from tsp_platform.lakehouse import Lakehouse
from tsp_platform.tournament import stage
from tsp_platform.tournament.snapshot import SnapshotError, TournamentSnapshot

AS_OF = date(2022, 9, 1)
SMALL = TournamentConfig(
    windows={"train": 252, "test": 63, "step": 63}, engines=("custom",), risk_profiles=("equal_weight", "hrp"),
    simulators=("custom", "nautilus"),
)


def snapshot(values=None) -> TournamentSnapshot:
    panel = make_panel(values=values)
    returns = pl.DataFrame({
        "symbol": np.repeat(panel.symbols, len(panel.dates)),
        "date": np.tile(panel.dates, len(panel.symbols)),
        "ret": panel.values.T.ravel(),
    }).filter(pl.col("ret").is_not_nan())
    bars = returns.select("symbol", "date", pl.lit(None, pl.Float64).alias("open"), pl.lit(None, pl.Float64).alias("high"),
                          pl.lit(None, pl.Float64).alias("low"), (1 + pl.col("ret")).cum_prod().over("symbol").alias("close"),
                          pl.lit(None, pl.Float64).alias("volume"))
    meta = pl.DataFrame({"symbol": list(panel.symbols), "has_execution_metadata": True})
    atoms = pool_atoms()
    pools = atoms.select(pl.lit(returns["date"].min()).alias("pool_date"), "atom_id")  # one pool, from day one
    return TournamentSnapshot("us_equities_sample", returns["date"].max(), returns, atoms, pools, bars, meta)


def profile(config: TournamentConfig = SMALL):
    base = load_manifest(None).profile("us_equities_sample")
    return base.model_copy(update={"benchmark": "MKT", "tournament": config})


# ------------------------------------------------------------------------------------------------ frame files


def test_frame_files_round_trip_and_refuse_damage(tmp_path):
    frames = {"a": pl.DataFrame({"x": [1, 2, 3]}), "b": pl.DataFrame({"y": ["u", "v"]})}
    content_id = write_frames(tmp_path / "set", frames, {"note": "hello"})
    read, info, read_id = read_frames(tmp_path / "set", ("a", "b"))
    assert read["a"].equals(frames["a"]) and read["b"].equals(frames["b"])
    assert info == {"note": "hello"} and read_id == content_id
    with pytest.raises(FrameFilesError, match="c.parquet is missing"):
        read_frames(tmp_path / "set", ("a", "c"))
    (tmp_path / "set" / "a.parquet").write_bytes(b"not parquet")
    with pytest.raises(FrameFilesError, match="a.parquet: content does not match"):
        read_frames(tmp_path / "set", ("a",))
    with pytest.raises(FrameFilesError, match="no manifest.json"):
        read_frames(tmp_path / "elsewhere", ("a",))


def test_a_failed_rewrite_leaves_the_previous_files(tmp_path, monkeypatch):
    directory = tmp_path / "set"
    write_frames(directory, {"a": pl.DataFrame({"x": [1]})}, {"v": 1})
    calls = []

    def failing(self, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full")
        return original(self, path, *args, **kwargs)

    original = pl.DataFrame.write_parquet
    monkeypatch.setattr(pl.DataFrame, "write_parquet", failing)
    with pytest.raises(OSError, match="disk full"):
        write_frames(directory, {"a": pl.DataFrame({"x": [2]}), "b": pl.DataFrame({"y": [3]})}, {"v": 2})
    frames, info, _ = read_frames(directory, ("a",))
    assert info == {"v": 1} and frames["a"]["x"].to_list() == [1]
    assert len(list(tmp_path.iterdir())) == 2  # the link and its one version: the failed version is gone


def test_a_rewrite_swaps_versions_whole_and_removes_the_old_one(tmp_path):
    directory = tmp_path / "set"
    first = write_frames(directory, {"a": pl.DataFrame({"x": [1]})}, {"v": 1})
    old_version = directory.resolve()
    second = write_frames(directory, {"a": pl.DataFrame({"x": [2]})}, {"v": 2})
    frames, info, content_id = read_frames(directory, ("a",))
    assert (frames["a"]["x"].to_list(), info, content_id) == ([2], {"v": 2}, second) and first != second
    assert not old_version.exists() and len(list(tmp_path.iterdir())) == 2
    # A reader that resolved the old version before the swap fails loudly instead of mixing versions.
    with pytest.raises(FrameFilesError, match="no manifest.json"):
        read_frames(old_version, ("a",))


def test_snapshot_round_trip_and_point_in_time_guard(tmp_path):
    snap = snapshot()
    content_id = snap.write(tmp_path / "inputs")
    again, read_id = TournamentSnapshot.read(tmp_path / "inputs")
    assert read_id == content_id and again.returns.equals(snap.returns) and again.as_of == snap.as_of
    assert snap.write(tmp_path / "inputs") == content_id  # the same content has the same id
    with pytest.raises(SnapshotError, match="materialise tournament_inputs"):
        TournamentSnapshot.read(tmp_path / "missing")
    with pytest.raises(SnapshotError, match="after the as-of date"):
        TournamentSnapshot(snap.profile, date(2020, 6, 1), snap.returns, snap.atoms, snap.pools, snap.bars, snap.meta)
    with pytest.raises(SnapshotError, match="cannot run profile"):
        snap.inputs(load_manifest(None).profile("crypto_synthetic"))


# ------------------------------------------------------------------------------------------------ cell groups


def test_cell_group_runs_every_scorer_profile_and_simulator():
    snap, prof = snapshot(), profile()
    batch = stage.run_cell_group(snap, prof, "custom", "run1", "snap1")
    cells = batch.cells
    assert cells.height == 2 * 2 * 2  # scorers × risk profiles × simulators
    assert set(cells["simulator"]) == {"custom", "nautilus"} and (cells["status"] == "ok").all()
    assert (cells["profile"] == snap.profile).all() and (cells["as_of"] == snap.as_of).all()
    gap = cells.pivot(on="simulator", index=["scorer", "risk_profile"], values="cagr")
    assert (gap["custom"] - gap["nautilus"]).abs().max() < 1e-4
    # weights are stored once per cell (simulators share them), windows once per simulator
    assert batch.weights.select("scorer", "risk_profile").unique().height == 4
    assert batch.windows.height == cells.height * cells["windows"][0]
    baselines = stage.run_cell_group(snap, prof, "baseline", "run1", "snap1").cells
    assert set(baselines["scorer"]) == {"market", "selected_ew", "raw_pool_ew"} and baselines["is_baseline"].all()
    with pytest.raises(ValueError, match="unknown cell group 'skfolio'"):
        stage.run_cell_group(snap, prof, "skfolio", "run1")


def test_frictionless_runs_agree_across_simulators_so_one_twin_serves_all():
    """Friction decay compares each simulator's costed Sharpe with one frictionless twin (the reference's): without
    costs the simulators' accounting is the same, so the twin is the same whichever simulator runs it."""
    from tsp_platform.tournament.cell import plan_cell, select_windows, simulate_plan

    inputs = snapshot().inputs(profile())
    selections = select_windows(inputs)
    for risk_profile in ("min_variance", "hrp"):
        plan = plan_cell(inputs, selections, None, risk_profile, "custom")
        assert plan.status == "ok"
        ideal = {sim: simulate_plan(inputs, selections, plan, sim).ideal_metrics.sharpe
                 for sim in ("custom", "cvxportfolio", "nautilus")}
        assert abs(ideal["cvxportfolio"] - ideal["custom"]) < 1e-9
        assert abs(ideal["nautilus"] - ideal["custom"]) < 1e-4  # nautilus rounds prices and quantities


def test_a_cell_that_raises_is_recorded_as_failed_not_hidden(monkeypatch):
    real = stage.plan_cell

    def broken(inputs, selections, scorer, risk_profile, engine):
        if str(risk_profile) == "hrp":
            raise np.linalg.LinAlgError("matrix is singular")
        return real(inputs, selections, scorer, risk_profile, engine)

    monkeypatch.setattr(stage, "plan_cell", broken)
    cells = stage.run_cell_group(snapshot(), profile(), "custom", "run1").cells
    failed = cells.filter(pl.col("status") == "failed")
    assert failed.height == 4 and set(failed["risk_profile"]) == {"hrp"}
    assert failed["message"].str.contains("LinAlgError: matrix is singular").all()
    assert failed["sharpe"].is_null().all()
    assert (cells.filter(pl.col("risk_profile") == "equal_weight")["status"] == "ok").all()


def test_too_short_a_span_is_a_clear_error():
    values = make_panel().values[:300]
    short = snapshot(values=np.vstack([values, np.full((400, values.shape[1]), np.nan)]))
    with pytest.raises(ValueError, match="fewer than train \\+ test"):
        stage.run_cell_group(short, profile(), "custom", "run1")


# ------------------------------------------------------------------------------------------------- scoreboard


def _batches():
    snap, prof = snapshot(), profile()
    return prof, [stage.run_cell_group(snap, prof, g, "run1", "snap1") for g in prof.tournament.cell_groups()]


def test_scoreboard_rows_measure_tail_risk_against_market_and_parity_against_the_reference():
    prof, batches = _batches()
    cells = pl.concat([b.cells for b in batches])
    returns = pl.concat([b.returns for b in batches])
    board = stage.build_scoreboard_rows(cells, returns, prof.tournament)
    assert board.height == cells.height
    row = board.filter((pl.col("scorer") == "log_mps") & (pl.col("risk_profile") == "hrp")
                       & (pl.col("simulator") == "nautilus")).row(0, named=True)
    ref = cells.filter((pl.col("scorer") == "log_mps") & (pl.col("risk_profile") == "hrp")
                       & (pl.col("simulator") == "custom")).row(0, named=True)
    assert row["parity_gap"] == pytest.approx(abs(row["cagr"] - ref["cagr"]))
    mine = returns.filter((pl.col("scorer") == "log_mps") & (pl.col("risk_profile") == "hrp")
                          & (pl.col("simulator") == "nautilus"))["ret"].to_numpy()
    market = returns.filter((pl.col("scorer") == "market") & (pl.col("simulator") == "nautilus"))["ret"].to_numpy()
    from tsp_platform.tournament.metrics import tail_risk_ratio

    assert row["tail_risk_ratio"] == pytest.approx(tail_risk_ratio(mine, market))
    assert board["gates_id"].n_unique() == 1
    with pytest.raises(LookupError, match="groups \\['baseline'\\]"):
        stage.build_scoreboard_rows(cells.filter(~pl.col("is_baseline")), returns, prof.tournament)


def test_one_simulator_cannot_claim_parity():
    config = TournamentConfig.model_validate({**SMALL.model_dump(), "simulators": ["custom"]})
    snap, prof = snapshot(), profile(config)
    batches = [stage.run_cell_group(snap, prof, g, "r", "s") for g in config.cell_groups()]
    board = stage.build_scoreboard_rows(pl.concat([b.cells for b in batches]), pl.concat([b.returns for b in batches]),
                                        config)
    assert board["parity_gap"].is_nan().all() and not board["strict"].any()
    assert board.filter(~pl.col("is_baseline"))["failed_gates"].str.contains("missing:parity_gap").all()


def test_store_tournament_is_all_or_nothing_and_refuses_stale_groups(tmp_path):
    from tsp_platform.context import StageContext
    from tsp_platform.lakehouse.schema import TABLES

    lake = Lakehouse(tmp_path / "lake.duckdb")
    with lake.connect() as conn:
        for table in TABLES.values():
            conn.execute(table.ddl())
    prof, batches = _batches()
    ctx = StageContext(lake, prof, batches[0].cells["as_of"][0])
    board = stage.store_tournament(ctx, batches, "snap1")
    stored = lake.read_partition("tournament_scoreboard", prof.name, ctx.as_of)
    assert stored.height == board.height == batches[0].cells.height + batches[1].cells.height
    before = {t: lake.content_hash(t, prof.name, ctx.as_of) for t in stage.CELL_TABLES}
    with pytest.raises(LookupError, match="older tournament snapshot"):
        stage.store_tournament(ctx, batches, "snap2")
    assert before == {t: lake.content_hash(t, prof.name, ctx.as_of) for t in stage.CELL_TABLES}


# ----------------------------------------------------------------------------------------- config, partitions


def test_tournament_config_rejects_baselines_and_an_absent_reference():
    with pytest.raises(ValidationError, match="baselines"):
        TournamentConfig(risk_profiles=("hrp", "market"))
    with pytest.raises(ValidationError, match="parity_reference"):
        TournamentConfig(simulators=("nautilus",))
    with pytest.raises(ValidationError, match="distinct"):
        TournamentConfig(engines=("custom", "custom"))
    with pytest.raises(ValidationError, match="extra"):
        TournamentConfig(windowz={"train": 10})


def test_cell_keys_round_trip():
    key = partitions.cell_key("equities", "2022-12-28", "skfolio")
    assert key == "2022-12-28|us_equities_sample|skfolio"
    assert partitions.cell_of(key) == ("us_equities_sample", date(2022, 12, 28), "skfolio")
    prof = load_manifest(None).profile("us_equities_sample")
    assert [partitions.cell_of(k)[2] for k in partitions.cell_keys(prof, "2022-12-28")] == [
        "custom", "skfolio", "riskfolio", "cvxportfolio", "baseline"]
    with pytest.raises(ValueError, match="free of"):
        partitions.cell_key("equities", "2022-12-28", "a|b")
    with pytest.raises(ValueError, match="unknown profile"):
        partitions.cell_of("2022-12-28|nobody|custom")
