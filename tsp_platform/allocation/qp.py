"""A dense convex QP solver: active-set methods with exact KKT solves (numpy/scipy only).

    minimise  ½ xᵀQx + cᵀx
    s.t.      A x  = b          (equality rows)
              G x ≤ h          (general inequality rows)
              lb ≤ x ≤ ub      (bounds; ±inf allowed, lb == ub fixes a variable)

Two active-set methods, both ending in an exact solve of the working set's KKT system:

1. Primal-dual active set (PDAS; Hintermüller, Ito & Kunisch 2002, a semismooth Newton method) from a
   guessed working set (`active_guess`): solve the working set's equality QP, free the fixed variables and
   rows whose multipliers have the wrong sign, fix the free variables that land outside their bounds and
   add the most violated rows; a fixed point is an exact KKT point. Typically 4–8 dense solves at N = 200,
   but it is not guaranteed (it can cycle), so it gives up on a cycle, a singular system or 40 iterations.
2. Primal active set (Nocedal & Wright, *Numerical Optimization*, §16.5; bounds handled by fixing
   variables), the guaranteed path, from a feasible point (`x0`, or a vertex found by HiGHS): step to the
   working set's minimiser or to the first blocking constraint (which joins the working set); at a
   minimiser release every wrong-signed constraint at once, re-fixing those the new direction would
   immediately re-violate (down to the single most negative one, the textbook release), so the objective
   decreases strictly on every non-degenerate step. Blocking normals satisfy aᵀp ≠ 0 while p ⟂ the working
   normals, so the working set stays linearly independent (rows dependent to rounding are never added).

A merely positive semi-definite Q (e.g. the split w = w⁺ − w⁻ of a long/short book) is handled by the
proximal-point method: min f(x) + ρ/2‖x − x_k‖² repeated, each round strictly convex and warm-started from
the previous one; the original problem's stationarity residual is exactly ρ(x_{k+1} − x_k), driven to 1e-14.

Data are scaled (Q and c by the mean diagonal of Q, every row to unit ∞-norm); the answer is verified
against the KKT conditions of the *unscaled* problem (`kkt_residuals`). A PDAS answer that fails the check
is re-solved by the primal method; a result that still fails raises `QPNotConverged` — never returned.
Infeasible constraints raise `QPInfeasible`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog

_FREE, _LOWER, _UPPER, _FIXED = 0, -1, 1, 2


class QPError(RuntimeError):
    """The QP could not be solved (degenerate working set, non-finite data, ...)."""


class QPInfeasible(QPError):
    """The constraints admit no point."""


class QPNotConverged(QPError):
    """Iteration limit reached, or the returned point fails the KKT check."""


@dataclass(frozen=True)
class KKTResiduals:
    """Scale-free KKT residuals (∞-norms): stationarity relative to |Q|·|x| + |c|, rows to their ∞-norm."""

    stationarity: float
    primal: float
    dual: float
    complementarity: float

    @property
    def max(self) -> float:
        return max(self.stationarity, self.primal, self.dual, self.complementarity)


@dataclass(frozen=True, eq=False)
class QPResult:
    x: np.ndarray
    objective: float
    eq_multipliers: np.ndarray  # ν, free sign
    ineq_multipliers: np.ndarray  # μ ≥ 0 on G x ≤ h
    lower_multipliers: np.ndarray  # z_l ≥ 0 on x ≥ lb
    upper_multipliers: np.ndarray  # z_u ≥ 0 on x ≤ ub
    iterations: int
    proximal_rounds: int  # 0 when Q is positive definite
    kkt: KKTResiduals


def solve_qp(
    Q: np.ndarray,
    c: np.ndarray,
    A: np.ndarray | None = None,
    b: np.ndarray | None = None,
    G: np.ndarray | None = None,
    h: np.ndarray | None = None,
    lb: np.ndarray | float | None = None,
    ub: np.ndarray | float | None = None,
    x0: np.ndarray | None = None,
    *,
    kkt_tol: float = 1e-10,
    max_iter: int | None = None,
    strictly_convex: bool | None = None,
    active_guess: np.ndarray | None = None,
) -> QPResult:
    """Solve the QP exactly (active set); see the module docstring. Raises a `QPError` subclass on failure.

    `x0`: a feasible point for the primal active set (else an LP finds one, only if it is needed);
    `strictly_convex`: skip the definiteness test when the caller knows (False ⇒ proximal mode);
    `active_guess`: −1/0/+1 per variable (at lower / free / at upper), the PDAS starting working set
    (default: all free) — a good guess saves most of the work.
    """
    Q = np.asarray(Q, dtype=float)
    c = np.asarray(c, dtype=float)
    n = c.shape[0]
    A = np.zeros((0, n)) if A is None else np.atleast_2d(np.asarray(A, dtype=float))
    b = np.zeros(0) if b is None else np.atleast_1d(np.asarray(b, dtype=float))
    G = np.zeros((0, n)) if G is None else np.atleast_2d(np.asarray(G, dtype=float))
    h = np.zeros(0) if h is None else np.atleast_1d(np.asarray(h, dtype=float))
    lb = np.broadcast_to(-np.inf if lb is None else np.asarray(lb, dtype=float), (n,)).copy()
    ub = np.broadcast_to(np.inf if ub is None else np.asarray(ub, dtype=float), (n,)).copy()
    if Q.shape != (n, n) or A.shape[1] != n or G.shape[1] != n or len(b) != len(A) or len(h) != len(G):
        raise ValueError("inconsistent QP dimensions")
    for name, arr in (("Q", Q), ("c", c), ("A", A), ("b", b), ("G", G), ("h", h)):
        if not np.isfinite(arr).all():
            raise QPError(f"non-finite QP data in {name}")
    if np.any(lb > ub) or np.any(np.isnan(lb)) or np.any(np.isnan(ub)):
        raise QPInfeasible("a lower bound exceeds its upper bound")

    # scaling: objective by the mean diagonal, rows to unit ∞-norm (zero rows are checked, then dropped)
    Q = (Q + Q.T) / 2
    scale = float(np.mean(np.abs(np.diag(Q)))) or float(np.max(np.abs(Q), initial=0.0)) or 1.0
    Qs, cs = Q / scale, c / scale
    As, bs, a_norm, a_keep = _normalise_rows(A, b, equality=True)
    Gs, hs, g_norm, g_keep = _normalise_rows(G, h, equality=False)

    strict = _is_positive_definite(Qs) if strictly_convex is None else strictly_convex
    limit = max_iter or 20 * (n + len(As) + len(Gs)) + 100
    state0 = np.zeros(n, dtype=np.int8) if active_guess is None else np.asarray(active_guess, dtype=np.int8).copy()
    state0[(state0 == _LOWER) & ~np.isfinite(lb)] = _FREE
    state0[(state0 == _UPPER) & ~np.isfinite(ub)] = _FREE
    state0[lb == ub] = _FIXED
    data = (As, bs, Gs, hs, lb, ub)

    failure = None
    for use_pdas in (True, False):  # a PDAS answer that fails the KKT check is re-solved by the primal method
        x, state, W, eq_rows, lam, iterations, rounds = _solve_scaled(Qs, cs, data, strict, state0, x0, limit, use_pdas)
        nu_s, mu_s, zl_s, zu_s = _multipliers(Qs, cs, As, Gs, x, state, W, eq_rows, lam)
        # unscale: row normalisation, then the objective scale
        nu = np.zeros(len(A))
        nu[a_keep] = nu_s / a_norm * scale
        mu = np.zeros(len(G))
        mu[g_keep] = mu_s / g_norm * scale
        zl, zu = zl_s * scale, zu_s * scale
        kkt = kkt_residuals(Q, c, A, b, G, h, lb, ub, x, nu, mu, zl, zu)
        if kkt.max <= kkt_tol:
            return QPResult(x, float(0.5 * x @ Q @ x + c @ x), nu, mu, zl, zu, iterations, rounds, kkt)
        failure = kkt
    raise QPNotConverged(f"KKT check failed: {failure}")


def _solve_scaled(Qs, cs, data, strict, state0, x0, limit, use_pdas):
    """Strictly convex: one solve. Otherwise proximal-point rounds, each warm-started from the previous one."""
    As, bs, Gs, hs, lb, ub = data
    n = len(cs)
    feasible: dict = {}

    def solve_strict(Qk, ck, state, W, x_warm):
        found = _pdas(Qk, ck, As, bs, Gs, hs, lb, ub, state, W) if use_pdas else None
        if found is not None:
            return found
        if x_warm is None:
            if "x" not in feasible:
                feasible["x"] = _starting_point(x0, As, bs, Gs, hs, lb, ub)
            x_warm = feasible["x"]
        x = x_warm.copy()
        state, W, eq_rows = _initial_working_set(x, As, bs, Gs, hs, lb, ub)
        return _active_set(Qk, ck, As, bs, Gs, hs, lb, ub, x, state, W, eq_rows, limit)

    if strict:
        return (*solve_strict(Qs, cs, state0, [], None), 0)
    rho = 1e-6
    Qr = Qs + rho * np.eye(n)
    iterations, rounds = 0, 0
    x, state, W, x_warm = np.zeros(n), state0, [], None
    while True:
        rounds += 1
        x_prev = x
        x, state, W, eq_rows, lam, its = solve_strict(Qr, cs - rho * x_prev, state, W, x_warm)
        x_warm = x
        iterations += its
        # the original problem's stationarity residual at x is exactly ρ(x − x_prev)
        if rounds > 1 and rho * np.max(np.abs(x - x_prev)) <= 1e-14 * max(1.0, np.max(np.abs(x))):
            return x, state, W, eq_rows, lam, iterations, rounds
        if rounds >= 200:
            raise QPNotConverged("proximal-point rounds did not converge")


def kkt_residuals(Q, c, A, b, G, h, lb, ub, x, nu, mu, zl, zu) -> KKTResiduals:
    """Residuals of Qx + c + Aᵀν + Gᵀμ − z_l + z_u = 0, feasibility, multiplier signs, complementarity."""
    n = len(x)
    A = np.zeros((0, n)) if A is None else np.atleast_2d(A)
    G = np.zeros((0, n)) if G is None else np.atleast_2d(G)
    b = np.zeros(0) if b is None else np.atleast_1d(b)
    h = np.zeros(0) if h is None else np.atleast_1d(h)
    lb = np.broadcast_to(-np.inf if lb is None else lb, (n,))
    ub = np.broadcast_to(np.inf if ub is None else ub, (n,))
    xs = max(1.0, float(np.max(np.abs(x), initial=0.0)))
    obj_scale = float(np.max(np.abs(Q), initial=0.0)) * xs + float(np.max(np.abs(c), initial=0.0)) or 1.0
    grad = Q @ x + c + A.T @ nu + G.T @ mu - zl + zu
    stationarity = float(np.max(np.abs(grad), initial=0.0)) / obj_scale
    a_norm = np.maximum(np.max(np.abs(A), axis=1, initial=0.0), 1e-300)
    g_norm = np.maximum(np.max(np.abs(G), axis=1, initial=0.0), 1e-300)
    slack_g = (h - G @ x) / g_norm
    primal = max(
        float(np.max(np.abs(A @ x - b) / a_norm, initial=0.0)),
        float(np.max(-slack_g, initial=0.0)),
        float(np.max(lb - x, initial=0.0)),
        float(np.max(x - ub, initial=0.0)),
    )
    dual = max(float(np.max(-mu, initial=0.0)), float(np.max(-zl, initial=0.0)), float(np.max(-zu, initial=0.0)))
    finite_l, finite_u = np.isfinite(lb), np.isfinite(ub)
    comp = max(
        float(np.max(np.abs(mu * g_norm * slack_g), initial=0.0)),
        float(np.max(np.abs(zl[finite_l] * (x[finite_l] - lb[finite_l])), initial=0.0)),
        float(np.max(np.abs(zu[finite_u] * (ub[finite_u] - x[finite_u])), initial=0.0)),
        float(np.max(np.abs(zl[~finite_l]), initial=0.0)),
        float(np.max(np.abs(zu[~finite_u]), initial=0.0)),
    )
    return KKTResiduals(stationarity, primal, dual / obj_scale, comp / obj_scale)


# --------------------------------------------------------------------------------------------- internals


def _normalise_rows(M: np.ndarray, rhs: np.ndarray, equality: bool):
    norms = np.max(np.abs(M), axis=1, initial=0.0)
    keep = norms > 0
    zero_rhs = rhs[~keep]
    if equality and np.any(np.abs(zero_rhs) > 1e-12):
        raise QPInfeasible("an equality row is zero but its right-hand side is not")
    if not equality and np.any(zero_rhs < -1e-12):
        raise QPInfeasible("an inequality row is zero with a negative right-hand side")
    keep_idx = np.flatnonzero(keep)
    return M[keep] / norms[keep, None], rhs[keep] / norms[keep], norms[keep], keep_idx


def _is_positive_definite(Qs: np.ndarray) -> bool:
    try:
        L = np.linalg.cholesky(Qs)
    except np.linalg.LinAlgError:
        return False
    d = np.diag(L) ** 2
    return bool(d.min(initial=1.0) > 1e-10 * max(1.0, d.max(initial=1.0)))


def _violation(x, A, b, G, h, lb, ub) -> float:
    return max(
        float(np.max(np.abs(A @ x - b), initial=0.0)),
        float(np.max(G @ x - h, initial=0.0)),
        float(np.max(lb - x, initial=0.0)),
        float(np.max(x - ub, initial=0.0)),
    )


def _starting_point(x0, A, b, G, h, lb, ub) -> np.ndarray:
    if x0 is not None:
        x = np.clip(np.asarray(x0, dtype=float), lb, ub)
        if np.isfinite(x).all() and _violation(x, A, b, G, h, lb, ub) <= 1e-9:
            return x
    return feasible_point(A, b, G, h, lb, ub)


def feasible_point(A, b, G, h, lb, ub, cost: np.ndarray | None = None) -> np.ndarray:
    """A vertex of the feasible set (HiGHS dual simplex); `QPInfeasible` if there is none."""
    n = len(lb)
    bounds = np.column_stack([np.where(np.isfinite(lb), lb, -np.inf), np.where(np.isfinite(ub), ub, np.inf)])
    res = linprog(
        np.zeros(n) if cost is None else cost,
        A_ub=G if len(G) else None,
        b_ub=h if len(G) else None,
        A_eq=A if len(A) else None,
        b_eq=b if len(A) else None,
        bounds=bounds,
        method="highs-ds",
    )
    if res.status == 2:
        raise QPInfeasible(f"the constraints are infeasible: {res.message}")
    if res.status != 0 or res.x is None:
        raise QPError(f"phase-1 LP failed: {res.message}")
    return np.clip(res.x, lb, ub)


def _rank(M: np.ndarray) -> int:
    if M.size == 0:
        return 0
    s = np.linalg.svd(M, compute_uv=False)
    return int(np.sum(s > 1e-10 * max(1.0, s[0])))


def _initial_working_set(x, A, b, G, h, lb, ub):
    """Bounds tight at x are fixed; equality rows must be independent on the free set (free a bound if not);
    tight inequality rows join while they stay independent; finally x is corrected onto the working set."""
    n = len(x)
    tol = 1e-11
    state = np.full(n, _FREE, dtype=np.int8)
    with np.errstate(invalid="ignore"):
        at_lower = np.isfinite(lb) & (x - lb <= tol * np.maximum(1.0, np.abs(lb)))
        at_upper = np.isfinite(ub) & (ub - x <= tol * np.maximum(1.0, np.abs(ub))) & ~at_lower
    state[at_lower] = _LOWER
    state[at_upper] = _UPPER
    state[lb == ub] = _FIXED
    x[state == _LOWER] = lb[state == _LOWER]
    x[state == _UPPER] = ub[state == _UPPER]
    x[state == _FIXED] = lb[state == _FIXED]

    eq_rows: list[int] = []
    for k in range(len(A)):
        while True:
            F = state == _FREE
            if _rank(A[eq_rows + [k]][:, F]) == len(eq_rows) + 1:
                eq_rows.append(k)
                break
            candidates = np.flatnonzero(((state == _LOWER) | (state == _UPPER)) & (A[k] != 0))
            if len(candidates) == 0:
                # row k depends on the other equality rows over every movable variable: redundant if consistent
                if abs(A[k] @ x - b[k]) > 1e-9:
                    raise QPInfeasible("dependent equality rows are inconsistent")
                break
            j = candidates[np.argmax(np.abs(A[k, candidates]))]
            state[j] = _FREE
    W: list[int] = []
    if len(G):
        tight = np.flatnonzero(h - G @ x <= 1e-11)
        for r in tight:
            F = state == _FREE
            rows = np.vstack([A[eq_rows], G[W + [int(r)]]])[:, F]
            if _rank(rows) == len(rows):
                W.append(int(r))
    _restore(x, state, A, b, G, h, eq_rows, W)
    return state, W, eq_rows


def _restore(x, state, A, b, G, h, eq_rows, W) -> None:
    """Least-norm correction of the free variables so the working rows hold to rounding (in place)."""
    F = np.flatnonzero(state == _FREE)
    if len(F) == 0 or (not eq_rows and not W):
        return
    C = np.vstack([A[eq_rows], G[W]])
    d = np.concatenate([b[eq_rows], h[W]])
    r = C @ x - d
    if np.max(np.abs(r)) == 0:
        return
    CF = C[:, F]
    x[F] -= CF.T @ np.linalg.solve(CF @ CF.T, r)


def _eqp(QFF: np.ndarray, CF: np.ndarray, gF: np.ndarray):
    """min ½pᵀQ_FF p + g_Fᵀp s.t. C_F p = 0 → (p, λ) with Q_FF p + C_Fᵀλ = −g_F (one dense KKT solve)."""
    nf, ma = len(gF), CF.shape[0]
    if ma == 0:
        K, rhs = QFF, -gF
    else:
        K = np.empty((nf + ma, nf + ma))
        K[:nf, :nf] = QFF
        K[:nf, nf:] = CF.T
        K[nf:, :nf] = CF
        K[nf:, nf:] = 0.0
        rhs = np.concatenate([-gF, np.zeros(ma)])
    try:
        sol = np.linalg.solve(K, rhs)
    except np.linalg.LinAlgError as exc:
        raise QPError("singular working-set KKT system (dependent active rows)") from exc
    return sol[:nf], sol[nf:]


def _pdas(Q, c, A, b, G, h, lb, ub, state, W, max_iter: int = 40):
    """Primal-dual active set (Hintermüller, Ito & Kunisch 2002; a semismooth Newton method): guess the
    working set, solve its equality QP, move the free variables that land outside their bounds and the
    fixed ones with wrong-signed multipliers, likewise for the rows; stop at a fixed point, which is an exact
    KKT point. Fast (a handful of solves) but not guaranteed: `None` on a cycle, a singular system or the
    iteration cap, and the caller falls back to the primal active set."""
    n = len(c)
    me = len(A)
    eq_rows = list(range(me))
    state, W = state.copy(), list(W)
    seen: set[bytes] = set()
    ptol, dtol = 1e-13, 1e-13
    bound_value = np.where(np.isfinite(lb), lb, 0.0), np.where(np.isfinite(ub), ub, 0.0)
    for it in range(1, max_iter + 1):
        F = np.flatnonzero(state == _FREE)
        x = np.where(state == _UPPER, bound_value[1], np.where(state == _FREE, 0.0, bound_value[0]))
        C = np.vstack([A, G[W]]) if (me or W) else np.zeros((0, n))
        d = np.concatenate([b, h[W]])
        CF = C[:, F]
        if C.shape[0] > len(F) or (C.shape[0] and np.any(np.max(np.abs(CF), axis=1, initial=0.0) == 0)):
            return None
        g0 = Q @ x + c
        nf, ma = len(F), C.shape[0]
        K = np.zeros((nf + ma, nf + ma))
        K[:nf, :nf] = Q[F[:, None], F]
        K[:nf, nf:] = CF.T
        K[nf:, :nf] = CF
        rhs = np.concatenate([-g0[F], d - C @ x])
        try:
            sol = np.linalg.solve(K, rhs)
        except np.linalg.LinAlgError:
            return None
        if not np.isfinite(sol).all():
            return None
        x[F] = sol[:nf]
        lam = sol[nf:]
        r = Q @ x + c + C.T @ lam
        new = state.copy()
        free = state == _FREE
        new[free & (x < lb - ptol)] = _LOWER
        new[free & (x > ub + ptol)] = _UPPER
        new[(state == _LOWER) & (r < -dtol)] = _FREE
        new[(state == _UPPER) & (r > dtol)] = _FREE
        mu = lam[me:]
        keep = [w for k, w in enumerate(W) if mu[k] >= -dtol]
        if len(G):
            slack = h - G @ x
            slack[W] = np.inf
            violated = np.flatnonzero(slack < -ptol)
            # most violated first, and never more active rows than free variables can carry
            room = int(np.sum(new == _FREE)) - me - len(keep)
            keep += [int(r_) for r_ in violated[np.argsort(slack[violated], kind="stable")][: max(room, 0)]]
        if np.array_equal(new, state) and sorted(keep) == sorted(W):
            if len(G) and np.min(h - G @ x, initial=0.0) < -ptol:
                return None  # a violated row found no room in the working set: not a KKT point
            x = np.clip(x, lb, ub)
            _restore(x, state, A, b, G, h, eq_rows, W)
            return x, state, W, eq_rows, lam, it
        key = new.tobytes() + np.array(sorted(keep), dtype=np.int64).tobytes()
        if key in seen:
            return None
        seen.add(key)
        state, W = new, keep
    return None


def _active_set(Q, c, A, b, G, h, lb, ub, x, state, W, eq_rows, max_iter):
    x, state, W = x.copy(), state.copy(), list(W)
    n = len(x)
    me = len(eq_rows)
    g = Q @ x + c
    Gx = G @ x
    # constraints released at the last multiplier check, and the most negative of them (the textbook release)
    rel_bounds, rel_sides, rel_rows = np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.int8), []
    best: tuple[str, int, int] | None = None
    iterations = 0
    C = np.vstack([A[eq_rows], G[W]]) if (eq_rows or W) else np.zeros((0, n))
    while True:
        iterations += 1
        if iterations > max_iter:
            raise QPNotConverged(f"active set did not converge in {max_iter} iterations")
        F = np.flatnonzero(state == _FREE)
        if len(F) == 0:
            if C.shape[0]:
                raise QPError("degenerate working set: active rows with no free variable")
            p, lam = np.zeros(0), np.zeros(0)
        else:
            p, lam = _eqp(Q[F[:, None], F], C[:, F], g[F])
            if C.shape[0] >= len(F):
                p = np.zeros(len(F))  # a vertex of the working set: the step is zero (only rounding is left)

        if len(rel_bounds) + len(rel_rows) > 1:
            # a multi-release must not re-violate a released constraint at once: re-fix those it would
            tol = 1e-14 * max(1.0, float(np.max(np.abs(p), initial=0.0)))
            pos = np.searchsorted(F, rel_bounds)
            bad_b = p[pos] * rel_sides > tol
            bad_r = (G[rel_rows][:, F] @ p > tol) if rel_rows else np.zeros(0, dtype=bool)
            if bad_b.any() or bad_r.any():
                if bad_b.all() and bad_r.all():
                    # nothing survives: keep only the most negative one
                    kind, idx, side = best
                    keep_b = rel_bounds == idx if kind == "bound" else np.zeros(len(rel_bounds), dtype=bool)
                    keep_r = np.array([kind == "row" and r == idx for r in rel_rows], dtype=bool)
                    bad_b, bad_r = ~keep_b, ~keep_r
                state[rel_bounds[bad_b]] = rel_sides[bad_b]
                W += [r for r, bad in zip(rel_rows, bad_r) if bad]
                rel_bounds, rel_sides = rel_bounds[~bad_b], rel_sides[~bad_b]
                rel_rows = [r for r, bad in zip(rel_rows, bad_r) if not bad]
                C = np.vstack([A[eq_rows], G[W]]) if (eq_rows or W) else np.zeros((0, n))
                continue
        rel_bounds, rel_sides, rel_rows = rel_bounds[:0], rel_sides[:0], []

        # ratio test
        alpha, blocker = 1.0, None
        pmax = float(np.max(np.abs(p), initial=0.0))
        if pmax > 1e-14 * max(1.0, float(np.max(np.abs(x), initial=0.0))):
            tiny = 1e-13 * pmax
            xF = x[F]
            down = np.flatnonzero(p < -tiny)
            if len(down):
                t = np.maximum(xF[down] - lb[F[down]], 0.0) / -p[down]
                k = int(np.argmin(t))
                if t[k] < alpha:
                    alpha, blocker = float(t[k]), ("bound", int(F[down[k]]), _LOWER)
            up = np.flatnonzero(p > tiny)
            if len(up):
                t = np.maximum(ub[F[up]] - xF[up], 0.0) / p[up]
                k = int(np.argmin(t))
                if t[k] < alpha:
                    alpha, blocker = float(t[k]), ("bound", int(F[up[k]]), _UPPER)
            if len(G):
                Gp = G[:, F] @ p
                Gp[W] = 0.0
                # rows in the span of the working rows have Gp = 0 up to rounding ~ n·eps·|p|: never blocking
                idx = np.flatnonzero(Gp > 1e-11 * pmax)
                if len(idx):
                    t = np.maximum(h[idx] - Gx[idx], 0.0) / Gp[idx]
                    for k in np.argsort(t, kind="stable"):
                        if t[k] >= alpha:
                            break
                        row = int(idx[k])
                        if _independent(C[:, F], G[row, F]):
                            alpha, blocker = float(t[k]), ("row", row, 0)
                            break
            x[F] += alpha * p
            if blocker is not None:
                g += alpha * (p @ Q[F])
                if len(G):
                    Gx += alpha * Gp if not W else alpha * (G[:, F] @ p)
        if blocker is not None:
            kind, idx, side = blocker
            if kind == "bound":
                state[idx] = side
                x[idx] = lb[idx] if side == _LOWER else ub[idx]
            else:
                W.append(idx)
                C = np.vstack([C, G[idx]])
            continue

        # at the minimiser of the working set: the multipliers decide
        g = Q @ x + c
        if len(G):
            Gx = G @ x
        r = g + C.T @ lam if C.shape[0] else g.copy()
        dtol = 1e-12 * max(1.0, float(np.max(np.abs(g), initial=0.0)))
        score = np.where(state == _LOWER, r, np.where(state == _UPPER, -r, np.inf))  # multiplier, signed
        bad_bounds = np.flatnonzero(score < -dtol)
        mu = lam[me:]
        bad_rows = np.flatnonzero(mu < -dtol)
        if len(bad_bounds) == 0 and len(bad_rows) == 0:
            _restore(x, state, A, b, G, h, eq_rows, W)
            return x, state, W, eq_rows, lam, iterations
        worst_b = float(score[bad_bounds].min(initial=np.inf))
        worst_r = float(mu[bad_rows].min(initial=np.inf))
        if worst_b <= worst_r:
            i = int(bad_bounds[np.argmin(score[bad_bounds])])
            best = ("bound", i, int(state[i]))
        else:
            best = ("row", W[int(bad_rows[np.argmin(mu[bad_rows])])], 0)
        rel_bounds, rel_sides = bad_bounds, state[bad_bounds].copy()
        state[bad_bounds] = _FREE
        rel_rows = [W[k] for k in bad_rows]
        if rel_rows:
            W = [w for w in W if w not in set(rel_rows)]
            C = np.vstack([A[eq_rows], G[W]]) if (eq_rows or W) else np.zeros((0, n))


def _independent(CF: np.ndarray, row: np.ndarray) -> bool:
    """Whether `row` is outside the row span of CF (relative least-squares residual above 1e-9)."""
    norm = float(np.linalg.norm(row))
    if norm == 0:
        return False
    if CF.shape[0] == 0:
        return True
    if CF.shape[0] >= CF.shape[1]:
        return False
    coef = np.linalg.lstsq(CF.T, row, rcond=None)[0]
    return float(np.linalg.norm(CF.T @ coef - row)) > 1e-9 * norm


def _multipliers(Q, c, A, G, x, state, W, eq_rows, lam):
    """Multipliers of the scaled problem at the final working set (recomputed for accuracy)."""
    n = len(x)
    me = len(eq_rows)
    g = Q @ x + c
    F = np.flatnonzero(state == _FREE)
    C = np.vstack([A[eq_rows], G[W]]) if (eq_rows or W) else np.zeros((0, n))
    if C.shape[0] and len(F):
        # least squares on the free rows of the stationarity condition: C_Fᵀλ = −g_F
        lam = np.linalg.lstsq(C[:, F].T, -g[F], rcond=None)[0]
    nu = np.zeros(len(A))
    nu[eq_rows] = lam[:me]
    mu = np.zeros(len(G))
    mu[W] = lam[me:]
    r = g + (C.T @ lam if C.shape[0] else 0.0)
    zl = np.where(state == _LOWER, np.maximum(r, 0.0), 0.0)
    zu = np.where(state == _UPPER, np.maximum(-r, 0.0), 0.0)
    fixed = state == _FIXED
    zl[fixed] = np.maximum(r[fixed], 0.0)
    zu[fixed] = np.maximum(-r[fixed], 0.0)
    return nu, np.maximum(mu, 0.0), zl, zu
