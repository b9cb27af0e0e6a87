"""Contracts shared by the walk-forward runner, the simulators and the metrics.

Weights are signed fractions of equity held in each physical symbol right after a rebalance (a short is
negative); cash is 1 − Σw and earns nothing. Between rebalances the weights drift with prices. Friction is
charged on traded notional at each rebalance: (slippage + commission) × Σ|w_target − w_drifted| × equity.
An equity that reaches zero is liquidated: the cell stays flat (zero returns) for the rest of the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np

from tsp_platform.core.panel import ReturnsPanel


@dataclass(frozen=True, eq=False)
class Rebalance:
    """Trade to `weights` at the close of `date` (returns from the next session on earn the new weights)."""

    date: date
    weights: np.ndarray  # (N,) over the simulation panel's symbols, signed


@dataclass(frozen=True, eq=False)
class SimulationRequest:
    returns: ReturnsPanel  # physical daily simple returns over the simulated span; NaN = no session (0 return)
    rebalances: tuple[Rebalance, ...]  # ascending dates inside the panel, the first at or before its first row
    friction_rate: float  # slippage + commission, as a fraction of traded notional (6 bp = 0.0006)
    initial_weights: np.ndarray | None = None  # holdings carried in (None: start in cash)

    def __post_init__(self):
        if len(self.returns.dates) == 0:
            raise ValueError("cannot simulate an empty returns panel")
        if not np.isfinite(self.friction_rate) or self.friction_rate < 0:
            raise ValueError(f"friction_rate must be a finite non-negative number, got {self.friction_rate}")
        n = len(self.returns.symbols)
        for rebalance in self.rebalances:
            if rebalance.weights.shape != (n,) or not np.isfinite(rebalance.weights).all():
                raise ValueError(f"rebalance on {rebalance.date}: weights must be {n} finite numbers")
        dates = [r.date for r in self.rebalances]
        if dates != sorted(dates) or len(set(dates)) != len(dates):
            raise ValueError("rebalance dates must be strictly ascending")


@dataclass(frozen=True, eq=False)
class SimulationResult:
    simulator: str
    dates: np.ndarray  # (T,) datetime64[D]
    returns: np.ndarray  # (T,) daily portfolio returns net of costs
    equity: np.ndarray  # (T,) equity after each day, starting from 1
    turnover: np.ndarray  # (R,) one-way turnover ½Σ|Δw| at each rebalance
    costs: np.ndarray  # (R,) costs paid at each rebalance, as a fraction of equity then
    final_weights: np.ndarray  # (N,) drifted weights after the last day (holdings to carry forward)
    liquidated_on: date | None = None
    diagnostics: dict = field(default_factory=dict)
