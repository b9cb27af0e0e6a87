"""Correlation clustering of the returns panel: Ward linkage on sqrt(0.5·(1−ρ)) averaged over lookbacks.

Fixes the original's verified defects (§4.3): a missing correlation is never filled with 0, and a lookback
shorter than the minimum overlap is never used.

Windows. Lookback L reads the last min(L, T) rows of the panel (a lookback longer than the panel reads the whole
panel; windows that coincide are counted once). A window is used only if it is at least `min_overlap` rows,
otherwise no pair in it could reach the overlap. Which windows were used, and why others were not, is recorded.

Correlation. Per window, pairwise on the sessions both symbols have (NaN = no session; a zero return is a real
return and stays), computed for all pairs at once from masked matrix products. A pair's correlation exists only
if it has ≥ `min_overlap` common sessions and both series vary on them. Distance per window
`d = sqrt(0.5·(1−ρ))` in [0, 1]; the pair's distance is the mean of d over the windows where its correlation
exists (not over all windows).

Missing correlations (no window gave the pair a correlation) are never read as ρ = 0:
- A symbol with no correlation to any other symbol is *isolated*: it gets its own cluster, stays out of the
  linkage, is listed in `ClusterResult.isolated`, and its row of `distance` is NaN. There is no evidence to
  merge it with anything (short window, too little history, or a constant series).
- A missing pair between symbols that are otherwise connected gets the largest distance the triangle
  inequality allows through observed pairs, `min(1, shortest path over observed distances)`; symbols in
  different connected components get 1.0 (the maximal distance, ρ = −1). This is the most conservative
  completion that keeps the input a metric. `n_imputed_pairs` counts these.

Ward. For series standardised over the same n sessions, ‖zᵢ − zⱼ‖² = 2n(1 − ρᵢⱼ), so sqrt(0.5·(1−ρ)) is the
Euclidean distance between standardised series scaled by 1/(2√n). Ward's Euclidean assumption therefore holds
exactly for a single full-overlap window and approximately under pairwise overlaps, lookback averaging and the
imputed pairs. Identical series have distance 0, which Ward handles.

Cut. `fcluster(criterion="distance", t=distance_threshold)`; if the linked clusters plus the isolated
singletons exceed `max_clusters`, the linkage is re-cut with `maxclust = max(1, max_clusters − n_isolated)`.
Isolated symbols are never merged, so if they alone exceed `max_clusters` the cap cannot hold; a note says so.
Labels are 1..k, numbered in order of first appearance in panel symbol order (deterministic).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.sparse.csgraph import shortest_path
from scipy.spatial.distance import squareform

from tsp_platform.config.selection import ClusterConfig
from tsp_platform.core.panel import ReturnsPanel

_DEGENERATE_VARIANCE = 1e-10  # variance below this share of the raw second moment = constant on the overlap


@dataclass(frozen=True, eq=False)
class LookbackDistances:
    """Per-pair distance averaged over the windows where the pair's correlation exists."""

    distance: np.ndarray  # (N, N) mean distance over valid windows; NaN where no window was valid
    counts: np.ndarray  # (N, N) int: windows in which the pair had a correlation
    lookbacks_used: tuple[int, ...]  # effective window lengths (rows), ascending
    notes: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class ClusterResult:
    symbols: tuple[str, ...]
    labels: np.ndarray  # (N,) int 1..k in panel symbol order
    distance: np.ndarray  # (N, N) square distance fed to the linkage (NaN rows/cols for isolated symbols)
    linkage: np.ndarray  # (m−1, 4) Ward linkage over `linked` (empty when m < 2)
    linked: tuple[str, ...]  # symbols in the linkage, in linkage leaf-index order
    lookbacks_used: tuple[int, ...]
    n_clusters: int
    method: str  # "distance", "maxclust", or "none" (fewer than two linked symbols: no linkage to cut)
    isolated: tuple[str, ...]  # symbols with no valid correlation to anyone: each its own cluster
    pair_lookbacks: np.ndarray  # (N, N) int: windows in which each pair's correlation existed
    n_imputed_pairs: int = 0  # linked pairs without a correlation, given their metric upper bound
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_frame(self) -> pl.DataFrame:
        iso = set(self.isolated)
        return pl.DataFrame(
            {
                "symbol": list(self.symbols),
                "cluster": self.labels.astype(np.int64),
                "isolated": [s in iso for s in self.symbols],
            },
            schema={"symbol": pl.String, "cluster": pl.Int64, "isolated": pl.Boolean},
        )

    def members(self) -> dict[int, tuple[str, ...]]:
        out: dict[int, list[str]] = {}
        for s, k in zip(self.symbols, self.labels.tolist()):
            out.setdefault(int(k), []).append(s)
        return {k: tuple(v) for k, v in sorted(out.items())}


