"""The allocation problem of one decision, built one way for the alpha cycle and for every tournament window.

Given the winners' atom returns up to the decision (SHORT atoms negated) and the benchmark's on the same rows:

1. **Shared sessions.** Only rows where every winner (and the benchmark, when there is one) has a return are
   kept, the last `allocation.window` of them; fewer than `MIN_COMMON_SESSIONS` and there is no problem to
   solve (the alpha cycle refuses the partition, a tournament window holds cash).
2. **Regime.** `detect_regime` on the benchmark over those rows, or on the winners' equal weight without one.
3. **Antifragility.** Each winner's, for the barbell core; a winner without one takes the lowest known value
   (all unknown: none).
4. **The problem.** `AllocationProblem` with the profile's allocation settings, the regime's caps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tsp_platform.allocation.base import AllocationProblem
from tsp_platform.allocation.regime import RegimeReading, detect_regime
from tsp_platform.config.allocation import AllocationConfig, Regime

MIN_COMMON_SESSIONS = 30


@dataclass(frozen=True, eq=False)
class SharedSessions:
    returns: np.ndarray  # (T, N) atom returns on the rows every winner (and the benchmark) has, the last `window`
    benchmark: np.ndarray | None  # (T,) on the same rows

    @property
    def sessions(self) -> int:
        return len(self.returns)

    @property
    def enough(self) -> bool:
        return self.sessions >= MIN_COMMON_SESSIONS


def shared_sessions(atom_returns: np.ndarray, benchmark: np.ndarray | None, window: int) -> SharedSessions:
    """The last `window` rows on which every atom and the benchmark have a return."""
    rows = np.isfinite(atom_returns).all(axis=1)
    if benchmark is not None:
        rows &= np.isfinite(benchmark)
    keep = np.flatnonzero(rows)[-window:]
    return SharedSessions(atom_returns[keep], None if benchmark is None else benchmark[keep])


def regime_basis(shared: SharedSessions) -> tuple[np.ndarray, str]:
    """The market series the regime reads: the benchmark when there is one, else the winners' equal weight."""
    if shared.benchmark is not None:
        return shared.benchmark, "benchmark"
    return shared.returns.mean(axis=1), "equal-weight winners"


def read_regime(shared: SharedSessions, config: AllocationConfig) -> tuple[RegimeReading, str]:
    """(the regime reading, the basis it was read on)."""
    series, basis = regime_basis(shared)
    return detect_regime(series, config.regime), basis


def antifragility_vector(values: Sequence[float | None]) -> np.ndarray | None:
    """Per-winner antifragility; a missing value takes the lowest known one, and none known gives None."""
    af = np.array([np.nan if v is None else v for v in values], dtype=float)
    if np.isnan(af).all():
        return None
    return np.nan_to_num(af, nan=float(np.nanmin(af)))


def allocation_problem(
    atom_ids: Sequence[str],
    clusters: np.ndarray,
    shared: SharedSessions,
    config: AllocationConfig,
    *,
    annualisation: int,
    regime: Regime,
    antifragility: np.ndarray | None,
    allow_short: bool,
    previous_weights: np.ndarray | None = None,
) -> AllocationProblem:
    """The problem every engine solves for one decision (see the module docstring)."""
    return AllocationProblem(
        returns=shared.returns, assets=tuple(atom_ids), clusters=np.asarray(clusters), config=config,
        annualisation=annualisation, regime=regime, benchmark=shared.benchmark, antifragility=antifragility,
        previous_weights=previous_weights, allow_short=allow_short,
    )
