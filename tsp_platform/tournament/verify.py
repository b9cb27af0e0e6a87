"""Checks on a stored tournament: every cell ran, the simulators agree, the stored metrics are the stored returns'.

Each function returns a list of problems (empty = passed), naming the cells at fault.
"""

from __future__ import annotations

import math

import polars as pl

from tsp_platform.config.tournament import TournamentConfig
from tsp_platform.tournament import metrics as M
from tsp_platform.tournament.scoreboard import KEY_COLUMNS
from tsp_platform.tournament.snapshot import TournamentSnapshot

SIMULATED = ("ok", "partial")
METRIC_TOLERANCE = 1e-9


def _name(row: dict) -> str:
    return "/".join(str(row[c]) for c in KEY_COLUMNS)


def span_problem(rows: int, config: TournamentConfig) -> str | None:
    """Why `rows` return rows hold no walk-forward window (None when they hold one)."""
    need = config.windows.train + config.windows.test
    if rows >= need:
        return None
    return (f"{rows} return rows over tournament.history_days={config.history_days}, fewer than train + test = "
            f"{need}: no walk-forward window")


def snapshot_problems(snapshot: TournamentSnapshot, config: TournamentConfig) -> dict[str, list[str]]:
    """`span_covers_a_window`: enough rows for train + test; `returns_valid`: finite, above −100 %."""
    short = span_problem(len(snapshot.panel.dates), config)
    span = [short] if short else []
    bad = snapshot.returns.filter(~pl.col("ret").is_finite() | (pl.col("ret") <= -1.0))
    valid = [f"{s} {d}: return {r}" for s, d, r in bad.select("symbol", "date", "ret").head(5).iter_rows()]
    if bad.height > 5:
        valid.append(f"… {bad.height} invalid returns in all")
    return {"span_covers_a_window": span, "returns_valid": valid}


def failed_cells(cells: pl.DataFrame) -> list[str]:
    """Cells whose allocation or simulation raised (`status == "failed"`), with their errors."""
    failed = cells.filter(pl.col("status") == "failed")
    return [f"{_name(row)}: {row['message']}" for row in failed.iter_rows(named=True)]


def parity_problems(board: pl.DataFrame, config: TournamentConfig) -> list[str]:
    """Simulated cells whose annual return differs between simulators by more than the parity gate."""
    limit = config.gates.max_parity_gap
    if limit is None or len(config.simulators) < 2:
        return []
    rows = board.filter(pl.col("status").is_in(SIMULATED))
    return [
        f"{_name(row)}: parity gap {row['parity_gap']:.4%} > {limit:.2%}"
        if row["parity_gap"] is not None and not math.isnan(row["parity_gap"])
        else f"{_name(row)}: parity gap not measurable"
        for row in rows.iter_rows(named=True)
        if row["parity_gap"] is None or math.isnan(row["parity_gap"]) or row["parity_gap"] > limit
    ]


def metric_problems(cells: pl.DataFrame, returns: pl.DataFrame, annualisation: int) -> list[str]:
    """Cells whose stored CAGR, Sharpe or max drawdown differ from those of their stored daily returns."""
    problems = []
    series = {key: frame for key, frame in returns.sort("date").group_by(list(KEY_COLUMNS), maintain_order=True)}
    for row in cells.filter(pl.col("status").is_in(SIMULATED)).iter_rows(named=True):
        frame = series.get(tuple(row[c] for c in KEY_COLUMNS))
        if frame is None:
            problems.append(f"{_name(row)}: no stored returns")
            continue
        r = frame["ret"].to_numpy()
        recomputed = {"cagr": M.cagr(r, annualisation), "sharpe": M.sharpe(r, annualisation),
                      "max_drawdown": M.max_drawdown(r)}
        for metric, value in recomputed.items():
            stored = row[metric]
            both_nan = (stored is None or math.isnan(stored)) and math.isnan(value)
            if not both_nan and not (stored is not None and abs(stored - value) <= METRIC_TOLERANCE):
                problems.append(f"{_name(row)}: stored {metric} {stored} ≠ {value} from its returns")
    return problems
