"""The strict scoreboard: each gate fails on a crafted cell, missing metrics reported, baselines never strict."""

from __future__ import annotations

import math

import polars as pl
import pytest
from pydantic import ValidationError

from tsp_platform.config.tournament import ScoreboardGates
from tsp_platform.tournament.scoreboard import GATE_NAMES, build_scoreboard, strict_candidates

CLEAN = {
    "sharpe": 1.2,
    "cagr": 0.15,
    "friction_decay": 0.10,
    "sharpe_dispersion": 0.8,
    "selection_overlap": 0.6,
    "avg_turnover": 0.2,
    "tail_risk_ratio": 0.9,
    "parity_gap": 0.005,
}

# one crafted failing value per gate (selection_overlap is a floor, the others are ceilings)
FAILING = {
    "friction_decay": 0.45,
    "sharpe_dispersion": 2.0,
    "selection_overlap": 0.1,
    "avg_turnover": 0.9,
    "tail_risk_ratio": 1.6,
    "parity_gap": 0.03,
}


def cell(engine: str, *, profile: str = "max_sharpe", baseline: bool = False, **metrics) -> dict:
    return {
        "scorer": "log_mps",
        "risk_profile": profile,
        "engine": engine,
        "simulator": "custom",
        "is_baseline": baseline,
        **CLEAN,
        **metrics,
    }


def frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema_overrides={m: pl.Float64 for m in CLEAN})


def row(board: pl.DataFrame, engine: str) -> dict:
    return board.filter(pl.col("engine") == engine).row(0, named=True)


def test_defaults_and_config():
    gates = ScoreboardGates()
    assert (gates.max_friction_decay, gates.max_sharpe_dispersion, gates.min_selection_overlap) == (0.30, 1.5, 0.30)
    assert (gates.max_avg_turnover, gates.max_tail_risk_ratio, gates.max_parity_gap) == (0.5, 1.25, 0.015)
    assert GATE_NAMES == tuple(FAILING)
    with pytest.raises(ValidationError):
        ScoreboardGates(max_turnover=0.4)  # unknown key
    with pytest.raises(ValidationError):
        ScoreboardGates(min_selection_overlap=1.5)
    with pytest.raises(ValidationError):
        ScoreboardGates(max_parity_gap=float("nan"))
    with pytest.raises(ValidationError):
        gates.max_avg_turnover = 0.9  # frozen
    assert ScoreboardGates(max_tail_risk_ratio=3.0).config_id() != gates.config_id()


def test_clean_cell_is_strict():
    board = build_scoreboard(frame([cell("custom")]))
    r = board.row(0, named=True)
    assert r["strict"] is True and r["failed_gates"] == [] and r["strict_rank"] == 1


@pytest.mark.parametrize("gate", list(FAILING))
def test_each_gate_fails_on_a_crafted_cell(gate: str):
    board = build_scoreboard(frame([cell("clean"), cell("crafted", **{gate: FAILING[gate]})]))
    assert row(board, "clean")["strict"] is True and row(board, "clean")["failed_gates"] == []
    crafted = row(board, "crafted")
    assert crafted["strict"] is False and crafted["failed_gates"] == [gate] and crafted["strict_rank"] is None


def test_thresholds_are_inclusive_and_configurable():
    at_limit = cell("edge", friction_decay=0.30, sharpe_dispersion=1.5, selection_overlap=0.30, avg_turnover=0.5,
                    tail_risk_ratio=1.25, parity_gap=0.015)
    assert row(build_scoreboard(frame([at_limit])), "edge")["strict"] is True
    commodity = ScoreboardGates(max_tail_risk_ratio=3.0, max_parity_gap=0.05)
    risky = cell("risky", tail_risk_ratio=2.5, parity_gap=0.04)
    assert row(build_scoreboard(frame([risky])), "risky")["failed_gates"] == ["tail_risk_ratio", "parity_gap"]
    assert row(build_scoreboard(frame([risky]), commodity), "risky")["strict"] is True


def test_disabled_gate_needs_no_column():
    cells = frame([cell("custom")]).drop("parity_gap")  # a single-simulator tournament
    with pytest.raises(ValueError, match="parity_gap"):
        build_scoreboard(cells)
    board = build_scoreboard(cells, ScoreboardGates(max_parity_gap=None))
    assert board.row(0, named=True)["strict"] is True


def test_missing_metrics_are_reported():
    board = build_scoreboard(frame([
        cell("null", friction_decay=None),
        cell("nan", tail_risk_ratio=float("nan"), avg_turnover=0.9),
        cell("nosharpe", sharpe=float("nan")),
    ]))
    assert row(board, "null")["failed_gates"] == ["missing:friction_decay"]
    assert row(board, "nan")["failed_gates"] == ["avg_turnover", "missing:tail_risk_ratio"]
    assert row(board, "nosharpe")["failed_gates"] == ["missing:sharpe"]
    assert not board["strict"].any()


def test_baselines_are_reference_rows_never_strict():
    rows = [
        cell("custom", sharpe=0.9),
        cell("market", profile="market", baseline=True, sharpe=2.0, tail_risk_ratio=1.0),
        cell("benchmark", profile="benchmark", baseline=True, sharpe=1.5, avg_turnover=0.7),
        cell("raw_pool_ew", profile="raw_pool_ew", baseline=True, selection_overlap=None),
    ]
    board = build_scoreboard(frame(rows))
    for engine in ("market", "benchmark", "raw_pool_ew"):
        r = row(board, engine)
        assert r["strict"] is False and r["strict_rank"] is None
    # their gates are still evaluated and reported
    assert row(board, "market")["failed_gates"] == []
    assert row(board, "benchmark")["failed_gates"] == ["avg_turnover"]
    assert row(board, "raw_pool_ew")["failed_gates"] == ["missing:selection_overlap"]
    # the only strict candidate ranks first even though two baselines have a higher Sharpe
    assert row(board, "custom")["strict_rank"] == 1
    assert board["engine"].to_list()[0] == "custom" and board["is_baseline"].to_list()[1:] == [True] * 3


def test_rank_and_order():
    rows = [
        cell("b", sharpe=0.8),
        cell("a", sharpe=1.4),
        cell("c", sharpe=1.4),  # a tie with "a": broken by key order
        cell("failed_high", sharpe=3.0, avg_turnover=2.0),
        cell("failed_nan", sharpe=float("nan"), avg_turnover=2.0),
        cell("base", baseline=True, sharpe=5.0),
    ]
    board = build_scoreboard(frame(rows))
    assert board["engine"].to_list() == ["a", "c", "b", "failed_high", "failed_nan", "base"]
    assert board["strict_rank"].to_list() == [1, 2, 3, None, None, None]
    assert board.schema["failed_gates"] == pl.List(pl.String) and board.schema["strict_rank"] == pl.UInt32
    assert strict_candidates(board)["engine"].to_list() == ["a", "c", "b"]
    assert board.height == len(rows) and math.isclose(row(board, "a")["cagr"], 0.15)  # input columns kept


def test_input_validation():
    with pytest.raises(ValueError, match="duplicate"):
        build_scoreboard(frame([cell("x"), cell("x")]))
    with pytest.raises(ValueError, match="is_baseline"):
        build_scoreboard(frame([cell("x")]).with_columns(pl.lit(None, dtype=pl.Boolean).alias("is_baseline")))
    with pytest.raises(ValueError, match="lack"):
        build_scoreboard(frame([cell("x")]).drop("scorer"))
