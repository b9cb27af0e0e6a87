"""Equal-risk-contribution (risk budgeting) weights, long-only, exact.

Spinu (2013): x* = argmin ½ xᵀRx − Σ b_i ln x_i over x > 0 is unique and satisfies x_i (Rx)_i = b_i, so
w = x/Σx has risk contributions w_i(Σw)_i / wᵀΣw = b_i / Σb. The problem is solved on the correlation
matrix R (risk contributions are invariant to w_i → w_i/σ_i), which is well scaled:

* `erc_newton`: damped Newton (Cholesky of R + diag(b/x²)), backtracking on the convex objective and a
  fraction-to-the-boundary rule; quadratic convergence, typically 5–8 iterations;
* `erc_ccd`: cyclical coordinate descent (Griveau-Billion, Richard & Roncalli 2013), the closed-form
  positive root per coordinate; linear convergence, used as a fallback.

Both stop when max_i |x_i (Rx)_i − b_i| ≤ tol·max(b) (default tol 1e-12) and raise `ValueError` if
they do not get there.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg as sla


def _correlation(cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cov = np.asarray(cov, dtype=float)
    std = np.sqrt(np.diag(cov))
    if not np.isfinite(cov).all() or np.any(std <= 0):
        raise ValueError("risk parity needs a finite covariance with positive variances")
    return cov / np.outer(std, std), std


def erc_newton(
    cov: np.ndarray, budgets: np.ndarray | None = None, tol: float = 1e-12, max_iter: int = 100
) -> np.ndarray:
    """Risk-budgeting weights (equal budgets by default) by damped Newton on Spinu's convex problem."""
    r, std = _correlation(cov)
    n = len(r)
    b = np.full(n, 1.0 / n) if budgets is None else np.asarray(budgets, dtype=float) / np.sum(budgets)
    x = np.full(n, 1.0 / np.sqrt(r.sum()))  # xᵀRx = 1 = Σb at the start

    def objective(z: np.ndarray) -> float:
        return 0.5 * z @ r @ z - b @ np.log(z)

    f = objective(x)
    for _ in range(max_iter):
        rx = r @ x
        if np.max(np.abs(x * rx - b)) <= tol * b.max():
            return _weights(x, std)
        grad = rx - b / x
        hess = r + np.diag(b / x**2)
        step = -sla.cho_solve(sla.cho_factor(hess, check_finite=False), grad, check_finite=False)
        neg = step < 0
        t = min(1.0, 0.99 * float(np.min(-x[neg] / step[neg]))) if neg.any() else 1.0
        decrement = float(-grad @ step)
        while True:
            candidate = x + t * step
            fc = objective(candidate)
            # near the solution (tiny Newton decrement) the full step is taken: f no longer resolves it
            if decrement < 1e-10 or fc <= f - 0.25 * t * decrement or t < 1e-12:
                break
            t *= 0.5
        x, f = candidate, fc
    raise ValueError(f"ERC Newton did not converge in {max_iter} iterations")


def erc_ccd(
    cov: np.ndarray, budgets: np.ndarray | None = None, tol: float = 1e-12, max_sweeps: int = 10_000
) -> np.ndarray:
    """Risk-budgeting weights by cyclical coordinate descent (slower; a fallback)."""
    r, std = _correlation(cov)
    n = len(r)
    b = np.full(n, 1.0 / n) if budgets is None else np.asarray(budgets, dtype=float) / np.sum(budgets)
    x = np.full(n, 1.0 / np.sqrt(r.sum()))
    rx = r @ x
    for _ in range(max_sweeps):
        for i in range(n):
            others = rx[i] - x[i]  # R_ii = 1
            new = 0.5 * (-others + np.sqrt(others * others + 4.0 * b[i]))
            rx += r[:, i] * (new - x[i])
            x[i] = new
        rx = r @ x
        if np.max(np.abs(x * rx - b)) <= tol * b.max():
            return _weights(x, std)
    raise ValueError(f"ERC coordinate descent did not converge in {max_sweeps} sweeps")


def risk_contributions(weights: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """Fractions w_i (Σw)_i / wᵀΣw (they sum to 1)."""
    sw = cov @ weights
    return weights * sw / (weights @ sw)


def _weights(x: np.ndarray, std: np.ndarray) -> np.ndarray:
    w = x / std
    return w / w.sum()
