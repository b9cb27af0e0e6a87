"""Custom engine: every profile valid on two panels, parity with skfolio/Riskfolio, exact solvers, fallbacks.

Library configurations that match ours (verified against skfolio 1.12.2 / Riskfolio-Lib 7.4 sources):

* HRP, skfolio: `HierarchicalRiskParity(risk_measure=VARIANCE, prior_estimator=EmpiricalPrior(LedoitWolf()),
  distance_estimator=CovarianceDistance(covariance_estimator="precomputed"),
  seriation_estimator=HierarchicalSeriation(HierarchicalClustering(linkage_method=SINGLE),
  optimal_ordering=False))`. `HierarchicalClustering` has no `optimal_ordering` argument in 1.12; leaf
  ordering moved to `HierarchicalSeriation`, whose default (also what the deprecated
  `hierarchical_clustering_estimator=` path builds) is optimal ordering = Riskfolio `leaf_order=True`.
  `PearsonDistance()` correlates the *sample* returns while our tree uses the correlation implied by the
  Ledoit–Wolf covariance, so the trees can differ; "precomputed" makes skfolio use the prior's covariance.
* HRP, Riskfolio: `HCPortfolio.optimization(model="HRP", rm="MV", linkage="single", leaf_order=False,
  codependence="custom_cov", method_cov="custom_cov", custom_cov=Σ_LW)`; `codependence="pearson"`
  likewise uses the sample correlation (it matches our engine run with the sample covariance, tested).
* Min-variance: skfolio `MeanRisk(MINIMIZE_RISK, VARIANCE, EmpiricalPrior(LedoitWolf()))` and Riskfolio
  `Portfolio.optimization(model="Classic", rm="MV", obj="MinRisk")` after `assets_stats(method_cov="ledoit")`.
  Both are interior-point (CLARABEL) solutions; skfolio needs tightened CLARABEL tolerances to land within
  1e-6 of the exact optimum (default tolerances leave ≈ 7e-6 on the S&P panel), and ours has the lower
  objective in every case.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from tsp_platform.allocation import custom
from tsp_platform.allocation.base import AllocationProblem, NotSupported, SolverFailed
from tsp_platform.allocation.custom import FALLBACKS, CustomEngine, Inputs, solve_with_fallbacks
from tsp_platform.allocation.hrp import hrp_weights, hrp_weights_recursive
from tsp_platform.allocation.projection import capped_set, project, project_breakpoint
from tsp_platform.allocation.qp import QPError, QPInfeasible, kkt_residuals, solve_qp
from tsp_platform.allocation.risk_parity import erc_ccd, erc_newton, risk_contributions
from tsp_platform.config.allocation import (
    AllocationConfig,
    CovarianceConfig,
    CovarianceMethod,
    EngineName,
    Linkage,
    Regime,
    RiskProfile,
)

warnings.filterwarnings("ignore", category=UserWarning)
warnings.filterwarnings("ignore", category=FutureWarning)

CAPS_OFF = AllocationConfig(max_weight=1.0, cluster_caps={r: 1.0 for r in Regime})
LONG_ONLY = [p for p in RiskProfile if p not in (RiskProfile.MARKET, RiskProfile.MARKET_NEUTRAL, RiskProfile.BENCHMARK)]


def factor_panel(t=600, n=40, k=5, seed=0):
    rng = np.random.default_rng(seed)
    factors = rng.normal(0, 0.01, (t, k))
    loadings = rng.normal(0.6, 0.5, (n, k))
    returns = factors @ loadings.T + rng.normal(0, 0.012, (t, n)) + rng.normal(3e-4, 3e-4, n)
    benchmark = factors[:, 0] + rng.normal(0, 0.002, t)
    return returns, benchmark, np.argmax(np.abs(loadings), axis=1), rng.normal(size=n)


def problem(returns, clusters, config=None, **kw) -> AllocationProblem:
    n = returns.shape[1]
    assets = tuple(f"a{i}" for i in range(n))
    return AllocationProblem(returns, assets, np.asarray(clusters), config or AllocationConfig(), **kw)


@pytest.fixture(scope="module")
def synthetic():
    r, bench, clusters, af = factor_panel()
    return problem(r, clusters, benchmark=bench, antifragility=af)


@pytest.fixture(scope="module")
def sp500():
    from skfolio.datasets import load_sp500_dataset

    prices = load_sp500_dataset()
    returns = prices.pct_change().dropna()
    x = returns.to_numpy()[-2000:]
    rng = np.random.default_rng(1)
    # benchmark: BAC. Against an index of these 20 large caps every beta is 0.6–1.4, so no net-long book
    # within gross 2 can be beta-neutral (the engine then rightly raises SolverFailed); BAC leaves room.
    bench = x[:, list(returns.columns).index("BAC")]
    af = rng.normal(size=x.shape[1])
    return problem(x, np.arange(x.shape[1]) % 5, benchmark=bench, antifragility=af), returns.iloc[-2000:]


@pytest.fixture(params=["synthetic", "sp500"])
def panel(request, synthetic, sp500):
    return synthetic if request.param == "synthetic" else sp500[0]


def cluster_sums(prob, w):
    _, codes = np.unique(prob.clusters, return_inverse=True)
    return np.bincount(codes.ravel(), weights=w)


# ------------------------------------------------------------------------------------------------ profiles


@pytest.mark.parametrize("profile", [p for p in RiskProfile if p is not RiskProfile.MARKET])
def test_every_profile_is_valid(panel, profile):
    w, fallback = solve_with_fallbacks(panel, profile)
    assert fallback is None, "the primary solver serves on well-posed problems"
    assert w.shape == (panel.n_assets,) and np.isfinite(w).all()
    assert w.sum() == pytest.approx(1.0, abs=1e-10)
    cfg = panel.config
    if profile is RiskProfile.MARKET_NEUTRAL:
        beta = Inputs(panel).beta
        assert abs(beta @ w) <= cfg.neutral_beta_band + 1e-10
        assert np.abs(w).sum() <= cfg.neutral_gross_max + 1e-10
        assert np.all(np.abs(w) <= panel.upper + 1e-10)
        assert (w < -1e-6).any(), "the neutral book uses shorts"
    elif profile is RiskProfile.BENCHMARK:
        np.testing.assert_allclose(w, 1.0 / panel.n_assets)
    else:
        cset = Inputs(panel).barbell[3] if profile is RiskProfile.BARBELL else Inputs(panel).caps
        assert np.all(w >= cset.lb - 1e-12) and np.all(w <= cset.ub + 1e-12)
        assert np.all(cluster_sums(panel, w) <= cset.caps + 1e-12)
        if profile is not RiskProfile.BARBELL:
            assert np.all(w <= panel.upper + 1e-12)
            assert np.all(cluster_sums(panel, w) <= max(panel.cluster_cap, 1 / len(set(panel.clusters))) + 1e-12)
    np.testing.assert_allclose(CustomEngine().allocate(panel, profile), w, atol=1e-14)


def test_engine_contract(synthetic):
    engine = CustomEngine(kkt_tol=1e-8)
    assert engine.name is EngineName.CUSTOM and engine.kkt_tol == 1e-8
    assert all(engine.supports(p) for p in RiskProfile if p is not RiskProfile.MARKET)
    assert not engine.supports(RiskProfile.MARKET)
    with pytest.raises(NotSupported):
        engine.allocate(synthetic, RiskProfile.MARKET)
    with pytest.raises(NotSupported):
        solve_with_fallbacks(synthetic, RiskProfile.MARKET)


def test_equal_weight_is_fully_invested_even_when_caps_bind():
    r, _, _, _ = factor_panel(n=3)
    w = CustomEngine().allocate(problem(r, [0, 1, 2]), RiskProfile.EQUAL_WEIGHT)  # max_weight 0.25 < 1/3
    np.testing.assert_allclose(w, 1 / 3)
    r, _, _, _ = factor_panel(n=10)
    prob = problem(r, [0] * 7 + [1, 2, 3])  # cluster 0 would hold 0.7 > cap 0.25
    w = CustomEngine().allocate(prob, RiskProfile.EQUAL_WEIGHT)
    assert w.sum() == pytest.approx(1.0, abs=1e-12)
    assert cluster_sums(prob, w).max() <= 0.25 + 1e-12
    np.testing.assert_allclose(w, project_breakpoint(np.full(10, 0.1), Inputs(prob).caps), atol=1e-15)


def test_infeasible_caps_are_raised_uniformly():
    r, _, _, _ = factor_panel(n=4)
    prob = problem(r, [0, 1, 1, 1])  # u = 0.25, caps 0.5: capacity 0.25 + 0.5 < 1
    cset = Inputs(prob).caps
    assert cset.raised_caps and cset.caps.min() == pytest.approx(0.75)
    for profile in (RiskProfile.MIN_VARIANCE, RiskProfile.HRP, RiskProfile.EQUAL_WEIGHT):
        w = CustomEngine().allocate(prob, profile)
        assert w.sum() == pytest.approx(1.0) and cset.violation(w) <= 1e-12


# --------------------------------------------------------------------------------------------------- HRP


@pytest.mark.parametrize("linkage", ["single", "ward", "average", "complete"])
def test_prefix_sum_hrp_equals_the_textbook_loop(synthetic, linkage):
    cov = Inputs(synthetic).cov
    np.testing.assert_allclose(hrp_weights(cov, linkage), hrp_weights_recursive(cov, linkage), atol=1e-14)


def _skfolio_hrp(x, covariance_estimator, distance, optimal_ordering):
    from skfolio import RiskMeasure
    from skfolio.cluster import HierarchicalClustering, LinkageMethod
    from skfolio.optimization import HierarchicalRiskParity
    from skfolio.prior import EmpiricalPrior
    from skfolio.seriation import HierarchicalSeriation

    model = HierarchicalRiskParity(
        risk_measure=RiskMeasure.VARIANCE,
        prior_estimator=EmpiricalPrior(covariance_estimator=covariance_estimator),
        distance_estimator=distance,
        seriation_estimator=HierarchicalSeriation(
            hierarchical_clustering_estimator=HierarchicalClustering(linkage_method=LinkageMethod.SINGLE),
            optimal_ordering=optimal_ordering,
        ),
    )
    return model.fit(x).weights_


def _riskfolio_hrp(x, leaf_order, cov=None):
    import riskfolio as rp

    df = pd.DataFrame(x, columns=[f"a{i}" for i in range(x.shape[1])])
    port = rp.HCPortfolio(returns=df)
    if cov is None:
        w = port.optimization(
            model="HRP", codependence="pearson", rm="MV", method_cov="hist", linkage="single", leaf_order=leaf_order
        )
    else:
        custom_cov = pd.DataFrame(cov, index=df.columns, columns=df.columns)
        w = port.optimization(
            model="HRP", codependence="custom_cov", rm="MV", method_cov="custom_cov", custom_cov=custom_cov,
            linkage="single", leaf_order=leaf_order,
        )
    return w.to_numpy().ravel()


def test_hrp_parity_with_skfolio_and_riskfolio(panel):
    from skfolio.distance import CovarianceDistance
    from skfolio.moments import LedoitWolf

    hrp_problem = problem(panel.returns, np.zeros(panel.n_assets), CAPS_OFF)
    inp = Inputs(hrp_problem)
    assert inp.estimate.ridge == 0.0
    ours = CustomEngine().allocate(hrp_problem, RiskProfile.HRP)
    np.testing.assert_allclose(ours, hrp_weights(inp.cov), atol=1e-15)  # caps off: no projection
    sk = _skfolio_hrp(panel.returns, LedoitWolf(), CovarianceDistance(covariance_estimator="precomputed"), False)
    rf = _riskfolio_hrp(panel.returns, False, inp.cov)
    assert np.max(np.abs(ours - sk)) <= 1e-6 and np.max(np.abs(ours - rf)) <= 1e-6
    # optimal leaf ordering: skfolio's default seriation equals Riskfolio leaf_order=True (not our plain order)
    sk_olo = _skfolio_hrp(panel.returns, LedoitWolf(), CovarianceDistance(covariance_estimator="precomputed"), True)
    np.testing.assert_allclose(sk_olo, _riskfolio_hrp(panel.returns, True, inp.cov), atol=1e-6)


def test_hrp_parity_on_sample_covariance_with_pearson_codependence(sp500):
    """With the sample covariance, the libraries' Pearson codependence is exactly our tree's correlation."""
    from skfolio.distance import PearsonDistance
    from skfolio.moments import EmpiricalCovariance

    x = sp500[0].returns
    cfg = CAPS_OFF.model_copy(update={"covariance": CovarianceConfig(method=CovarianceMethod.SAMPLE)})
    ours = CustomEngine().allocate(problem(x, np.zeros(x.shape[1]), cfg), RiskProfile.HRP)
    sk = _skfolio_hrp(x, EmpiricalCovariance(), PearsonDistance(), False)
    rf = _riskfolio_hrp(x, False)
    assert np.max(np.abs(ours - sk)) <= 1e-6 and np.max(np.abs(ours - rf)) <= 1e-6


# --------------------------------------------------------------------------------------- minimum variance


def test_min_variance_parity_with_skfolio_and_riskfolio(panel, sp500):
    import riskfolio as rp
    from skfolio import RiskMeasure
    from skfolio.moments import LedoitWolf
    from skfolio.optimization import MeanRisk, ObjectiveFunction
    from skfolio.prior import EmpiricalPrior

    x = panel.returns
    prob = problem(x, np.zeros(x.shape[1]), CAPS_OFF)
    cov = Inputs(prob).cov
    ours = CustomEngine().allocate(prob, RiskProfile.MIN_VARIANCE)
    tight = dict(tol_gap_abs=1e-14, tol_gap_rel=1e-14, tol_feas=1e-14, tol_ktratio=1e-12, max_iter=500)
    sk = MeanRisk(
        objective_function=ObjectiveFunction.MINIMIZE_RISK, risk_measure=RiskMeasure.VARIANCE,
        prior_estimator=EmpiricalPrior(covariance_estimator=LedoitWolf()), solver="CLARABEL", solver_params=tight,
    ).fit(x).weights_
    port = rp.Portfolio(returns=pd.DataFrame(x, columns=[f"a{i}" for i in range(x.shape[1])]))
    port.assets_stats(method_mu="hist", method_cov="ledoit")
    np.testing.assert_allclose(port.cov.to_numpy(), cov, rtol=1e-12, atol=0)
    port.solvers = ["CLARABEL"]
    port.sol_params = {"CLARABEL": tight}
    rf = port.optimization(model="Classic", rm="MV", obj="MinRisk", rf=0, l=0, hist=True).to_numpy().ravel()
    assert np.max(np.abs(ours - sk)) <= 1e-6
    assert np.max(np.abs(ours - rf)) <= 1e-6
    var = ours @ cov @ ours
    assert var <= sk @ cov @ sk * (1 + 1e-12) and var <= rf @ cov @ rf * (1 + 1e-12)


def test_min_variance_is_kkt_exact_with_caps(synthetic, monkeypatch):
    results = []
    real = custom.solve_qp
    monkeypatch.setattr(custom, "solve_qp", lambda *a, **k: results.append(real(*a, **k)) or results[-1])
    w = CustomEngine().allocate(synthetic, RiskProfile.MIN_VARIANCE)
    (res,) = results
    assert res.kkt.max <= 1e-12
    np.testing.assert_allclose(res.x, w, atol=0)
    binding = (cluster_sums(synthetic, w) >= synthetic.cluster_cap - 1e-12).any() or (w >= 0.25 - 1e-12).any()
    assert binding, "this panel makes a cap bind (otherwise the test proves nothing about caps)"


def test_turnover_penalty_pulls_towards_previous_weights(synthetic):
    plain = CustomEngine().allocate(synthetic, RiskProfile.MIN_VARIANCE)
    previous = CustomEngine().allocate(synthetic, RiskProfile.HRP)
    cfg = synthetic.config.model_copy(update={"turnover_penalty": 0.05})
    prob = problem(synthetic.returns, synthetic.clusters, cfg, previous_weights=previous)
    penalised = CustomEngine().allocate(prob, RiskProfile.MIN_VARIANCE)
    assert np.abs(penalised - previous).sum() < np.abs(plain - previous).sum()


# ------------------------------------------------------------------------------------------------- the QP


def _random_qp(rng, n, psd=False):
    b = rng.normal(size=(n, n // 2 if psd else n + 3))
    Q = b @ b.T / n
    c = rng.normal(size=n) * 0.1
    clusters = rng.integers(0, 4, n)
    G = np.vstack([(clusters == k).astype(float) for k in range(4)] + [rng.normal(size=(2, n))])
    h = np.concatenate([np.full(4, 0.45), rng.uniform(0.5, 1.0, 2)])
    lb, ub = np.zeros(n), np.full(n, 0.3)
    fixed = rng.random(n) < 0.1
    lb[fixed] = ub[fixed] = 0.01
    return Q, c, np.ones((1, n)), np.ones(1), G, h, lb, ub


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("path", ["pdas", "primal"])
def test_qp_kkt_residuals_are_tiny(seed, path, monkeypatch):
    from tsp_platform.allocation import qp

    if path == "primal":
        monkeypatch.setattr(qp, "_pdas", lambda *a, **k: None)
    rng = np.random.default_rng(seed)
    Q, c, A, b, G, h, lb, ub = _random_qp(rng, int(rng.integers(10, 60)), psd=seed % 3 == 0)
    res = solve_qp(Q, c, A, b, G, h, lb, ub)
    assert res.kkt.max <= 1e-10
    recheck = kkt_residuals(Q, c, A, b, G, h, lb, ub, res.x, res.eq_multipliers, res.ineq_multipliers,
                            res.lower_multipliers, res.upper_multipliers)
    assert recheck.max <= 1e-10
    # no feasible random perturbation does better
    from scipy.optimize import minimize

    sl = minimize(lambda x: 0.5 * x @ Q @ x + c @ x, res.x, jac=lambda x: Q @ x + c, method="SLSQP",
                  bounds=list(zip(lb, ub)), constraints=[{"type": "eq", "fun": lambda x: A @ x - b},
                                                         {"type": "ineq", "fun": lambda x: h - G @ x}])
    assert res.objective <= sl.fun + 1e-12


def test_qp_paths_agree_and_infeasibility_is_reported(monkeypatch):
    from tsp_platform.allocation import qp

    rng = np.random.default_rng(11)
    Q, c, A, b, G, h, lb, ub = _random_qp(rng, 40)
    first = solve_qp(Q, c, A, b, G, h, lb, ub).x
    monkeypatch.setattr(qp, "_pdas", lambda *a, **k: None)
    np.testing.assert_allclose(solve_qp(Q, c, A, b, G, h, lb, ub).x, first, atol=1e-10)
    with pytest.raises(QPInfeasible):
        solve_qp(Q, c, A, b, G, h, lb, np.full(40, 0.01))  # Σ ub < 1


def test_projections_agree_and_are_exact():
    rng = np.random.default_rng(5)
    for _ in range(30):
        n = int(rng.integers(3, 50))
        cset = capped_set(rng.integers(0, 5, n), np.zeros(n), np.full(n, max(0.1, 1 / n)), 0.3)
        v = rng.normal(1 / n, 0.05, n)
        a, b = project(v, cset), project_breakpoint(v, cset)
        np.testing.assert_allclose(a, b, atol=1e-12)
        assert cset.violation(b) <= 1e-13


# ------------------------------------------------------------------------------------- ERC, Sharpe, barbell


def test_erc_contributions_are_equal(panel):
    prob = problem(panel.returns, np.zeros(panel.n_assets), CAPS_OFF)
    cov = Inputs(prob).cov
    w = CustomEngine().allocate(prob, RiskProfile.RISK_PARITY)
    rc = risk_contributions(w, cov)
    assert np.ptp(rc) <= 1e-8 and rc.mean() == pytest.approx(1 / panel.n_assets)
    np.testing.assert_allclose(erc_ccd(cov), erc_newton(cov), atol=1e-10)


def _sharpe(w, mu, cov):
    return (mu @ w) / np.sqrt(w @ cov @ w)


@pytest.mark.parametrize("config", [AllocationConfig(), CAPS_OFF], ids=["caps", "no_caps"])
def test_max_sharpe_beats_random_portfolios_and_slsqp(synthetic, config):
    from scipy.optimize import minimize

    prob = problem(synthetic.returns, synthetic.clusters, config)
    inp = Inputs(prob)
    w = CustomEngine().allocate(prob, RiskProfile.MAX_SHARPE)
    best = _sharpe(w, inp.excess, inp.cov)
    rng = np.random.default_rng(3)
    for v in rng.dirichlet(np.full(prob.n_assets, 0.3), size=500):
        assert _sharpe(project_breakpoint(v, inp.caps), inp.excess, inp.cov) <= best + 1e-12
    G, h = inp.caps.rows()
    cons = [{"type": "eq", "fun": lambda x: x.sum() - 1.0}]
    if len(G):
        cons.append({"type": "ineq", "fun": lambda x: h - G @ x})
    for start in range(3):  # SLSQP on the ratio itself, from random feasible starts
        x0 = project_breakpoint(rng.dirichlet(np.ones(prob.n_assets)), inp.caps)
        sl = minimize(lambda x: -_sharpe(x, inp.excess, inp.cov), x0, method="SLSQP",
                      bounds=list(zip(inp.caps.lb, inp.caps.ub)), constraints=cons,
                      options={"ftol": 1e-14, "maxiter": 1000})
        assert best >= _sharpe(project_breakpoint(np.clip(sl.x, 0, None), inp.caps), inp.excess, inp.cov) - 1e-12
    assert best >= _sharpe(custom._max_sharpe_slsqp(inp), inp.excess, inp.cov) - 1e-9


def test_max_sharpe_with_no_positive_mean_fails_explicitly(synthetic):
    negative = synthetic.returns - synthetic.returns.mean(axis=0) - 1e-4
    prob = problem(negative, synthetic.clusters)
    with pytest.raises(SolverFailed, match="risk-free"):
        CustomEngine().allocate(prob, RiskProfile.MAX_SHARPE)
    with pytest.raises(SolverFailed, match="risk-free"):
        solve_with_fallbacks(prob, RiskProfile.MAX_SHARPE)


@pytest.mark.parametrize("regime", list(Regime))
def test_barbell_sleeve_follows_the_regime(synthetic, regime):
    prob = problem(synthetic.returns, synthetic.clusters, regime=regime, antifragility=synthetic.antifragility)
    w = CustomEngine().allocate(prob, RiskProfile.BARBELL)
    core, aggressors, sleeve, _ = Inputs(prob).barbell
    assert sleeve == prob.config.aggressor_sleeve[regime]
    assert w[aggressors].sum() == pytest.approx(sleeve, abs=1e-12)
    assert w[core].sum() == pytest.approx(1 - sleeve, abs=1e-12)
    n = prob.n_assets
    assert len(aggressors) == min(5, max(1, n // 4)) and not set(core) & set(aggressors)
    af = prob.antifragility
    _, codes = np.unique(prob.clusters, return_inverse=True)
    for k in np.unique(codes):  # every cluster's most antifragile atom is in the core
        members = np.flatnonzero(codes == k)
        assert members[np.argmax(af[members])] in core
    rest = np.setdiff1d(np.arange(n), core)
    mean = prob.returns.mean(axis=0)
    assert mean[aggressors].min() >= np.sort(mean[rest])[::-1][len(aggressors) - 1]


def test_barbell_without_antifragility_fails(synthetic):
    prob = problem(synthetic.returns, synthetic.clusters)
    with pytest.raises(SolverFailed, match="antifragility"):
        CustomEngine().allocate(prob, RiskProfile.BARBELL)


def test_market_neutral_band_and_benchmark_requirement(synthetic):
    for band in (0.0, 0.05, 0.2):
        cfg = synthetic.config.model_copy(update={"neutral_beta_band": band, "neutral_gross_max": 1.6})
        prob = problem(synthetic.returns, synthetic.clusters, cfg, benchmark=synthetic.benchmark)
        w = CustomEngine().allocate(prob, RiskProfile.MARKET_NEUTRAL)
        beta = Inputs(prob).beta
        assert abs(beta @ w) <= band + 1e-10 and np.abs(w).sum() <= 1.6 + 1e-10 and w.sum() == pytest.approx(1.0)
    with pytest.raises(SolverFailed, match="benchmark"):
        CustomEngine().allocate(problem(synthetic.returns, synthetic.clusters), RiskProfile.MARKET_NEUTRAL)


# ----------------------------------------------------------------------------------------------- fallbacks


def _boom(*args, **kwargs):
    raise QPError("forced failure")


def test_forced_solver_failure_uses_and_reports_the_fallback(synthetic, monkeypatch):
    primary = CustomEngine().allocate(synthetic, RiskProfile.MIN_VARIANCE)
    monkeypatch.setattr(custom, "solve_qp", _boom)
    w, used = solve_with_fallbacks(synthetic, RiskProfile.MIN_VARIANCE)
    assert used == "slsqp"
    np.testing.assert_allclose(w, primary, atol=1e-5)
    w, used = solve_with_fallbacks(synthetic, RiskProfile.MAX_SHARPE)
    assert used == "slsqp"
    with pytest.raises(SolverFailed, match="forced failure"):
        CustomEngine().allocate(synthetic, RiskProfile.MIN_VARIANCE)  # allocate runs the primary only


def test_failed_validation_counts_as_solver_failure(synthetic, monkeypatch):
    n = synthetic.n_assets
    chain = (("broken", lambda inp: np.full(n, 0.9 / n)),) + FALLBACKS[RiskProfile.HRP][1:]
    monkeypatch.setitem(FALLBACKS, RiskProfile.HRP, chain)
    w, used = solve_with_fallbacks(synthetic, RiskProfile.HRP)
    assert used == "recursive" and w.sum() == pytest.approx(1.0)


def test_every_link_failing_raises_naming_each_attempt(synthetic, monkeypatch):
    monkeypatch.setattr(custom, "solve_qp", _boom)
    monkeypatch.setattr(custom, "minimize", _boom)
    monkeypatch.setattr(custom, "project_breakpoint", _boom)
    with pytest.raises(SolverFailed) as info:
        solve_with_fallbacks(synthetic, RiskProfile.MIN_VARIANCE)
    assert all(name in str(info.value) for name, _ in FALLBACKS[RiskProfile.MIN_VARIANCE])


def test_no_chain_ends_in_equal_weight():
    for profile, chain in FALLBACKS.items():
        names = [name for name, _ in chain]
        assert len(set(names)) == len(names)
        if profile is not RiskProfile.BENCHMARK:
            assert not any("equal" in name for name in names[1:])


def test_hrp_linkage_comes_from_config(synthetic):
    cfg = CAPS_OFF.model_copy(update={"hrp_linkage": Linkage.WARD})
    prob = problem(synthetic.returns, synthetic.clusters, cfg)
    expected = hrp_weights(Inputs(prob).cov, "ward")
    np.testing.assert_allclose(CustomEngine().allocate(prob, RiskProfile.HRP), expected, atol=1e-15)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_tiny_universes(n):
    r, bench, _, af = factor_panel(t=120, n=n, seed=n)
    prob = problem(r, np.arange(n), benchmark=bench, antifragility=af)
    for profile in FALLBACKS:
        try:
            w, _ = solve_with_fallbacks(prob, profile)
        except SolverFailed as exc:  # only the documented, explicit failures
            explicit = (profile, n) == (RiskProfile.BARBELL, 1)
            assert explicit or profile in (RiskProfile.MARKET_NEUTRAL, RiskProfile.MAX_SHARPE), exc
            continue
        assert np.isfinite(w).all() and w.sum() == pytest.approx(1.0, abs=1e-12)


def test_too_few_observations_fail_explicitly():
    r, _, _, _ = factor_panel(t=1, n=4)
    prob = problem(r, np.arange(4))
    with pytest.raises(SolverFailed, match="covariance"):
        CustomEngine().allocate(prob, RiskProfile.HRP)
    np.testing.assert_allclose(CustomEngine().allocate(prob, RiskProfile.EQUAL_WEIGHT), 0.25)
