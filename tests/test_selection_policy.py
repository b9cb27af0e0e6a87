"""Recruitment policy on crafted candidate frames: every veto, every HTR stage, top-N, identity dedup, cap,
sector cap, entropy hardening, SHORT handling and ranking (through the real feature and scoring stages)."""

from __future__ import annotations

import math
import random

import numpy as np
import polars as pl
import pytest

from tsp_platform.config.selection import PolicyConfig, SelectionConfig, VetoConfig
from tsp_platform.core.atoms import atom_id, atoms_frame
from tsp_platform.core.panel import ReturnsPanel
from tsp_platform.selection.context import SelectionContext
from tsp_platform.selection.pipeline import engineer_features, infer
from tsp_platform.selection.policy import Thresholds, run_policy, veto_flags

# Features that pass every default veto with a margin (entropy well under 0.986, H well outside the band, …).
GOOD = {
    "entropy": 0.90,
    "efficiency": 0.10,
    "hurst": 0.60,
    "kurtosis": 3.0,
    "volatility": 0.30,
    "roc": 0.10,
    "momentum": 0.20,
    "eci": 0.05,
}
SCHEMA = {
    "atom_id": pl.String,
    "symbol": pl.String,
    "logic": pl.String,
    "direction": pl.String,
    "identity": pl.String,
    "sector": pl.String,
    "cluster": pl.Int32,
    "score": pl.Float64,
    **{k: pl.Float64 for k in GOOD},
    "has_execution_metadata": pl.Boolean,
    "is_benchmark": pl.Boolean,
}
VETOES = VetoConfig()
DEFAULT = PolicyConfig()  # top 3 per cluster and direction, sector cap 40 %, floor 15, cap 25
NOISE = {"hurst": 0.495}  # predictability-vetoed at every relaxation (H inside the random-walk band)


def atom(symbol: str, score: float, cluster: int = 0, direction: str = "long", logic: str = "trend",
         identity: str | None = None, sector: str | None = None, metadata: bool = True, benchmark: bool = False,
         **features) -> dict:
    return {
        "atom_id": atom_id(symbol, logic, direction),
        "symbol": symbol,
        "logic": logic,
        "direction": direction,
        "identity": identity or symbol,
        "sector": sector,
        "cluster": cluster,
        "score": score,
        **GOOD,
        **features,
        "has_execution_metadata": metadata,
        "is_benchmark": benchmark,
    }


def frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=SCHEMA)


def grid(clusters: range, per_cluster: int, score0: float = 0.9, prefix: str = "S", **features) -> list[dict]:
    """`per_cluster` distinct assets in each cluster, scores strictly decreasing in creation order."""
    rows, k = [], 0
    for c in clusters:
        for _ in range(per_cluster):
            rows.append(atom(f"{prefix}{c}x{k}", score0 - 0.001 * k, cluster=c, **features))
            k += 1
    return rows


def policy(**kw) -> PolicyConfig:
    return PolicyConfig(**{"floor": 1, "cap": 25, **kw})


def run(rows, vetoes: VetoConfig = VETOES, pol: PolicyConfig = DEFAULT, allow_short: bool = True):
    return run_policy(frame(rows), vetoes, pol, allow_short)


def vetoed(result, atom: str, veto: str) -> bool:
    row = result.vetoes.filter((pl.col("atom_id") == atom) & (pl.col("veto") == veto))
    assert row.height == 1
    return bool(row["vetoed"][0])


def winners(result) -> list[str]:
    return result.winners["atom_id"].to_list()


def stages(result) -> dict[str, int]:
    return dict(result.winners.select("atom_id", "htr_stage").iter_rows())


# --- vetoes: each fires on its crafted value and not just inside the threshold ---


