"""Probability maps and scorers (Log-MPS champion, rank-sum challenger) on hand-checkable inputs."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from tsp_platform.config.selection import ProbabilityMethod as PM
from tsp_platform.config.selection import ScorerName, ScoringConfig
from tsp_platform.selection.scoring import (
    SCORERS,
    LogMPSScorer,
    ProbabilityTable,
    RankSumScorer,
    map_probability,
    probabilities,
    run_scorers,
)


def cfg(methods: dict[str, PM], weights: dict[str, float] | None = None, **kw) -> ScoringConfig:
    return ScoringConfig(weights=weights or {k: 1.0 for k in methods}, methods=methods, **kw)


def probs_of(values, method: PM, missing_probability: float = 0.5) -> list[float]:
    frame = pl.DataFrame({"symbol": [f"S{i}" for i in range(len(values))], "f": values}, strict=False)
    table = probabilities(frame, cfg({"f": method}, missing_probability=missing_probability))
    return table.frame["f"].to_list()


# --- probability maps ---


def test_rank_average_ties():
    assert probs_of([1.0, 2.0, 2.0, 3.0], PM.RANK) == pytest.approx([0.01, 0.505, 0.505, 1.0])
    assert probs_of([1.0, 2.0, 2.0, 3.0], PM.RANK_DESC) == pytest.approx([1.0, 0.505, 0.505, 0.01])


def test_rank_nulls_get_missing_probability_not_min_or_max():
    got = probs_of([1.0, None, 3.0, float("nan"), float("inf")], PM.RANK, missing_probability=0.3)
    # n counts only the two finite values; null, NaN and inf are all "missing"
    assert got == pytest.approx([0.01, 0.3, 1.0, 0.3, 0.3])
    got = probs_of([1.0, None, 3.0], PM.RANK_DESC, missing_probability=0.3)
    assert got == pytest.approx([1.0, 0.3, 0.01])


def test_single_value_and_constant_column_are_neutral():
    assert probs_of([5.0, None, None], PM.RANK, missing_probability=0.2) == pytest.approx([0.505, 0.2, 0.2])
    assert probs_of([5.0, None, None], PM.RANK_DESC) == pytest.approx([0.505, 0.5, 0.5])
    assert probs_of([2.0, 2.0, 2.0], PM.RANK) == pytest.approx([0.505] * 3)
    assert probs_of([2.0, 2.0, 2.0], PM.CDF) == pytest.approx([0.5] * 3)
    assert probs_of([0.1, 0.1, 0.1, 0.1], PM.CDF_DESC) == pytest.approx([0.5] * 4)  # no float-noise z-scores
    assert probs_of([7.0], PM.CDF) == pytest.approx([0.5])


def test_cdf_known_values_and_clip():
    phi = lambda z: 0.5 * (1 + math.erf(z / math.sqrt(2)))  # noqa: E731
    # mean 0, sample std (ddof = 1) 1
    assert probs_of([-1.0, 0.0, 1.0], PM.CDF) == pytest.approx([phi(-1), 0.5, phi(1)])
    assert probs_of([-1.0, 0.0, 1.0], PM.CDF_DESC) == pytest.approx([phi(1), 0.5, phi(-1)])
    outlier = [0.0] * 19 + [-1.0]  # z = −19/√20 ≈ −4.25 → Φ ≈ 1e-5 → clipped
    assert probs_of(outlier, PM.CDF)[-1] == pytest.approx(0.001)
    assert probs_of([0.0] * 19 + [1.0], PM.CDF_DESC)[-1] == pytest.approx(0.001)
    # the original's "already in [0, 1] → use raw" shortcut is gone: the map depends on the method only
    assert probs_of([0.2, 0.4, 0.6], PM.CDF) == pytest.approx([phi(-1), 0.5, phi(1)])


def test_absent_feature_is_reported_and_filled():
    frame = pl.DataFrame({"symbol": ["A", "B"], "momentum": [0.1, 0.2]})
    table = probabilities(frame, cfg({"momentum": PM.RANK, "adx": PM.CDF}, missing_probability=0.4))
    assert isinstance(table, ProbabilityTable)
    assert table.missing_features == ("adx",)
    assert table.frame["adx"].to_list() == [0.4, 0.4]
    assert table.null_counts == {"momentum": 0, "adx": 2}
    assert table.frame.columns == ["symbol", "momentum", "adx"]


def test_probabilities_default_config_all_in_unit_interval():
    rng = np.random.default_rng(1)
    n = 40
    raw = {k: rng.normal(size=n) for k in ScoringConfig().weights if k not in ("adx", "liquidity")}
    raw["momentum"][3] = np.nan
    frame = pl.DataFrame({"symbol": [f"S{i}" for i in range(n)], **raw, "unweighted_extra": np.ones(n)})
    table = probabilities(frame, ScoringConfig())
    assert set(table.missing_features) == {"adx", "liquidity"}
    assert table.features == list(ScoringConfig().weights)  # raw-only columns are not carried over
    values = table.frame.drop("symbol").to_numpy()
    assert np.all((values > 0) & (values <= 1))
    assert table.null_counts["momentum"] == 1


def test_probabilities_rejects_bad_frames():
    with pytest.raises(ValueError, match="duplicate"):
        probabilities(pl.DataFrame({"symbol": ["A", "A"], "f": [1.0, 2.0]}), cfg({"f": PM.RANK}))
    with pytest.raises(ValueError, match="symbol"):
        probabilities(pl.DataFrame({"f": [1.0]}), cfg({"f": PM.RANK}))


def test_map_probability_empty():
    assert map_probability(np.array([]), PM.RANK, 0.5).size == 0
    assert map_probability(np.array([np.nan, np.nan]), PM.CDF, 0.25).tolist() == [0.25, 0.25]


# --- scorers ---


def table(rows: dict[str, tuple[float, ...]], features=("a", "b")) -> pl.DataFrame:
    return pl.DataFrame(
        {"symbol": list(rows), **{f: [v[i] for v in rows.values()] for i, f in enumerate(features)}}
    )


def test_log_mps_hand_computed():
    probs = table({"X": (0.5, 0.8), "Y": (1.0, 1.0)})
    scores = LogMPSScorer({"a": 2.0, "b": 1.0}).score(probs)
    assert scores.columns == ["symbol", "score"]
    # exp((2·ln 0.5 + ln 0.8) / 3) = (0.25 · 0.8)^(1/3)
    assert scores["score"].to_list() == pytest.approx([0.2 ** (1 / 3), 1.0])
    assert RankSumScorer({"a": 2.0, "b": 1.0}).score(probs)["score"].to_list() == pytest.approx([0.6, 1.0])


def test_log_mps_normalised_by_total_weight_and_floored():
    probs = table({"X": (0.5, 0.8), "Z": (0.0, 1.0)})
    small = LogMPSScorer({"a": 2.0, "b": 1.0}).score(probs)["score"].to_numpy()
    big = LogMPSScorer({"a": 20.0, "b": 10.0}).score(probs)["score"].to_numpy()
    assert small == pytest.approx(big)  # comparable across weight scales
    assert small[1] == pytest.approx(math.exp((2 * math.log(1e-9)) / 3))  # p = 0 floored at 1e-9, finite
    assert np.all(np.isfinite(small))


def test_weight_change_flips_order_under_both_scorers():
    probs = table({"X": (0.9, 0.2), "Y": (0.2, 0.9)})
    for scorer in (LogMPSScorer, RankSumScorer):
        favour_a = scorer({"a": 3.0, "b": 1.0}).score(probs).sort("score", descending=True)["symbol"][0]
        favour_b = scorer({"a": 1.0, "b": 3.0}).score(probs).sort("score", descending=True)["symbol"][0]
        assert (favour_a, favour_b) == ("X", "Y"), scorer.__name__


def test_zero_weight_features_are_ignored_and_zero_total_rejected():
    probs = table({"X": (0.5, 0.8)})
    assert LogMPSScorer({"a": 1.0, "b": 0.0}).score(probs)["score"][0] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="total weight"):
        LogMPSScorer({"a": 0.0})
    with pytest.raises(ValueError):
        RankSumScorer({"a": -1.0, "b": 2.0})


def test_scorer_rejects_nulls_and_missing_columns():
    with pytest.raises(ValueError, match="no nulls"):
        LogMPSScorer({"a": 1.0}).score(pl.DataFrame({"symbol": ["X"], "a": [None]}, schema_overrides={"a": pl.Float64}))
    with pytest.raises(KeyError, match="missing"):
        RankSumScorer({"c": 1.0}).score(table({"X": (0.5, 0.8)}))


def test_all_better_asset_ranks_first_under_both_scorers():
    rng = np.random.default_rng(7)
    n = 30
    config = ScoringConfig()
    raw = {}
    for name, method in config.methods.items():
        x = rng.normal(size=n)
        # symbol 0 is best on every feature: highest where higher is better, lowest otherwise
        x[0] = x.max() + 1 if method in (PM.RANK, PM.CDF) else x.min() - 1
        raw[name] = x
    frame = pl.DataFrame({"symbol": [f"S{i:02d}" for i in range(n)], **raw})
    out = run_scorers(probabilities(frame, config), config)
    firsts = out.filter(pl.col("rank") == 1)
    assert firsts["symbol"].to_list() == ["S00", "S00"]
    assert set(firsts["scorer"]) == {"log_mps", "rank_sum"}


def test_run_scorers_tags_champion_and_challengers():
    frame = pl.DataFrame({"symbol": ["A", "B", "C"], "a": [1.0, 2.0, 3.0], "b": [3.0, 1.0, 2.0]})
    config = cfg({"a": PM.RANK, "b": PM.CDF}, weights={"a": 2.0, "b": 1.0})
    out = run_scorers(probabilities(frame, config), config)
    assert out.columns == ["scorer", "symbol", "score", "rank", "is_champion"]
    assert out.schema["rank"] == pl.Int64 and out.schema["is_champion"] == pl.Boolean
    assert out.height == 6
    for scorer, champion in (("log_mps", True), ("rank_sum", False)):
        block = out.filter(pl.col("scorer") == scorer)
        assert sorted(block["symbol"]) == ["A", "B", "C"]
        assert block["rank"].to_list() == [1, 2, 3]
        assert block["is_champion"].to_list() == [champion] * 3
        assert block["score"].is_sorted(descending=True)
    assert out["scorer"][0] == "log_mps"  # champion block first

    swapped = config.model_copy(update={"champion": ScorerName.RANK_SUM, "challengers": (ScorerName.LOG_MPS,)})
    out2 = run_scorers(probabilities(frame, swapped), swapped)
    assert out2.filter(pl.col("is_champion"))["scorer"].unique().to_list() == ["rank_sum"]
    assert out2["scorer"][0] == "rank_sum"

    solo = config.model_copy(update={"challengers": (ScorerName.LOG_MPS,)})  # challenger == champion: run once
    assert run_scorers(probabilities(frame, solo), solo)["scorer"].unique().to_list() == ["log_mps"]


def test_ranks_deterministic_on_ties():
    frame = pl.DataFrame({"symbol": ["B", "A", "C"], "a": [1.0, 1.0, 0.0]})
    config = cfg({"a": PM.RANK})
    out = run_scorers(probabilities(frame, config), config).filter(pl.col("scorer") == "log_mps")
    assert out["symbol"].to_list() == ["A", "B", "C"]  # tie broken by symbol


def test_registry_covers_every_scorer_name():
    assert set(SCORERS) == set(ScorerName)
    for name, cls in SCORERS.items():
        assert cls.name == name
