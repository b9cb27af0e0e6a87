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

from tsp_platform.config.selection import PolicyConfig, VetoConfig
from tsp_platform.core.vocabulary import Direction

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
        "volatility": ("volatility", vetoes.volatility_max), "roc": ("roc", None),
        "friction": ("net_momentum", vetoes.eci_hurdle),
        "metadata": (None, None),
    }
    candidates = candidates.with_columns((pl.col("momentum") - pl.col("eci")).alias("net_momentum"))
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


class Recruiter:
    """Adds atoms to the winners, never removes one: one atom per (identity, direction), at most top-N per
    (cluster, direction), a classified sector never above max(1, ⌊sector_cap × n⌋) of the n winners, at most
    `cap` winners.

    `extend` aims for a target size, fills it best-first under the sector limit that size allows, and lowers
    the target until the fill is exact, so the cap holds for the final size and the best atoms get the room."""

    def __init__(self, policy: PolicyConfig):
        self.policy = policy
        self.rows: list[dict] = []

    @property
    def size(self) -> int:
        return len(self.rows)

    def _fill(self, pending: list[dict], target: int) -> list[dict]:
        """Best-first additions up to `target`, under the sector limit of a `target`-sized list."""
        limit = max(1, math.floor(self.policy.sector_cap * target))
        identities = {(r["identity"], r["direction"]) for r in self.rows}
        clusters: dict[tuple, int] = {}
        sectors: dict[str, int] = {}
        for r in self.rows:
            clusters[(r["cluster"], r["direction"])] = clusters.get((r["cluster"], r["direction"]), 0) + 1
            if r["sector"] is not UNCLASSIFIED:
                sectors[r["sector"]] = sectors.get(r["sector"], 0) + 1
        added = []
        for row in pending:
            if self.size + len(added) >= target:
                break
            key, sector = (row["cluster"], row["direction"]), row["sector"]
            if (row["identity"], row["direction"]) in identities or clusters.get(key, 0) >= self.policy.top_n:
                continue
            if sector is not UNCLASSIFIED and sectors.get(sector, 0) >= limit:
                continue
            added.append(row)
            identities.add((row["identity"], row["direction"]))
            clusters[key] = clusters.get(key, 0) + 1
            if sector is not UNCLASSIFIED:
                sectors[sector] = sectors.get(sector, 0) + 1
        return added

    def extend(self, candidates: pl.DataFrame, until: int) -> list[str]:
        """Add eligible atoms, best first, towards `until` winners; returns the atoms added."""
        taken = {r["atom_id"] for r in self.rows}
        pending = [r for r in _ranked(candidates).to_dicts() if r["atom_id"] not in taken]
        target = min(until, self.policy.cap)
        while target > self.size:
            added = self._fill(pending, target)
            if self.size + len(added) == target:
                self.rows.extend(added)
                return [r["atom_id"] for r in added]
            target = self.size + len(added)
        return []

    def winners(self, schema: dict) -> pl.DataFrame:
        return pl.DataFrame(self.rows, schema=schema) if self.rows else pl.DataFrame(schema=schema)


def _ranked(frame: pl.DataFrame) -> pl.DataFrame:
    """Best first; ties broken by atom id so reruns agree."""
    return frame.sort(["score", "atom_id"], descending=[True, False])


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

    recruiter = Recruiter(policy)
    counts: dict[int, int] = {}
    entered: dict[str, int] = {}
    eligible = lambda ids: candidates.filter(pl.col("atom_id").is_in(list(ids)))  # noqa: E731
    entered.update(dict.fromkeys(recruiter.extend(eligible(passes_strict), policy.cap), 1))
    final_stage = 1
    counts[1] = recruiter.size
    if recruiter.size < policy.floor:
        final_stage = 2
        entered.update(dict.fromkeys(recruiter.extend(eligible(passes_relaxed), policy.cap), 2))
        counts[2] = recruiter.size
    if recruiter.size < policy.floor:
        final_stage = 3
        entered.update(dict.fromkeys(recruiter.extend(_representatives(candidates, recruiter, passes_risk, policy), policy.cap), 3))
        counts[3] = recruiter.size
    if recruiter.size < policy.floor:
        final_stage = 4
        entered.update(dict.fromkeys(recruiter.extend(eligible(passes_risk), policy.floor), 4))
        counts[4] = recruiter.size
    # A winner's stage is the first whose rule admits it, whenever the sector cap let it in.
    stage_of = {a: 1 if a in passes_strict else 2 if a in passes_relaxed else stage for a, stage in entered.items()}
    winners = recruiter.winners(candidates.schema)

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


def _representatives(candidates: pl.DataFrame, recruiter: Recruiter, passes_risk: set, policy: PolicyConfig) -> pl.DataFrame:
    """Stage 3: the best member of each cluster still without a winner, if it passes the risk vetoes and is not
    pure noise (entropy at most the representative ceiling)."""
    taken = {row["cluster"] for row in recruiter.rows}
    pool = candidates.filter(
        pl.col("atom_id").is_in(list(passes_risk)),
        ~pl.col("cluster").is_in(list(taken)),
        (pl.col("entropy") <= policy.representative_entropy_max).fill_null(True),
    )
    return _ranked(pool).unique("cluster", keep="first", maintain_order=True)