@pytest.mark.parametrize(
    "veto, bad, ok",
    [
        ("entropy", {"entropy": 0.99}, {"entropy": 0.98}),  # ceiling 0.986
        ("efficiency", {"efficiency": 0.005}, {"efficiency": 0.008}),  # floor 0.007
        ("hurst", {"hurst": 0.495}, {"hurst": 0.60}),  # band 0.488–0.502 on H itself
        ("hurst", {"hurst": 0.49}, {"hurst": 0.45}),
        ("kurtosis", {"kurtosis": 20.5}, {"kurtosis": 20.0}),  # > 20
        ("volatility", {"volatility": 2.6}, {"volatility": 2.5}),  # > 250 % annualised
        ("roc", {"roc": 1.01}, {"roc": 1.0}),  # > +100 %
        ("roc", {"roc": -0.81}, {"roc": -0.8}),  # < −80 %
        ("friction", {"momentum": 0.1, "eci": 1.2}, {"momentum": 0.1, "eci": 1.05}),  # momentum − ECI < −1.0
    ],
)
def test_each_veto_fires_on_its_value_only(veto, bad, ok):
    rows = [atom("BAD", 0.9, cluster=0, **bad), atom("OK", 0.8, cluster=1, **ok), atom("REF", 0.7, cluster=2)]
    result = run(rows, pol=policy(floor=2))
    assert vetoed(result, "BAD_trend_long", veto)
    assert not vetoed(result, "OK_trend_long", veto)
    flagged = result.vetoes.filter(pl.col("vetoed"))
    assert flagged.select("atom_id", "veto").rows() == [("BAD_trend_long", veto)]  # no other veto fires
    assert "BAD_trend_long" not in winners(result)
    assert set(winners(result)) == {"OK_trend_long", "REF_trend_long"}
    assert result.final_stage == 1


def test_hurst_veto_reads_h_not_a_clean_transform():
    """H = 0.5 is the random walk: vetoed. H = 1 (what `hurst_clean` gives a random walk) is a strong trend: kept."""
    rows = [
        atom("RW", 0.9, hurst=0.5),
        atom("TREND", 0.8, hurst=1.0, cluster=1),
        atom("MEANREV", 0.7, hurst=0.3, cluster=2),
    ]
    result = run(rows, pol=policy(floor=2))
    assert vetoed(result, "RW_trend_long", "hurst")
    assert not vetoed(result, "TREND_trend_long", "hurst")
    assert not vetoed(result, "MEANREV_trend_long", "hurst")


def test_friction_reads_momentum_net_of_eci():
    # strong trend pays for large costs; weak trend with the same costs does not; a negative hurdle is respected
    rows = [
        atom("RICH", 0.9, momentum=2.0, eci=2.5),  # −0.5 ≥ −1.0
        atom("POOR", 0.8, momentum=-0.5, eci=0.6, cluster=1),  # −1.1 < −1.0
    ]
    result = run(rows, pol=policy(floor=1))
    assert not vetoed(result, "RICH_trend_long", "friction")
    assert vetoed(result, "POOR_trend_long", "friction")
    strict_hurdle = VetoConfig(eci_hurdle=0.05)
    tight = run(rows, vetoes=strict_hurdle, pol=policy(floor=1))
    assert vetoed(tight, "RICH_trend_long", "friction") and vetoed(tight, "POOR_trend_long", "friction")


def test_friction_does_not_veto_everything_on_realistic_values():
    """The old system's defect: friction read momentum 0 / vol 1 and vetoed 100 %. Ordinary names must pass."""
    rows = grid(range(6), 3)
    result = run(rows)
    assert not result.vetoes.filter(pl.col("veto") == "friction")["vetoed"].any()
    assert result.final_stage == 1 and len(winners(result)) == 18


def test_metadata_veto_only_when_required():
    rows = [atom("NOMETA", 0.9, metadata=False), atom("META", 0.8, cluster=1)]
    lax = run(rows, vetoes=VetoConfig(require_execution_metadata=False), pol=policy(floor=2))
    assert not vetoed(lax, "NOMETA_trend_long", "metadata")
    assert winners(lax) == ["NOMETA_trend_long", "META_trend_long"]
    strict = run(rows, vetoes=VetoConfig(require_execution_metadata=True), pol=policy(floor=2))
    assert vetoed(strict, "NOMETA_trend_long", "metadata")
    assert not vetoed(strict, "META_trend_long", "metadata")
    assert winners(strict) == ["META_trend_long"]  # a risk veto: not even stage 4 admits it
    assert strict.final_stage == 4 and strict.shortfall is not None


def test_benchmark_exempt_from_predictability_vetoes_only():
    noisy = {"entropy": 0.999, "efficiency": 0.0, "hurst": 0.495}
    rows = [
        atom("SPY", 0.9, benchmark=True, **noisy),
        atom("NOISY", 0.8, cluster=1, **noisy),
        atom("SPYFAT", 0.7, cluster=2, benchmark=True, kurtosis=30.0),
    ]
    result = run(rows, pol=policy(floor=1))
    for veto in ("entropy", "efficiency", "hurst"):
        assert not vetoed(result, "SPY_trend_long", veto)
        assert vetoed(result, "NOISY_trend_long", veto)
    assert vetoed(result, "SPYFAT_trend_long", "kurtosis")  # risk vetoes still apply to benchmarks
    assert stages(result) == {"SPY_trend_long": 1}


