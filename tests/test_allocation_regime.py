"""Regime detection: the noise calibration (iid noise is mostly NORMAL), crafted regimes, edge inputs, determinism."""

from __future__ import annotations

import dataclasses
import math
import time
from collections import Counter

import numpy as np
import pytest
import scipy.stats as st

from tsp_platform.allocation import regime as regime_module
from tsp_platform.allocation.regime import RegimeReading, detect_regime, entropy_null
from tsp_platform.config.allocation import Regime, RegimeConfig

CFG = RegimeConfig()
S = CFG.short_window
BASE_VOL = 0.01
NOISE_VOLS = (0.005, 0.01, 0.03)
NOISE_LENGTHS = (252, 300, 500)
NOISE_SEEDS = range(300)
CRAFT_SEEDS = range(200)


def noise(seed, n: int, vol: float = BASE_VOL) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(n) * vol


def last_month(seed: int, mult: float, drift: float = 0.0, exact: bool = False, n: int = 300) -> np.ndarray:
    """iid noise at BASE_VOL, whose last S returns are drift + mult·BASE_VOL·shock (shock standardised if exact)."""
    x = noise(seed, n)
    shock = np.random.default_rng([seed, 7]).standard_normal(S)
    if exact:  # sample mean 0 and sample std 1: the month's vol and drift are exactly as stated
        shock = (shock - shock.mean()) / shock.std(ddof=1)
    x[-S:] = drift + mult * BASE_VOL * shock
    return x


def ar_tail(seed: int, phi: float, n: int = 300, m: int = 64) -> np.ndarray:
    """iid noise whose last m returns are an AR(1) with coefficient phi, rescaled to BASE_VOL (vol unchanged)."""
    x = noise(seed, n)
    e = np.random.default_rng([seed, 9]).standard_normal(m)
    y = np.empty(m)
    y[0] = e[0]
    for t in range(1, m):
        y[t] = phi * y[t - 1] + e[t]
    x[-m:] = y * BASE_VOL / y.std(ddof=1)
    return x


def shares(readings: list[RegimeReading]) -> dict[str, float]:
    counts = Counter(r.regime.value for r in readings)
    return {label.value: counts.get(label.value, 0) / len(readings) for label in Regime}


def same_reading(a: RegimeReading, b: RegimeReading) -> bool:
    for f in dataclasses.fields(RegimeReading):
        u, v = getattr(a, f.name), getattr(b, f.name)
        if isinstance(u, float) and math.isnan(u):
            if not (isinstance(v, float) and math.isnan(v)):
                return False
        elif u != v:
            return False
    return True


@pytest.fixture(scope="module")
def noise_readings() -> dict[tuple[float, int], list[RegimeReading]]:
    return {
        (vol, n): [detect_regime(noise([seed, n, int(vol * 1e4)], n, vol), CFG) for seed in NOISE_SEEDS]
        for vol in NOISE_VOLS
        for n in NOISE_LENGTHS
    }


# --------------------------------------------------------------------------------------------------------------
# Noise calibration


def test_iid_noise_is_mostly_normal(noise_readings):
    print("\nregime shares on iid Gaussian noise (300 windows per cell)")
    for (vol, n), readings in noise_readings.items():
        cell = shares(readings)
        print(f"  vol {vol:.3f} n {n}: " + ", ".join(f"{k} {v:.3f}" for k, v in cell.items()))
        assert cell["NORMAL"] >= 0.9, (vol, n, cell)
        assert cell["CRISIS"] == 0.0, (vol, n, cell)
    overall = shares([r for readings in noise_readings.values() for r in readings])
    print("  overall: " + ", ".join(f"{k} {v:.4f}" for k, v in overall.items()))
    assert overall["NORMAL"] >= 0.95
    assert overall["QUIET"] <= 0.03 and overall["TURBULENT"] <= 0.02


def test_noise_components_are_centred(noise_readings):
    readings = [r for rs in noise_readings.values() for r in rs]
    col = {f: np.array([getattr(r, f) for r in readings]) for f in ("vol_ratio", "vol_z", "drift_z", "turbulence",
                                                                     "entropy_z", "score", "fine_share")}
    for name in ("vol_z", "drift_z", "turbulence", "entropy_z", "score"):
        mean, sd = col[name].mean(), col[name].std()
        print(f"  {name}: mean {mean:+.3f} sd {sd:.3f}")
        assert abs(mean) < 0.1, name
        assert 0.9 < sd < 1.1, name
    assert 0.95 < np.median(col["vol_ratio"]) < 1.02
    # the DWT fine share sits at its noise expectation, so the turbulence is a z-score around 0, not a share ≈ 7/8
    expected = readings[0].fine_share_expected
    assert abs(col["fine_share"].mean() - expected) < 0.01
    assert (col["turbulence"] >= CFG.turbulent_turbulence).mean() < 0.01


