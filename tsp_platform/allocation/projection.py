"""The long-only capped set and exact Euclidean projections onto it.

    S = { w : Σw = budget, lb ≤ w ≤ ub, Σ_{i ∈ c} w_i ≤ cap_c for every cluster c }

Clusters partition the assets, so the set is a polymatroid-like "laminar" polytope: a greedy fill is a
vertex (and maximises any linear objective), and the Euclidean projection has a closed form up to two
monotone piecewise-linear equations,

    w_i = clip(v_i − max(λ, τ_{c(i)}), lb_i, ub_i),

where τ_c makes cluster c sum to its cap (−∞ when the cap cannot bind) and λ sets the budget. Two exact
projections are provided: `project` solves the QP min ½‖w − v‖² with the active-set solver (KKT-checked),
`project_breakpoint` solves the two equations exactly by breakpoint search (no iterations, no tolerance);
they agree to rounding and serve as primary / fallback for each other.

Cluster caps that would make S empty are raised *uniformly* to the smallest common level that makes it
feasible (`capped_set`); this mirrors `AllocationProblem.upper` (never below 1/N so the budget stays
feasible) and is reported in `CappedSet.raised_caps`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tsp_platform.allocation.qp import solve_qp

_TOL = 1e-12


@dataclass(frozen=True, eq=False)
class CappedSet:
    lb: np.ndarray  # (N,)
    ub: np.ndarray  # (N,)
    cluster: np.ndarray  # (N,) int codes 0..K-1
    caps: np.ndarray  # (K,) effective cluster caps (after any feasibility raise)
    budget: float = 1.0
    raised_caps: bool = False  # True when the configured caps were raised to make the set feasible

    @property
    def n(self) -> int:
        return len(self.lb)

    def binding_clusters(self) -> np.ndarray:
        """Clusters whose cap can bind (cap below both the budget and the cluster's upper-bound capacity)."""
        capacity = np.bincount(self.cluster, weights=self.ub, minlength=len(self.caps))
        return np.flatnonzero((self.caps < capacity - _TOL) & (self.caps < self.budget - _TOL))

    def rows(self) -> tuple[np.ndarray, np.ndarray]:
        """(G, h) of the cluster caps that can bind, for the QP."""
        ks = self.binding_clusters()
        G = (self.cluster[None, :] == ks[:, None]).astype(float)
        return G, self.caps[ks]

    def violation(self, w: np.ndarray) -> float:
        sums = np.bincount(self.cluster, weights=w, minlength=len(self.caps))
        return max(
            abs(float(w.sum()) - self.budget),
            float(np.max(self.lb - w, initial=0.0)),
            float(np.max(w - self.ub, initial=0.0)),
            float(np.max(sums - self.caps, initial=0.0)),
        )

    def greedy(self, order: np.ndarray) -> np.ndarray:
        """A vertex of S filling assets in `order` (first = most preferred) up to their bounds and caps."""
        w = self.lb.copy()
        room = self.caps - np.bincount(self.cluster, weights=self.lb, minlength=len(self.caps))
        left = self.budget - float(self.lb.sum())
        for i in order:
            if left <= 0:
                break
            add = min(self.ub[i] - w[i], room[self.cluster[i]], left)
            if add > 0:
                w[i] += add
                room[self.cluster[i]] -= add
                left -= add
        if left > 1e-12:
            raise ValueError(f"capped set is infeasible (budget short by {left:.3g})")
        return w


def capped_set(
    clusters: np.ndarray, lb: np.ndarray, ub: np.ndarray, cluster_cap: float, budget: float = 1.0
) -> CappedSet:
    """The capped set with per-cluster cap max(cluster_cap, 1/K), raised uniformly if needed for feasibility."""
    _, codes = np.unique(np.asarray(clusters), return_inverse=True)
    codes = codes.astype(np.intp).ravel()
    k = int(codes.max()) + 1 if len(codes) else 0
    lb, ub = np.asarray(lb, dtype=float), np.asarray(ub, dtype=float)
    if np.any(lb > ub) or lb.sum() > budget + 1e-12 or ub.sum() < budget - 1e-12:
        raise ValueError("bounds cannot meet the budget")
    base = np.full(k, max(cluster_cap, 1.0 / k if k else 1.0))
    base = np.maximum(base, np.bincount(codes, weights=lb, minlength=k))  # lower bounds must fit
    capacity = np.bincount(codes, weights=ub, minlength=k)
    level = _uniform_level(base, capacity, budget)
    caps = np.maximum(base, level)
    return CappedSet(lb, ub, codes, caps, budget, raised_caps=bool(np.any(caps > base)))


def _uniform_level(base: np.ndarray, capacity: np.ndarray, budget: float) -> float:
    """Smallest L with Σ_c min(max(base_c, L), capacity_c) ≥ budget (−inf if L is not needed)."""

    def total(level: float) -> float:
        return float(np.minimum(np.maximum(base, level), capacity).sum())

    if total(-np.inf) >= budget - 1e-15:
        return -np.inf
    points = np.unique(np.concatenate([base, capacity]))
    values = np.array([total(p) for p in points])
    k = int(np.searchsorted(values, budget - 1e-15))  # total is nondecreasing in L
    if k >= len(points):
        raise ValueError("cluster capacities cannot meet the budget")
    if k == 0:
        return float(points[0])
    lo, hi, vlo, vhi = points[k - 1], points[k], values[k - 1], values[k]
    return float(lo + (budget - vlo) * (hi - lo) / (vhi - vlo)) if vhi > vlo else float(hi)


def project(v: np.ndarray, cset: CappedSet, kkt_tol: float = 1e-10) -> np.ndarray:
    """Euclidean projection onto the capped set via the active-set QP (min ½‖w − v‖²)."""
    v = np.asarray(v, dtype=float)
    if cset.violation(v) <= 0.0:
        return v.copy()
    G, h = cset.rows()
    x0 = cset.greedy(np.argsort(-v, kind="stable"))
    res = solve_qp(
        np.eye(cset.n), -v, np.ones((1, cset.n)), np.array([cset.budget]), G, h, cset.lb, cset.ub,
        x0=x0, kkt_tol=kkt_tol, strictly_convex=True,
    )
    return res.x


def project_breakpoint(v: np.ndarray, cset: CappedSet) -> np.ndarray:
    """Exact projection by solving the two monotone piecewise-linear equations (see the module docstring)."""
    v = np.asarray(v, dtype=float)
    if cset.violation(v) <= 0.0:
        return v.copy()
    lb, ub, cl = cset.lb, cset.ub, cset.cluster
    k = len(cset.caps)
    tau = np.full(k, -np.inf)
    for c in cset.binding_clusters():
        members = cl == c
        tau[c] = _shift_for_sum(v[members], lb[members], ub[members], cset.caps[c], floor=None)
    # total(λ) = Σ_i clip(v_i − max(λ, τ_c(i)), lb_i, ub_i) = budget
    lam = _shift_for_sum(v, lb, ub, cset.budget, floor=tau[cl])
    return np.clip(v - np.maximum(lam, tau[cl]), lb, ub)


def _shift_for_sum(v, lb, ub, target, floor) -> float:
    """τ with Σ clip(v − max(τ, floor), lb, ub) = target; the sum is nonincreasing and piecewise linear in τ,
    so a binary search over the sorted breakpoints brackets the linear piece that holds the root."""
    floor_arr = np.full(len(v), -np.inf) if floor is None else floor

    def total(t: float) -> float:
        return float(np.clip(v - np.maximum(t, floor_arr), lb, ub).sum())

    points = np.concatenate([v - ub, v - lb, floor_arr])
    points = np.unique(points[np.isfinite(points)])
    if total(points[0]) < target - 1e-12:
        raise ValueError("projection target above the attainable sum")
    if total(points[-1]) > target + 1e-12:
        raise ValueError("projection target below the attainable sum")
    lo, hi = 0, len(points) - 1  # invariant: total(points[lo]) > target ≥ total(points[hi]) unless lo == hi
    if total(points[0]) <= target:
        return float(points[0])
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if total(points[mid]) <= target:
            hi = mid
        else:
            lo = mid
    tlo, thi = points[lo], points[hi]
    vlo, vhi = total(tlo), total(thi)
    if vhi == target or vlo == vhi:
        return float(thi)
    return float(tlo + (vlo - target) * (thi - tlo) / (vlo - vhi))