@pytest.mark.parametrize("feature", list(GOOD))
def test_null_feature_does_not_veto(feature):
    rows = [atom("NULL", 0.9, **{feature: None}), atom("REF", 0.8, cluster=1)]
    result = run(rows, pol=policy(floor=2))
    assert not result.vetoes.filter(pl.col("atom_id") == "NULL_trend_long")["vetoed"].any()
    assert stages(result) == {"NULL_trend_long": 1, "REF_trend_long": 1}


def test_veto_flags_direct():
    f = frame([atom("A", 0.5, entropy=0.95, efficiency=0.02), atom("B", 0.4, entropy=0.97, efficiency=0.01)])
    flags = veto_flags(f, VETOES, Thresholds(entropy_max=0.96, efficiency_min=0.015))
    names = ("entropy", "efficiency", "hurst", "kurtosis", "volatility", "roc", "friction", "metadata")
    assert flags.columns == ["atom_id", *(f"veto_{v}" for v in names)]
    assert flags["veto_entropy"].to_list() == [False, True]
    assert flags["veto_efficiency"].to_list() == [False, True]


@pytest.mark.parametrize(
    "bad, vetoes",
    [
        ({"kurtosis": 30.0}, VETOES),
        ({"volatility": 3.0}, VETOES),
        ({"roc": 1.5}, VETOES),
        ({"roc": -0.9}, VETOES),
        ({"momentum": 0.0, "eci": 2.0}, VETOES),
        ({"metadata": False}, VetoConfig(require_execution_metadata=True)),
    ],
)
def test_risk_vetoes_hold_at_every_stage(bad, vetoes):
    """The highest-scoring atom, alone in its cluster and otherwise clean, never wins, even when the floor forces
    stage 4 (the old 'desperation' pass ignored vetoes)."""
    rows = [atom("TOXIC", 0.99, cluster=9, **bad), *grid(range(3), 2, **NOISE)]
    result = run(rows, vetoes=vetoes)  # floor 15 cannot be met: 6 other atoms
    assert result.final_stage == 4
    assert "TOXIC_trend_long" not in winners(result)
    assert len(winners(result)) == 6 and result.shortfall is not None


# --- HTR stages ---


def test_stage_1_reached_and_stopped():
    strict = grid(range(6), 3)  # 18 strict passers ≥ floor 15
    relaxed_only = [atom("REL", 0.999, cluster=7, entropy=0.99)]  # would win at stage 2 (highest score)
    noise = [atom("RW", 0.998, cluster=8, **NOISE)]  # would be a stage-3 representative
    result = run(strict + relaxed_only + noise)
    assert result.final_stage == 1
    assert result.stage_counts == {1: 18}
    assert set(winners(result)) == {r["atom_id"] for r in strict}
    assert set(stages(result).values()) == {1}
    assert result.shortfall is None and not result.hardened


def test_stage_2_reached_by_relaxed_entropy_and_efficiency():
    strict = grid(range(4), 3)  # 12 < 15
    relaxed = [
        atom("E1", 0.50, cluster=4, entropy=0.99),  # > 0.986, ≤ min(1, 0.986 × 1.2)
        atom("E2", 0.49, cluster=4, entropy=0.999),
        atom("F1", 0.48, cluster=5, efficiency=0.006),  # < 0.007, ≥ 0.007 × 0.8
        atom("F2", 0.47, cluster=5, efficiency=0.0057),
    ]
    too_weak = [atom("F3", 0.99, cluster=6, efficiency=0.005)]  # < 0.0056: vetoed even when relaxed
    result = run(strict + relaxed + too_weak)
    assert result.final_stage == 2
    assert result.stage_counts == {1: 12, 2: 16}
    got = stages(result)
    assert {a for a, s in got.items() if s == 2} == {r["atom_id"] for r in relaxed}
    assert {a for a, s in got.items() if s == 1} == {r["atom_id"] for r in strict}
    assert "F3_trend_long" not in got
    assert vetoed(result, "E1_trend_long", "entropy") and vetoed(result, "F1_trend_long", "efficiency")