@pytest.mark.parametrize(("wavelet", "level"), [("haar", 1), ("haar", 3), ("db4", 1), ("db4", 2), ("sym5", 2)])
def test_turbulence_is_standard_normal_on_noise(wavelet, level):
    """fine_share ~ Beta exactly on Gaussian noise, so turbulence = Φ⁻¹(Beta CDF) is N(0, 1) at any level."""
    config = RegimeConfig(wavelet=wavelet, turbulence_level=level)
    z = np.array([detect_regime(noise([seed, 3], 200, 0.02), config).turbulence for seed in range(600)])
    assert st.kstest(z, "norm").pvalue > 0.001, (wavelet, level, z.mean(), z.std())


def test_older_haar_share_bug_is_gone():
    """The older detector's Haar level-3 detail share ≈ 7/8 on noise (> 0.7 almost always, so 'TURBULENT').

    The same quantity is `fine_share` here; its noise expectation is stated and the turbulence is centred on it.
    """
    config = RegimeConfig(wavelet="haar", turbulence_level=3)
    readings = [detect_regime(noise([seed, 5], 300), config) for seed in range(600)]
    share = np.array([r.fine_share for r in readings])
    z = np.array([r.turbulence for r in readings])
    print(f"\n  Haar level-3 fine share on noise: mean {share.mean():.3f} (> 0.7: {(share > 0.7).mean():.1%}); "
          f"expected {readings[0].fine_share_expected:.3f}; turbulence mean {z.mean():+.3f} sd {z.std():.3f}")
    assert 0.86 < share.mean() < 0.90
    assert (share > 0.7).mean() > 0.95  # what made the old detector call nearly everything TURBULENT
    assert readings[0].fine_share_expected == pytest.approx(56 / 63)  # 56 fine coefficients, 7 approximation dof
    assert abs(z.mean()) < 0.1 and 0.9 < z.std() < 1.1
    assert shares(readings)["NORMAL"] >= 0.9


def test_entropy_null_matches_noise():
    mean0, sd0 = entropy_null(3, 64)
    assert 0.98 < mean0 < 0.99  # bias ≈ (3! − 1)/(2·62·ln 3!) below 1, overlap-corrected
    assert 0.010 < sd0 < 0.016


# --------------------------------------------------------------------------------------------------------------
# Crafted regimes


def test_volatility_spike_is_turbulent():
    exact = [detect_regime(last_month(seed, 2.0, exact=True), CFG) for seed in range(30)]
    assert all(r.regime is Regime.TURBULENT for r in exact), [r.reason for r in exact if r.regime != Regime.TURBULENT]
    assert all("volatility up" in r.reason for r in exact)
    drawn = shares([detect_regime(last_month(seed, 2.0), CFG) for seed in CRAFT_SEEDS])
    print(f"\n  2× vol month (random shocks): {drawn}")
    assert drawn["TURBULENT"] >= 0.85 and drawn["QUIET"] == 0.0


def test_violent_month_without_loss_is_turbulent_not_crisis():
    readings = [detect_regime(last_month(seed, 3.0, exact=True), CFG) for seed in range(30)]
    assert all(r.regime is Regime.TURBULENT for r in readings)
    assert all(r.vol_ratio >= CFG.crisis_vol_ratio for r in readings)  # extreme vol alone is not a crisis


def test_crash_is_crisis():
    """3× vol with −1.5 %/day (≈ −30 % over the month)."""
    exact = [detect_regime(last_month(seed, 3.0, drift=-0.015, exact=True), CFG) for seed in range(30)]
    assert all(r.regime is Regime.CRISIS for r in exact), [r.reason for r in exact if r.regime is not Regime.CRISIS]
    assert all(r.drift_z <= CFG.crisis_drift_z and r.vol_ratio >= CFG.crisis_vol_ratio for r in exact)
    drawn = shares([detect_regime(last_month(seed, 3.0, drift=-0.015), CFG) for seed in CRAFT_SEEDS])
    print(f"\n  crash month (random shocks): {drawn}")
    assert drawn["CRISIS"] >= 0.75
    assert drawn["NORMAL"] == 0.0 and drawn["QUIET"] == 0.0  # the rest is TURBULENT


def test_rally_at_high_vol_is_not_crisis():
    readings = [detect_regime(last_month(seed, 3.0, drift=+0.015, exact=True), CFG) for seed in range(30)]
    assert all(r.regime is Regime.TURBULENT for r in readings)


def test_volatility_collapse_is_quiet():
    exact = [detect_regime(last_month(seed, 0.4, exact=True), CFG) for seed in range(30)]
    assert sum(r.regime is Regime.QUIET for r in exact) >= 28
    drawn = shares([detect_regime(last_month(seed, 0.4), CFG) for seed in CRAFT_SEEDS])
    print(f"\n  0.4× vol month (random shocks): {drawn}")
    assert drawn["QUIET"] >= 0.95


def test_choppy_reversals_are_turbulent_through_the_dwt():
    """AR(−0.6) at unchanged vol: vol_ratio says nothing, the fine-scale energy share does."""
    readings = [detect_regime(ar_tail(seed, -0.6), CFG) for seed in CRAFT_SEEDS]
    turb = np.array([r.turbulence for r in readings])
    print(f"\n  AR(−0.6) tail: turbulence mean {turb.mean():+.2f}; {shares(readings)}")
    assert turb.mean() > 3.5
    assert shares(readings)["TURBULENT"] >= 0.75
    assert any("fine-scale energy" in r.reason for r in readings)


