"""Allocation stages against the lakehouse: `regime` and `portfolio_weights` for one (profile, as-of) partition.

Inputs are as of the partition's date: the champion winners of `selection`, their returns up to the date
(SHORT atoms negated, aligned on the sessions they share), their clusters and antifragility, the benchmark.
Every engine × risk profile is attempted: a profile an engine lacks is recorded `not_supported`; a failed
solve walks the declared fallback chain and records which link served.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import polars as pl

from tsp_platform.allocation.base import AllocationProblem, AllocationResult, NotSupported, SolverFailed
from tsp_platform.allocation.config import EngineName, Regime, RiskProfile
from tsp_platform.allocation.regime import RegimeReading, detect_regime
from tsp_platform.context import StageContext
from tsp_platform.lakehouse.schema import ALLOCATION_RUNS, PORTFOLIO_WEIGHTS, REGIMES
from tsp_platform.selection.atoms import atom_returns, flatten_weights
from tsp_platform.selection.panel import ReturnsPanel

MIN_COMMON_SESSIONS = 30
TOLERANCE = 1e-6


@dataclass(frozen=True, eq=False)
class AllocationInputs:
    atoms: pl.DataFrame  # champion winners: atom_id, symbol, direction, cluster
    returns: np.ndarray  # (T, N) common sessions, last `window`
    benchmark: np.ndarray | None  # (T,) on the same sessions
    antifragility: np.ndarray | None
    previous_weights: np.ndarray | None
    sessions: int


def _read(ctx: StageContext, table: str) -> pl.DataFrame:
    return ctx.lakehouse.read_partition(table, ctx.profile.name, ctx.as_of)


def allocation_inputs(ctx: StageContext) -> AllocationInputs:
    winners = _read(ctx, "selection_winners").filter(pl.col("is_champion")).sort("rank")
    if winners.is_empty():
        raise LookupError(f"no champion winners for {ctx.profile.name} as of {ctx.as_of}: materialise selection first")
    returns = _read(ctx, "returns_matrix")
    symbols = sorted(set(winners["symbol"]) | ({ctx.profile.benchmark} & set(returns["symbol"])))
    panel = ReturnsPanel.from_long(returns.filter(pl.col("symbol").is_in(symbols)).select("symbol", "date", "ret"))
    atoms = winners.select("atom_id", "symbol", "logic", "direction", "cluster")
    atom_panel = atom_returns(panel, atoms)
    bench = panel.select([ctx.profile.benchmark]).values[:, 0] if ctx.profile.benchmark in panel.symbols else None
    rows = np.isfinite(atom_panel.values).all(axis=1) & (np.isfinite(bench) if bench is not None else True)
    window = ctx.profile.allocation.window
    keep = np.flatnonzero(rows)[-window:]
    if len(keep) < MIN_COMMON_SESSIONS:
        raise ValueError(
            f"{ctx.profile.name} as of {ctx.as_of}: only {len(keep)} sessions shared by all {atoms.height} winners "
            f"(need {MIN_COMMON_SESSIONS}); the winners' histories do not overlap enough to estimate risk"
        )
    features = _read(ctx, "features").filter(pl.col("feature") == "antifragility").select("atom_id", "value")
    af = atoms.select("atom_id").join(features, on="atom_id", how="left")["value"].to_numpy()
    return AllocationInputs(
        atoms=atoms,
        returns=atom_panel.values[keep],
        benchmark=None if bench is None else bench[keep],
        antifragility=None if np.isnan(af).all() else np.nan_to_num(af, nan=float(np.nanmin(af))),
        previous_weights=_previous_weights(ctx, atoms) if ctx.profile.features.feat_turnover_penalty else None,
        sessions=len(keep),
    )


def _previous_weights(ctx: StageContext, atoms: pl.DataFrame) -> np.ndarray | None:
    """The custom min-variance atom weights of the latest earlier partition (current holdings), 0 for new atoms."""
    earlier = ctx.lakehouse.query(
        "SELECT name, weight FROM portfolio_weights WHERE profile = ? AND as_of = (SELECT max(as_of) FROM "
        "portfolio_weights WHERE profile = ? AND as_of < ?) AND engine = 'custom' AND risk_profile = 'min_variance' "
        "AND level = 'atom'",
        [ctx.profile.name, ctx.profile.name, ctx.as_of],
    ) if ctx.lakehouse.exists() else pl.DataFrame()
    if earlier.is_empty():
        return None
    held = dict(earlier.iter_rows())
    return np.array([held.get(a, 0.0) for a in atoms["atom_id"]])


def regime_basis(inputs: AllocationInputs) -> tuple[np.ndarray, str]:
    """The market series the regime reads: the benchmark when there is one, else the winners' equal weight."""
    if inputs.benchmark is not None:
        return inputs.benchmark, "benchmark"
    return inputs.returns.mean(axis=1), "equal-weight winners"