def test_stage_3_cluster_representatives():
    strict = grid(range(4), 3)  # 12
    noise = [
        atom("N4a", 0.30, cluster=4, **NOISE),
        atom("N4b", 0.35, cluster=4, **NOISE),  # best of cluster 4
        atom("N5a", 0.20, cluster=5, **NOISE),  # best eligible of cluster 5
        atom("N5b", 0.40, cluster=5, hurst=0.495, entropy=0.9995),  # best score but pure noise (> 0.999)
        atom("N6a", 0.10, cluster=6, efficiency=0.001),  # vetoed on efficiency even relaxed
        atom("N6b", 0.05, cluster=6, entropy=0.995, hurst=0.49),
    ]
    result = run(strict + noise)
    assert result.final_stage == 3
    assert result.stage_counts == {1: 12, 2: 12, 3: 15}
    got = stages(result)
    assert {a for a, s in got.items() if s == 3} == {"N4b_trend_long", "N5a_trend_long", "N6a_trend_long"}
    assert all(got[r["atom_id"]] == 1 for r in strict)
    assert result.shortfall is None


def test_stage_4_alpha_fallback_respects_identity_and_top_n():
    strict = grid(range(3), 3)  # 9
    rows = strict + [
        # cluster 3: five noisy assets; the best gets the stage-3 slot, two more fit under top_n = 3
        *[atom(f"C3n{i}", 0.60 - 0.01 * i, cluster=3, **NOISE) for i in range(5)],
        # a second logic of the stage-3 representative (same identity, same direction), scored above everything
        atom("C3n0", 0.65, cluster=3, logic="rating_all", **NOISE),
        # cluster 4: likewise
        *[atom(f"C4n{i}", 0.50 - 0.01 * i, cluster=4, **NOISE) for i in range(5)],
        # cluster 5: one noisy asset
        atom("C5n0", 0.10, cluster=5, **NOISE),
        # a top-scoring fat-tailed atom in its own cluster
        atom("FAT", 0.99, cluster=6, kurtosis=30.0),
    ]
    result = run(rows)
    assert result.final_stage == 4
    assert result.stage_counts[1] == 9 and result.stage_counts[2] == 9
    assert result.stage_counts[3] == 12
    assert result.stage_counts[4] == 15 and result.shortfall is None
    got = stages(result)
    # stage 3: the best representative of each fully vetoed cluster (the rating_all logic outranks trend)
    assert {a for a, s in got.items() if s == 3} == {"C3n0_rating_all_long", "C4n0_trend_long", "C5n0_trend_long"}
    # stage 4: the global ranking, skipping the representative's other logic and full clusters
    assert {a for a, s in got.items() if s == 4} == {"C3n1_trend_long", "C3n2_trend_long", "C4n1_trend_long"}
    w = result.winners
    assert w.group_by("identity", "direction").len()["len"].max() == 1
    assert w.group_by("cluster", "direction").len()["len"].max() <= DEFAULT.top_n
    assert "FAT_trend_long" not in got and "C3n0_trend_long" not in got


def test_shortfall_explained_when_even_stage_4_cannot_reach_floor():
    rows = grid(range(2), 2) + [atom(f"N{i}", 0.5 - 0.01 * i, cluster=2, **NOISE) for i in range(5)]
    rows.append(atom("VOL", 0.99, cluster=3, volatility=4.0))
    result = run(rows)
    assert result.final_stage == 4
    assert len(winners(result)) == 7  # 4 strict + top 3 of cluster 2
    assert result.stage_counts == {1: 4, 2: 4, 3: 5, 4: 7}
    assert result.shortfall is not None
    assert "7 winners < floor 15" in result.shortfall
    assert "10 candidate atoms" in result.shortfall and "9 pass the risk vetoes" in result.shortfall


def test_htr_stage_is_minimal_admitting_stage():
    rows = [
        atom("A", 0.50, cluster=0),  # strict → 1
        atom("B", 0.90, cluster=1, entropy=0.99),  # relaxed only → 2
        atom("C", 0.80, cluster=2, **NOISE),  # representative of a vetoed cluster → 3
        atom("D", 0.70, cluster=0, **NOISE),  # noisy, in a cluster that has a winner → only the fallback: 4
        atom("E", 0.60, cluster=1, **NOISE),  # same → 4
        atom("F", 0.99, cluster=0, kurtosis=25.0),  # never
    ]
    result = run(rows, pol=policy(floor=5, top_n=2))
    assert stages(result) == {
        "B_trend_long": 2, "C_trend_long": 3, "D_trend_long": 4, "E_trend_long": 4, "A_trend_long": 1,
    }
    assert winners(result) == ["B_trend_long", "C_trend_long", "D_trend_long", "E_trend_long", "A_trend_long"]
    assert result.winners["rank"].to_list() == [1, 2, 3, 4, 5]
    assert result.winners["score"].to_list() == [0.90, 0.80, 0.70, 0.60, 0.50]


