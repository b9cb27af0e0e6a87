"""The custom engine: every profile in numpy/scipy, solved exactly, with a declared fallback chain.

Inputs shared by all profiles (`Inputs`): the covariance from `estimate_covariance` (Ledoit–Wolf by
default), expected returns = the mean daily return (annualisation only scales μ and Σ together, so it does
not move any optimum except where a fixed-scale term is added: the risk-free rate, which is annual and is
divided by `annualisation`, and the turnover penalty, which is weighed against *annualised* variance), and
the long-only capped set

    Σw = 1,  0 ≤ w ≤ u = problem.upper,  Σ_{i ∈ c} w_i ≤ max(cluster_cap[regime], 1/K)

(caps raised uniformly to the smallest feasible level when the configured ones would leave no portfolio;
see `projection.capped_set`).

Profiles (the first link of each chain; `FALLBACKS` lists the others):

* EQUAL_WEIGHT — 1/N, fully invested, then the Euclidean caps projection (identity when already feasible).
* HRP — `hrp.hrp_weights` (single linkage by default, plain leaves order, prefix-sum bisection), then the
  caps projection.
* MIN_VARIANCE — exact long-only QP  min wᵀΣw (+ τ‖w − w_prev‖² with Σ annualised, when previous weights
  are given) on the capped set, by the active-set solver in `qp.py` (KKT-checked).
* RISK_PARITY — equal risk contributions by Newton on Spinu's convex problem (`risk_parity.py`), then the
  caps projection. The projection is applied only when the ERC portfolio breaks a cap; a projected ERC no
  longer has exactly equal contributions (the caps win; the distance moved is minimal in ‖·‖₂).
* MAX_SHARPE — a true Sharpe-ratio maximisation (Cornuejols & Tütüncü homogenisation):
      min yᵀΣy  s.t.  (μ − r_f)ᵀy = 1,  y ≥ 0,  y_i ≤ u_i·1ᵀy,  Σ_{i∈c} y_i ≤ cap_c·1ᵀy;  w = y/1ᵀy,
  exact because the ratio is scale-invariant; if no feasible portfolio has μᵀw > r_f (in particular when
  every mean is ≤ r_f) it raises `SolverFailed` — never a silent equal weight.
* BARBELL — antifragile core + aggressor sleeve of total s = config.aggressor_sleeve[regime]:
    m = min(5, max(1, N // 4)) aggressors;
    core candidates = the best-antifragility atom of every cluster ∪ the top ⌈N/2⌉ atoms by antifragility,
      ranked cluster-best first (by antifragility), then by antifragility; the core keeps the first
      min(#candidates, N − m) of them (ties: lower index first);
    aggressors = the m non-core atoms with the highest trailing mean return (ties: lower index first),
      s/m each;
    core = HRP over the core atoms' covariance, scaled to 1 − s;
    caps: the aggressors are held fixed and the core is projected onto the capped set (per-atom bound
      max(u, (1 − s)/|core|) so the core can always hold 1 − s); the sleeve total stays exactly s.
  Needs `problem.antifragility`; without it (or with non-finite values) it raises `SolverFailed` — the
  engine supports the profile, the problem lacks an input (NotSupported would misreport a capability).
* MARKET_NEUTRAL — shorts allowed:  min wᵀΣw  s.t. Σw = 1, |βᵀw| ≤ band, Σ|w| ≤ gross_max, |w_i| ≤ u_i,
  β_i = cov(r_i, benchmark)/var(benchmark); solved as a QP in w = w⁺ − w⁻ (w± ∈ [0, u]), whose Hessian
  [[Σ, −Σ], [−Σ, Σ]] is only semi-definite (the QP solver's proximal mode). Cluster caps do not apply.
  Needs `problem.benchmark`, else `SolverFailed`.
* BENCHMARK — equal weight of the winners, 1/N, no caps (a baseline).
* MARKET — `NotSupported`: it is 100 % benchmark on *physical* weights, which the stage computes; atoms
  carry no benchmark exposure to express it here.

Fallback chains (`FALLBACKS`; each link is a complete, independent method; the last ones need no solver):

    EQUAL_WEIGHT    breakpoint_projection → active_set_projection
    HRP             prefix_sum (+ breakpoint projection) → recursive (textbook loop + QP projection)
                    → inverse_variance (+ breakpoint projection)
    MIN_VARIANCE    active_set → slsqp → inverse_variance
    RISK_PARITY     newton (+ QP projection) → ccd (+ breakpoint projection) → inverse_volatility
    MAX_SHARPE      active_set → slsqp (SLSQP on the same homogenised QP; never inverse variance)
    BARBELL         hrp_core (+ breakpoint projection) → inverse_variance_core (+ QP projection)
    MARKET_NEUTRAL  active_set → slsqp
    BENCHMARK       equal_weight

Problems no link could solve fail before the chain runs, with the reason (`SolverFailed`): no benchmark or
a constant one (neutral), no antifragility or N < 2 (barbell), no mean above r_f within the caps
(max_sharpe), a covariance that cannot be estimated (T < 2).

`CustomEngine.allocate` runs the primary link and validates it; `solve_with_fallbacks` walks the chain,
validates every result with the shared check (`allocation.constraints`: finite, budget, bounds, caps;
neutral: net, |w| bounds, beta band, gross; barbell: its own capped set and the sleeve), counts a failed
validation as a solver failure, reports which fallback served, and raises `SolverFailed` naming every attempt
when all fail. No chain ends in equal weight.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property

import numpy as np
from scipy.optimize import minimize

from tsp_platform.allocation.base import AllocationProblem, NotSupported, SolverFailed
from tsp_platform.allocation.constraints import TOLERANCE, PortfolioConstraints
from tsp_platform.allocation.covariance import CovarianceEstimate, estimate_covariance
from tsp_platform.allocation.hrp import hrp_weights, hrp_weights_recursive
from tsp_platform.allocation.projection import CappedSet, capped_set, project, project_breakpoint
from tsp_platform.allocation.qp import QPError, QPInfeasible, feasible_point, solve_qp
from tsp_platform.allocation.risk_parity import erc_ccd, erc_newton
from tsp_platform.config.allocation import EngineName, RiskProfile

_SOLVER_ERRORS = (SolverFailed, QPError, np.linalg.LinAlgError, ArithmeticError, ValueError, RuntimeError)


class Inputs:
    """Everything a link needs, computed once per problem (lazily) and shared by the fallbacks."""

    def __init__(self, problem: AllocationProblem, kkt_tol: float = 1e-10):
        self.problem = problem
        self.kkt_tol = kkt_tol

    @cached_property
    def estimate(self) -> CovarianceEstimate:
        return estimate_covariance(self.problem.returns, self.problem.config.covariance)

    @cached_property
    def cov(self) -> np.ndarray:
        return self.estimate.matrix

    @cached_property
    def mean(self) -> np.ndarray:
        return self.problem.returns.mean(axis=0)

    @cached_property
    def excess(self) -> np.ndarray:
        p = self.problem
        return self.mean - p.config.risk_free_rate / p.annualisation

    @cached_property
    def caps(self) -> CappedSet:
        return self.problem.capped_set()

    @cached_property
    def beta(self) -> np.ndarray:
        p = self.problem
        if p.benchmark is None:
            raise SolverFailed("market_neutral needs problem.benchmark (benchmark returns on the same rows)")
        bench = np.asarray(p.benchmark, dtype=float)
        var = float(np.var(bench, ddof=1))
        if not np.isfinite(var) or var <= 0:
            raise SolverFailed("market_neutral: the benchmark has zero or non-finite variance")
        centred = p.returns - p.returns.mean(axis=0)
        return centred.T @ (bench - bench.mean()) / (len(bench) - 1) / var

    @cached_property
    def barbell(self) -> tuple[np.ndarray, np.ndarray, float, CappedSet]:
        """(core indices, aggressor indices, sleeve total, capped set with the aggressors fixed)."""
        p = self.problem
        if p.antifragility is None:
            raise SolverFailed("barbell needs problem.antifragility (per-atom antifragility scores); none given")
        af = np.asarray(p.antifragility, dtype=float)
        if af.shape != (p.n_assets,) or not np.isfinite(af).all():
            raise SolverFailed("barbell: problem.antifragility must be finite, one score per atom")
        n = p.n_assets
        if n < 2:
            raise SolverFailed("barbell needs at least 2 atoms (a core and an aggressor)")
        m = min(5, max(1, n // 4))
        by_af = np.lexsort((np.arange(n), -af))  # AF descending, ties → lower index
        _, codes = np.unique(np.asarray(p.clusters), return_inverse=True)
        codes = codes.ravel()
        best = np.zeros(n, dtype=bool)
        seen: set[int] = set()
        for i in by_af:
            if codes[i] not in seen:
                seen.add(int(codes[i]))
                best[i] = True
        top_half = np.zeros(n, dtype=bool)
        top_half[by_af[: (n + 1) // 2]] = True
        ranked = [i for i in by_af if best[i]] + [i for i in by_af if top_half[i] and not best[i]]
        core = np.array(sorted(ranked[: n - m]), dtype=int)
        rest = np.setdiff1d(np.arange(n), core)
        by_mean = rest[np.lexsort((rest, -self.mean[rest]))]
        aggressors = np.sort(by_mean[:m])
        sleeve = float(p.config.aggressor_sleeve[p.regime])
        lb, ub = np.zeros(n), np.zeros(n)
        lb[aggressors] = ub[aggressors] = sleeve / m
        ub[core] = max(float(p.upper[0]), (1.0 - sleeve) / len(core))
        try:
            cset = capped_set(p.clusters, lb, ub, p.cluster_cap)
        except ValueError as exc:
            raise SolverFailed(f"barbell: the bounds and caps admit no portfolio: {exc}") from exc
        return core, aggressors, sleeve, cset


# ------------------------------------------------------------------------------------------ profile links


def _equal_weight(inp: Inputs) -> np.ndarray:
    n = inp.problem.n_assets
    return project_breakpoint(np.full(n, 1.0 / n), inp.caps)


def _equal_weight_qp(inp: Inputs) -> np.ndarray:
    n = inp.problem.n_assets
    return project(np.full(n, 1.0 / n), inp.caps, inp.kkt_tol)


def _benchmark(inp: Inputs) -> np.ndarray:
    n = inp.problem.n_assets
    return np.full(n, 1.0 / n)


def _hrp(inp: Inputs) -> np.ndarray:
    w = hrp_weights(inp.cov, str(inp.problem.config.hrp_linkage))
    return project_breakpoint(w, inp.caps)


def _hrp_recursive(inp: Inputs) -> np.ndarray:
    w = hrp_weights_recursive(inp.cov, str(inp.problem.config.hrp_linkage))
    return project(w, inp.caps, inp.kkt_tol)


def _inverse_variance(inp: Inputs) -> np.ndarray:
    """Last link of the HRP and min-variance chains: closed form + the arithmetic projection (no solver)."""
    iv = 1.0 / np.diag(inp.cov)
    return project_breakpoint(iv / iv.sum(), inp.caps)


def _min_variance_objective(inp: Inputs) -> tuple[np.ndarray, np.ndarray]:
    """(Q, c) of ½wᵀQw + cᵀw: wᵀΣw, or with previous weights wᵀΣ_a w + τ‖w − w_prev‖² (Σ_a annualised)."""
    p = inp.problem
    n = p.n_assets
    if p.previous_weights is None or p.config.turnover_penalty == 0:
        return 2.0 * inp.cov, np.zeros(n)
    prev = np.asarray(p.previous_weights, dtype=float)
    if prev.shape != (n,) or not np.isfinite(prev).all():
        raise SolverFailed("previous_weights must be finite, one per atom")
    tau = p.config.turnover_penalty
    return 2.0 * (p.annualisation * inp.cov + tau * np.eye(n)), -2.0 * tau * prev


def _min_variance(inp: Inputs) -> np.ndarray:
    Q, c = _min_variance_objective(inp)
    G, h = inp.caps.rows()
    order = np.argsort(np.diag(inp.cov), kind="stable")
    x0 = inp.caps.greedy(order)
    n = inp.problem.n_assets
    res = solve_qp(
        Q, c, np.ones((1, n)), np.ones(1), G, h, inp.caps.lb, inp.caps.ub,
        x0=x0, kkt_tol=inp.kkt_tol, strictly_convex=True, active_guess=_guess(order, n),
    )
    return res.x


def _guess(preferred: np.ndarray, n: int) -> np.ndarray:
    """PDAS starting guess: the first quarter of `preferred` free, the rest at their lower bound."""
    guess = np.full(n, -1, dtype=np.int8)
    guess[preferred[: max(2, n // 4)]] = 0
    return guess


def _slsqp(objective: Callable, gradient: Callable, x0: np.ndarray, cset: CappedSet) -> np.ndarray:
    G, h = cset.rows()
    constraints = [
        {"type": "eq", "fun": lambda w: np.array([w.sum() - cset.budget]), "jac": lambda w: np.ones((1, len(w)))}
    ]
    if len(G):
        constraints.append({"type": "ineq", "fun": lambda w: h - G @ w, "jac": lambda w: -G})
    res = minimize(
        objective, x0, jac=gradient, method="SLSQP", bounds=list(zip(cset.lb, cset.ub)),
        constraints=constraints, options={"ftol": 1e-12, "maxiter": 2000},
    )
    if not res.success or not np.isfinite(res.x).all():
        raise SolverFailed(f"SLSQP: {res.message}")
    return project_breakpoint(np.clip(res.x, cset.lb, cset.ub), cset)  # clean rounding-level infeasibility


def _min_variance_slsqp(inp: Inputs) -> np.ndarray:
    Q, c = _min_variance_objective(inp)
    scale = float(np.mean(np.diag(Q)))
    Qs, cs = Q / scale, c / scale
    n = inp.problem.n_assets
    x0 = project_breakpoint(np.full(n, 1.0 / n), inp.caps)
    return _slsqp(lambda w: 0.5 * w @ Qs @ w + cs @ w, lambda w: Qs @ w + cs, x0, inp.caps)


def _risk_parity(inp: Inputs) -> np.ndarray:
    return project(erc_newton(inp.cov), inp.caps, inp.kkt_tol)


def _risk_parity_ccd(inp: Inputs) -> np.ndarray:
    return project_breakpoint(erc_ccd(inp.cov), inp.caps)


def _inverse_volatility(inp: Inputs) -> np.ndarray:
    iv = 1.0 / np.sqrt(np.diag(inp.cov))
    return project_breakpoint(iv / iv.sum(), inp.caps)


def _best_excess_portfolio(inp: Inputs) -> tuple[np.ndarray, float]:
    """The capped portfolio of highest excess return (greedy is optimal on this laminar set)."""
    w = inp.caps.greedy(np.argsort(-inp.excess, kind="stable"))
    return w, float(inp.excess @ w)


def _homogenised(inp: Inputs):
    """(excess row, G) of  min yᵀΣy s.t. excessᵀy = 1, y ≥ 0, y_i ≤ u_i·1ᵀy, Σ_c y ≤ cap_c·1ᵀy,
    plus a feasible y0 (the best-excess capped portfolio, rescaled)."""
    w0, e0 = _best_excess_portfolio(inp)
    if not e0 > 0:
        raise SolverFailed("max_sharpe: no feasible portfolio has a mean return above the risk-free rate")
    n = inp.problem.n_assets
    excess = inp.excess / np.max(np.abs(inp.excess))
    cset = inp.caps
    rows = []
    capped = np.flatnonzero(cset.ub < 1.0 - 1e-15)
    if len(capped):  # y_i − u_i·1ᵀy ≤ 0
        asset_rows = -np.outer(cset.ub[capped], np.ones(n))
        asset_rows[np.arange(len(capped)), capped] += 1.0
        rows.append(asset_rows)
    for k in cset.binding_clusters():  # Σ_c y − cap_c·1ᵀy ≤ 0
        rows.append(((cset.cluster == k).astype(float) - cset.caps[k])[None, :])
    G = np.vstack(rows) if rows else np.zeros((0, n))
    return excess, G, w0 / float(excess @ w0)


def _max_sharpe(inp: Inputs) -> np.ndarray:
    excess, G, y0 = _homogenised(inp)
    n = inp.problem.n_assets
    score = np.where(inp.excess > 0, inp.excess / np.diag(inp.cov), -np.inf)
    guess = _guess(np.argsort(-score, kind="stable"), n)
    res = solve_qp(
        2.0 * inp.cov, np.zeros(n), excess[None, :], np.ones(1), G, np.zeros(len(G)), 0.0, None,
        x0=y0, kkt_tol=inp.kkt_tol, strictly_convex=True, active_guess=guess,
    )
    return _normalise_sharpe(res.x)


def _normalise_sharpe(y: np.ndarray) -> np.ndarray:
    total = float(y.sum())
    if not total > 0:
        raise SolverFailed("max_sharpe: degenerate homogenised solution")
    return y / total


def _max_sharpe_slsqp(inp: Inputs) -> np.ndarray:
    """SLSQP on the same homogenised QP (smooth and convex, unlike the ratio), then cleaned onto the set."""
    excess, G, y0 = _homogenised(inp)
    cov = inp.cov / float(np.mean(np.diag(inp.cov)))
    constraints = [{"type": "eq", "fun": lambda y: np.array([excess @ y - 1.0]), "jac": lambda y: excess[None, :]}]
    if len(G):
        constraints.append({"type": "ineq", "fun": lambda y: -(G @ y), "jac": lambda y: -G})
    res = minimize(
        lambda y: y @ cov @ y, y0, jac=lambda y: 2.0 * cov @ y, method="SLSQP",
        bounds=[(0.0, None)] * len(y0), constraints=constraints, options={"ftol": 1e-12, "maxiter": 2000},
    )
    if not res.success or not np.isfinite(res.x).all():
        raise SolverFailed(f"SLSQP: {res.message}")
    w = project_breakpoint(_normalise_sharpe(np.maximum(res.x, 0.0)), inp.caps)
    if not inp.excess @ w > 0:
        raise SolverFailed("max_sharpe SLSQP ended with a non-positive excess return")
    return w


def _barbell_raw(inp: Inputs, core_weights: Callable[[np.ndarray], np.ndarray]) -> tuple[np.ndarray, CappedSet]:
    core, aggressors, sleeve, cset = inp.barbell
    w = np.zeros(inp.problem.n_assets)
    w[aggressors] = sleeve / len(aggressors)
    w[core] = (1.0 - sleeve) * core_weights(inp.cov[np.ix_(core, core)])
    return w, cset


def _barbell(inp: Inputs) -> np.ndarray:
    linkage = str(inp.problem.config.hrp_linkage)
    w, cset = _barbell_raw(inp, lambda cov: hrp_weights(cov, linkage))
    return project_breakpoint(w, cset)


def _barbell_inverse_variance(inp: Inputs) -> np.ndarray:
    def iv(cov):
        x = 1.0 / np.diag(cov)
        return x / x.sum()

    w, cset = _barbell_raw(inp, iv)
    return project(w, cset, inp.kkt_tol)


def _neutral_data(inp: Inputs):
    p = inp.problem
    n = p.n_assets
    beta, cov, u = inp.beta, inp.cov, p.upper
    cfg = p.config
    Q = 2.0 * np.block([[cov, -cov], [-cov, cov]])
    A = np.concatenate([np.ones(n), -np.ones(n)])[None, :]
    G = np.vstack([np.concatenate([beta, -beta]), np.concatenate([-beta, beta]), np.ones(2 * n)])
    h = np.array([cfg.neutral_beta_band, cfg.neutral_beta_band, cfg.neutral_gross_max])
    lb, ub = np.zeros(2 * n), np.concatenate([u, u])
    return Q, A, G, h, lb, ub


def _market_neutral(inp: Inputs) -> np.ndarray:
    Q, A, G, h, lb, ub = _neutral_data(inp)
    n = inp.problem.n_assets
    try:
        res = solve_qp(Q, np.zeros(2 * n), A, np.ones(1), G, h, lb, ub, kkt_tol=inp.kkt_tol, strictly_convex=False)
    except QPInfeasible as exc:
        raise SolverFailed(_NEUTRAL_INFEASIBLE.format(cfg=inp.problem.config, u=inp.problem.upper[0])) from exc
    return res.x[:n] - res.x[n:]


_NEUTRAL_INFEASIBLE = (
    "market_neutral: no book has net 1, |beta| ≤ {cfg.neutral_beta_band}, gross ≤ {cfg.neutral_gross_max} "
    "and |w_i| ≤ {u:.4g} (the atoms' betas leave no room)"
)


def _market_neutral_slsqp(inp: Inputs) -> np.ndarray:
    Q, A, G, h, lb, ub = _neutral_data(inp)
    n = inp.problem.n_assets
    try:
        z0 = feasible_point(A, np.ones(1), G, h, lb, ub)
    except QPInfeasible as exc:
        raise SolverFailed(_NEUTRAL_INFEASIBLE.format(cfg=inp.problem.config, u=inp.problem.upper[0])) from exc
    Qs = Q / float(np.mean(np.diag(Q)))
    res = minimize(
        lambda z: 0.5 * z @ Qs @ z, z0, jac=lambda z: Qs @ z, method="SLSQP", bounds=list(zip(lb, ub)),
        constraints=[
            {"type": "eq", "fun": lambda z: A @ z - 1.0, "jac": lambda z: A},
            {"type": "ineq", "fun": lambda z: h - G @ z, "jac": lambda z: -G},
        ],
        options={"ftol": 1e-12, "maxiter": 2000},
    )
    if not res.success:
        raise SolverFailed(f"SLSQP: {res.message}")
    z = np.clip(res.x, lb, ub)
    w = z[:n] - z[n:]
    return w + (1.0 - w.sum()) / n  # rounding-level net correction; validation checks the rest


Link = tuple[str, Callable[[Inputs], np.ndarray]]

FALLBACKS: dict[RiskProfile, tuple[Link, ...]] = {
    RiskProfile.EQUAL_WEIGHT: (("breakpoint_projection", _equal_weight), ("active_set_projection", _equal_weight_qp)),
    RiskProfile.HRP: (("prefix_sum", _hrp), ("recursive", _hrp_recursive), ("inverse_variance", _inverse_variance)),
    RiskProfile.MIN_VARIANCE: (
        ("active_set", _min_variance), ("slsqp", _min_variance_slsqp), ("inverse_variance", _inverse_variance),
    ),
    RiskProfile.RISK_PARITY: (
        ("newton", _risk_parity), ("ccd", _risk_parity_ccd), ("inverse_volatility", _inverse_volatility),
    ),
    RiskProfile.MAX_SHARPE: (("active_set", _max_sharpe), ("slsqp", _max_sharpe_slsqp)),
    RiskProfile.BARBELL: (("hrp_core", _barbell), ("inverse_variance_core", _barbell_inverse_variance)),
    RiskProfile.MARKET_NEUTRAL: (("active_set", _market_neutral), ("slsqp", _market_neutral_slsqp)),
    RiskProfile.BENCHMARK: (("equal_weight", _benchmark),),
}


# ------------------------------------------------------------------------------------------- validation


def validate(weights: np.ndarray, inp: Inputs, profile: RiskProfile) -> np.ndarray:
    """Raise `SolverFailed` unless the weights hold the constraints the link solved under (the shared check)."""
    p = inp.problem
    w = np.asarray(weights, dtype=float)
    if w.shape != (p.n_assets,):
        raise SolverFailed(f"{profile}: weights are not of shape ({p.n_assets},)")
    if profile is RiskProfile.BENCHMARK:
        constraints, beta = PortfolioConstraints(), None
    elif profile is RiskProfile.MARKET_NEUTRAL:
        constraints = PortfolioConstraints.neutral(p.upper, p.config)
        beta = float(inp.beta @ w) if np.isfinite(w).all() else None
    else:
        constraints, beta = PortfolioConstraints.capped(inp.barbell[3] if profile is RiskProfile.BARBELL else inp.caps), None
    problems = constraints.problems(w, beta)
    if profile is RiskProfile.BARBELL and not problems:
        _, aggressors, sleeve, _ = inp.barbell
        if abs(w[aggressors].sum() - sleeve) > TOLERANCE:
            problems.append(f"aggressor sleeve {w[aggressors].sum():.6g} ≠ {sleeve}")
    if problems:
        raise SolverFailed(f"{profile}: " + "; ".join(problems))
    return w


def _preconditions(inp: Inputs, profile: RiskProfile) -> None:
    """Missing inputs fail before any link runs (no fallback can supply them)."""
    if profile not in (RiskProfile.EQUAL_WEIGHT, RiskProfile.BENCHMARK):
        try:
            inp.cov  # noqa: B018
        except ValueError as exc:
            raise SolverFailed(f"{profile}: covariance estimation failed: {exc}") from exc
    if profile is RiskProfile.MARKET_NEUTRAL:
        inp.beta  # noqa: B018  (raises SolverFailed without a usable benchmark)
    elif profile is RiskProfile.BARBELL:
        inp.barbell  # noqa: B018  (raises SolverFailed without antifragility)
    elif profile is RiskProfile.MAX_SHARPE:
        if not np.any(inp.excess > 0):
            raise SolverFailed("max_sharpe: every atom's mean return is at or below the risk-free rate")
        if not _best_excess_portfolio(inp)[1] > 0:
            raise SolverFailed("max_sharpe: no portfolio within the caps has a mean return above the risk-free rate")


def _inputs(problem: AllocationProblem, kkt_tol: float) -> Inputs:
    inp = Inputs(problem, kkt_tol)
    try:
        inp.caps  # noqa: B018
    except ValueError as exc:
        raise SolverFailed(f"the bounds and caps admit no portfolio: {exc}") from exc
    return inp


def solve_with_fallbacks(
    problem: AllocationProblem, profile: RiskProfile, kkt_tol: float = 1e-10, failures: list[str] | None = None
) -> tuple[np.ndarray, str | None]:
    """Walk the profile's chain; return (weights, name of the fallback that served or None for the primary).
    `failures`, when given, receives why each link before the one that served failed ("name: Error: message")."""
    if profile not in FALLBACKS:
        raise NotSupported(EngineName.CUSTOM, profile, _NOT_SUPPORTED.get(profile, ""))
    inp = _inputs(problem, kkt_tol)
    _preconditions(inp, profile)
    failures = [] if failures is None else failures
    for k, (name, link) in enumerate(FALLBACKS[profile]):
        try:
            return validate(link(inp), inp, profile), (None if k == 0 else name)
        except _SOLVER_ERRORS as exc:
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
    raise SolverFailed(f"custom {profile}: every link failed — " + " | ".join(failures))


_NOT_SUPPORTED = {
    RiskProfile.MARKET: "100 % benchmark on physical weights is computed by the allocation stage",
}


class CustomEngine:
    """numpy/scipy engine; `allocate` runs the primary link of the profile's chain and validates it."""

    name = EngineName.CUSTOM

    def __init__(self, kkt_tol: float = 1e-10):
        self.kkt_tol = kkt_tol

    def supports(self, profile: RiskProfile) -> bool:
        return profile in FALLBACKS

    def allocate(self, problem: AllocationProblem, profile: RiskProfile) -> np.ndarray:
        if profile not in FALLBACKS:
            raise NotSupported(self.name, profile, _NOT_SUPPORTED.get(profile, ""))
        inp = _inputs(problem, self.kkt_tol)
        _preconditions(inp, profile)
        name, link = FALLBACKS[profile][0]
        try:
            return validate(link(inp), inp, profile)
        except SolverFailed:
            raise
        except _SOLVER_ERRORS as exc:
            raise SolverFailed(f"custom {profile} ({name}): {type(exc).__name__}: {exc}") from exc