def run_regime(ctx: StageContext) -> RegimeReading:
    inputs = allocation_inputs(ctx)
    series, basis = regime_basis(inputs)
    reading = detect_regime(series, ctx.profile.allocation.regime)
    config = ctx.profile.allocation
    row = pl.DataFrame(
        {
            "profile": [ctx.profile.name], "as_of": [ctx.as_of], "regime": [reading.regime.value], "basis": [basis],
            "vol_ratio": [reading.vol_ratio], "entropy": [reading.entropy], "turbulence": [reading.turbulence],
            "score": [reading.score], "cluster_cap": [config.cluster_caps[reading.regime]],
            "aggressor_sleeve": [config.aggressor_sleeve[reading.regime]], "reason": [reading.reason],
        },
        schema_overrides={c: pl.Float64 for c in ("vol_ratio", "entropy", "turbulence", "score")},
    )
    ctx.lakehouse.replace_partition("regimes", ctx.profile.name, ctx.as_of, row.select(REGIMES.column_names))
    return reading


def stored_regime(ctx: StageContext) -> Regime:
    stored = _read(ctx, "regimes")
    if stored.is_empty():
        raise LookupError(f"no regime for {ctx.profile.name} as of {ctx.as_of}: materialise regime first")
    return Regime(stored["regime"][0])


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


LONG_ONLY = frozenset(RiskProfile) - {RiskProfile.MARKET_NEUTRAL, RiskProfile.MARKET}
UNCAPPED = frozenset({RiskProfile.BENCHMARK})  # a baseline: equal weight of the winners, as is


def constraint_problems(problem: AllocationProblem, profile: RiskProfile, weights: np.ndarray) -> list[str]:
    """What a weight vector violates for this profile (empty when valid)."""
    found = []
    if not np.isfinite(weights).all():
        return ["non-finite weights"]
    net, gross = float(weights.sum()), float(np.abs(weights).sum())
    if abs(net - 1.0) > TOLERANCE:
        found.append(f"net weight {net:.6f} != 1")
    if profile is RiskProfile.MARKET_NEUTRAL:
        if gross > problem.config.neutral_gross_max + TOLERANCE:
            found.append(f"gross {gross:.4f} > {problem.config.neutral_gross_max}")
        beta = portfolio_beta(problem, weights)
        if beta is not None and abs(beta) > problem.config.neutral_beta_band + TOLERANCE:
            found.append(f"|beta| {abs(beta):.4f} > band {problem.config.neutral_beta_band}")
        return found
    if (weights < -TOLERANCE).any():
        found.append("negative weight in a long-only profile")
    if profile not in UNCAPPED:
        if (weights > problem.upper + TOLERANCE).any():
            found.append(f"asset weight {weights.max():.4f} above its cap {problem.upper.max():.4f}")
        caps = _capped(problem)
        sums = np.bincount(caps.cluster, weights=weights, minlength=len(caps.caps))
        over = np.flatnonzero(sums > caps.caps + TOLERANCE)
        if len(over):
            found.append(f"cluster sums {sums[over].round(4).tolist()} above their caps {caps.caps[over].round(4).tolist()}")
    return found


def portfolio_beta(problem: AllocationProblem, weights: np.ndarray) -> float | None:
    if problem.benchmark is None:
        return None
    variance = float(np.var(problem.benchmark, ddof=1))
    if variance == 0:
        return None
    betas = np.array([np.cov(problem.returns[:, i], problem.benchmark, ddof=1)[0, 1] for i in range(problem.n_assets)])
    return float(betas @ weights / variance)


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
    problems = constraint_problems(problem, profile, weights)
    if problems and profile in LONG_ONLY and profile not in UNCAPPED:
        weights = project_onto_caps(weights, problem)  # libraries without cluster caps: nearest capped portfolio
        message = (message + "; " if message else "") + "projected onto the caps: " + "; ".join(problems)
        problems = constraint_problems(problem, profile, weights)
    if problems:
        return AllocationResult(engine.name, profile, None, "failed", solve_seconds=elapsed, message="; ".join(problems))
    return AllocationResult(engine.name, profile, weights, "fallback" if fallback else "ok", fallback, elapsed, message)


