"""Covariance estimation: Ledoit–Wolf equal to sklearn's, and a ridge only when the matrix is ill-conditioned."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.covariance import ledoit_wolf

from tsp_platform.allocation.covariance import estimate_covariance, ledoit_wolf_covariance
from tsp_platform.config.allocation import CovarianceConfig, CovarianceMethod


@pytest.mark.parametrize("t, n", [(60, 20), (252, 50), (100, 300), (1000, 200)])
def test_ledoit_wolf_matches_sklearn(t, n):
    rng = np.random.default_rng(n)
    returns = rng.standard_t(4, (t, n)) * 0.01 + rng.normal(0, 0.01, (t, 1))
    expected, expected_shrinkage = ledoit_wolf(returns)
    matrix, shrinkage = ledoit_wolf_covariance(returns)
    assert shrinkage == pytest.approx(expected_shrinkage, abs=1e-12)
    assert np.abs(matrix - expected).max() <= 1e-14 * np.abs(expected).max()


def test_a_singular_sample_covariance_gets_a_ridge_until_conditioned():
    returns = np.random.default_rng(0).normal(0, 0.01, (30, 60))  # fewer days than assets: singular
    config = CovarianceConfig(method=CovarianceMethod.SAMPLE, max_condition=1e3)
    estimate = estimate_covariance(returns, config)
    assert estimate.ridge > 0 and estimate.condition <= 1e3
    assert np.linalg.eigvalsh(estimate.matrix)[0] > 0


def test_a_well_conditioned_matrix_is_left_alone():
    returns = np.random.default_rng(1).normal(0, 0.01, (1000, 10))
    estimate = estimate_covariance(returns, CovarianceConfig(method=CovarianceMethod.SAMPLE))
    assert estimate.ridge == 0.0
    assert np.allclose(estimate.matrix, np.cov(returns, rowvar=False))


def test_too_few_observations_is_a_clear_error():
    with pytest.raises(ValueError, match="at least 2 observations"):
        estimate_covariance(np.zeros((1, 3)), CovarianceConfig())
