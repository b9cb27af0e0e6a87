"""Allocation stages against the lakehouse: `regime` and `portfolio_weights` for one (profile, as-of) partition.

Inputs are as of the partition's date: the champion winners of `selection`, their returns up to the date
(SHORT atoms negated, on the sessions they share: `allocation.problem`), their clusters and antifragility,
the benchmark. Every engine × risk profile is attempted (`allocation.solve`): a profile an engine lacks is
recorded `not_supported`; a failed solve walks the declared fallback chain and records which link served.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from tsp_platform.allocation.base import AllocationProblem, AllocationResult
from tsp_platform.allocation.constraints import portfolio_beta
from tsp_platform.allocation.problem import (
    MIN_COMMON_SESSIONS,
    SharedSessions,
    allocation_problem,
    antifragility_vector,
    read_regime,
    shared_sessions,
)
from tsp_platform.allocation.regime import RegimeReading
from tsp_platform.allocation.solve import engines, solve
from tsp_platform.config.allocation import EngineName, Regime, RiskProfile
from tsp_platform.context import StageContext
from tsp_platform.core.atoms import atom_returns, flatten_weights
from tsp_platform.core.panel import ReturnsPanel
from tsp_platform.lakehouse import TABLES


@dataclass(frozen=True, eq=False)
class AllocationInputs:
    atoms: pl.DataFrame  # champion winners: atom_id, symbol, logic, direction, cluster
    shared: SharedSessions  # their returns (and the benchmark's) on the sessions they share, last `window`
    antifragility: np.ndarray | None
    previous_weights: np.ndarray | None


def allocation_inputs(ctx: StageContext) -> AllocationInputs:
    winners = ctx.read("selection_winners").filter(pl.col("is_champion")).sort("rank")
    if winners.is_empty():
        raise LookupError(f"no champion winners for {ctx.profile.name} as of {ctx.as_of}: materialise selection first")
    returns = ctx.read("returns_matrix")
    symbols = sorted(set(winners["symbol"]) | ({ctx.profile.benchmark} & set(returns["symbol"])))
    panel = ReturnsPanel.from_long(returns.filter(pl.col("symbol").is_in(symbols)).select("symbol", "date", "ret"))
    atoms = winners.select("atom_id", "symbol", "logic", "direction", "cluster")
    bench = panel.select([ctx.profile.benchmark]).values[:, 0] if ctx.profile.benchmark in panel.symbols else None
    shared = shared_sessions(atom_returns(panel, atoms).values, bench, ctx.profile.allocation.window)
    if not shared.enough:
        raise ValueError(
            f"{ctx.profile.name} as of {ctx.as_of}: only {shared.sessions} sessions shared by all {atoms.height} "
            f"winners (need {MIN_COMMON_SESSIONS}); the winners' histories do not overlap enough to estimate risk"
        )
    features = ctx.read("features").filter(pl.col("feature") == "antifragility").select("atom_id", "value")
    af = atoms.select("atom_id").join(features, on="atom_id", how="left")["value"].to_list()
    return AllocationInputs(
        atoms=atoms, shared=shared, antifragility=antifragility_vector(af),
        previous_weights=_previous_weights(ctx, atoms) if ctx.profile.features.feat_turnover_penalty else None,
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


def run_regime(ctx: StageContext) -> RegimeReading:
    inputs = allocation_inputs(ctx)
    config = ctx.profile.allocation
    reading, basis = read_regime(inputs.shared, config)
    row = pl.DataFrame(
        {
            "regime": [reading.regime.value], "basis": [basis],
            "vol_ratio": [reading.vol_ratio], "entropy": [reading.entropy], "turbulence": [reading.turbulence],
            "score": [reading.score], "cluster_cap": [config.cluster_caps[reading.regime]],
            "aggressor_sleeve": [config.aggressor_sleeve[reading.regime]], "reason": [reading.reason],
        },
        schema_overrides={c: pl.Float64 for c in ("vol_ratio", "entropy", "turbulence", "score")},
    )
    ctx.write(regimes=row)
    return reading


def stored_regime(ctx: StageContext) -> Regime:
    stored = ctx.read("regimes")
    if stored.is_empty():
        raise LookupError(f"no regime for {ctx.profile.name} as of {ctx.as_of}: materialise regime first")
    return Regime(stored["regime"][0])


def build_problem(ctx: StageContext, inputs: AllocationInputs, regime: Regime) -> AllocationProblem:
    return allocation_problem(
        inputs.atoms["atom_id"], inputs.atoms["cluster"].to_numpy(), inputs.shared, ctx.profile.allocation,
        annualisation=ctx.profile.annualisation, regime=regime, antifragility=inputs.antifragility,
        allow_short=ctx.profile.features.feat_short_direction, previous_weights=inputs.previous_weights,
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
    run_frame = pl.DataFrame(runs, schema=TABLES["allocation_runs"].row_schema)
    weight_frame = pl.DataFrame(weights, schema=TABLES["portfolio_weights"].row_schema)
    ctx.write(allocation_runs=run_frame, portfolio_weights=weight_frame)
    return ctx.tag("allocation_runs", run_frame), ctx.tag("portfolio_weights", weight_frame)


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
        "engine": result.engine.value, "risk_profile": result.profile.value, "status": result.status,
        "fallback_used": result.fallback_used, "solve_ms": result.solve_seconds * 1000,
        "assets": 0 if weights is None else int((np.abs(weights) > 1e-12).sum()),
        "net": float(weights.sum()) if weights is not None else None,
        "gross": float(np.abs(weights).sum()) if weights is not None else None,
        "beta": portfolio_beta(problem.returns, problem.benchmark, weights) if has else None, "message": result.message,
    }


def _weight_rows(ctx: StageContext, inputs: AllocationInputs, result: AllocationResult) -> list[dict]:
    if result.weights is None:
        return []
    base = {"engine": result.engine.value, "risk_profile": result.profile.value}
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