def pairwise_correlation(values: np.ndarray, min_overlap: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairwise-complete correlation of the columns of `values` (T, N), NaN = missing.

    Returns (rho, common): rho is NaN where the pair has < min_overlap common sessions or either series is
    constant on them; common is the (N, N) count of common sessions. Vectorised via masked matrix products.
    """
    x = np.asarray(values, dtype=np.float64)
    present = np.isfinite(x)
    m = present.astype(np.float64)
    # centre each column on its own mean first: removes most of the one-pass cancellation error
    count = m.sum(axis=0)
    col_mean = np.where(present, x, 0.0).sum(axis=0) / np.maximum(count, 1.0)
    x0 = np.where(present, x - col_mean, 0.0)

    n = m.T @ m  # common sessions
    s = x0.T @ m  # s[i, j] = Σ x_i over sessions common to i and j
    ss = (x0 * x0).T @ m  # Σ x_i² over common sessions
    sxy = x0.T @ x0  # Σ x_i x_j over common sessions (zeros elsewhere)
    with np.errstate(divide="ignore", invalid="ignore"):
        cov = sxy - s * s.T / n
        var_i = ss - s * s / n  # variance of i on the overlap with j (× n)
        var_j = var_i.T
        ok = (
            (n >= min_overlap)
            & (var_i > _DEGENERATE_VARIANCE * ss)
            & (var_j > _DEGENERATE_VARIANCE * ss.T)
        )
        rho = np.where(ok, cov / np.sqrt(np.where(ok, var_i * var_j, 1.0)), np.nan)
    rho = np.clip(0.5 * (rho + rho.T), -1.0, 1.0)  # exact symmetry (BLAS rounding), |ρ| ≤ 1
    return rho, n.astype(np.int64)


def correlation_distance(rho: np.ndarray) -> np.ndarray:
    """sqrt(0.5·(1−ρ)) in [0, 1]; NaN stays NaN."""
    return np.sqrt(np.clip(0.5 * (1.0 - rho), 0.0, 1.0))


def lookback_distances(panel: ReturnsPanel, config: ClusterConfig) -> LookbackDistances:
    t, n = panel.values.shape
    notes: list[str] = []
    windows: list[int] = []
    for lb in sorted(set(config.lookbacks)):
        w = min(lb, t)
        if w < config.min_overlap:
            why = f"the panel has only {t} rows" if lb > t else "it is shorter than min_overlap"
            notes.append(f"lookback {lb} unused: window of {w} rows < min_overlap {config.min_overlap} ({why})")
            continue
        if lb > t:
            notes.append(f"lookback {lb} exceeds the {t}-row panel: reads the whole panel")
        if w not in windows:
            windows.append(w)
    total = np.zeros((n, n))
    counts = np.zeros((n, n), dtype=np.int64)
    for w in windows:
        rho, _ = pairwise_correlation(panel.values[-w:], config.min_overlap)
        valid = np.isfinite(rho)
        total += np.where(valid, correlation_distance(rho), 0.0)
        counts += valid
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(counts > 0, total / np.maximum(counts, 1), np.nan)
    np.fill_diagonal(mean, 0.0)
    if not windows and n:
        notes.append("no usable lookback: no correlation can be estimated, every symbol is isolated")
    return LookbackDistances(mean, counts, tuple(windows), tuple(notes))


def _relabel(raw: np.ndarray) -> np.ndarray:
    """Number clusters 1..k in order of first appearance."""
    mapping: dict[int, int] = {}
    return np.array([mapping.setdefault(int(k), len(mapping) + 1) for k in raw], dtype=np.int64)


def cluster_assets(panel: ReturnsPanel, config: ClusterConfig) -> ClusterResult:
    symbols = tuple(panel.symbols)
    n = len(symbols)
    if n == 0:
        return ClusterResult(
            symbols, np.empty(0, np.int64), np.empty((0, 0)), np.empty((0, 4)), (), (), 0, "none", (),
            np.empty((0, 0), np.int64), 0, ("no symbols",),
        )

    ld = lookback_distances(panel, config)
    notes = list(ld.notes)
    observed = ld.counts > 0
    np.fill_diagonal(observed, False)
    if n == 1:
        return ClusterResult(
            symbols, np.ones(1, np.int64), np.zeros((1, 1)), np.empty((0, 4)), symbols, ld.lookbacks_used, 1,
            "none", (), ld.counts, 0, (*notes, "single symbol: one cluster"),
        )

    linked_mask = observed.any(axis=1)
    linked_idx = np.flatnonzero(linked_mask)
    isolated = tuple(symbols[i] for i in np.flatnonzero(~linked_mask))
    if isolated and ld.lookbacks_used:
        notes.append(
            f"{len(isolated)} isolated (no pair reached {config.min_overlap} common sessions with varying "
            "returns in any window): each is its own cluster"
        )

    distance = np.full((n, n), np.nan)
    np.fill_diagonal(distance, 0.0)
    sub = ld.distance[np.ix_(linked_idx, linked_idx)].copy()
    sub_obs = observed[np.ix_(linked_idx, linked_idx)]
    missing = ~sub_obs
    np.fill_diagonal(missing, False)
    n_imputed = int(missing.sum() // 2)
    if n_imputed:
        # largest metric-consistent value: shortest path through observed pairs, capped at the maximal 1.0
        graph = np.where(sub_obs, np.maximum(sub, 1e-12), 0.0)  # csgraph reads 0 as "no edge"
        rows = np.flatnonzero(missing.any(axis=1))
        paths = shortest_path(graph, method="D", directed=False, indices=rows)
        bound = np.minimum(paths, 1.0)
        fill = sub[rows]
        fill[missing[rows]] = bound[missing[rows]]
        sub[rows] = fill
        sub = np.minimum(sub, sub.T)  # both triangles were filled from the same symmetric paths
        notes.append(f"{n_imputed} linked pairs without a correlation: metric upper bound (≤ 1.0), not ρ = 0")
    distance[np.ix_(linked_idx, linked_idx)] = sub

    labels = np.zeros(n, dtype=np.int64)
    m = linked_idx.size
    n_iso = len(isolated)
    method = "none"
    z = np.empty((0, 4))
    if m >= 2:
        condensed = squareform(sub, checks=False)
        z = linkage(condensed, method="ward")
        raw = fcluster(z, t=config.distance_threshold, criterion="distance")
        method = "distance"
        if len(np.unique(raw)) + n_iso > config.max_clusters:
            target = max(1, config.max_clusters - n_iso)
            raw = fcluster(z, t=target, criterion="maxclust")
            method = "maxclust"
        labels[linked_idx] = raw
    elif m == 1:
        labels[linked_idx] = 1
    offset = int(labels.max())
    for k, i in enumerate(np.flatnonzero(~linked_mask), start=1):
        labels[i] = offset + k
    labels = _relabel(labels)
    k = int(labels.max())
    if n_iso >= config.max_clusters and n_iso:
        notes.append(
            f"{n_iso} isolated symbols ≥ max_clusters {config.max_clusters}: the cap cannot hold without "
            "merging symbols on no evidence"
        )
    return ClusterResult(
        symbols=symbols,
        labels=labels,
        distance=distance,
        linkage=z,
        linked=tuple(symbols[i] for i in linked_idx),
        lookbacks_used=ld.lookbacks_used,
        n_clusters=k,
        method=method,
        isolated=isolated,
        pair_lookbacks=ld.counts,
        n_imputed_pairs=n_imputed,
        notes=tuple(notes),
    )