def test_strict_passer_displaced_by_relaxed_atom_is_reported_at_stage_1_if_it_returns():
    """A strict passer that first wins at stage 2 (a higher-ranked relaxed atom reshuffled its cluster) still
    records stage 1, and relaxed atoms record 2."""
    rows = [
        atom("A", 0.90, cluster=0),
        atom("R", 0.95, cluster=1, efficiency=0.006),
        atom("B", 0.80, cluster=1),
    ]
    result = run(rows, pol=policy(floor=3, top_n=2))
    assert result.final_stage == 2
    assert stages(result) == {"R_trend_long": 2, "A_trend_long": 1, "B_trend_long": 1}


# --- entropy hardening ---


def test_entropy_hardening_tightens_the_ceiling():
    target = atom("T", 0.95, cluster=0, entropy=0.98)  # under the normal ceiling 0.986
    calm = [target, *grid(range(1, 6), 3)]  # mean entropy ≈ 0.905
    normal = run(calm)
    assert not normal.hardened
    assert not vetoed(normal, "T_trend_long", "entropy")
    assert stages(normal)["T_trend_long"] == 1

    noisy = [target, *grid(range(1, 6), 3, entropy=0.985)]  # mean entropy ≈ 0.985 > trigger 0.98
    hard = run(noisy)
    assert hard.hardened
    assert vetoed(hard, "T_trend_long", "entropy")
    report = hard.vetoes.filter((pl.col("veto") == "entropy") & (pl.col("atom_id") == "T_trend_long"))
    threshold = report["threshold"][0]
    assert threshold == pytest.approx(VETOES.entropy_max * DEFAULT.hardening_factor)
    assert threshold < 0.98
    # nothing passes the hardened strict stage, relaxation (ceiling min(1, 0.976 × 1.2)) admits them at stage 2
    assert hard.stage_counts[1] == 0 and hard.final_stage == 2
    assert stages(hard)["T_trend_long"] == 2


def test_no_hardening_at_default_noise_level():
    rows = grid(range(6), 3, entropy=0.971)  # iid noise averages 0.971 at order 4
    result = run(rows)
    assert not result.hardened and result.final_stage == 1


# --- recruitment ---


def test_top_n_per_cluster_and_direction():
    rows = [atom(f"L{i}", 0.9 - 0.01 * i, cluster=0) for i in range(5)]
    rows += [atom(f"S{i}", 0.8 - 0.01 * i, cluster=0, direction="short") for i in range(5)]
    rows += [atom(f"O{i}", 0.5 - 0.01 * i, cluster=1) for i in range(5)]
    result = run(rows, pol=policy(floor=1, top_n=3))
    assert set(winners(result)) == {
        "L0_trend_long", "L1_trend_long", "L2_trend_long",
        "S0_trend_short", "S1_trend_short", "S2_trend_short",
        "O0_trend_long", "O1_trend_long", "O2_trend_long",
    }


def test_identity_dedup_per_direction():
    rows = [
        atom("KO", 0.70, logic="trend"),
        atom("KO", 0.80, logic="rating_all"),  # same asset and direction: only the better logic wins
        atom("KO", 0.60, logic="trend", direction="short"),  # the other direction is a different atom
        atom("GOOG", 0.50, cluster=1, identity="ALPHABET"),
        atom("GOOGL", 0.55, cluster=1, identity="ALPHABET"),  # two listings, one identity
    ]
    result = run(rows, pol=policy(floor=1))
    assert set(winners(result)) == {"KO_rating_all_long", "KO_trend_short", "GOOGL_trend_long"}


def test_identity_dedup_holds_when_htr_relaxes():
    rows = [atom("KO", 0.70, logic="trend"), atom("KO", 0.80, logic="rating_all", **NOISE)]
    result = run(rows)  # floor 15: every stage runs
    assert result.final_stage == 4
    assert len(winners(result)) == 1


