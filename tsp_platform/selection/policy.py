"""Recruitment policy: vetoes, top-N per cluster per direction, sector cap, floor and cap, and the hierarchical
threshold relaxation (HTR) that loosens predictability vetoes stage by stage until the floor is met.

Stages: 1 strict · 2 relaxed entropy and efficiency · 3 one representative per cluster left empty · 4 alpha
fallback from the global ranking. Risk vetoes (fat tails, volatility, rate of change, friction, missing
execution metadata) hold at every stage: no stage ignores them. Every winner records the stage that admitted it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import polars as pl

from tsp_platform.config.models import Direction
from tsp_platform.selection.config import PolicyConfig, VetoConfig

PREDICTABILITY_VETOES = ("entropy", "efficiency", "hurst")
RISK_VETOES = ("kurtosis", "volatility", "roc", "friction", "metadata")
UNCLASSIFIED = None  # a null sector is exempt from the sector cap (reported, not guessed)


@dataclass(frozen=True)
class Thresholds:
    entropy_max: float
    efficiency_min: float


@dataclass(frozen=True)
class PolicyResult:
    winners: pl.DataFrame  # atom rows + htr_stage, rank
    vetoes: pl.DataFrame  # atom_id, veto, vetoed, value, threshold (strict thresholds)
    stage_counts: dict[int, int]  # winners after each stage that ran
    final_stage: int
    hardened: bool
    shortfall: str | None  # why the floor was not met, when it was not


def veto_flags(candidates: pl.DataFrame, vetoes: VetoConfig, thresholds: Thresholds) -> pl.DataFrame:
    """One boolean column per veto (True = vetoed). A feature the data cannot support (null) does not veto;
    benchmarks are exempt from the predictability vetoes."""
    lo, hi = vetoes.hurst_band
    directional_momentum = pl.col("momentum")  # atoms already carry direction-adjusted returns
    exempt = pl.col("is_benchmark")
    flags = {
        "entropy": (pl.col("entropy") > thresholds.entropy_max) & ~exempt,
        "efficiency": (pl.col("efficiency") < thresholds.efficiency_min) & ~exempt,
        "hurst": pl.col("hurst").is_between(lo, hi) & ~exempt,
        "kurtosis": pl.col("kurtosis") > vetoes.kurtosis_max,
        "volatility": pl.col("volatility") > vetoes.volatility_max,
        "roc": (pl.col("roc") > vetoes.roc_max) | (pl.col("roc") < vetoes.roc_min),
        "friction": (directional_momentum - pl.col("eci")) < vetoes.eci_hurdle,
        "metadata": pl.lit(vetoes.require_execution_metadata) & ~pl.col("has_execution_metadata"),
    }
    return candidates.select("atom_id", *(expr.fill_null(False).alias(f"veto_{name}") for name, expr in flags.items()))


def _veto_report(candidates: pl.DataFrame, flags: pl.DataFrame, vetoes: VetoConfig, thresholds: Thresholds) -> pl.DataFrame:
    values = {
        "entropy": ("entropy", thresholds.entropy_max), "efficiency": ("efficiency", thresholds.efficiency_min),
        "hurst": ("hurst", None), "kurtosis": ("kurtosis", vetoes.kurtosis_max),
        "volatility": ("volatility", vetoes.volatility_max), "roc": ("roc", None), "friction": ("eci", vetoes.eci_hurdle),
        "metadata": (None, None),
    }
    frames = []
    for name, (column, threshold) in values.items():
        frames.append(
            candidates.select("atom_id").with_columns(
                pl.lit(name).alias("veto"),
                flags[f"veto_{name}"].alias("vetoed"),
                (candidates[column] if column else pl.lit(None, pl.Float64)).cast(pl.Float64).alias("value"),
                pl.lit(threshold, pl.Float64).alias("threshold"),
            )
        )
    return pl.concat(frames)


def sector_capped(ranked: pl.DataFrame, policy: PolicyConfig, limit_total: int) -> pl.DataFrame:
    """Greedy by score with a per-sector limit of ⌊cap × size⌋, shrinking the size until the cap holds."""
    size = min(limit_total, ranked.height)
    while True:
        per_sector = max(1, math.floor(policy.sector_cap * size))
        counts: dict[str, int] = {}
        keep = []
        for row in ranked.iter_rows(named=True):
            if len(keep) == size:
                break
            sector = row["sector"]
            if sector is not UNCLASSIFIED and counts.get(sector, 0) >= per_sector:
                continue
            counts[sector] = counts.get(sector, 0) + 1
            keep.append(row["atom_id"])
        if len(keep) == size or len(keep) == 0:
            return ranked.filter(pl.col("atom_id").is_in(keep))
        size = len(keep)


def _ranked(frame: pl.DataFrame) -> pl.DataFrame:
    """Best first; ties broken by atom id so reruns agree."""
    return frame.sort(["score", "atom_id"], descending=[True, False])


def recruit(eligible: pl.DataFrame, policy: PolicyConfig) -> pl.DataFrame:
    """Top-N per (cluster, direction) of the eligible atoms, one atom per (identity, direction), then cap."""
    best = _ranked(eligible).unique(["identity", "direction"], keep="first", maintain_order=True)
    per_cluster = best.filter(pl.int_range(pl.len()).over(["cluster", "direction"]) < policy.top_n)
    return sector_capped(_ranked(per_cluster), policy, policy.cap)


def run_policy(candidates: pl.DataFrame, vetoes: VetoConfig, policy: PolicyConfig, allow_short: bool) -> PolicyResult:
    """HTR over `candidates` (one row per atom with score, cluster, sector, identity and raw features)."""
    if not allow_short:
        candidates = candidates.filter(pl.col("direction") == Direction.LONG.value)
    hardened = candidates.height > 0 and (candidates["entropy"].mean() or 0.0) > policy.hardening_trigger
    entropy_max = vetoes.entropy_max * (policy.hardening_factor if hardened else 1.0)
    strict = Thresholds(entropy_max, vetoes.efficiency_min)
    relaxed = Thresholds(min(1.0, entropy_max * policy.relax_entropy), vetoes.efficiency_min * policy.relax_efficiency)

    strict_flags = veto_flags(candidates, vetoes, strict)
    relaxed_flags = veto_flags(candidates, vetoes, relaxed)
    risk_ok = ~pl.any_horizontal([f"veto_{v}" for v in RISK_VETOES])
    all_ok = ~pl.any_horizontal([f"veto_{v}" for v in (*PREDICTABILITY_VETOES, *RISK_VETOES)])
    passes_strict = set(strict_flags.filter(all_ok)["atom_id"])
    passes_relaxed = set(relaxed_flags.filter(all_ok)["atom_id"])
    passes_risk = set(strict_flags.filter(risk_ok)["atom_id"])

    stage_of: dict[str, int] = {}
    counts: dict[int, int] = {}
    winners = recruit(candidates.filter(pl.col("atom_id").is_in(passes_strict)), policy)
    stage_of.update({a: 1 for a in winners["atom_id"]})
    counts[1] = winners.height
    final_stage = 1
    if winners.height < policy.floor:
        final_stage = 2
        winners = recruit(candidates.filter(pl.col("atom_id").is_in(passes_relaxed)), policy)
        for atom in winners["atom_id"]:
            stage_of.setdefault(atom, 1 if atom in passes_strict else 2)
        counts[2] = winners.height
    if winners.height < policy.floor:
        final_stage = 3
        winners = _add_representatives(candidates, winners, passes_risk, policy, stage_of)
        counts[3] = winners.height
    if winners.height < policy.floor:
        final_stage = 4
        winners = _alpha_fallback(candidates, winners, passes_risk, policy, stage_of)
        counts[4] = winners.height

    shortfall = None
    if winners.height < policy.floor:
        shortfall = (
            f"{winners.height} winners < floor {policy.floor}: {candidates.height} candidate atoms, "
            f"{len(passes_risk)} pass the risk vetoes, top {policy.top_n} per cluster and direction, "
            f"sector cap {policy.sector_cap:.0%}"
        )
    ranked = _ranked(winners).with_columns(
        pl.col("atom_id").replace_strict(stage_of, return_dtype=pl.Int32).alias("htr_stage"),
        pl.int_range(1, winners.height + 1, dtype=pl.Int32).alias("rank"),
    )
    return PolicyResult(
        winners=ranked,
        vetoes=_veto_report(candidates, strict_flags, vetoes, strict),
        stage_counts=counts,
        final_stage=final_stage,
        hardened=hardened,
        shortfall=shortfall,
    )


def _add_representatives(candidates, winners, passes_risk, policy, stage_of) -> pl.DataFrame:
    """Stage 3: each cluster without a winner gets its best member that passes the risk vetoes and is not
    pure noise (entropy at most the representative ceiling)."""
    taken = set(winners["cluster"])
    pool = candidates.filter(
        pl.col("atom_id").is_in(passes_risk),
        ~pl.col("cluster").is_in(taken),
        (pl.col("entropy") <= policy.representative_entropy_max).fill_null(True),
    )
    reps = _ranked(pool).unique("cluster", keep="first", maintain_order=True)
    for atom in reps["atom_id"]:
        stage_of.setdefault(atom, 3)
    return sector_capped(_ranked(pl.concat([winners, reps])), policy, policy.cap)


def _alpha_fallback(candidates, winners, passes_risk, policy, stage_of) -> pl.DataFrame:
    """Stage 4: top up to the floor from the global ranking of atoms passing the risk vetoes, still one per
    (identity, direction) and at most top-N per cluster and direction."""
    current = winners
    for row in _ranked(candidates.filter(pl.col("atom_id").is_in(passes_risk))).iter_rows(named=True):
        if current.height >= policy.floor:
            break
        if row["atom_id"] in set(current["atom_id"]):
            continue
        same_identity = current.filter((pl.col("identity") == row["identity"]) & (pl.col("direction") == row["direction"]))
        in_cluster = current.filter((pl.col("cluster") == row["cluster"]) & (pl.col("direction") == row["direction"]))
        if same_identity.height or in_cluster.height >= policy.top_n:
            continue
        trial = sector_capped(_ranked(pl.concat([current, candidates.filter(pl.col("atom_id") == row["atom_id"])])), policy, policy.cap)
        if trial.height > current.height:
            stage_of.setdefault(row["atom_id"], 4)
            current = trial
    return current
