"""Library engines: skfolio, Riskfolio-Lib and cvxportfolio behind the allocation contract.

Each engine is configured so that it solves *the same problem* as the custom engine whenever the library can
express it, so a tournament measures engines rather than defaults (peers-and-performance §0.7, §3.5):

* one covariance for everyone: `estimate_covariance` (Ledoit–Wolf or sample, plus the conditioning ridge)
  reaches every library unchanged (skfolio through a prior whose covariance estimator *is*
  `estimate_covariance`, Riskfolio through `cov` / `custom_cov`, cvxportfolio through a constant
  `FullCovariance(Sigma)`); expected returns are the train-window mean; the risk-free rate is
  `config.risk_free_rate` (annual) / `problem.annualisation`;
* HRP: variance risk; angular distance sqrt(½(1 − ρ)) with ρ the correlation *of that covariance* (skfolio
  `CovarianceDistance("precomputed")`, Riskfolio `codependence='custom_cov'` — `PearsonDistance` /
  `'pearson'` would cluster on the sample correlation instead and move weights by ~1e-2);
  `config.hrp_linkage`; the plain `scipy` `leaves_list` order (skfolio
  `HierarchicalSeriation(optimal_ordering=False)`, Riskfolio `leaf_order=False`), as `hrp.py` does;
* MAX_SHARPE is a true ratio maximisation everywhere (skfolio `MAXIMIZE_RATIO`; Riskfolio `obj='Sharpe'`,
  `l=0`; cvxportfolio through cash as the riskless asset, see `CvxportfolioEngine`), never a utility;
* MARKET_NEUTRAL is the custom engine's problem: min wᵀΣw, Σw = 1, |βᵀw| ≤ band, Σ|w| ≤ gross_max,
  |wᵢ| ≤ uᵢ, β from `problem.benchmark` (no cluster caps);
* bounds and cluster caps are the caller's capped set (`projection.capped_set`: max(cap, 1/K), raised
  uniformly when the configured caps cannot hold the budget);
* convex solves use CLARABEL with tight tolerances, objectives in units of the mean variance (weights are
  invariant to it), and no fallback solver: a failed solve raises.

A profile a library cannot solve raises `NotSupported` with the reason (`SUPPORT`); a library error or an
invalid result raises `SolverFailed` naming the engine and profile. `CAPS_SUPPORT` records which caps each
engine × profile imposes inside its own solve; the caller projects the rest (`stage.solve`). Library engines
ignore `problem.previous_weights`: the turnover penalty is the custom engine's alone (logged when present).
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import warnings
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import pandas as pd

from tsp_platform.allocation.base import AllocationProblem, NotSupported, SolverFailed
from tsp_platform.allocation.constraints import PortfolioConstraints
from tsp_platform.allocation.covariance import estimate_covariance
from tsp_platform.allocation.projection import CappedSet
from tsp_platform.config.allocation import AllocationConfig, CovarianceConfig, EngineName, RiskProfile

SOLVER = "CLARABEL"
# Daily covariances are ~1e-4: default interior-point tolerances leave min-variance weights loose by ~1e-4.
# With these (and objectives scaled to unit mean variance) the convex engines land within ~1e-7 of the
# custom engine's exact active-set solutions.
SOLVER_PARAMS = {"tol_gap_abs": 1e-12, "tol_gap_rel": 1e-12, "tol_feas": 1e-12}

log = logging.getLogger(__name__)


class Cap(StrEnum):
    ASSET = "asset"  # per-asset bound problem.upper (|w| ≤ upper for market-neutral)
    CLUSTER = "cluster"  # per-cluster sum bound of projection.capped_set


_P = RiskProfile
_CONVEX = frozenset({Cap.ASSET, Cap.CLUSTER})
_ASSET = frozenset({Cap.ASSET})
_NONE: frozenset[Cap] = frozenset()
_CONSTRUCTIONS = frozenset({_P.HRP, _P.RISK_PARITY})  # built, then capped (see `caps_in_construction`)
_LIBRARY_PROFILES = frozenset({_P.EQUAL_WEIGHT, _P.HRP, _P.MIN_VARIANCE, _P.RISK_PARITY, _P.MAX_SHARPE,
                               _P.MARKET_NEUTRAL, _P.BENCHMARK})

SUPPORT: dict[EngineName, frozenset[RiskProfile]] = {
    EngineName.SKFOLIO: _LIBRARY_PROFILES,
    EngineName.RISKFOLIO: _LIBRARY_PROFILES,
    EngineName.CVXPORTFOLIO: _LIBRARY_PROFILES - {_P.HRP, _P.RISK_PARITY},
}

# The caps each engine imposes inside its own solve (default `caps_in_construction=True`); the caller
# projects whatever is missing onto the capped set. EQUAL_WEIGHT / BENCHMARK are 1/N (never above
# problem.upper; the caller projects EQUAL_WEIGHT onto the cluster caps, BENCHMARK is uncapped).
# HRP takes per-asset bounds only, each library its own way: skfolio bends the bisection split factors,
# Riskfolio clips and redistributes after the bisection (`HCPortfolio(w_max=...)`); the custom engine
# projects instead, so HRP differs across engines where a per-asset cap binds. RISK_PARITY is solved as
# a constrained risk-budgeting problem (caps homogeneous in the budget variable), where the custom engine
# projects its ERC portfolio. MARKET_NEUTRAL has no cluster caps by definition.
CAPS_SUPPORT: dict[EngineName, dict[RiskProfile, frozenset[Cap]]] = {
    EngineName.SKFOLIO: {
        _P.EQUAL_WEIGHT: _NONE, _P.BENCHMARK: _NONE, _P.HRP: _ASSET, _P.RISK_PARITY: _CONVEX,
        _P.MIN_VARIANCE: _CONVEX, _P.MAX_SHARPE: _CONVEX, _P.MARKET_NEUTRAL: _ASSET,
    },
    EngineName.RISKFOLIO: {
        _P.EQUAL_WEIGHT: _NONE, _P.BENCHMARK: _NONE, _P.HRP: _ASSET, _P.RISK_PARITY: _CONVEX,
        _P.MIN_VARIANCE: _CONVEX, _P.MAX_SHARPE: _CONVEX, _P.MARKET_NEUTRAL: _ASSET,
    },
    EngineName.CVXPORTFOLIO: {
        _P.EQUAL_WEIGHT: _NONE, _P.BENCHMARK: _NONE,
        _P.MIN_VARIANCE: _CONVEX, _P.MAX_SHARPE: _CONVEX, _P.MARKET_NEUTRAL: _ASSET,
    },
}

_WHY_NOT: dict[RiskProfile, str] = {
    _P.BARBELL: "the barbell (antifragile core + regime-sized aggressor sleeve) is a platform construction, "
    "not a library optimiser; the custom engine owns it",
    _P.MARKET: "a 100 % benchmark baseline on physical weights, computed once by the allocation stage",
}
_CVX_WHY_NOT: dict[RiskProfile, str] = {
    _P.HRP: "cvxportfolio has no hierarchical (tree + recursive bisection) allocator",
    _P.RISK_PARITY: "an SPO objective is returns forecasts, risk models and costs under linear constraints; "
    "the risk-budgeting log barrier (or any equal-risk-contribution condition) is not expressible",
}
_NO_POSITIVE_SHARPE = "no asset's mean return exceeds the risk-free rate: the Sharpe ratio has no positive maximum"


# --------------------------------------------------------------------------------------------- shared inputs


@dataclass(frozen=True, eq=False)
class _Inputs:
    """Everything a library needs, derived from the problem alone (the covariance only when asked for)."""

    problem: AllocationProblem
    frame: pd.DataFrame  # (T, N) returns, problem.assets as columns, a daily (business-day) index
    upper: np.ndarray | None  # (N,) per-asset bound to impose, None when not imposed or it cannot bind
    capped: CappedSet | None  # the capped set whose cluster caps are imposed, None when they are not

    @functools.cached_property
    def _cluster_rows(self) -> tuple[np.ndarray, np.ndarray] | tuple[None, None]:
        if self.capped is None:
            return None, None
        rows, bounds = self.capped.rows()
        return (rows, bounds) if len(bounds) else (None, None)

    @property
    def membership(self) -> np.ndarray | None:
        """(K', N) 0/1 rows of the clusters whose cap binds; None when none is imposed or none binds."""
        return self._cluster_rows[0]

    @property
    def cluster_caps(self) -> np.ndarray | None:
        """(K',) the caps of those clusters."""
        return self._cluster_rows[1]

    @property
    def config(self) -> AllocationConfig:
        return self.problem.config

    @property
    def assets(self) -> list[str]:
        return list(self.problem.assets)

    @functools.cached_property
    def covariance(self) -> np.ndarray:
        """(N, N) the shared daily estimate, the matrix every engine uses."""
        return estimate_covariance(self.problem.returns, self.config.covariance).matrix

    @functools.cached_property
    def scale(self) -> float:
        """Mean variance: convex objectives are posed in these units (weights are invariant to it)."""
        return float(np.mean(np.diag(self.covariance))) or 1.0

    @functools.cached_property
    def mu(self) -> np.ndarray:
        """(N,) mean daily return of the train window."""
        return self.problem.returns.mean(axis=0)

    @property
    def rf(self) -> float:
        """Daily risk-free rate (config.risk_free_rate is annual)."""
        return self.config.risk_free_rate / self.problem.annualisation

    @functools.cached_property
    def beta(self) -> np.ndarray:
        """(N,) betas to problem.benchmark (ddof 1), as the custom engine and the stage compute them."""
        bench = self.problem.benchmark
        if bench is None:
            raise SolverFailed("market_neutral needs problem.benchmark (benchmark returns on the same rows)")
        bench = np.asarray(bench, dtype=float)
        variance = float(np.var(bench, ddof=1))
        if not np.isfinite(variance) or variance <= 0:
            raise SolverFailed("market_neutral: the benchmark has zero or non-finite variance")
        returns = self.problem.returns
        return (returns - returns.mean(axis=0)).T @ (bench - bench.mean()) / (len(bench) - 1) / variance

    def cov_frame(self, scaled: bool = False) -> pd.DataFrame:
        matrix = self.covariance / self.scale if scaled else self.covariance
        return pd.DataFrame(matrix, index=self.frame.columns, columns=self.frame.columns)


@functools.lru_cache(maxsize=16)
def _sessions(periods: int) -> pd.DatetimeIndex:
    """A daily business-day index (the rows carry no dates; libraries only need a daily DatetimeIndex)."""
    return pd.bdate_range("2000-01-03", periods=periods, name="date")


def returns_frame(problem: AllocationProblem) -> pd.DataFrame:
    """problem.returns as the DataFrame libraries expect: atom ids as columns, a daily (business-day) index."""
    return pd.DataFrame(problem.returns, index=_sessions(problem.returns.shape[0]), columns=list(problem.assets), dtype=float)


def _inputs(problem: AllocationProblem, profile: RiskProfile, caps: frozenset[Cap]) -> _Inputs:
    """The bounds and cluster caps to impose, exactly as the caller's capped set defines them."""
    upper = problem.upper
    cset = None
    if profile is _P.MARKET_NEUTRAL:
        imposed_upper = upper  # |w| ≤ u binds even at u = 1 once shorts are allowed
    else:
        imposed_upper = upper if Cap.ASSET in caps and (upper < 1.0).any() else None
        if Cap.CLUSTER in caps:
            cset = problem.capped_set()
            if cset.raised_caps:
                log.info("%s: the cluster caps cannot hold the budget; raised to %s", profile.value, cset.caps)
    return _Inputs(problem, returns_frame(problem), imposed_upper, cset)


# ---------------------------------------------------------------------------------------- engine scaffolding


@contextlib.contextmanager
def _quiet(*loggers: str):
    """Silence library warnings, prints and loggers for one solve (levels restored; kept at debug level)."""
    saved = [(logging.getLogger(name), logging.getLogger(name).level) for name in loggers]
    for logger, _ in saved:
        logger.setLevel(logging.CRITICAL)
    out = io.StringIO()
    try:
        with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(out):
            warnings.simplefilter("always")
            yield
    finally:
        for logger, level in saved:
            logger.setLevel(level)
        for warning in caught:
            log.debug("library warning: %s", warning.message)
        if out.getvalue().strip():
            log.debug("library output: %s", out.getvalue().strip())


class _LibraryEngine:
    """Shared lifecycle: support check, inputs, one guarded library call, output validation."""

    name: EngineName
    _loggers: tuple[str, ...] = ()

    def __init__(self, solver: str = SOLVER, solver_params: dict | None = None, caps_in_construction: bool = True):
        """`caps_in_construction=False` leaves HRP / RISK_PARITY uncapped for the caller's Euclidean
        projection — the custom engine's definition, so the projected weights then equal the custom ones."""
        self.solver = solver
        self.solver_params = dict(SOLVER_PARAMS if solver_params is None else solver_params)
        self.caps_in_construction = caps_in_construction

    def supports(self, profile: RiskProfile) -> bool:
        return profile in SUPPORT[self.name]

    def applied_caps(self, profile: RiskProfile) -> frozenset[Cap]:
        """The caps this engine imposes itself for the profile (empty when unsupported)."""
        if profile in _CONSTRUCTIONS and not self.caps_in_construction:
            return _NONE
        return CAPS_SUPPORT[self.name].get(profile, _NONE)

    def _why_not(self, profile: RiskProfile) -> str:
        return _WHY_NOT.get(profile, "")

    def allocate(self, problem: AllocationProblem, profile: RiskProfile) -> np.ndarray:
        if not self.supports(profile):
            raise NotSupported(self.name.value, profile.value, self._why_not(profile))
        if problem.previous_weights is not None and profile is _P.MIN_VARIANCE:
            log.info("%s min_variance ignores previous_weights: the turnover penalty is custom-only", self.name.value)
        inputs = _inputs(problem, profile, self.applied_caps(profile))
        try:
            with _quiet(*self._loggers):
                weights = self._solve(inputs, profile)
        except SolverFailed as exc:
            if str(exc).startswith(f"{self.name.value} {profile.value}: "):
                raise
            raise self._fail(profile, str(exc)) from exc
        except Exception as exc:  # a library failure, whatever its type, is a failed solve of this engine
            raise SolverFailed(f"{self.name.value} {profile.value}: {type(exc).__name__}: {exc}") from exc
        return self._validated(np.asarray(weights, dtype=float).ravel(), inputs, profile)

    def _solve(self, inputs: _Inputs, profile: RiskProfile) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _fail(self, profile: RiskProfile, why: str) -> SolverFailed:
        return SolverFailed(f"{self.name.value} {profile.value}: {why}")

    def _validated(self, weights: np.ndarray, inputs: _Inputs, profile: RiskProfile) -> np.ndarray:
        """Finite, fully invested, within the bounds and caps the engine was asked to impose."""
        n = inputs.frame.shape[1]
        if weights.shape != (n,):
            raise self._fail(profile, f"returned {weights.shape[0]} weights for {n} assets")
        if profile is _P.MARKET_NEUTRAL:
            constraints = PortfolioConstraints.neutral(inputs.upper, inputs.config)
            beta = float(inputs.beta @ weights) if np.isfinite(weights).all() else None
        else:
            cset = inputs.capped
            constraints = PortfolioConstraints(upper=inputs.upper, cluster=None if cset is None else cset.cluster,
                                               cluster_caps=None if cset is None else cset.caps)
            beta = None
        problems = constraints.problems(weights, beta)
        if problems:
            raise self._fail(profile, "; ".join(problems))
        return weights


# -------------------------------------------------------------------------------------------------- skfolio


@functools.cache
def _platform_covariance_class():
    """A skfolio covariance estimator that *is* `estimate_covariance`, so the prior holds the shared matrix."""
    import sklearn.utils.validation as skv
    from skfolio.moments import BaseCovariance

    class PlatformCovariance(BaseCovariance):
        def __init__(self, config: CovarianceConfig | None = None):
            super().__init__()
            self.config = config

        def fit(self, X, y=None, **fit_params):
            X = skv.validate_data(self, X)
            self._set_covariance(estimate_covariance(np.asarray(X), self.config or CovarianceConfig()).matrix)
            return self

    return PlatformCovariance


class SkfolioEngine(_LibraryEngine):
    """skfolio: EqualWeighted, HierarchicalRiskParity, MeanRisk (min variance, max ratio, neutral), RiskBudgeting."""

    name = EngineName.SKFOLIO
    _loggers = ("skfolio",)

    def _solve(self, inputs: _Inputs, profile: RiskProfile) -> np.ndarray:
        from skfolio.measures import RiskMeasure
        from skfolio.optimization import (
            EqualWeighted,
            HierarchicalRiskParity,
            MeanRisk,
            ObjectiveFunction,
            RiskBudgeting,
        )
        from skfolio.prior import EmpiricalPrior

        frame = inputs.frame
        if profile in (_P.EQUAL_WEIGHT, _P.BENCHMARK):
            return EqualWeighted().fit(frame).weights_
        prior = EmpiricalPrior(covariance_estimator=_platform_covariance_class()(config=inputs.config.covariance))
        max_weights = 1.0 if inputs.upper is None else inputs.upper
        if profile is _P.HRP:
            from skfolio.cluster import HierarchicalClustering, LinkageMethod
            from skfolio.distance import CovarianceDistance
            from skfolio.seriation import HierarchicalSeriation

            clustering = HierarchicalClustering(linkage_method=LinkageMethod[inputs.config.hrp_linkage.name])
            seriation = HierarchicalSeriation(hierarchical_clustering_estimator=clustering, optimal_ordering=False)
            model = HierarchicalRiskParity(
                risk_measure=RiskMeasure.VARIANCE,
                prior_estimator=prior,
                distance_estimator=CovarianceDistance(covariance_estimator="precomputed"),
                seriation_estimator=seriation,
                max_weights=max_weights,
            )
            return model.fit(frame).weights_
        convex = dict(
            risk_measure=RiskMeasure.VARIANCE, prior_estimator=prior, solver=self.solver,
            solver_params=self.solver_params, scale_objective=1.0 / inputs.scale,
        )
        if profile is _P.MARKET_NEUTRAL:
            config, band = inputs.config, inputs.config.neutral_beta_band
            model = MeanRisk(
                objective_function=ObjectiveFunction.MINIMIZE_RISK, min_weights=-inputs.upper, max_weights=inputs.upper,
                max_short=(config.neutral_gross_max - 1.0) / 2.0,  # Σw = 1 ⇒ Σ|w| = 1 + 2·short ≤ gross_max
                left_inequality=np.vstack([inputs.beta, -inputs.beta]), right_inequality=np.array([band, band]),
                **convex,
            )
            return model.fit(frame).weights_
        convex.update(max_weights=max_weights, **_skfolio_groups(inputs))
        if profile is _P.RISK_PARITY:
            return RiskBudgeting(**convex).fit(frame).weights_
        if profile is _P.MIN_VARIANCE:
            return MeanRisk(objective_function=ObjectiveFunction.MINIMIZE_RISK, **convex).fit(frame).weights_
        if profile is _P.MAX_SHARPE:
            if not (inputs.mu > inputs.rf).any():
                raise self._fail(profile, _NO_POSITIVE_SHARPE)
            model = MeanRisk(objective_function=ObjectiveFunction.MAXIMIZE_RATIO, risk_free_rate=inputs.rf, **convex)
            return model.fit(frame).weights_
        raise NotSupported(self.name.value, profile.value)  # pragma: no cover - guarded by SUPPORT


def _skfolio_groups(inputs: _Inputs) -> dict:
    """Cluster caps as skfolio `groups` + `linear_constraints` ("tsp_cluster_3 <= 0.25"); assets of clusters
    whose cap cannot bind share a group no constraint names."""
    if inputs.membership is None:
        return {}
    group_of = np.full(len(inputs.assets), "tsp_cluster_free", dtype=object)
    constraints = []
    for k, (row, cap) in enumerate(zip(inputs.membership, inputs.cluster_caps, strict=True)):
        group_of[row > 0] = f"tsp_cluster_{k}"
        constraints.append(f"tsp_cluster_{k} <= {float(cap)!r}")
    return {"groups": [list(group_of)], "linear_constraints": constraints}


# ------------------------------------------------------------------------------------------------ riskfolio


class RiskfolioEngine(_LibraryEngine):
    """Riskfolio-Lib: HCPortfolio HRP; Portfolio Classic MV MinRisk, Sharpe (l=0), rp_optimization, neutral MinRisk."""

    name = EngineName.RISKFOLIO
    _loggers = ("riskfolio",)

    def _solve(self, inputs: _Inputs, profile: RiskProfile) -> np.ndarray:
        import riskfolio as rp

        frame = inputs.frame
        if profile in (_P.EQUAL_WEIGHT, _P.BENCHMARK):
            return np.full(frame.shape[1], 1.0 / frame.shape[1])
        if profile is _P.HRP:
            w_max = None if inputs.upper is None else pd.Series(inputs.upper, index=frame.columns)
            port = rp.HCPortfolio(returns=frame, w_max=w_max)
            result = port.optimization(
                model="HRP", codependence="custom_cov", method_cov="custom_cov", custom_cov=inputs.cov_frame(),
                rm="MV", rf=inputs.rf, linkage=inputs.config.hrp_linkage.value, leaf_order=False,
            )
            return self._column(result, inputs, profile)
        port = rp.Portfolio(returns=frame)
        port.solvers = [self.solver]
        port.sol_params = {self.solver: self.solver_params}
        # Σ in units of its mean variance and μ in excess of rf (so rf=0 below): min-variance, Sharpe and
        # risk-budgeting weights are invariant to these rescalings, and the solver tolerances become relative.
        port.cov = inputs.cov_frame(scaled=True)
        port.mu = pd.DataFrame(((inputs.mu - inputs.rf) / np.sqrt(inputs.scale))[None, :], columns=frame.columns)
        if profile is _P.MARKET_NEUTRAL:
            config, band = inputs.config, inputs.config.neutral_beta_band
            port.sht, port.budget, port.budgetsht = True, 1.0, (config.neutral_gross_max - 1.0) / 2.0
            rows, bounds = [inputs.beta, -inputs.beta], [band, band]
            if _uniform(inputs.upper):
                port.upperlng = port.uppersht = float(inputs.upper[0])
            else:
                rows += [*np.eye(len(inputs.upper)), *-np.eye(len(inputs.upper))]
                bounds += [*inputs.upper, *inputs.upper]
            port.ainequality, port.binequality = np.vstack(rows), np.asarray(bounds, dtype=float)[:, None]
            result = port.optimization(model="Classic", rm="MV", obj="MinRisk", rf=0, l=0, hist=True)
            return self._column(result, inputs, profile)
        # rp_optimization ignores upperlng: its per-asset bounds go in as (homogeneous) inequality rows
        per_asset_rows = profile is _P.RISK_PARITY or not _uniform(inputs.upper)
        a, b = _inequalities(inputs, per_asset=per_asset_rows)
        if a is not None:
            port.ainequality, port.binequality = a, b
        if inputs.upper is not None and not per_asset_rows:
            port.upperlng = float(inputs.upper[0])
        if profile is _P.RISK_PARITY:
            result = port.rp_optimization(model="Classic", rm="MV", rf=0, b=None, hist=True)
        elif profile is _P.MIN_VARIANCE:
            result = port.optimization(model="Classic", rm="MV", obj="MinRisk", rf=0, l=0, hist=True)
        elif profile is _P.MAX_SHARPE:
            if not (inputs.mu > inputs.rf).any():
                raise self._fail(profile, _NO_POSITIVE_SHARPE)
            # l is the risk aversion of obj='Utility' only: 0, never an L2 penalty in disguise
            result = port.optimization(model="Classic", rm="MV", obj="Sharpe", rf=0, l=0, hist=True)
        else:  # pragma: no cover - guarded by SUPPORT
            raise NotSupported(self.name.value, profile.value)
        return self._column(result, inputs, profile)

    def _column(self, result, inputs: _Inputs, profile: RiskProfile) -> np.ndarray:
        if result is None:  # riskfolio prints "The problem doesn't have a solution ..." and returns None
            raise self._fail(profile, "the problem doesn't have a solution with actual input parameters (riskfolio)")
        return result["weights"].reindex(inputs.frame.columns).to_numpy(dtype=float)


def _uniform(upper: np.ndarray | None) -> bool:
    return upper is None or bool(np.all(upper == upper[0]))


def _inequalities(inputs: _Inputs, per_asset: bool) -> tuple[np.ndarray | None, np.ndarray | None]:
    """A w ≤ b rows: per-asset bounds (when asked and imposed) and the binding cluster caps."""
    rows, bounds = [], []
    if per_asset and inputs.upper is not None:
        rows.append(np.eye(len(inputs.upper)))
        bounds.append(inputs.upper)
    if inputs.membership is not None:
        rows.append(inputs.membership)
        bounds.append(inputs.cluster_caps)
    if not rows:
        return None, None
    return np.vstack(rows), np.concatenate(bounds)[:, None]


# --------------------------------------------------------------------------------------------- cvxportfolio


class CvxportfolioEngine(_LibraryEngine):
    """cvxportfolio policies executed once, offline, on a `UserProvidedMarketData` of the train window.

    The returns get cash key "cash" (zero return, nothing downloaded), `min_history=0` and one extra session
    at which the policy executes, so the whole window is its past; the holdings start all in cash.

    * MIN_VARIANCE: `SinglePeriodOptimization(-FullCovariance(Σ))` under LongOnly, LeverageLimit(1), NoCash,
      MaxWeights(upper) and one `FactorMaxLimit` row per binding cluster cap.
    * MAX_SHARPE: cash is the riskless asset. The SPO maximises (μ − rf)ᵀy − yᵀΣy over long-only risky
      holdings y (cash takes the rest; in excess terms its return is 0) with the caps written homogeneously
      (yᵢ − uᵢ·Σy ≤ 0, Σ_c y − cap_c·Σy ≤ 0, as `FactorMaxLimit`s). The feasible y form a cone, so the
      optimum for any risk aversion is a positive multiple of the Charnes–Cooper solution and y/Σy is the
      capped long-only tangency portfolio: a true ratio maximisation, not a utility point.
    * MARKET_NEUTRAL: min variance under NoCash, LeverageLimit(gross_max), Max/MinWeights(±upper) and the
      beta band as `FactorMaxLimit(β, band)` + `FactorMinLimit(β, −band)`.
    * EQUAL_WEIGHT / BENCHMARK: `Uniform()`.

    No fallback solver (cvxportfolio's default is SCS, far less precise): a failed solve raises.
    """

    name = EngineName.CVXPORTFOLIO
    _loggers = ("cvxportfolio",)
    CASH = "cash"

    def _why_not(self, profile: RiskProfile) -> str:
        return _CVX_WHY_NOT.get(profile) or super()._why_not(profile)

    def _solve(self, inputs: _Inputs, profile: RiskProfile) -> np.ndarray:
        import cvxportfolio as cvx

        assets, frame = inputs.assets, inputs.frame
        execution = frame.index[-1] + pd.offsets.BDay(1)
        returns = pd.concat([frame, pd.DataFrame(np.nan, index=[execution], columns=frame.columns)])
        market = cvx.UserProvidedMarketData(
            returns=returns, cash_key=self.CASH, min_history=pd.Timedelta(0), online_usage=True
        )
        holdings = pd.Series(0.0, index=[*assets, self.CASH])
        holdings[self.CASH] = 1.0
        if profile in (_P.EQUAL_WEIGHT, _P.BENCHMARK):
            policy = cvx.Uniform()
        else:
            policy = self._policy(cvx, inputs, profile)
        trades, _, _ = policy.execute(h=holdings, market_data=market, t=execution)
        post = (holdings + trades)[assets].to_numpy(dtype=float)
        if profile is _P.MAX_SHARPE:
            invested = post.sum()
            if not np.isfinite(invested) or invested <= 1e-9:
                raise self._fail(profile, f"the risky sleeve is empty (Σy = {invested:.3e}): no positive Sharpe ratio")
            post = post / invested
        return post

    def _policy(self, cvx, inputs: _Inputs, profile: RiskProfile):
        assets = inputs.assets
        sigma = cvx.FullCovariance(inputs.cov_frame(scaled=True))
        solve = dict(include_cash_return=False, fallback_solver=None, solver=self.solver, **self.solver_params)

        def limit(rows: list[np.ndarray], bounds: np.ndarray):
            exposure = pd.DataFrame(np.vstack(rows).T, index=assets)
            return cvx.FactorMaxLimit(exposure, pd.Series(bounds, index=exposure.columns))

        if profile is _P.MIN_VARIANCE:
            constraints = [cvx.LongOnly(), cvx.LeverageLimit(1), cvx.NoCash()]
            if inputs.upper is not None:
                constraints.append(cvx.MaxWeights(pd.Series(inputs.upper, index=assets)))
            if inputs.membership is not None:
                constraints.append(limit([inputs.membership], inputs.cluster_caps))
            return cvx.SinglePeriodOptimization(-sigma, constraints, **solve)
        if profile is _P.MAX_SHARPE:
            excess = (inputs.mu - inputs.rf) / np.sqrt(inputs.scale)
            if not (excess > 0).any():
                raise self._fail(profile, _NO_POSITIVE_SHARPE)
            rows = []
            if inputs.upper is not None:
                rows.append(np.eye(len(assets)) - inputs.upper[:, None])  # yᵢ − uᵢ·Σy ≤ 0
            if inputs.membership is not None:
                rows.append(inputs.membership - inputs.cluster_caps[:, None])  # Σ_c y − cap_c·Σy ≤ 0
            constraints = [cvx.LongOnly()] + ([limit(rows, np.zeros(sum(len(r) for r in rows)))] if rows else [])
            objective = cvx.ReturnsForecast(r_hat=pd.Series(excess, index=assets)) - sigma
            return cvx.SinglePeriodOptimization(objective, constraints, **solve)
        if profile is _P.MARKET_NEUTRAL:
            config, beta = inputs.config, pd.Series(inputs.beta, index=assets)
            constraints = [
                cvx.NoCash(), cvx.LeverageLimit(config.neutral_gross_max),
                cvx.MaxWeights(pd.Series(inputs.upper, index=assets)),
                cvx.MinWeights(pd.Series(-inputs.upper, index=assets)),
                cvx.FactorMaxLimit(beta, config.neutral_beta_band), cvx.FactorMinLimit(beta, -config.neutral_beta_band),
            ]
            return cvx.SinglePeriodOptimization(-sigma, constraints, **solve)
        raise NotSupported(self.name.value, profile.value)  # pragma: no cover - guarded by SUPPORT
