"""Hierarchical Risk Parity (López de Prado 2016) with O(1) cluster variances from 2-D prefix sums.

Steps, matching Riskfolio-Lib `HCPortfolio(model='HRP', rm='MV', leaf_order=False)` and skfolio
`HierarchicalRiskParity(risk_measure=VARIANCE)` with `HierarchicalSeriation(optimal_ordering=False)`:

1. correlation ρ from the covariance, distance d_ij = sqrt(clip(½(1 − ρ_ij), 0, 1));
2. scipy `linkage(squareform(d), method)` (single by default), leaves in plain `leaves_list` order
   (no optimal leaf ordering);
3. recursive bisection of the ordered list into halves [a, a + ⌊n/2⌋), [a + ⌊n/2⌋, b); each half's risk is
   the variance of its inverse-variance portfolio, and the left half receives α = 1 − v_L/(v_L + v_R).

Because every half is a contiguous block [a, b) of the reordered covariance C, its inverse-variance
variance is

    v(a, b) = Σ_{i,j ∈ [a,b)} C_ij/(d_i d_j) / (Σ_{i ∈ [a,b)} 1/d_i)²,   d = diag(C),

an O(1) lookup in the 2-D prefix sums of M = C/(d dᵀ) and the 1-D prefix sums of 1/d. The bisection is
then vectorised level by level (⌈log₂ n⌉ numpy steps). `hrp_weights_recursive` is the textbook loop,
kept as the reference and as a fallback.
"""

from __future__ import annotations

import numpy as np
import scipy.cluster.hierarchy as sch
from scipy.spatial.distance import squareform


def hrp_order(cov: np.ndarray, linkage: str = "single") -> np.ndarray:
    """Plain `leaves_list` order of the correlation-distance dendrogram."""
    n = len(cov)
    if n <= 2:
        return np.arange(n)
    std = np.sqrt(np.diag(cov))
    corr = np.clip(cov / np.outer(std, std), -1.0, 1.0)
    dist = np.sqrt(np.clip(0.5 * (1.0 - corr), 0.0, 1.0))
    np.fill_diagonal(dist, 0.0)
    dist = (dist + dist.T) / 2
    z = sch.linkage(squareform(dist, checks=False), method=str(linkage))
    return sch.leaves_list(z)


def hrp_weights(cov: np.ndarray, linkage: str = "single", order: np.ndarray | None = None) -> np.ndarray:
    """HRP weights (input asset order) by prefix-sum recursive bisection."""
    cov = np.asarray(cov, dtype=float)
    n = len(cov)
    if n == 1:
        return np.ones(1)
    _check(cov)
    order = hrp_order(cov, linkage) if order is None else np.asarray(order)
    c = cov[np.ix_(order, order)]
    iv = 1.0 / np.diag(c)
    m = c * iv[:, None] * iv[None, :]
    prefix = np.zeros((n + 1, n + 1))
    prefix[1:, 1:] = m.cumsum(axis=0).cumsum(axis=1)
    s = np.concatenate([[0.0], np.cumsum(iv)])

    def variance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        block = prefix[b, b] - prefix[a, b] - prefix[b, a] + prefix[a, a]
        return block / (s[b] - s[a]) ** 2

    leaf_weight = np.empty(n)
    a, b, mult = np.array([0]), np.array([n]), np.array([1.0])
    while len(a):
        mid = a + (b - a) // 2
        v_left, v_right = variance(a, mid), variance(mid, b)
        alpha = 1.0 - v_left / (v_left + v_right)
        a = np.concatenate([a, mid])
        b = np.concatenate([mid, b])
        mult = np.concatenate([mult * alpha, mult * (1.0 - alpha)])
        leaf = b - a == 1
        leaf_weight[a[leaf]] = mult[leaf]
        a, b, mult = a[~leaf], b[~leaf], mult[~leaf]
    weights = np.empty(n)
    weights[order] = leaf_weight
    return weights


def hrp_weights_recursive(cov: np.ndarray, linkage: str = "single", order: np.ndarray | None = None) -> np.ndarray:
    """Textbook HRP: explicit inverse-variance sub-portfolio variance of every half (reference/fallback)."""
    cov = np.asarray(cov, dtype=float)
    n = len(cov)
    if n == 1:
        return np.ones(1)
    _check(cov)
    order = hrp_order(cov, linkage) if order is None else np.asarray(order)
    weights = np.ones(n)
    items = [np.asarray(order)]
    while items:
        next_items = []
        for item in items:
            if len(item) < 2:
                continue
            half = len(item) // 2
            left, right = item[:half], item[half:]
            v_left, v_right = _cluster_variance(cov, left), _cluster_variance(cov, right)
            alpha = 1.0 - v_left / (v_left + v_right)
            weights[left] *= alpha
            weights[right] *= 1.0 - alpha
            next_items += [left, right]
        items = next_items
    return weights


def _cluster_variance(cov: np.ndarray, idx: np.ndarray) -> float:
    sub = cov[np.ix_(idx, idx)]
    w = 1.0 / np.diag(sub)
    w /= w.sum()
    return float(w @ sub @ w)


def _check(cov: np.ndarray) -> None:
    d = np.diag(cov)
    if not np.isfinite(cov).all() or np.any(d <= 0):
        raise ValueError("HRP needs a finite covariance with positive variances")
