"""Library engines (skfolio, Riskfolio-Lib, cvxportfolio): support matrix, valid weights, caps, parity, failures.

Data: the last 500 daily returns of skfolio's bundled S&P 500 prices (20 stocks, offline); the benchmark is
their equal-weight return. Parity runs with the caps off (max_weight 1, cluster caps 1) unless stated: there
every engine, the custom one included, solves the same problem.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tsp_platform.allocation.base import AllocationProblem, NotSupported, SolverFailed
from tsp_platform.allocation.covariance import estimate_covariance
from tsp_platform.allocation.libraries import (
    CAPS_SUPPORT,
    SUPPORT,
    Cap,
    CvxportfolioEngine,
    RiskfolioEngine,
    SkfolioEngine,
    returns_frame,
)
from tsp_platform.allocation.projection import capped_set, project_breakpoint
from tsp_platform.config.allocation import AllocationConfig, CovarianceMethod, EngineName, Linkage, Regime, RiskProfile

PARITY = 1e-6
ENGINES = {
    EngineName.SKFOLIO: SkfolioEngine, EngineName.RISKFOLIO: RiskfolioEngine, EngineName.CVXPORTFOLIO: CvxportfolioEngine,
}
SUPPORTED = [(e, p) for e in ENGINES for p in RiskProfile if p in SUPPORT[e]]
UNSUPPORTED = [(e, p) for e in ENGINES for p in RiskProfile if p not in SUPPORT[e]]
UNCAPPED = AllocationConfig(max_weight=1.0, cluster_caps={regime: 1.0 for regime in Regime})


@pytest.fixture(scope="module")
def sp500() -> pd.DataFrame:
    from skfolio.datasets import load_sp500_dataset

    return load_sp500_dataset().pct_change().iloc[-500:]


def make_problem(
    returns: pd.DataFrame, config: AllocationConfig = AllocationConfig(), clusters=None, benchmark: bool = True
) -> AllocationProblem:
    n = returns.shape[1]
    return AllocationProblem(
        returns=returns.to_numpy(),
        assets=tuple(returns.columns),
        clusters=np.arange(n) % 5 if clusters is None else np.asarray(clusters),
        config=config,
        benchmark=returns.to_numpy().mean(axis=1) if benchmark else None,
    )


@pytest.fixture(scope="module")
def capped(sp500) -> AllocationProblem:
    return make_problem(sp500)


@pytest.fixture(scope="module")
def uncapped(sp500) -> AllocationProblem:
    return make_problem(sp500, UNCAPPED)


@pytest.fixture(scope="module")
def custom():
    from tsp_platform.allocation.custom import CustomEngine

    return CustomEngine()


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max())


def _beta(problem: AllocationProblem) -> np.ndarray:
    bench = problem.benchmark
    cov = [np.cov(problem.returns[:, i], bench, ddof=1)[0, 1] for i in range(problem.n_assets)]
    return np.array(cov) / np.var(bench, ddof=1)


def test_support_matrix_is_what_the_engines_answer():
    assert set(SUPPORT) == set(ENGINES) == set(CAPS_SUPPORT)
    for name, cls in ENGINES.items():
        engine = cls()
        assert engine.name is name
        assert {p for p in RiskProfile if engine.supports(p)} == SUPPORT[name]
        assert set(CAPS_SUPPORT[name]) == SUPPORT[name]
        assert all(engine.applied_caps(p) == CAPS_SUPPORT[name][p] for p in SUPPORT[name])
        assert cls(caps_in_construction=False).applied_caps(RiskProfile.HRP) == frozenset()


@pytest.mark.parametrize(("engine", "profile"), SUPPORTED, ids=lambda v: v.value)
def test_supported_profiles_give_valid_weights(capped, engine, profile):
    weights = ENGINES[engine]().allocate(capped, profile)
    assert weights.shape == (capped.n_assets,)
    assert np.isfinite(weights).all()
    assert weights.sum() == pytest.approx(1.0, abs=1e-6)
    config = capped.config
    if profile is RiskProfile.MARKET_NEUTRAL:
        assert np.abs(weights).max() <= capped.upper.max() + 1e-6
        assert np.abs(weights).sum() <= config.neutral_gross_max + 1e-6
        assert abs(_beta(capped) @ weights) <= config.neutral_beta_band + 1e-6
        assert weights.min() < 0  # the book does short on this data
        return
    assert weights.min() >= -1e-6
    applied = CAPS_SUPPORT[engine][profile]
    if Cap.ASSET in applied:
        assert weights.max() <= capped.upper.max() + 1e-6
    if Cap.CLUSTER in applied:
        cset = capped_set(capped.clusters, np.zeros(capped.n_assets), capped.upper, capped.cluster_cap)
        assert cset.violation(weights) <= 1e-6
    if profile in (RiskProfile.EQUAL_WEIGHT, RiskProfile.BENCHMARK):
        np.testing.assert_allclose(weights, 1.0 / capped.n_assets, atol=1e-15)


def test_caps_bind_where_the_engines_impose_them(capped, uncapped):
    """The default caps are active on this data: uncapped max-Sharpe breaks them, capped holds them."""
    for engine in ENGINES.values():
        free = engine().allocate(uncapped, RiskProfile.MAX_SHARPE)
        assert free.max() > capped.upper.max() + 1e-3
        held = engine().allocate(capped, RiskProfile.MAX_SHARPE)
        assert held.max() <= capped.upper.max() + 1e-6


@pytest.mark.parametrize(("engine", "profile"), UNSUPPORTED, ids=lambda v: v.value)
def test_unsupported_profiles_raise_never_substitute(capped, engine, profile):
    instance = ENGINES[engine]()
    assert not instance.supports(profile)
    with pytest.raises(NotSupported) as raised:
        instance.allocate(capped, profile)
    assert raised.value.engine == engine.value and raised.value.profile == profile.value
    assert ": " in str(raised.value)  # a reason is given


def test_returns_frame_has_assets_as_columns_and_a_daily_index(capped):
    frame = returns_frame(capped)
    assert list(frame.columns) == list(capped.assets)
    assert isinstance(frame.index, pd.DatetimeIndex) and frame.index.is_monotonic_increasing
    assert len(frame) == capped.returns.shape[0]
    np.testing.assert_array_equal(frame.to_numpy(), capped.returns)


def test_riskfolio_ledoit_is_the_shared_covariance(sp500):
    """Riskfolio's method_cov='ledoit' is sklearn's Ledoit–Wolf, i.e. our estimate (ridge 0 here)."""
    from riskfolio.src.ParamsEstimation import covar_matrix

    estimate = estimate_covariance(sp500.to_numpy(), AllocationConfig().covariance)
    assert estimate.ridge == 0.0
    np.testing.assert_allclose(covar_matrix(sp500, method="ledoit").to_numpy(), estimate.matrix, rtol=0, atol=1e-15)


# ------------------------------------------------------------------------------------------------------ parity


@pytest.mark.parametrize("linkage", list(Linkage), ids=str)
def test_hrp_parity_skfolio_riskfolio_custom(sp500, custom, linkage):
    problem = make_problem(sp500, UNCAPPED.model_copy(update={"hrp_linkage": linkage}))
    reference = custom.allocate(problem, RiskProfile.HRP)
    for name in (EngineName.SKFOLIO, EngineName.RISKFOLIO):
        assert _max_diff(ENGINES[name]().allocate(problem, RiskProfile.HRP), reference) <= 1e-12, name


@pytest.mark.parametrize("method", list(CovarianceMethod), ids=str)
def test_min_variance_parity_skfolio_riskfolio_cvxportfolio_custom(sp500, custom, method):
    config = UNCAPPED.model_copy(update={"covariance": UNCAPPED.covariance.model_copy(update={"method": method})})
    problem = make_problem(sp500, config)
    reference = custom.allocate(problem, RiskProfile.MIN_VARIANCE)
    for name, cls in ENGINES.items():
        assert _max_diff(cls().allocate(problem, RiskProfile.MIN_VARIANCE), reference) <= PARITY, name


@pytest.mark.parametrize("problem_name", ["capped", "uncapped"])
@pytest.mark.parametrize("profile", [RiskProfile.MIN_VARIANCE, RiskProfile.MAX_SHARPE, RiskProfile.MARKET_NEUTRAL])
def test_convex_parity_with_custom_caps_on_and_off(request, custom, problem_name, profile):
    """Min variance and max Sharpe on the capped set (asset + cluster caps), and the market-neutral book,
    are the same convex problem in every engine."""
    problem = request.getfixturevalue(problem_name)
    reference = custom.allocate(problem, profile)
    for name, cls in ENGINES.items():
        assert _max_diff(cls().allocate(problem, profile), reference) <= PARITY, name


def test_risk_parity_parity_with_custom(uncapped, custom):
    reference = custom.allocate(uncapped, RiskProfile.RISK_PARITY)
    for name in (EngineName.SKFOLIO, EngineName.RISKFOLIO):
        assert _max_diff(ENGINES[name]().allocate(uncapped, RiskProfile.RISK_PARITY), reference) <= PARITY, name


def test_binding_caps_in_construction_vs_the_projection(sp500, custom):
    """Six assets, four clusters, caps binding: by default the libraries impose the caps inside HRP and risk
    budgeting (their own mechanisms, which differ from a projection); with `caps_in_construction=False` they
    leave them to the caller, and the projected weights equal the custom engine's."""
    problem = make_problem(sp500.iloc[:, :6], AllocationConfig(), clusters=[0, 0, 1, 1, 2, 3])
    cset = capped_set(problem.clusters, np.zeros(problem.n_assets), problem.upper, problem.cluster_cap)
    # the libraries' constrained risk budgeting is one problem (caps homogeneous in the budget variable) ...
    sk_rp, rf_rp = (ENGINES[n]().allocate(problem, RiskProfile.RISK_PARITY) for n in (EngineName.SKFOLIO, EngineName.RISKFOLIO))
    assert _max_diff(sk_rp, rf_rp) <= PARITY and cset.violation(sk_rp) <= 1e-6
    # ... while their HRP per-asset caps are two mechanisms (split factors vs clip-and-redistribute)
    sk_hrp, rf_hrp = (ENGINES[n]().allocate(problem, RiskProfile.HRP) for n in (EngineName.SKFOLIO, EngineName.RISKFOLIO))
    assert _max_diff(sk_hrp, rf_hrp) > 1e-3
    for profile in (RiskProfile.HRP, RiskProfile.RISK_PARITY):
        reference = custom.allocate(problem, profile)
        for name in (EngineName.SKFOLIO, EngineName.RISKFOLIO):
            native = ENGINES[name]().allocate(problem, profile)
            assert native.max() <= problem.upper.max() + 1e-6
            assert _max_diff(project_breakpoint(native, cset), reference) > 1e-3, (profile, name)
            raw = ENGINES[name](caps_in_construction=False).allocate(problem, profile)
            assert cset.violation(raw) > 1e-3  # the construction alone breaks the caps here
            assert _max_diff(project_breakpoint(raw, cset), reference) <= PARITY, (profile, name)


