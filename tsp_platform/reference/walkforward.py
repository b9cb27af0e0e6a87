"""Reference walk-forward allocators: the fast paths and the skfolio parity reference, off the production path.

The tournament plans its cells with the allocation engines (`tournament.cell`); these allocators exist to
prove those engines right and to time them: `tests/test_walkforward.py` checks them against the engine and
against skfolio's `cross_val_predict`, and `benchmarks/tournament.py` times them. Windows are
`tournament.walkforward.windows`.

Fast paths for the tournament (custom engine primitives, caps off, long-only, fully invested):

* `hrp_walkforward` — per window `estimate_covariance` (Ledoit–Wolf + conditioning ridge) and
  `hrp.hrp_weights` (prefix-sum bisection, plain leaves order). Identical to `CustomEngine` HRP with
  max_weight 1 and cluster caps 1 (the caps projection is then the identity).
* `min_variance_walkforward` — per window the exact long-only QP  min wᵀΣw, Σw = 1, 0 ≤ w ≤ 1.
  Consecutive windows share all but `step` rows, so the optimal support moves little: each window runs a
  few primal-dual active-set rounds on this one-constraint problem from the previous window's support S
  (w_S ∝ Σ_SS⁻¹1 and the rest 0, λ = 1/1ᵀΣ_SS⁻¹1; then drop the free weights ≤ 0 and free the zero
  weights whose multiplier 2((Σw)_i − λ) is negative) and accepts a support only when it passes the full
  KKT check at the solver's tolerance (w_S > 0; |(Σw)_i − λ| ≤ kkt_tol·max|Σ| on S, (Σw)_i − λ ≥
  −kkt_tol·max|Σ| off it; Σw = 1). The first window, a cycle, or no verified support after a few rounds
  go to `qp.solve_qp` (the engine's solver, KKT-verified to 1e-10; active-set guess: the previous
  support, or the engine's lowest-variance quarter). The optimum is unique (Σ is positive definite), so
  both routes give the engine's single-fit weights on that train slice to rounding; the warm start comes
  from *earlier* windows only, so it carries no future information.

`skfolio_walkforward` is the parity reference: skfolio `cross_val_predict` with `WalkForward` and the
estimators configured as `allocation.libraries.SkfolioEngine` configures them (prior covariance =
`estimate_covariance`, `CovarianceDistance("precomputed")`, `HierarchicalSeriation(optimal_ordering=False)`,
the configured linkage; `MeanRisk` minimum variance with CLARABEL at tight tolerances and the objective
in units of the train window's mean variance, as the engine poses it).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np

from tsp_platform.allocation.base import AllocationProblem
from tsp_platform.allocation.covariance import estimate_covariance
from tsp_platform.allocation.hrp import hrp_weights
from tsp_platform.allocation.qp import solve_qp
from tsp_platform.config.allocation import AllocationConfig, CovarianceConfig, Linkage, RiskProfile
from tsp_platform.config.tournament import WalkForwardConfig
from tsp_platform.tournament.walkforward import Window

Allocator = Callable[[np.ndarray], np.ndarray]


def allocate_windows(returns: np.ndarray, windows: Sequence[Window], allocate: Allocator) -> np.ndarray:
    """(W, N) weights: row k = allocate(copy of returns[windows[k].train]), windows taken in order.

    The allocator receives a read-only copy of the train rows and nothing else; it must return N finite
    weights."""
    returns = np.asarray(returns, dtype=float)
    if returns.ndim != 2:
        raise ValueError(f"returns must be (T, N), got shape {returns.shape}")
    t, n = returns.shape
    out = np.empty((len(windows), n))
    for k, window in enumerate(windows):
        start, stop = window.train.start or 0, window.train.stop
        if window.train.step not in (None, 1) or stop is None or not 0 <= start < stop <= t:
            raise ValueError(f"window {window.index}: train rows {window.train} outside the {t} returns rows")
        train = returns[window.train].copy()
        train.flags.writeable = False
        weights = np.asarray(allocate(train), dtype=float)
        if weights.shape != (n,) or not np.isfinite(weights).all():
            raise ValueError(
                f"window {window.index}: the allocator returned {weights.shape}, not {n} finite weights"
            )
        out[k] = weights
    return out


# ------------------------------------------------------------------------------------------------ allocators


def engine_allocator(
    profile: RiskProfile,
    config: AllocationConfig = AllocationConfig(),
    engine=None,
    assets: Sequence[str] | None = None,
    clusters: np.ndarray | None = None,
    **problem_fields,
) -> Allocator:
    """An allocator running `engine.allocate` (default `CustomEngine`) on one `AllocationProblem` per window.

    `clusters=None` puts every asset in one cluster (its cap is then max(cap, 1/1) = 1: no cluster cap);
    `problem_fields` (regime, annualisation, ...) pass through unchanged. Per-row extras such as a
    benchmark are not sliced here: build the problem yourself when a profile needs them."""
    if engine is None:
        from tsp_platform.allocation.custom import CustomEngine

        engine = CustomEngine()

    def allocate(train: np.ndarray) -> np.ndarray:
        n = train.shape[1]
        problem = AllocationProblem(
            returns=train,
            assets=tuple(assets) if assets is not None else tuple(f"a{i}" for i in range(n)),
            clusters=np.zeros(n, dtype=int) if clusters is None else np.asarray(clusters),
            config=config,
            **problem_fields,
        )
        return engine.allocate(problem, profile)

    return allocate


def hrp_walkforward(
    returns: np.ndarray,
    windows: Sequence[Window],
    covariance: CovarianceConfig = CovarianceConfig(),
    linkage: Linkage = Linkage.SINGLE,
) -> np.ndarray:
    """(W, N) HRP weights per window: `estimate_covariance` + prefix-sum `hrp_weights`, caps off."""
    method = str(linkage)

    def allocate(train: np.ndarray) -> np.ndarray:
        return hrp_weights(estimate_covariance(train, covariance).matrix, method)

    return allocate_windows(returns, windows, allocate)


class MinVarianceAllocator:
    """Exact long-only minimum variance per window, warm-started from the previous window's support."""

    def __init__(self, covariance: CovarianceConfig = CovarianceConfig(), kkt_tol: float = 1e-10):
        self.covariance, self.kkt_tol = covariance, kkt_tol
        self.support: np.ndarray | None = None  # of the last window served (the next one's warm start)
        self.warm_rounds = self.qp_solves = 0  # windows served by the warm active-set rounds / by solve_qp

    def __call__(self, train: np.ndarray) -> np.ndarray:
        cov = estimate_covariance(train, self.covariance).matrix
        if len(cov) == 1:
            return np.ones(1)
        warm = self.support is not None and len(self.support) == len(cov)  # the universe may change
        w = self._active_set_rounds(cov, self.support) if warm else None
        if w is not None:
            self.warm_rounds += 1
        else:
            w = self._solve(cov)
            self.qp_solves += 1
        self.support = w > 0
        return w

    def _active_set_rounds(self, cov: np.ndarray, support: np.ndarray, rounds: int = 6) -> np.ndarray | None:
        """Primal-dual active-set rounds from `support`; the KKT-verified weights, or None (cycle, no
        convergence, singular block) for the caller to solve from scratch."""
        n = len(cov)
        tol = self.kkt_tol * float(np.max(np.abs(cov)))
        seen: set[bytes] = set()
        for _ in range(rounds):
            free = np.flatnonzero(support)
            key = support.tobytes()
            if len(free) == 0 or key in seen:
                return None
            seen.add(key)
            try:
                y = np.linalg.solve(cov[np.ix_(free, free)], np.ones(len(free)))
            except np.linalg.LinAlgError:
                return None
            total = float(y.sum())
            if not (np.isfinite(y).all() and total > 0):
                return None
            w = np.zeros(n)
            w[free] = y / total
            excess = cov @ w - 1.0 / total  # ½∇ − λ: 0 on the support, ½·multiplier off it
            off = ~support
            if w[free].min() > 0 and np.max(np.abs(excess[free])) <= tol and not (excess[off] < -tol).any():
                w[free[-1]] = 1.0 - (w[free].sum() - w[free[-1]])  # Σw = 1 to the last bit
                return w if w[free[-1]] > 0 else None
            support = (support & (w > 0)) | (off & (excess < -tol))
        return None

    def _solve(self, cov: np.ndarray) -> np.ndarray:
        n = len(cov)
        order = np.argsort(np.diag(cov), kind="stable")
        if self.support is None or len(self.support) != n or not self.support.any():
            guess = np.full(n, -1, dtype=np.int8)  # as the engine: the lowest-variance quarter free
            guess[order[: max(2, n // 4)]] = 0
        else:
            guess = np.where(self.support, 0, -1).astype(np.int8)
        x0 = np.zeros(n)
        x0[order[0]] = 1.0  # a feasible vertex, used only if the primal-dual pass fails
        res = solve_qp(
            2.0 * cov, np.zeros(n), np.ones((1, n)), np.ones(1), None, None, 0.0, 1.0,
            x0=x0, kkt_tol=self.kkt_tol, strictly_convex=True, active_guess=guess,
        )
        return res.x


def min_variance_walkforward(
    returns: np.ndarray,
    windows: Sequence[Window],
    covariance: CovarianceConfig = CovarianceConfig(),
    kkt_tol: float = 1e-10,
) -> np.ndarray:
    """(W, N) long-only minimum-variance weights per window (exact active-set QP), caps off."""
    return allocate_windows(returns, windows, MinVarianceAllocator(covariance, kkt_tol))


# ----------------------------------------------------------------------------------- skfolio parity reference


@functools.cache
def _scaled_mean_risk_class():
    """skfolio `MeanRisk` whose objective is posed in units of the fold's mean variance (as `SkfolioEngine`
    passes `scale_objective=1/scale` per fit); the parameter is restored after `fit`."""
    from skfolio.optimization import MeanRisk

    class WindowScaledMeanRisk(MeanRisk):
        def fit(self, X, y=None, **fit_params):
            saved = self.scale_objective
            if saved is None:
                estimator = getattr(self.prior_estimator, "covariance_estimator", None)
                config = getattr(estimator, "config", None) or CovarianceConfig()
                cov = estimate_covariance(np.asarray(X, dtype=float), config).matrix
                self.scale_objective = 1.0 / (float(np.mean(np.diag(cov))) or 1.0)
            try:
                return super().fit(X, y, **fit_params)
            finally:
                self.scale_objective = saved

    return WindowScaledMeanRisk


def skfolio_estimator(
    profile: RiskProfile,
    covariance: CovarianceConfig = CovarianceConfig(),
    linkage: Linkage = Linkage.SINGLE,
    solver_params: dict | None = None,
):
    """An unfitted skfolio estimator solving the fast paths' problem (caps off, long-only)."""
    from skfolio.measures import RiskMeasure
    from skfolio.prior import EmpiricalPrior

    from tsp_platform.allocation.libraries import SOLVER, SOLVER_PARAMS, _platform_covariance_class

    prior = EmpiricalPrior(covariance_estimator=_platform_covariance_class()(config=covariance))
    if profile is RiskProfile.HRP:
        from skfolio.cluster import HierarchicalClustering, LinkageMethod
        from skfolio.distance import CovarianceDistance
        from skfolio.optimization import HierarchicalRiskParity
        from skfolio.seriation import HierarchicalSeriation

        clustering = HierarchicalClustering(linkage_method=LinkageMethod[linkage.name])
        return HierarchicalRiskParity(
            risk_measure=RiskMeasure.VARIANCE,
            prior_estimator=prior,
            distance_estimator=CovarianceDistance(covariance_estimator="precomputed"),
            seriation_estimator=HierarchicalSeriation(
                hierarchical_clustering_estimator=clustering, optimal_ordering=False
            ),
            max_weights=1.0,
        )
    if profile is RiskProfile.MIN_VARIANCE:
        from skfolio.optimization import ObjectiveFunction

        return _scaled_mean_risk_class()(
            objective_function=ObjectiveFunction.MINIMIZE_RISK,
            risk_measure=RiskMeasure.VARIANCE,
            prior_estimator=prior,
            solver=SOLVER,
            solver_params=dict(solver_params or SOLVER_PARAMS),
            max_weights=1.0,
        )
    raise ValueError(f"no skfolio walk-forward reference for {profile}")


def skfolio_walkforward(returns, config: WalkForwardConfig, estimator) -> np.ndarray:
    """(W, N) weights of skfolio `cross_val_predict(estimator, X, cv=WalkForward(train, test))`, one row per
    fold (the estimator is cloned and refitted per fold). Needs step == test (skfolio has no separate step).
    `returns`: a DataFrame with a daily index, or an array (given a business-day index)."""
    import pandas as pd
    from skfolio.model_selection import WalkForward, cross_val_predict

    if config.step != config.test:
        raise ValueError("skfolio's WalkForward steps by test_size: needs step == test")
    if not isinstance(returns, pd.DataFrame):
        values = np.asarray(returns, dtype=float)
        index = pd.bdate_range("2000-01-03", periods=len(values))
        returns = pd.DataFrame(values, index=index, columns=[f"a{i}" for i in range(values.shape[1])])
    cv = WalkForward(train_size=config.train, test_size=config.test, expand_train=config.expanding)
    prediction = cross_val_predict(estimator, returns, cv=cv)
    weights = [portfolio.weights for portfolio in prediction.portfolios]
    return np.array(weights, dtype=float).reshape(-1, returns.shape[1])