def test_persistence_reads_as_negative_turbulence():
    readings = [detect_regime(ar_tail(seed, 0.5), CFG) for seed in CRAFT_SEEDS]
    assert np.mean([r.turbulence for r in readings]) < -2.5
    assert shares(readings)["NORMAL"] >= 0.9


# --------------------------------------------------------------------------------------------------------------
# Edge inputs


@pytest.mark.parametrize("n", [0, 1, 10, CFG.min_history - 1])
def test_short_history_is_normal(n):
    reading = detect_regime(noise(1, n), CFG)
    assert reading.regime is Regime.NORMAL
    assert "insufficient history" in reading.reason
    assert reading.n_obs == n and math.isnan(reading.vol_ratio) and math.isnan(reading.score)


def test_history_shorter_than_long_window_uses_what_exists():
    x = noise(2, 100)
    reading = detect_regime(x, CFG)
    assert reading.n_obs == 100
    assert reading.vol_ratio == pytest.approx(np.std(x[-S:], ddof=1) / np.std(x, ddof=1))
    spiked = x.copy()
    spiked[-S:] = 2.5 * spiked[-S:]
    assert detect_regime(spiked, CFG).regime is Regime.TURBULENT
    at_minimum = detect_regime(noise(3, CFG.min_history), CFG)
    assert math.isfinite(at_minimum.turbulence) and math.isfinite(at_minimum.entropy)


def test_nans_are_ignored():
    x = noise(4, 400)
    holed = x.copy()
    holes = np.random.default_rng(5).choice(400, 120, replace=False)
    holed[holes] = np.nan
    assert same_reading(detect_regime(holed, CFG), detect_regime(x[~np.isnan(holed)], CFG))
    assert "insufficient history" in detect_regime(np.full(300, np.nan), CFG).reason
    sparse = np.full(300, np.nan)
    sparse[::10] = noise(6, 30)
    assert detect_regime(sparse, CFG).n_obs == 30


def test_constant_series():
    for x in (np.zeros(300), np.full(300, 0.001)):
        reading = detect_regime(x, CFG)
        assert reading.regime is Regime.NORMAL and "zero variance" in reading.reason
    frozen = noise(7, 300)
    frozen[-S:] = 0.0  # trading halted / stale: the short window has no variance, the history has
    reading = detect_regime(frozen, CFG)
    assert reading.regime is Regime.QUIET and reading.vol_ratio == 0.0
    assert math.isfinite(reading.vol_z) and math.isfinite(reading.score)


def test_bad_inputs_raise():
    x = noise(8, 300)
    x[5] = np.inf
    with pytest.raises(ValueError, match="inf"):
        detect_regime(x, CFG)
    with pytest.raises(ValueError, match="1-D"):
        detect_regime(noise(8, 300).reshape(-1, 1), CFG)
    with pytest.raises(ValueError, match="orthogonal"):
        detect_regime(noise(8, 300), RegimeConfig(wavelet="bior2.2"))
    with pytest.raises(ValueError, match="unknown wavelet"):
        detect_regime(noise(8, 300), RegimeConfig(wavelet="nope"))
    with pytest.raises(ValueError, match="min_history"):
        detect_regime(noise(8, 300), RegimeConfig(short_window=63))
    with pytest.raises(ValueError, match="turbulent_vol_ratio"):
        detect_regime(noise(8, 300), RegimeConfig(turbulent_vol_ratio=2.0, crisis_vol_ratio=1.9))


# --------------------------------------------------------------------------------------------------------------
# Determinism, invariance, speed


def test_deterministic():
    x = last_month(11, 2.0)
    first = detect_regime(x, CFG)
    entropy_null.cache_clear()
    second = detect_regime(x.copy(), CFG)
    assert same_reading(first, second)
    assert first == second  # no NaN in a full reading: plain dataclass equality holds


def test_scale_invariant():
    x = last_month(12, 2.0, drift=-0.01)
    a, b = detect_regime(x, CFG), detect_regime(x * 37.0, CFG)
    assert a.regime is b.regime
    for name in ("vol_ratio", "drift_z", "entropy", "turbulence", "score"):
        assert getattr(a, name) == pytest.approx(getattr(b, name), rel=1e-9, abs=1e-12), name


def test_reading_is_frozen_and_reasoned():
    reading = detect_regime(noise(13, 300), CFG)
    with pytest.raises(dataclasses.FrozenInstanceError):
        reading.regime = Regime.CRISIS  # type: ignore[misc]
    assert reading.reason.startswith(reading.regime.value + ":")
    assert "vol_ratio" in reading.reason and "turbulence" in reading.reason


def test_fast():
    x = noise(14, 500)
    detect_regime(x, CFG)  # builds the cached entropy null once
    t0 = time.perf_counter()
    for _ in range(200):
        detect_regime(x, CFG)
    per_call = (time.perf_counter() - t0) / 200
    assert per_call < 0.005, per_call


def test_module_exposes_no_cluster_cap():
    assert not hasattr(regime_module, "cluster_cap")  # AllocationConfig.cluster_caps owns it