def test_max_sharpe_is_a_ratio_maximum(uncapped):
    """No nearby long-only portfolio has a higher Sharpe ratio than the engines' answer."""
    cov = estimate_covariance(uncapped.returns, uncapped.config.covariance).matrix
    mu = uncapped.returns.mean(axis=0)

    def sharpe(w):
        return float(mu @ w / np.sqrt(w @ cov @ w))

    rng = np.random.default_rng(7)
    for engine in ENGINES.values():
        best = engine().allocate(uncapped, RiskProfile.MAX_SHARPE)
        for _ in range(100):
            other = np.abs(best + rng.normal(0, 0.02, best.size) * (best > 1e-4))
            assert sharpe(other / other.sum()) <= sharpe(best) + 1e-9


# ----------------------------------------------------------------------------------------------------- failures


def _boom(*args, **kwargs):
    raise RuntimeError("forced library failure")


def test_forced_skfolio_failure_is_solver_failed(capped, monkeypatch):
    from skfolio.optimization import HierarchicalRiskParity, MeanRisk, RiskBudgeting

    for cls in (MeanRisk, HierarchicalRiskParity, RiskBudgeting):
        monkeypatch.setattr(cls, "fit", _boom)
    for profile in (RiskProfile.MIN_VARIANCE, RiskProfile.MAX_SHARPE, RiskProfile.HRP, RiskProfile.RISK_PARITY):
        with pytest.raises(SolverFailed, match=rf"^skfolio {profile.value}: RuntimeError: forced library failure"):
            SkfolioEngine().allocate(capped, profile)


