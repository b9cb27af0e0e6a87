"""The allocation contract every engine implements.

An engine is a small object with one lifecycle (skfolio style): the constructor stores parameters,
`allocate(problem, profile)` returns the weights, and nothing else is mutated. A profile an engine cannot
solve raises `NotSupported` (never a silent substitute); a solver that fails raises `SolverFailed`, and the
caller walks the declared fallback chain, recording which fallback served.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from tsp_platform.allocation.projection import CappedSet, capped_set
from tsp_platform.config.allocation import AllocationConfig, EngineName, Regime, RiskProfile


class NotSupported(Exception):
    """The engine does not implement this profile."""

    def __init__(self, engine: str, profile: str, why: str = ""):
        super().__init__(f"{engine} does not support {profile}" + (f": {why}" if why else ""))
        self.engine, self.profile = engine, profile


class SolverFailed(RuntimeError):
    """The engine supports the profile but its solve failed (infeasible, non-finite, did not converge)."""


@dataclass(frozen=True, eq=False)
class AllocationProblem:
    """Train-window inputs of one allocation; `returns` has no NaN (rows are the common sessions)."""

    returns: np.ndarray  # (T, N) daily simple returns of the atoms (SHORT atoms already negated)
    assets: tuple[str, ...]  # (N,) atom ids
    clusters: np.ndarray  # (N,) cluster labels of the atoms
    config: AllocationConfig
    annualisation: int = 252
    regime: Regime = Regime.NORMAL
    benchmark: np.ndarray | None = None  # (T,) benchmark returns on the same rows (market_neutral)
    antifragility: np.ndarray | None = None  # (N,) per atom (barbell core)
    previous_weights: np.ndarray | None = None  # (N,) current holdings (turnover penalty)
    allow_short: bool = False

    def __post_init__(self):
        t, n = self.returns.shape
        if n != len(self.assets) or len(self.clusters) != n:
            raise ValueError(f"problem shape mismatch: returns {self.returns.shape}, {len(self.assets)} assets")
        if not np.isfinite(self.returns).all():
            raise ValueError("allocation returns must be finite (align to common sessions first)")
        if self.benchmark is not None and len(self.benchmark) != t:
            raise ValueError("benchmark returns must cover the same rows")

    @property
    def n_assets(self) -> int:
        return self.returns.shape[1]

    @property
    def cluster_cap(self) -> float:
        return self.config.cluster_caps[self.regime]

    @property
    def upper(self) -> np.ndarray:
        """Per-asset upper bound, never below 1/N so the budget stays feasible."""
        return np.full(self.n_assets, max(self.config.max_weight, 1.0 / self.n_assets))

    def capped_set(self) -> CappedSet:
        """The long-only set every engine solves over: 0 ≤ w ≤ `upper`, the regime's cluster caps, Σw = 1."""
        return capped_set(self.clusters, np.zeros(self.n_assets), self.upper, self.cluster_cap)


@dataclass(frozen=True)
class AllocationResult:
    engine: EngineName
    profile: RiskProfile
    weights: np.ndarray | None  # (N,) atom weights; None when not supported
    status: str  # "ok", "fallback", "not_supported"
    fallback_used: str | None = None  # which fallback served, when the primary solve failed
    solve_seconds: float = 0.0
    message: str = ""
    diagnostics: dict = field(default_factory=dict)


class Engine(Protocol):
    name: EngineName

    def supports(self, profile: RiskProfile) -> bool: ...

    def allocate(self, problem: AllocationProblem, profile: RiskProfile) -> np.ndarray: ...
