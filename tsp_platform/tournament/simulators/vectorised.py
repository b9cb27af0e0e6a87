"""The reference ("custom") simulator: numpy, segment-wise drift and costs, no loop over days.

Accounting (the contract of `tsp_platform.tournament.types`, made exact):

* Weights w are signed fractions of equity per symbol right after a rebalance; cash is 1 − Σw and earns 0
  (a short's proceeds sit in cash, leverage makes cash negative: it is borrowed at 0).
* A rebalance dated D trades at the close of the last session ≤ D: rows dated after D earn its weights.
  `rebalance_rows` maps each rebalance to the first row that earns it (0 for a date before the panel).
* Between rebalances the holdings drift. Over a segment of rows a..b held at w, each holding's value is
  w·cumprod(1 + r) (NaN → 0: no session, the price did not move) and the portfolio value relative to the
  segment's start is V_t = (1 − Σw) + Σ wᵢ·Gᵢ,t, so a short (w < 0) changes the equity by w·r and the drifted
  weights at the end are w·G/V. The day's return is V_t / V_{t−1} − 1.
* Friction at rebalance j: c_j = rate × Σ|w_target − w_drifted| as a fraction of the equity just before the
  trade; the equity is multiplied by (1 − c_j) and the post-trade holdings are w_target of the *post-cost*
  equity (so `final_weights` after a rebalance on the last row are exactly its targets). The cost lands in the
  return of the session at whose close the trade happens; a rebalance dated before the first row is charged in
  row 0's return (row 0 = (1 − c)·(1 + r_p) − 1). Turnover is one-way over the symbols, ½Σ|Δw| (cash excluded:
  cost = 2 × rate × turnover).
* Liquidation: the first row at whose close the equity is ≤ 0 returns −1 (equity 0, no negative equity); every
  later row returns 0, later rebalances do not trade (turnover and cost 0) and `final_weights` are 0.
* `equity` is the product of (1 + returns) from a starting equity of 1 (equity before row 0 is 1).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from tsp_platform.tournament.types import Rebalance, SimulationRequest, SimulationResult


def rebalance_rows(dates: np.ndarray, rebalances: Sequence[Rebalance]) -> np.ndarray:
    """For each rebalance, the first panel row that earns its weights (rows dated strictly after it)."""
    days = np.asarray(dates).astype("datetime64[D]")
    when = np.array([np.datetime64(r.date, "D") for r in rebalances], dtype="datetime64[D]")
    return np.searchsorted(days, when, side="right").astype(np.int64)


def gross_returns(values: np.ndarray) -> np.ndarray:
    """1 + r with NaN (no session) as a zero return."""
    gross = np.asarray(values, dtype=np.float64) + 1.0
    gross[np.isnan(gross)] = 1.0
    return gross


class VectorisedSimulator:
    """Segment-wise numpy simulation: one cumprod per holding period, a Python loop over rebalances only."""

    name = "custom"

    def simulate(self, request: SimulationRequest) -> SimulationResult:
        panel = request.returns
        t_count, n = panel.values.shape
        rate = float(request.friction_rate)
        gross = gross_returns(panel.values)
        rows = rebalance_rows(panel.dates, request.rebalances)
        count = len(rows)

        factor = np.ones(t_count)  # equity[t] = equity[t − 1] × factor[t]
        turnover = np.zeros(count)
        costs = np.zeros(count)
        w = np.zeros(n) if request.initial_weights is None else np.asarray(request.initial_weights, float).copy()
        if w.shape != (n,) or not np.isfinite(w).all():
            raise ValueError(f"initial_weights must be {n} finite numbers")

        liquidated_row: int | None = None
        executed = 0
        start = 0
        for j in range(count + 1):
            end = int(rows[j]) if j < count else t_count
            if end > start and w.any():
                growth = np.multiply.accumulate(gross[start:end], axis=0)  # Gᵢ,t: each holding's value path
                value = growth @ w
                value += 1.0 - w.sum()  # V_t relative to the equity at the segment's start (cash earns 0)
                if value.min() <= 0.0:
                    end = start + int(np.argmax(value <= 0.0))
                    liquidated_row = end
                    value = value[: end - start]
                if len(value):
                    factor[start] *= value[0]
                    factor[start + 1 : end] *= value[1:] / value[:-1]
                if liquidated_row is not None:
                    break
                w = w * growth[-1] / value[-1]
            start = max(start, end)
            if j == count:
                break
            target = request.rebalances[j].weights
            traded = float(np.abs(target - w).sum())
            turnover[j] = 0.5 * traded
            costs[j] = rate * traded
            executed += 1
            row = end - 1 if end > 0 else 0
            if costs[j] >= 1.0:  # friction alone wipes the equity out
                liquidated_row = row
                break
            factor[row] *= 1.0 - costs[j]
            w = np.array(target, dtype=np.float64)

        if liquidated_row is not None:
            factor[liquidated_row] = 0.0
            factor[liquidated_row + 1 :] = 1.0
            w = np.zeros(n)
        returns = factor - 1.0
        equity = np.cumprod(factor)
        liquidated_on = None if liquidated_row is None else panel.dates[liquidated_row].astype("datetime64[D]").item()
        return SimulationResult(
            simulator=self.name,
            dates=panel.dates.astype("datetime64[D]"),
            returns=returns,
            equity=equity,
            turnover=turnover,
            costs=costs,
            final_weights=w,
            liquidated_on=liquidated_on,
            diagnostics={
                "rebalance_rows": rows,
                "rebalances_executed": executed,
                "cost_timing": "return of the rebalance session (trade at its close); before the panel: row 0",
            },
        )