def test_forced_riskfolio_failure_is_solver_failed(capped, monkeypatch):
    import riskfolio as rp

    monkeypatch.setattr(rp.Portfolio, "optimization", _boom)
    monkeypatch.setattr(rp.HCPortfolio, "optimization", _boom)
    for profile in (RiskProfile.MIN_VARIANCE, RiskProfile.HRP):
        with pytest.raises(SolverFailed, match=rf"^riskfolio {profile.value}: RuntimeError: forced library failure"):
            RiskfolioEngine().allocate(capped, profile)


def test_riskfolio_no_solution_is_solver_failed(capped, monkeypatch):
    """Riskfolio prints and returns None when the solver finds nothing: that is a failure, not weights."""
    import riskfolio as rp

    monkeypatch.setattr(rp.Portfolio, "rp_optimization", lambda self, **kw: None)
    with pytest.raises(SolverFailed, match="^riskfolio risk_parity: the problem doesn't have a solution"):
        RiskfolioEngine().allocate(capped, RiskProfile.RISK_PARITY)


def test_forced_cvxportfolio_failure_is_solver_failed(capped, monkeypatch):
    import cvxportfolio as cvx

    monkeypatch.setattr(cvx.SinglePeriodOptimization, "execute", _boom)
    with pytest.raises(SolverFailed, match=r"^cvxportfolio min_variance: RuntimeError: forced library failure"):
        CvxportfolioEngine().allocate(capped, RiskProfile.MIN_VARIANCE)


