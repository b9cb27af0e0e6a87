"""Walk-forward windows and per-window allocation: boundaries, no look-ahead, engine and skfolio parity."""

from __future__ import annotations

import warnings

import numpy as np
import pydantic
import pytest

import tsp_platform  # noqa: F401  (BLAS threads pinned before numpy loads)
from tsp_platform.config.allocation import AllocationConfig, CovarianceConfig, Regime, RiskProfile
from tsp_platform.config.tournament import WalkForwardConfig
from tsp_platform.core.panel import ReturnsPanel
from tsp_platform.reference.walkforward import (
    MinVarianceAllocator,
    allocate_windows,
    engine_allocator,
    hrp_walkforward,
    min_variance_walkforward,
    skfolio_estimator,
    skfolio_walkforward,
)
from tsp_platform.tournament.walkforward import Window, train_panel, windows

UNCAPPED = AllocationConfig(max_weight=1.0, cluster_caps={r: 1.0 for r in Regime})
SP500_CONFIG = WalkForwardConfig(train=252, test=21, step=21)


def factor_returns(t: int = 420, n: int = 8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    loadings = rng.normal(0, 1, (3, n))
    return 0.0003 + rng.standard_t(5, (t, 3)) @ loadings * 0.004 + rng.standard_t(5, (t, n)) * 0.01


@pytest.fixture(scope="module")
def sp500():
    from skfolio.datasets import load_sp500_dataset
    from skfolio.preprocessing import prices_to_returns

    return prices_to_returns(load_sp500_dataset())


# ------------------------------------------------------------------------------------------------- windows


def test_config_defaults_and_validation():
    config = WalkForwardConfig()
    assert (config.train, config.test, config.step, config.expanding) == (252, 20, 20, False)
    with pytest.raises(pydantic.ValidationError):
        config.train = 10  # frozen
    with pytest.raises(pydantic.ValidationError):
        WalkForwardConfig(train=1)
    with pytest.raises(pydantic.ValidationError):
        WalkForwardConfig(step=0)
    with pytest.raises(pydantic.ValidationError):
        WalkForwardConfig(lookback=5)  # unknown keys rejected


@pytest.mark.parametrize("n", [0, 29, 30, 31, 47, 100])
@pytest.mark.parametrize("train, test, step", [(20, 10, 10), (20, 10, 3), (5, 1, 1), (20, 10, 25)])
@pytest.mark.parametrize("expanding", [False, True])
def test_windows_follow_the_definition(n, train, test, step, expanding):
    config = WalkForwardConfig(train=train, test=test, step=step, expanding=expanding)
    wins = windows(n, config)
    starts = list(range(train, n - test + 1, step))
    assert [w.index for w in wins] == list(range(len(starts)))
    assert len(wins) == (0 if n < train + test else len(starts))
    for w, i in zip(wins, starts, strict=True):
        assert w.train == slice(0 if expanding else i - train, i)
        assert w.test == slice(i, min(i + test, n))
        assert w.test.stop - w.test.start == test  # a start never exceeds n − test
        assert w.as_of == i - 1 == w.train.stop - 1  # the last train row
        assert w.train.stop == w.test.start  # train ends where the test begins: no overlap


@pytest.mark.parametrize("n", [31, 60, 97])
@pytest.mark.parametrize("train, test", [(10, 5), (12, 7), (30, 1)])
@pytest.mark.parametrize("expanding", [False, True])
def test_windows_equal_skfolio_walkforward(n, train, test, expanding):
    from skfolio.model_selection import WalkForward

    wins = windows(n, WalkForwardConfig(train=train, test=test, step=test, expanding=expanding))
    folds = list(WalkForward(train_size=train, test_size=test, expand_train=expanding).split(np.zeros((n, 2))))
    rows = np.arange(n)
    assert len(wins) == len(folds)
    for w, (train_idx, test_idx) in zip(wins, folds, strict=True):
        assert np.array_equal(rows[w.train], train_idx)
        assert np.array_equal(rows[w.test], test_idx)


def test_train_panel_is_the_train_rows_only():
    values = factor_returns(60, 3)
    dates = np.datetime64("2024-01-01", "D") + np.arange(60)
    panel = ReturnsPanel(values, dates, ("A", "B", "C"))
    w = windows(60, WalkForwardConfig(train=20, test=10, step=10))[2]
    sliced = train_panel(panel, w)
    np.testing.assert_array_equal(sliced.values, values[20:40])
    assert sliced.last_date == dates[w.as_of].astype(object)
    assert sliced.symbols == panel.symbols and not np.shares_memory(sliced.values, values)


# --------------------------------------------------------------------------------------- allocate_windows


def test_allocator_sees_a_readonly_copy_of_the_train_rows_only():
    returns = factor_returns()
    wins = windows(len(returns), WalkForwardConfig(train=60, test=20, step=20))
    seen = []

    def spy(train):
        assert not train.flags.writeable
        assert train.base is None or not np.shares_memory(train, returns)
        seen.append(train)
        return np.full(train.shape[1], 1.0 / train.shape[1])

    weights = allocate_windows(returns, wins, spy)
    assert weights.shape == (len(wins), returns.shape[1])
    assert len(seen) == len(wins)
    for w, train in zip(wins, seen, strict=True):
        np.testing.assert_array_equal(train, returns[w.train])


def test_allocate_windows_rejects_bad_inputs():
    returns = factor_returns(100, 4)
    wins = windows(100, WalkForwardConfig(train=30, test=10, step=10))
    with pytest.raises(ValueError, match="finite weights"):
        allocate_windows(returns, wins, lambda train: np.ones(3))
    with pytest.raises(ValueError, match="finite weights"):
        allocate_windows(returns, wins, lambda train: np.full(4, np.nan))
    with pytest.raises(ValueError, match="outside"):
        allocate_windows(returns[:50], wins, lambda train: np.ones(4) / 4)
    with pytest.raises(ValueError, match=r"\(T, N\)"):
        allocate_windows(returns[:, 0], wins, lambda train: np.ones(1))
    assert allocate_windows(returns, [], lambda train: np.ones(4)).shape == (0, 4)


ALLOCATORS = {
    "hrp_fast": lambda r, wins: hrp_walkforward(r, wins),
    "min_variance_fast": lambda r, wins: min_variance_walkforward(r, wins),
    "engine_hrp_capped": lambda r, wins: allocate_windows(r, wins, engine_allocator(RiskProfile.HRP)),
    "engine_max_sharpe": lambda r, wins: allocate_windows(r, wins, engine_allocator(RiskProfile.MAX_SHARPE, UNCAPPED)),
}


@pytest.mark.parametrize("expanding", [False, True])
@pytest.mark.parametrize("name", list(ALLOCATORS))
def test_no_look_ahead_across_windows(name, expanding):
    """Perturb every return after window k's train end: windows ≤ k are bit-for-bit unchanged."""
    returns = factor_returns()
    wins = windows(len(returns), WalkForwardConfig(train=60, test=20, step=20, expanding=expanding))
    run = ALLOCATORS[name]
    before = run(returns, wins)
    rng = np.random.default_rng(7)
    for k in (0, 5, len(wins) - 2):
        perturbed = returns.copy()
        end = wins[k].train.stop
        perturbed[end:] = perturbed[end:] * 3.0 + rng.normal(0, 0.02, perturbed[end:].shape)
        after = run(perturbed, wins)
        np.testing.assert_array_equal(after[: k + 1], before[: k + 1])
        assert np.abs(after[k + 1 :] - before[k + 1 :]).max() > 1e-6  # the future did change later windows


# ------------------------------------------------------------------------------- parity: engine and skfolio


@pytest.mark.parametrize("profile", [RiskProfile.HRP, RiskProfile.MIN_VARIANCE])
def test_fast_paths_equal_the_engines_single_fit_per_window(sp500, profile):
    returns = sp500.to_numpy()[-(252 + 40 * 21) :]
    wins = windows(len(returns), SP500_CONFIG)
    fast = {RiskProfile.HRP: hrp_walkforward, RiskProfile.MIN_VARIANCE: min_variance_walkforward}[profile]
    ours = fast(returns, wins)
    engine = allocate_windows(returns, wins, engine_allocator(profile, UNCAPPED))
    assert ours.shape == (40, 20)
    assert np.abs(ours - engine).max() <= 1e-10
    assert np.abs(ours.sum(axis=1) - 1).max() <= 1e-12 and ours.min() >= 0


def test_min_variance_warm_rounds_match_solve_qp(sp500):
    """Both routes give the same exact weights: the warm active-set rounds serve most windows, solve_qp the rest."""
    returns = sp500.to_numpy()[: 252 + 60 * 21]
    wins = windows(len(returns), SP500_CONFIG)
    warm = MinVarianceAllocator()
    weights = allocate_windows(returns, wins, warm)
    assert warm.qp_solves >= 1 and warm.warm_rounds > len(wins) // 2
    for k, w in enumerate(wins):
        cold = MinVarianceAllocator()
        assert np.abs(cold(returns[w.train]) - weights[k]).max() <= 1e-10
        assert cold.qp_solves == 1


def test_min_variance_allocator_follows_a_changing_universe():
    returns = factor_returns(300, 8)
    allocate = MinVarianceAllocator()
    for columns in (slice(0, 8), slice(0, 5), slice(2, 8), slice(0, 1)):
        w = allocate(returns[-252:, columns])
        reference = MinVarianceAllocator()(returns[-252:, columns])  # cold: solve_qp
        assert w.shape == reference.shape and np.abs(w - reference).max() <= 1e-10


def test_hrp_and_min_variance_parity_with_skfolio_cross_val_predict(sp500):
    frame = sp500.iloc[: 252 + 10 * 21]
    returns = frame.to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hrp = skfolio_walkforward(frame, SP500_CONFIG, skfolio_estimator(RiskProfile.HRP))
        minvar = skfolio_walkforward(frame, SP500_CONFIG, skfolio_estimator(RiskProfile.MIN_VARIANCE))
    wins = windows(len(returns), SP500_CONFIG)
    assert hrp.shape == minvar.shape == (10, 20)
    assert np.abs(hrp_walkforward(returns, wins) - hrp).max() <= 1e-6
    assert np.abs(min_variance_walkforward(returns, wins) - minvar).max() <= 1e-6


def test_skfolio_reference_needs_step_equal_test():
    with pytest.raises(ValueError, match="step == test"):
        skfolio_walkforward(np.zeros((50, 2)), WalkForwardConfig(train=10, test=5, step=3), None)
    with pytest.raises(ValueError, match="no skfolio"):
        skfolio_estimator(RiskProfile.RISK_PARITY, CovarianceConfig())


def test_window_is_a_plain_value():
    w = Window(3, slice(10, 30), slice(30, 40))
    assert w.as_of == 29 and w == Window(3, slice(10, 30), slice(30, 40))
