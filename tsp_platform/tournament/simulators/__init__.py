"""Simulators: given weights at rebalance dates, the daily net returns, equity, turnover and costs of a cell.

Every simulator follows the accounting of `tsp_platform.tournament.types` (drift between rebalances, holdings
carried in and out, friction on traded notional, liquidation at zero equity).

* ``custom`` — `VectorisedSimulator`: numpy, segment-wise drift and costs; the reference.
* ``cvxportfolio`` — `CvxportfolioSimulator`: cvxportfolio's `MarketSimulator` on the same returns with its
  `TransactionCost` set to the same linear friction; the cross-check.
* ``nautilus`` — nautilus_trader's event-driven engine (`simulators/nautilus.py`), imported on first use.

Parity: on the same weights the annualised-return gap between two simulators is reported per cell
(`parity_gap`) and gated at `PARITY_GAP_GATE` (1.5 %).
"""

from __future__ import annotations

from typing import Callable, Protocol, runtime_checkable

import numpy as np

from tsp_platform.tournament.simulators.cvx import CvxportfolioSimulator
from tsp_platform.tournament.simulators.vectorised import VectorisedSimulator, rebalance_rows
from tsp_platform.tournament.types import SimulationRequest, SimulationResult

PARITY_GAP_GATE = 0.015


@runtime_checkable
class Simulator(Protocol):
    name: str

    def simulate(self, request: SimulationRequest) -> SimulationResult: ...


_REGISTRY: dict[str, Callable[[], Simulator]] = {}


def register(name: str, factory: Callable[[], Simulator]) -> None:
    """Register a simulator factory under `name` (re-registering a name replaces it)."""
    _REGISTRY[name] = factory


def get_simulator(name: str) -> Simulator:
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown simulator {name!r}; registered: {', '.join(sorted(_REGISTRY))}") from None
    return factory()


def available_simulators() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def _nautilus() -> Simulator:  # imported on demand: nautilus_trader is heavy and optional
    from tsp_platform.tournament.simulators.nautilus import NautilusSimulator

    return NautilusSimulator()


register(VectorisedSimulator.name, VectorisedSimulator)
register(CvxportfolioSimulator.name, CvxportfolioSimulator)
register("nautilus", _nautilus)


def annualised_return(result: SimulationResult, periods_per_year: float) -> float:
    """Compound annual growth of the result's final equity over its rows (−1 once liquidated)."""
    rows = len(result.returns)
    if rows == 0:
        return 0.0
    final = float(result.equity[-1])
    if final <= 0.0:
        return -1.0
    return final ** (periods_per_year / rows) - 1.0


def parity_gap(a: SimulationResult, b: SimulationResult, periods_per_year: float) -> float:
    """|annualised return of a − of b| for two simulations of the same request."""
    if len(a.returns) != len(b.returns) or not np.array_equal(a.dates, b.dates):
        raise ValueError("parity compares two simulations of the same panel")
    return abs(annualised_return(a, periods_per_year) - annualised_return(b, periods_per_year))


__all__ = [
    "PARITY_GAP_GATE",
    "CvxportfolioSimulator",
    "Simulator",
    "VectorisedSimulator",
    "annualised_return",
    "available_simulators",
    "get_simulator",
    "parity_gap",
    "rebalance_rows",
    "register",
]