def test_cap_25():
    rows = grid(range(10), 3)  # 30 strict passers
    result = run(rows)
    assert len(winners(result)) == 25 == DEFAULT.cap
    expected = [r["atom_id"] for r in sorted(rows, key=lambda r: -r["score"])[:25]]
    assert winners(result) == expected
    assert result.winners["rank"].to_list() == list(range(1, 26))


def test_cap_holds_when_stage_3_overshoots():
    strict = grid(range(2), 2)  # 4 < floor 15
    reps = grid(range(2, 32), 1, prefix="N", score0=0.5, **NOISE)  # 30 clusters left empty → 30 representatives
    result = run(strict + reps)
    assert result.final_stage == 3
    assert result.stage_counts[3] == len(winners(result)) == 25
    assert set(winners(result)) >= {r["atom_id"] for r in strict}
    assert winners(result)[4:] == [r["atom_id"] for r in reps[:21]]  # the best representatives


def test_sector_cap_40_percent_null_exempt():
    rows = grid(range(10), 3)  # scores decrease with index
    for i, r in enumerate(rows):
        r["sector"] = "Tech" if i < 12 else None  # the 12 best are Tech
    result = run(rows)
    w = result.winners
    n = w.height
    assert n == 25
    counts = dict(w.group_by("sector").len().iter_rows())
    assert counts["Tech"] == math.floor(0.4 * n) == 10
    assert counts[None] == 15  # unclassified: exempt, reported as null
    tech_kept = w.filter(pl.col("sector") == "Tech")["atom_id"].to_list()
    assert tech_kept == [r["atom_id"] for r in rows[:10]]  # the best ten of the sector


def test_sector_cap_shrinks_to_a_feasible_size():
    """Only two classified sectors: a 40 % cap is unsatisfiable beyond tiny sizes, so the policy keeps few."""
    rows = grid(range(10), 3)
    for i, r in enumerate(rows):
        r["sector"] = "Tech" if i % 3 else "Energy"
    result = run(rows)
    n = result.winners.height
    assert n >= 1
    per_sector = result.winners.group_by("sector").len()["len"].max()
    assert per_sector <= max(1, math.floor(0.4 * n))
    assert result.shortfall is not None


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sector_cap_invariant_on_random_frames(seed):
    rng = random.Random(seed)
    sectors = ["Tech", "Energy", "Health", "Fin", None]
    rows = []
    for i in range(60):
        noisy = NOISE if rng.random() < 0.4 else {}
        r = atom(f"Z{i}", rng.random(), cluster=rng.randrange(8), direction=rng.choice(["long", "short"]), **noisy)
        r["sector"] = rng.choice(sectors)
        rows.append(r)
    result = run(rows)
    w = result.winners
    n = w.height
    assert 1 <= n <= DEFAULT.cap
    for sector, count in w.group_by("sector").len().iter_rows():
        if sector is not None:
            assert count <= max(1, math.floor(0.4 * n)), (sector, count, n)
    assert w.group_by("identity", "direction").len()["len"].max() == 1
    assert w.group_by("cluster", "direction").len()["len"].max() <= DEFAULT.top_n
    assert w["atom_id"].n_unique() == n


def test_shorts_excluded_when_not_allowed():
    rows = [atom("A", 0.5), atom("A", 0.9, direction="short"), atom("B", 0.8, cluster=1, direction="short", **NOISE)]
    result = run(rows, allow_short=False)  # floor 15: even stage 4 must not pull shorts in
    assert winners(result) == ["A_trend_long"]
    assert set(result.vetoes["atom_id"]) == {"A_trend_long"}
    allowed = run(rows, allow_short=True)
    assert set(winners(allowed)) == {"A_trend_short", "B_trend_short", "A_trend_long"}


def test_deterministic_and_independent_of_row_order():
    rows = grid(range(5), 4) + grid(range(5, 8), 3, prefix="N", score0=0.5, **NOISE)
    for r in rows[::3]:
        r["score"] = 0.42  # ties are broken by atom id
    first = run(rows)
    second = run(rows)
    assert first.winners.equals(second.winners)
    shuffled = rows[:]
    random.Random(3).shuffle(shuffled)
    third = run(shuffled)
    assert third.winners.equals(first.winners)
    assert third.stage_counts == first.stage_counts and third.final_stage == first.final_stage


# --- SHORT ranking through the real feature and scoring stages ---


