"""The portfolio constraints an allocation must hold: checked in one place, with one tolerance.

Every check of a weight vector goes through `PortfolioConstraints.problems`: an engine validating its own
solve (custom links, library outputs), the allocation stage and the tournament accepting a solve, and the
`portfolio_weights` checks re-verifying the stored weights. They differ only in which constraints they pose
(a library validates the caps it imposed itself; the stage, every cap of the profile).

| constraint | holds when |
|---|---|
| finite | every weight is finite |
| budget | Σw = 1 |
| long only | w ≥ −tol (long-only profiles) |
| bounds | lower − tol ≤ w ≤ upper + tol (on \\|w\\| for the market-neutral book) |
| cluster caps | Σ of a cluster's weights ≤ its cap + tol |
| gross | Σ\\|w\\| ≤ gross_max + tol (market neutral) |
| beta | \\|β·w\\| ≤ band + tol (market neutral, when a benchmark gives β) |

`TOLERANCE` is 1e-6: tight enough that a violation is a real one (the caps are whole percents), loose
enough for a conic solver's 1e-8 residuals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tsp_platform.allocation.projection import CappedSet, capped_set
from tsp_platform.config.allocation import AllocationConfig, RiskProfile

TOLERANCE = 1e-6

LONG_ONLY = frozenset(RiskProfile) - {RiskProfile.MARKET_NEUTRAL, RiskProfile.MARKET}
UNCAPPED = frozenset({RiskProfile.BENCHMARK, RiskProfile.MARKET})  # baselines: held as they are


@dataclass(frozen=True, eq=False)
class PortfolioConstraints:
    """What a weight vector must hold; a field left None is not imposed."""

    long_only: bool = True
    upper: np.ndarray | None = None  # (N,) per-asset bound (on |w| when shorts are allowed)
    lower: np.ndarray | None = None  # (N,) per-asset floor (the barbell fixes its aggressors)
    cluster: np.ndarray | None = None  # (N,) cluster codes 0..K-1
    cluster_caps: np.ndarray | None = None  # (K,) each cluster's cap
    gross_max: float | None = None
    beta_band: float | None = None
    budget: float = 1.0

    @classmethod
    def capped(cls, cset: CappedSet) -> "PortfolioConstraints":
        """The long-only capped set the engines solve over (bounds and effective cluster caps)."""
        floor = cset.lb if np.any(cset.lb > 0) else None  # a zero floor is the long-only check already
        return cls(upper=cset.ub, lower=floor, cluster=cset.cluster, cluster_caps=cset.caps, budget=cset.budget)

    @classmethod
    def neutral(cls, upper: np.ndarray | None, config: AllocationConfig) -> "PortfolioConstraints":
        """The market-neutral book: shorts allowed, |w| bounded, gross and beta within their limits."""
        return cls(long_only=False, upper=upper, gross_max=config.neutral_gross_max, beta_band=config.neutral_beta_band)

    @classmethod
    def for_profile(
        cls, profile: RiskProfile, clusters: np.ndarray, upper: np.ndarray, cluster_cap: float, config: AllocationConfig
    ) -> "PortfolioConstraints":
        """Every constraint of a risk profile: the caps for long-only profiles (none for the baselines), the
        neutral book's limits for market neutral."""
        if profile is RiskProfile.MARKET_NEUTRAL:
            return cls.neutral(None, config)
        if profile in UNCAPPED:
            return cls()
        return cls.capped(capped_set(clusters, np.zeros(len(upper)), upper, cluster_cap))

    def problems(self, weights: np.ndarray, beta: float | None = None) -> list[str]:
        """What `weights` violates (empty when it holds everything); `beta` is the portfolio's beta."""
        w = np.asarray(weights, dtype=float)
        if not np.isfinite(w).all():
            return ["non-finite weights"]
        found = []
        net = float(w.sum())
        if abs(net - self.budget) > TOLERANCE:
            found.append(f"net weight {net:.6f} != {self.budget:g}")
        if self.long_only and w.size and w.min() < -TOLERANCE:
            found.append("negative weight in a long-only profile")
        if self.upper is not None:
            size = w if self.long_only else np.abs(w)
            if (size > self.upper + TOLERANCE).any():
                what, bound = ("asset weight", "cap") if self.long_only else ("|weight|", "bound")
                found.append(f"{what} {size.max():.4f} above its {bound} {self.upper.max():.4f}")
        if self.lower is not None and (w < self.lower - TOLERANCE).any():
            found.append(f"asset weight {w.min():.4f} below its floor {self.lower.min():.4f}")
        if self.cluster is not None and self.cluster_caps is not None:
            sums = np.bincount(self.cluster, weights=w, minlength=len(self.cluster_caps))
            over = np.flatnonzero(sums > self.cluster_caps + TOLERANCE)
            if len(over):
                found.append(f"cluster sums {sums[over].round(4).tolist()} above their caps "
                             f"{self.cluster_caps[over].round(4).tolist()}")
        if self.gross_max is not None:
            gross = float(np.abs(w).sum())
            if gross > self.gross_max + TOLERANCE:
                found.append(f"gross {gross:.4f} > {self.gross_max}")
        if self.beta_band is not None and beta is not None and abs(beta) > self.beta_band + TOLERANCE:
            found.append(f"|beta| {abs(beta):.4f} > band {self.beta_band}")
        return found


def portfolio_beta(returns: np.ndarray, benchmark: np.ndarray | None, weights: np.ndarray) -> float | None:
    """β of the portfolio to the benchmark over the same rows (None without a benchmark or its variance)."""
    if benchmark is None:
        return None
    variance = float(np.var(benchmark, ddof=1))
    if variance == 0:
        return None
    betas = np.array([np.cov(returns[:, i], benchmark, ddof=1)[0, 1] for i in range(returns.shape[1])])
    return float(betas @ weights / variance)
