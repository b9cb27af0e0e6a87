"""One engine × risk profile solved, checked and timed: what the allocation stage and every tournament cell run.

`solve` runs the engine's own solve, walks the declared fallback chain when it fails (a library engine's chain
ends in the custom engine's), projects a long-only result that breaks the profile's caps onto them (libraries
without cluster caps), and accepts the weights only when `PortfolioConstraints` finds nothing wrong.
"""

from __future__ import annotations

import time

import numpy as np

from tsp_platform.allocation.base import AllocationProblem, AllocationResult, NotSupported, SolverFailed
from tsp_platform.allocation.constraints import LONG_ONLY, UNCAPPED, PortfolioConstraints, portfolio_beta
from tsp_platform.allocation.projection import project
from tsp_platform.config.allocation import EngineName, RiskProfile


def engines() -> dict:
    """Every engine, constructed once per run (constructors only store parameters)."""
    from tsp_platform.allocation.custom import CustomEngine
    from tsp_platform.allocation.libraries import CvxportfolioEngine, RiskfolioEngine, SkfolioEngine

    return {
        EngineName.CUSTOM: CustomEngine(),
        EngineName.SKFOLIO: SkfolioEngine(),
        EngineName.RISKFOLIO: RiskfolioEngine(),
        EngineName.CVXPORTFOLIO: CvxportfolioEngine(),
    }


def profile_constraints(problem: AllocationProblem, profile: RiskProfile) -> PortfolioConstraints:
    """Every constraint of `profile` on this problem: its per-asset and regime-aware cluster caps."""
    return PortfolioConstraints.for_profile(profile, problem.clusters, problem.upper, problem.cluster_cap, problem.config)


def constraint_problems(problem: AllocationProblem, profile: RiskProfile, weights: np.ndarray,
                        constraints: PortfolioConstraints | None = None) -> list[str]:
    """What a weight vector violates for this profile (empty when valid)."""
    beta = portfolio_beta(problem.returns, problem.benchmark, weights) if profile is RiskProfile.MARKET_NEUTRAL else None
    return (constraints or profile_constraints(problem, profile)).problems(weights, beta)


def solve(engine, problem: AllocationProblem, profile: RiskProfile) -> AllocationResult:
    """One engine × profile: the engine's own solve, the declared fallbacks on failure, validation, timing."""
    from tsp_platform.allocation.custom import solve_with_fallbacks

    if not engine.supports(profile):
        return AllocationResult(engine.name, profile, None, "not_supported", message=f"{engine.name} has no {profile}")
    start = time.perf_counter()
    fallback, message, failed_links = None, "", []  # failed_links: why each link before the serving one failed
    try:
        if engine.name is EngineName.CUSTOM:
            weights, fallback = solve_with_fallbacks(problem, profile, failures=failed_links)
            message = "; ".join(failed_links)
        else:
            weights = engine.allocate(problem, profile)
    except NotSupported as exc:
        return AllocationResult(engine.name, profile, None, "not_supported", message=str(exc))
    except SolverFailed as exc:
        if engine.name is EngineName.CUSTOM:
            return AllocationResult(engine.name, profile, None, "failed", solve_seconds=time.perf_counter() - start, message=str(exc))
        try:  # the declared chain of a library engine ends in our own engine's chain, recorded as such
            weights, link = solve_with_fallbacks(problem, profile, failures=failed_links)
            fallback = f"custom:{link or 'primary'}"
            message = "; ".join([f"{engine.name} failed: {exc}", *(f"custom {f}" for f in failed_links)])
        except (SolverFailed, NotSupported) as final:
            return AllocationResult(engine.name, profile, None, "failed", solve_seconds=time.perf_counter() - start,
                                    message=f"{exc}; custom fallback: {final}")
    elapsed = time.perf_counter() - start
    constraints = profile_constraints(problem, profile)
    problems = constraint_problems(problem, profile, weights, constraints)
    if problems and profile in LONG_ONLY and profile not in UNCAPPED:
        # libraries without cluster caps: the nearest capped portfolio
        weights = project(weights, problem.capped_set())
        message = (message + "; " if message else "") + "projected onto the caps: " + "; ".join(problems)
        problems = constraint_problems(problem, profile, weights, constraints)
    if problems:
        return AllocationResult(engine.name, profile, None, "failed", solve_seconds=elapsed, message="; ".join(problems))
    return AllocationResult(engine.name, profile, weights, "fallback" if fallback else "ok", fallback, elapsed, message)