@pytest.fixture(scope="module")
def falling_and_rising():
    rng = np.random.default_rng(7)
    t = 300
    values = np.column_stack([-0.002 + 0.01 * rng.standard_normal(t), 0.002 + 0.01 * rng.standard_normal(t)])
    dates = np.arange(np.datetime64("2023-01-02"), np.datetime64("2023-01-02") + t, dtype="datetime64[D]")
    panel = ReturnsPanel(values, dates, ("FALL", "RISE"))
    pool = pl.DataFrame(
        {
            "symbol": ["FALL", "FALL", "RISE", "RISE"],
            "logic": ["trend"] * 4,
            "direction": ["long", "short", "long", "short"],
            "identity": ["FALL", "FALL", "RISE", "RISE"],
            "sector": [None] * 4,
            "asset_class": ["equity"] * 4,
        },
        schema_overrides={"sector": pl.String},
    )
    execution = pl.DataFrame(
        {
            "symbol": ["FALL", "RISE"],
            "has_execution_metadata": [True, True],
            "adv": [1e9, 1e9],
            "adx": [25.0, 25.0],
            "recommend_all": [-0.5, 0.5],
            "recommend_ma": [-0.4, 0.4],
            "recommend_other": [-0.6, 0.6],
        }
    )
    ctx = SelectionContext(
        config=SelectionConfig(), annualisation=252, allow_short=True, benchmark=None,
        atoms=atoms_frame(pool), panel=panel, execution=execution,
    )
    return infer(engineer_features(ctx))


def test_short_atoms_carry_direction_adjusted_features(falling_and_rising):
    f = {r["atom_id"]: r for r in falling_and_rising.features.iter_rows(named=True)}
    for sym in ("FALL", "RISE"):
        long, short = f[f"{sym}_trend_long"], f[f"{sym}_trend_short"]
        assert short["momentum"] == pytest.approx(-long["momentum"])
        assert short["recommend_all"] == pytest.approx(-long["recommend_all"])
        assert short["recommend_other"] == pytest.approx(-long["recommend_other"])
        assert short["skew"] == pytest.approx(-long["skew"])
        assert short["volatility"] == pytest.approx(long["volatility"])
    assert f["FALL_trend_short"]["momentum"] > 0 > f["RISE_trend_short"]["momentum"]


def test_short_ranking_prefers_the_bearish_name(falling_and_rising):
    ctx = falling_and_rising
    for scorer in ctx.scores["scorer"].unique():
        s = dict(ctx.scores.filter(pl.col("scorer") == scorer).select("atom_id", "score").iter_rows())
        assert s["FALL_trend_short"] > s["RISE_trend_short"], scorer
        assert s["RISE_trend_long"] > s["FALL_trend_long"], scorer

    champion = ctx.scores.filter(pl.col("is_champion")).select("atom_id", "score")
    candidates = (
        ctx.atoms.select("atom_id", "symbol", "logic", "direction", "identity", "sector")
        .with_columns(pl.lit(0, pl.Int32).alias("cluster"))
        .join(ctx.features, on="atom_id")
        .join(champion, on="atom_id")
        .with_columns(pl.lit(False).alias("is_benchmark"))
    )
    result = run_policy(candidates, VETOES, policy(floor=4), allow_short=True)
    w = result.winners
    shorts = w.filter(pl.col("direction") == "short")["atom_id"].to_list()
    longs = w.filter(pl.col("direction") == "long")["atom_id"].to_list()
    assert shorts == ["FALL_trend_short", "RISE_trend_short"]
    assert longs == ["RISE_trend_long", "FALL_trend_long"]
    rank = dict(w.select("atom_id", "rank").iter_rows())
    assert rank["FALL_trend_short"] < rank["RISE_trend_short"]
    assert rank["RISE_trend_long"] < rank["FALL_trend_long"]
    # with one slot per cluster and direction, the bearish name is the short that wins
    top1 = run_policy(candidates, VETOES, policy(floor=1, top_n=1), allow_short=True)
    assert set(winners(top1)) == {"FALL_trend_short", "RISE_trend_long"}


# --- HTR accounting under the sector cap and identities (docs/selection.md: "Each winner records the minimal
# stage whose rule admits it"; stage 3 and 4 add to the winners, stage 4 "still one atom per identity") ---


