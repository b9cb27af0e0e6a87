"""The strict scoreboard: which tournament cells pass every gate, and which gates every other cell failed.

Input: one row per cell, identified by (scorer, risk_profile, engine, simulator), with `is_baseline` (bool), its
`sharpe` (used to rank) and the research metrics the gates read (see `tsp_platform.tournament.metrics`):

The thresholds are `config.tournament.ScoreboardGates`:

| gate (= metric column) | passes when | default |
|---|---|---|
| friction_decay | ≤ max_friction_decay | 0.30 |
| sharpe_dispersion | ≤ max_sharpe_dispersion | 1.5 |
| selection_overlap | ≥ min_selection_overlap | 0.30 |
| avg_turnover | ≤ max_avg_turnover | 0.5 |
| tail_risk_ratio | ≤ max_tail_risk_ratio (× market) | 1.25 |
| parity_gap | ≤ max_parity_gap (annual return) | 0.015 |

A threshold set to None disables its gate (its column may then be absent). A null or NaN metric fails its gate as
`missing:<metric>`; a null or NaN `sharpe` is reported as `missing:sharpe` (a candidate must be rankable).

Output: the input columns plus
* `failed_gates` (list[str]): failed gate names in table order, then `missing:sharpe` if any; empty = passed all;
* `strict` (bool): passed every gate and is not a baseline;
* `strict_rank` (u32, null unless strict): 1 = the strict candidate with the highest Sharpe (ties: key order).

Baselines (market, equal weight of the selected pool, equal weight of the raw pool) are reference rows: their
gates are evaluated and reported like any cell's, but they are never strict. Rows are ordered: strict candidates by
rank, then the other cells, then the baselines, each by Sharpe (highest first, missing last), then by key.
"""

from __future__ import annotations

import polars as pl

from tsp_platform.config.tournament import ScoreboardGates

KEY_COLUMNS = ("scorer", "risk_profile", "engine", "simulator")
RANK_METRIC = "sharpe"


GATE_NAMES = tuple(metric for metric, _, _ in ScoreboardGates().gates())


def _missing(column: str) -> pl.Expr:
    value = pl.col(column).cast(pl.Float64)
    return value.is_null() | value.is_nan()


def _failure(metric: str, op: str, threshold: float) -> pl.Expr:
    value = pl.col(metric).cast(pl.Float64)
    passed = value <= threshold if op == "le" else value >= threshold
    return (
        pl.when(_missing(metric))
        .then(pl.lit(f"missing:{metric}"))
        .when(~passed)
        .then(pl.lit(metric))
        .otherwise(pl.lit(None, dtype=pl.String))
    )


def build_scoreboard(cells: pl.DataFrame, gates: ScoreboardGates | None = None) -> pl.DataFrame:
    """Evaluate every gate on every cell; mark and rank the strict candidates (see the module docstring)."""
    gates = gates or ScoreboardGates()
    enabled = gates.gates()
    required = (*KEY_COLUMNS, "is_baseline", RANK_METRIC, *(metric for metric, _, _ in enabled))
    absent = [c for c in required if c not in cells.columns]
    if absent:
        raise ValueError(f"scoreboard cells lack columns {absent}")
    reserved = [c for c in ("failed_gates", "strict", "strict_rank") if c in cells.columns]
    if reserved:
        raise ValueError(f"scoreboard cells already carry output columns {reserved}")
    if cells.schema["is_baseline"] != pl.Boolean or cells["is_baseline"].null_count():
        raise ValueError("is_baseline must be a non-null boolean column")
    if cells.select(KEY_COLUMNS).is_duplicated().any():
        raise ValueError(f"duplicate cells: {list(KEY_COLUMNS)} must identify a row")

    failures = [_failure(metric, op, threshold) for metric, op, threshold in enabled]
    failures.append(
        pl.when(_missing(RANK_METRIC)).then(pl.lit(f"missing:{RANK_METRIC}")).otherwise(pl.lit(None, dtype=pl.String))
    )
    board = cells.with_columns(failed_gates=pl.concat_list(failures).list.drop_nulls())
    board = board.with_columns(strict=~pl.col("is_baseline") & (pl.col("failed_gates").list.len() == 0))

    group = pl.when(pl.col("strict")).then(0).when(~pl.col("is_baseline")).then(1).otherwise(2)
    sharpe_key = pl.col(RANK_METRIC).cast(pl.Float64).fill_nan(None)
    board = (
        board.with_columns(_group=group, _sharpe=sharpe_key)
        .sort(["_group", "_sharpe", *KEY_COLUMNS], descending=[False, True, *[False] * len(KEY_COLUMNS)],
              nulls_last=True)
        .with_columns(
            strict_rank=pl.when(pl.col("strict"))
            .then(pl.int_range(1, pl.len() + 1, dtype=pl.UInt32))
            .otherwise(pl.lit(None, dtype=pl.UInt32))
        )
        .drop("_group", "_sharpe")
    )
    return board


def strict_candidates(board: pl.DataFrame) -> pl.DataFrame:
    """The strict rows of a scoreboard, best first."""
    return board.filter(pl.col("strict")).sort("strict_rank")