def test_invalid_library_output_is_solver_failed(capped, monkeypatch):
    """A library answer off the budget, or above a cap it was given, is rejected."""
    from skfolio.optimization import MeanRisk

    def off_budget(self, X, y=None, **kw):
        self.weights_ = np.full(X.shape[1], 0.9 / X.shape[1])
        return self

    def concentrated(self, X, y=None, **kw):
        self.weights_ = np.eye(X.shape[1])[0]
        return self

    monkeypatch.setattr(MeanRisk, "fit", off_budget)
    with pytest.raises(SolverFailed, match="^skfolio min_variance: net weight 0.9"):
        SkfolioEngine().allocate(capped, RiskProfile.MIN_VARIANCE)
    monkeypatch.setattr(MeanRisk, "fit", concentrated)
    with pytest.raises(SolverFailed, match="^skfolio max_sharpe: asset weight 1.0000 above its cap"):
        SkfolioEngine().allocate(capped, RiskProfile.MAX_SHARPE)


def test_infeasible_problems_fail_in_every_engine(sp500):
    """A zero beta band with gross ≤ 1.5 cannot hold a net-long book of stocks with betas ≈ 1."""
    problem = make_problem(sp500, AllocationConfig(neutral_beta_band=0.0, neutral_gross_max=1.5))
    for name, engine in ENGINES.items():
        with pytest.raises(SolverFailed, match=rf"^{name.value} market_neutral: "):
            engine().allocate(problem, RiskProfile.MARKET_NEUTRAL)


def test_missing_inputs_fail_rather_than_substitute(sp500):
    no_benchmark = make_problem(sp500, benchmark=False)
    losers = make_problem(-sp500.abs(), UNCAPPED)
    for name, engine in ENGINES.items():
        with pytest.raises(SolverFailed, match=rf"^{name.value} market_neutral: market_neutral needs problem.benchmark"):
            engine().allocate(no_benchmark, RiskProfile.MARKET_NEUTRAL)
        with pytest.raises(SolverFailed, match=rf"^{name.value} max_sharpe: no asset's mean return exceeds the risk-free rate"):
            engine().allocate(losers, RiskProfile.MAX_SHARPE)


def test_caps_that_cannot_hold_the_budget_are_raised_as_the_projection_raises_them(sp500, custom):
    """Two clusters, one a singleton, assets capped at 5 %: 0.5 + 0.05 < 1, so the caps are raised uniformly
    (`projection.capped_set`), never dropped, and every engine solves the custom engine's problem."""
    clusters = np.r_[np.zeros(sp500.shape[1] - 1, int), 1]
    problem = make_problem(sp500, AllocationConfig(max_weight=0.05), clusters)
    cset = capped_set(clusters, np.zeros(problem.n_assets), problem.upper, problem.cluster_cap)
    assert cset.raised_caps
    reference = custom.allocate(problem, RiskProfile.MIN_VARIANCE)
    for name, engine in ENGINES.items():
        weights = engine().allocate(problem, RiskProfile.MIN_VARIANCE)
        assert cset.violation(weights) <= 1e-6, name
        assert _max_diff(weights, reference) <= PARITY, name


def test_cvxportfolio_runs_offline(capped, monkeypatch):
    import socket

    def no_network(*args, **kwargs):
        raise OSError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    for profile in SUPPORT[EngineName.CVXPORTFOLIO]:
        weights = CvxportfolioEngine().allocate(capped, profile)
        assert weights.sum() == pytest.approx(1.0, abs=1e-6)


def test_allocate_does_not_mutate_the_problem(capped):
    before = capped.returns.copy()
    for name, cls in ENGINES.items():
        for profile in SUPPORT[name]:
            cls().allocate(capped, profile)
    np.testing.assert_array_equal(capped.returns, before)