@pytest.mark.parametrize("x2_cluster, entry_stage", [(1, 3), (0, 4)])
def test_strict_passer_deferred_by_sector_cap_records_stage_1(x2_cluster, entry_stage):
    """X2 passes every strict veto but the sector cap keeps it out while there is one winner (⌊0.4 × 2⌋ → 1 per
    sector). It enters once later stages grow the winner count. Its rule is stage 1, as for a strict passer that
    enters at stage 2 (see test_strict_passer_displaced_by_relaxed_atom_is_reported_at_stage_1_if_it_returns)."""
    rows = [
        atom("X1", 0.90, cluster=0, sector="Tech"),
        atom("X2", 0.80, cluster=x2_cluster, sector="Tech"),
        atom("R2", 0.70, cluster=2, **NOISE),
        atom("R3", 0.60, cluster=3, **NOISE),
        atom("R4", 0.50, cluster=4, **NOISE),
    ]
    result = run(rows, pol=policy(floor=5, cap=10))
    assert result.stage_counts[1] == 1 and result.final_stage == entry_stage
    assert not result.vetoes.filter(pl.col("atom_id") == "X2_trend_long")["vetoed"].any()
    assert "X2_trend_long" in winners(result)
    assert stages(result)["X2_trend_long"] == 1


def test_stage_3_does_not_evict_a_strict_winner():
    """Stage 3 gives clusters left empty a representative; it must not swap a strict winner for a
    predictability-vetoed representative of the same sector (W1's cluster would be left empty, count unchanged)."""
    rows = [
        atom("W1", 0.50, cluster=0, sector="Tech"),
        atom("W2", 0.40, cluster=1, sector="Energy"),
        atom("W3", 0.30, cluster=2, sector="Health"),
        atom("R", 0.90, cluster=3, sector="Tech", **NOISE),  # vetoed (H in band), best score, Tech
    ]
    result = run(rows, pol=policy(floor=5, cap=10))
    assert result.stage_counts[1] == 3
    assert {"W1_trend_long", "W2_trend_long", "W3_trend_long"} <= set(winners(result))


def test_relaxation_never_reduces_the_winner_count():
    """Loosening the predictability vetoes must not leave fewer winners than the stricter stage had."""
    rows = [
        atom("X", 0.50, cluster=0, sector="B"),
        atom("Y", 0.40, cluster=1, sector="A"),
        atom("Z", 0.30, cluster=2, sector="C"),
        atom("R", 0.90, cluster=0, sector="A", entropy=0.99),  # relaxed only; takes X's cluster slot
    ]
    result = run(rows, pol=policy(floor=5, cap=10, top_n=1))
    counts = [result.stage_counts[s] for s in sorted(result.stage_counts)]
    assert counts == sorted(counts), result.stage_counts
    assert len(winners(result)) >= result.stage_counts[1]


def test_stage_3_representatives_keep_one_atom_per_identity_and_direction():
    """Two listings of one asset (the pool keeps both when their logics differ, e.g. BTCUSDT trend and BTCUSD
    rating_all) in different clusters: stage 3 must not admit both in the same direction."""
    rows = [
        atom("BINANCE:BTCUSDT", 0.90, cluster=0, identity="BTC", **NOISE),
        atom("COINBASE:BTCUSD", 0.80, cluster=1, identity="BTC", logic="rating_all", **NOISE),
        atom("OTHER", 0.70, cluster=2, **NOISE),
    ]
    result = run(rows, pol=policy(floor=5))
    assert result.final_stage == 4
    assert result.winners.group_by("identity", "direction").len()["len"].max() == 1
    assert set(winners(result)) == {"BINANCE:BTCUSDT_trend_long", "OTHER_trend_long"}


def test_friction_veto_report_shows_the_compared_quantity():
    """Every other report row has vetoed ⇔ value beyond threshold; friction compares momentum − ECI with the
    hurdle, so that is its value (not the ECI alone)."""
    rows = [atom("POOR", 0.9, momentum=0.1, eci=1.2), atom("RICH", 0.8, cluster=1, momentum=2.0, eci=2.5)]
    report = run(rows, pol=policy(floor=1)).vetoes.filter(pl.col("veto") == "friction")
    got = {a: (v, t, x) for a, v, t, x in report.select("atom_id", "value", "threshold", "vetoed").iter_rows()}
    assert got["POOR_trend_long"][0] == pytest.approx(0.1 - 1.2)
    assert got["RICH_trend_long"][0] == pytest.approx(2.0 - 2.5)
    for value, threshold, flagged in got.values():
        assert flagged == (value < threshold)
