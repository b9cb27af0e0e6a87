"""Covariance estimation shared by every engine: sample or Ledoit–Wolf, with a ridge when ill-conditioned."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tsp_platform.config.allocation import CovarianceConfig, CovarianceMethod


@dataclass(frozen=True, eq=False)
class CovarianceEstimate:
    matrix: np.ndarray  # (N, N) daily covariance
    method: CovarianceMethod
    shrinkage: float  # Ledoit–Wolf intensity (0 for sample)
    ridge: float  # extra diagonal loading applied for conditioning (fraction of the mean variance)
    condition: float  # condition number after conditioning


def sample_covariance(returns: np.ndarray) -> np.ndarray:
    """Unbiased sample covariance (ddof = 1), as numpy and the libraries compute it."""
    return np.atleast_2d(np.cov(returns, rowvar=False, ddof=1))


def estimate_covariance(returns: np.ndarray, config: CovarianceConfig) -> CovarianceEstimate:
    """Estimate, then load the diagonal in `ridge_step` increments until the condition number is acceptable."""
    if returns.shape[0] < 2:
        raise ValueError(f"covariance needs at least 2 observations, got {returns.shape[0]}")
    if config.method is CovarianceMethod.LEDOIT_WOLF:
        matrix, shrinkage = ledoit_wolf_covariance(returns)
    else:
        matrix, shrinkage = sample_covariance(returns), 0.0
    matrix = (matrix + matrix.T) / 2
    ridge, conditioned = 0.0, matrix
    mean_variance = float(np.mean(np.diag(matrix))) or 1.0
    condition = _condition_bound(matrix, shrinkage, mean_variance)
    if condition > config.max_condition:  # the cheap bound is not enough: measure it
        condition = _condition(conditioned)
    while condition > config.max_condition and ridge < 1.0:
        ridge = round(ridge + config.ridge_step, 10)
        conditioned = matrix + np.eye(len(matrix)) * ridge * mean_variance
        condition = _condition(conditioned)
    return CovarianceEstimate(conditioned, config.method, float(shrinkage), ridge, condition)


def ledoit_wolf_covariance(returns: np.ndarray) -> tuple[np.ndarray, float]:
    """Ledoit–Wolf shrinkage towards a scaled identity, as sklearn's `ledoit_wolf` computes it (biased empirical
    covariance, centred data), from one Gram matrix instead of three passes over the data."""
    t, n = returns.shape
    x = returns - returns.mean(axis=0)
    gram = x.T @ x
    empirical = gram / t
    squares = x * x
    variances = squares.sum(axis=0) / t
    mu = variances.sum() / n
    beta_sum = float((squares.T @ squares).sum())
    delta_sum = float((gram * gram).sum()) / t**2
    beta = (beta_sum / t - delta_sum) / (n * t)
    delta = (delta_sum - 2 * mu * variances.sum() + n * mu**2) / n
    beta = min(beta, delta)
    shrinkage = 0.0 if beta == 0 else beta / delta
    shrunk = (1 - shrinkage) * empirical
    shrunk.flat[:: n + 1] += shrinkage * mu
    return shrunk, float(shrinkage)


def _condition_bound(matrix: np.ndarray, shrinkage: float, mean_variance: float) -> float:
    """An upper bound on the condition number of a shrunk matrix (λmin ≥ s·μ, λmax ≤ trace), or inf."""
    floor = shrinkage * mean_variance
    return float("inf") if floor <= 0 else float(np.trace(matrix) / floor)


def _condition(matrix: np.ndarray) -> float:
    eigenvalues = np.linalg.eigvalsh(matrix)
    smallest = eigenvalues[0]
    return float("inf") if smallest <= 0 else float(eigenvalues[-1] / smallest)
