"""Pairwise-complete correlations of a returns panel with gaps, and their average-linkage clustering.

A missing return is never filled with 0: a zero is a real (flat) day, and filling would pull every correlation
toward 0. Each pair uses only the days both assets have; a pair with too few shared days has no correlation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.cluster.hierarchy import linkage
from scipy.spatial.distance import squareform

MIN_OVERLAP = 20  # shared days below which a pair's correlation is reported as missing


def _panel(returns_panel: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    x = np.asarray(returns_panel, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"returns panel must be T×N, got shape {x.shape}")
    if len(labels) != x.shape[1]:
        raise ValueError(f"{len(labels)} labels for {x.shape[1]} columns")
    if len(set(labels)) != len(labels):
        raise ValueError("labels must be unique")
    if np.isinf(x).any():
        raise ValueError("returns panel holds ±inf (mark a missing day as NaN)")
    return x


def pairwise_correlation(returns_panel: np.ndarray, labels: Sequence[str], min_overlap: int = MIN_OVERLAP
                         ) -> np.ndarray:
    """N×N Pearson correlations, each pair over the days both are present (NaN below `min_overlap` shared days
    or for a column flat over the overlap)."""
    x = _panel(returns_panel, labels)
    return pd.DataFrame(x).corr(method="pearson", min_periods=max(2, min_overlap)).to_numpy()


def correlation_distance(corr: np.ndarray) -> np.ndarray:
    """sqrt(0.5·(1 − ρ)): 0 for identical, 1 for opposite streams; exactly 0 on the diagonal."""
    d = np.sqrt(0.5 * (1.0 - np.clip(corr, -1.0, 1.0)))
    np.fill_diagonal(d, 0.0)
    return d


def average_linkage(corr: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """scipy average-linkage matrix on correlation distances; ValueError naming pairs without a correlation."""
    n = corr.shape[0]
    if n < 2:
        raise ValueError("clustering needs at least two columns")
    off = ~np.eye(n, dtype=bool)
    bad = np.argwhere(np.isnan(corr) & off & np.triu(off))
    if bad.size:
        pairs = ", ".join(f"{labels[i]}~{labels[j]}" for i, j in bad[:10])
        more = f" and {len(bad) - 10} more" if len(bad) > 10 else ""
        raise ValueError(f"no correlation (too few shared days, or flat) for {pairs}{more}; not clustering")
    return linkage(squareform(correlation_distance(corr), checks=False), method="average")
