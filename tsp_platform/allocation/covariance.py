"""Covariance estimation shared by every engine: sample or Ledoit–Wolf, with a ridge when ill-conditioned."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.covariance import ledoit_wolf

from tsp_platform.allocation.config import CovarianceConfig, CovarianceMethod


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
        matrix, shrinkage = ledoit_wolf(returns, assume_centered=False)
    else:
        matrix, shrinkage = sample_covariance(returns), 0.0
    matrix = (matrix + matrix.T) / 2
    ridge, conditioned = 0.0, matrix
    mean_variance = float(np.mean(np.diag(matrix))) or 1.0
    condition = _condition(conditioned)
    while condition > config.max_condition and ridge < 1.0:
        ridge = round(ridge + config.ridge_step, 10)
        conditioned = matrix + np.eye(len(matrix)) * ridge * mean_variance
        condition = _condition(conditioned)
    return CovarianceEstimate(conditioned, config.method, float(shrinkage), ridge, condition)


def _condition(matrix: np.ndarray) -> float:
    eigenvalues = np.linalg.eigvalsh(matrix)
    smallest = eigenvalues[0]
    return float("inf") if smallest <= 0 else float(eigenvalues[-1] / smallest)