def _capped(problem: AllocationProblem):
    """The engines' capped set: cluster caps max(cap, 1/K), raised uniformly only when the budget needs it."""
    from tsp_platform.allocation.projection import capped_set

    return capped_set(problem.clusters, np.zeros(problem.n_assets), problem.upper, problem.cluster_cap)


def project_onto_caps(weights: np.ndarray, problem: AllocationProblem) -> np.ndarray:
    """The nearest long-only portfolio holding the per-asset and cluster caps (Euclidean projection)."""
    from tsp_platform.allocation.projection import project

    return project(weights, _capped(problem))


def build_problem(ctx: StageContext, inputs: AllocationInputs, regime: Regime) -> AllocationProblem:
    return AllocationProblem(
        returns=inputs.returns,
        assets=tuple(inputs.atoms["atom_id"]),
        clusters=inputs.atoms["cluster"].to_numpy(),
        config=ctx.profile.allocation,
        annualisation=ctx.profile.annualisation,
        regime=regime,
        benchmark=inputs.benchmark,
        antifragility=inputs.antifragility,
        previous_weights=inputs.previous_weights,
        allow_short=ctx.profile.features.feat_short_direction,
    )


def run_allocation(ctx: StageContext) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Every engine × risk profile; stores atom and flattened physical weights plus one run row each."""
    inputs = allocation_inputs(ctx)
    problem = build_problem(ctx, inputs, stored_regime(ctx))
    config = ctx.profile.allocation
    runs, weights = [], []
    for name, engine in engines().items():
        if name not in config.engines:
            continue
        for profile in config.profiles:
            if profile is RiskProfile.MARKET:
                result = _market_baseline(ctx, name)
            else:
                result = solve(engine, problem, profile)
            runs.append(_run_row(ctx, problem, result))
            weights += _weight_rows(ctx, inputs, result)
    run_frame = pl.DataFrame(runs, schema=ALLOCATION_RUNS.polars_schema)
    weight_frame = pl.DataFrame(weights, schema=PORTFOLIO_WEIGHTS.polars_schema)
    ctx.lakehouse.replace_partitions(
        ctx.profile.name, ctx.as_of, {"allocation_runs": run_frame, "portfolio_weights": weight_frame}
    )
    return run_frame, weight_frame


def _market_baseline(ctx: StageContext, engine: EngineName) -> AllocationResult:
    """100 % benchmark: a physical baseline, computed once (by the custom engine) for every partition."""
    if engine is not EngineName.CUSTOM:
        return AllocationResult(engine, RiskProfile.MARKET, None, "not_supported", message="baseline computed by custom")
    if not ctx.profile.benchmark:
        return AllocationResult(engine, RiskProfile.MARKET, None, "failed", message="the profile names no benchmark")
    return AllocationResult(engine, RiskProfile.MARKET, np.array([1.0]), "ok", message=f"100 % {ctx.profile.benchmark}")


def _run_row(ctx: StageContext, problem: AllocationProblem, result: AllocationResult) -> dict:
    weights = result.weights
    has = weights is not None and result.profile is not RiskProfile.MARKET
    return {
        "profile": ctx.profile.name, "as_of": ctx.as_of, "engine": result.engine.value,
        "risk_profile": result.profile.value, "status": result.status, "fallback_used": result.fallback_used,
        "solve_ms": result.solve_seconds * 1000, "assets": 0 if weights is None else int((np.abs(weights) > 1e-12).sum()),
        "net": float(weights.sum()) if weights is not None else None,
        "gross": float(np.abs(weights).sum()) if weights is not None else None,
        "beta": portfolio_beta(problem, weights) if has else None, "message": result.message,
    }


def _weight_rows(ctx: StageContext, inputs: AllocationInputs, result: AllocationResult) -> list[dict]:
    if result.weights is None:
        return []
    base = {"profile": ctx.profile.name, "as_of": ctx.as_of, "engine": result.engine.value, "risk_profile": result.profile.value}
    if result.profile is RiskProfile.MARKET:
        return [{**base, "level": "physical", "name": ctx.profile.benchmark, "cluster": None, "weight": 1.0}]
    atom_ids = inputs.atoms["atom_id"].to_list()
    clusters = dict(zip(atom_ids, inputs.atoms["cluster"].to_list()))
    rows = [
        {**base, "level": "atom", "name": atom, "cluster": clusters[atom], "weight": float(w)}
        for atom, w in zip(atom_ids, result.weights)
    ]
    physical = flatten_weights(dict(zip(atom_ids, result.weights.tolist())), inputs.atoms)
    rows += [{**base, "level": "physical", "name": symbol, "cluster": None, "weight": w} for symbol, w in physical.items()]
    return rows
