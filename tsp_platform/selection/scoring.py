"""Probability maps and scorers: raw features → probabilities in (0, 1] → one score per symbol and scorer.

Raw features and their probability transforms are separate tables: `probabilities()` reads the raw feature
frame (symbol + one column per feature) and returns a `ProbabilityTable` whose frame holds only the mapped
values, one column per weighted feature. Scorers read that table; they never see raw features.

Probability maps (cross-sectional, over the symbols present in the frame; original §4.2):

- RANK: `0.01 + 0.99·(rank−1)/(n−1)`, average ranks for ties, n = number of non-null values. When every
  non-null value is tied (a constant column, or a single value, n = 1) the feature cannot discriminate and
  every valued symbol gets the midpoint 0.505, which is what the average-rank formula gives for ties at any
  n ≥ 2; giving a lone value 1.0 (or 0.01) would reward (or punish) it only because the others are missing.
- RANK_DESC: the reverse, `1.01 − RANK` (lower is better).
- CDF: `Φ((x−μ)/σ)` clipped to [0.001, 1], μ and σ (ddof = 1) over the non-null values. σ = 0 (constant
  column) or n < 2 → 0.5. The original's "values already in [0, 1] are used raw" shortcut is dropped: the
  map depends on the method only, never on the range the data happens to have.
- CDF_DESC: `Φ(−(x−μ)/σ) = 1 − Φ(z)`, clipped to [0.001, 1].

Missing values are explicit: a null or non-finite raw value maps to `config.missing_probability` (never
silently the column's min or max, unlike the original), and a weighted feature absent from the frame (ADX for
close-only data) maps to `missing_probability` for every symbol and is listed in
`ProbabilityTable.missing_features`. `null_counts` records how many symbols were filled per feature.

Scorers share one lifecycle (skfolio/cvxportfolio style): the constructor stores parameters, `score()` maps a
probability table to a (symbol, score) frame. Higher is better for every scorer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import polars as pl
from scipy.special import ndtr
from scipy.stats import rankdata

from tsp_platform.config.selection import ProbabilityMethod, ScorerName, ScoringConfig

SYMBOL = "symbol"
RANK_FLOOR = 0.01
CDF_FLOOR = 0.001
LOG_FLOOR = 1e-9
TIED_RANK_PROBABILITY = RANK_FLOOR + (1.0 - RANK_FLOOR) * 0.5  # 0.505


@dataclass(frozen=True, eq=False)
class ProbabilityTable:
    """Probabilities per symbol and weighted feature, plus what was filled with `missing_probability`."""

    frame: pl.DataFrame  # symbol + one Float64 column per weighted feature, every value in (0, 1]
    missing_features: tuple[str, ...] = ()  # weighted features absent from the raw frame (all filled)
    null_counts: Mapping[str, int] = field(default_factory=dict)  # feature → symbols filled (absent: all)
    missing_probability: float = 0.5

    @property
    def symbols(self) -> list[str]:
        return self.frame[SYMBOL].to_list()

    @property
    def features(self) -> list[str]:
        return [c for c in self.frame.columns if c != SYMBOL]


# --- probability maps (numpy, one vectorised call per feature column) ---


def _rank_probability(x: np.ndarray, descending: bool) -> np.ndarray:
    """x holds only finite values."""
    n = x.size
    if n == 0:
        return x.astype(np.float64)
    if n == 1 or x.min() == x.max():
        return np.full(n, TIED_RANK_PROBABILITY)
    ranks = rankdata(x, method="average")
    p = RANK_FLOOR + (1.0 - RANK_FLOOR) * (ranks - 1.0) / (n - 1.0)
    return (1.0 + RANK_FLOOR) - p if descending else p


def _cdf_probability(x: np.ndarray, descending: bool) -> np.ndarray:
    """x holds only finite values."""
    n = x.size
    if n < 2 or x.min() == x.max():
        return np.full(n, 0.5)
    sigma = float(np.std(x, ddof=1))
    if not sigma > 0:
        return np.full(n, 0.5)
    z = (x - float(np.mean(x))) / sigma
    return np.clip(ndtr(-z if descending else z), CDF_FLOOR, 1.0)


def map_probability(values: np.ndarray, method: ProbabilityMethod, missing_probability: float) -> np.ndarray:
    """One raw feature column → probabilities; NaN/±inf (and nulls, passed as NaN) → `missing_probability`."""
    values = np.asarray(values, dtype=np.float64)
    valid = np.isfinite(values)
    out = np.full(values.shape, float(missing_probability))
    method = ProbabilityMethod(method)
    descending = method in (ProbabilityMethod.RANK_DESC, ProbabilityMethod.CDF_DESC)
    if method in (ProbabilityMethod.RANK, ProbabilityMethod.RANK_DESC):
        out[valid] = _rank_probability(values[valid], descending)
    else:
        out[valid] = _cdf_probability(values[valid], descending)
    return out


def probabilities(features: pl.DataFrame, config: ScoringConfig) -> ProbabilityTable:
    """Map every weighted feature of `features` (symbol + raw feature columns) to a probability in (0, 1]."""
    if SYMBOL not in features.columns:
        raise ValueError(f"features frame needs a '{SYMBOL}' column")
    symbols = features[SYMBOL].cast(pl.String)
    if symbols.null_count():
        raise ValueError("features frame has null symbols")
    if symbols.n_unique() != features.height:
        dupes = symbols.filter(symbols.is_duplicated()).unique().sort().to_list()
        raise ValueError(f"duplicate symbols in features frame: {dupes}")

    mp = float(config.missing_probability)
    columns: dict[str, np.ndarray] = {}
    missing: list[str] = []
    null_counts: dict[str, int] = {}
    for name in config.weights:  # config order: stable column order
        if name not in features.columns:
            missing.append(name)
            columns[name] = np.full(features.height, mp)
            null_counts[name] = features.height
            continue
        raw = features[name].cast(pl.Float64, strict=True).to_numpy().astype(np.float64)  # null → NaN
        null_counts[name] = int((~np.isfinite(raw)).sum())
        columns[name] = map_probability(raw, config.methods[name], mp)

    frame = pl.DataFrame(
        {SYMBOL: symbols, **{k: pl.Series(k, v, dtype=pl.Float64) for k, v in columns.items()}},
        schema={SYMBOL: pl.String, **{k: pl.Float64 for k in columns}},
    )
    return ProbabilityTable(frame, tuple(missing), null_counts, mp)


# --- scorers ---


def _as_frame(probs: ProbabilityTable | pl.DataFrame) -> pl.DataFrame:
    return probs.frame if isinstance(probs, ProbabilityTable) else probs


class Scorer:
    """Constructor stores the weights; `score()` maps probabilities to (symbol, score), higher is better."""

    name: ClassVar[ScorerName]

    def __init__(self, weights: Mapping[str, float]):
        active = {str(k): float(v) for k, v in weights.items() if float(v) != 0.0}
        if any(not np.isfinite(v) or v < 0 for v in active.values()):
            raise ValueError(f"{type(self).__name__}: weights must be finite and non-negative: {dict(weights)}")
        if not active:
            raise ValueError(f"{type(self).__name__}: total weight is zero")
        self.weights: dict[str, float] = active

    def _matrix(self, probs: ProbabilityTable | pl.DataFrame) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
        frame = _as_frame(probs)
        names = list(self.weights)
        absent = [n for n in names if n not in frame.columns]
        if absent:
            raise KeyError(
                f"{type(self).__name__}: probability columns missing {absent}; map raw features with "
                "probabilities(), which fills absent features with missing_probability"
            )
        p = frame.select(names).cast(pl.Float64).to_numpy().reshape(frame.height, len(names))
        if not np.all(np.isfinite(p)) or np.any(p < 0) or np.any(p > 1):
            raise ValueError(f"{type(self).__name__}: probabilities must be finite values in [0, 1] (no nulls)")
        w = np.array([self.weights[n] for n in names])
        return frame, p, w

    def _values(self, p: np.ndarray, w: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def score(self, probs: ProbabilityTable | pl.DataFrame) -> pl.DataFrame:
        frame, p, w = self._matrix(probs)
        return pl.DataFrame(
            {SYMBOL: frame[SYMBOL].cast(pl.String), "score": pl.Series("score", self._values(p, w), pl.Float64)}
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(weights={self.weights!r})"


class LogMPSScorer(Scorer):
    """Champion. `exp(Σ wᵢ·ln max(pᵢ, 1e-9) / Σ wᵢ)`: the weighted geometric mean of the probabilities.

    Dividing by the total weight keeps the score in (0, 1] and comparable across weight sets; within one weight
    set it is a monotone transform of the original MPS `Π pᵢ^wᵢ`, so the ranking is the same. The original
    v3.2 fragility penalty is not applied (no fragility feature exists here).
    """

    name = ScorerName.LOG_MPS

    def _values(self, p: np.ndarray, w: np.ndarray) -> np.ndarray:
        return np.exp(np.log(np.maximum(p, LOG_FLOOR)) @ w / w.sum())


class RankSumScorer(Scorer):
    """Challenger (additive, CARS-like). `Σ wᵢ·pᵢ / Σ wᵢ`: the weighted arithmetic mean of the probabilities.

    Unlike Log-MPS, one very weak feature cannot veto an otherwise strong name.
    """

    name = ScorerName.RANK_SUM

    def _values(self, p: np.ndarray, w: np.ndarray) -> np.ndarray:
        return p @ w / w.sum()


SCORERS: dict[ScorerName, type[Scorer]] = {
    ScorerName.LOG_MPS: LogMPSScorer,
    ScorerName.RANK_SUM: RankSumScorer,
}

SCORE_SCHEMA = {
    "scorer": pl.String,
    SYMBOL: pl.String,
    "score": pl.Float64,
    "rank": pl.Int64,
    "is_champion": pl.Boolean,
}


def rank_scores(scores: pl.DataFrame) -> pl.DataFrame:
    """Add `rank` (1 = best): descending score, ties broken by symbol so the order is deterministic."""
    ordered = scores.sort(["score", SYMBOL], descending=[True, False])
    return ordered.with_columns(pl.int_range(1, ordered.height + 1, dtype=pl.Int64).alias("rank"))


def run_scorers(probs: ProbabilityTable | pl.DataFrame, config: ScoringConfig) -> pl.DataFrame:
    """Champion then each challenger (a challenger equal to the champion is run once), as long rows
    (scorer, symbol, score, rank, is_champion), each block ordered by rank."""
    names = [config.champion, *[c for c in config.challengers if c != config.champion]]
    names = list(dict.fromkeys(ScorerName(n) for n in names))
    blocks = []
    for name in names:
        scored = rank_scores(SCORERS[name](config.weights).score(probs))
        blocks.append(
            scored.select(
                pl.lit(name.value, pl.String).alias("scorer"),
                pl.col(SYMBOL),
                pl.col("score"),
                pl.col("rank"),
                pl.lit(name == config.champion, pl.Boolean).alias("is_champion"),
            )
        )
    if not blocks:
        return pl.DataFrame(schema=SCORE_SCHEMA)
    return pl.concat(blocks).cast(SCORE_SCHEMA)
