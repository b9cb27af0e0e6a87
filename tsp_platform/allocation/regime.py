"""Market regime detection: QUIET / NORMAL / TURBULENT / CRISIS, calibrated so that iid noise reads NORMAL.

`detect_regime(returns, config)` reads one 1-D market return series (the caller chooses it: the equal-weight mean
of the atoms' train returns, or the benchmark) that is already cut at the as-of date, and returns a
`RegimeReading`: the label, every component, a combined score and a human-readable reason. The regime sizes
the barbell's aggressor sleeve and picks the cluster cap (`AllocationConfig.aggressor_sleeve` / `cluster_caps`).

Observations. NaN means "no session" and is dropped (the windows count observations, not calendar rows); ±inf
raises. `n` below is the number of valid observations.

Components (all on the last observations; S = short_window, L = min(long_window, n), R = min(recent_window, n)):

| component | definition | on iid noise |
|---|---|---|
| vol_ratio | std(last S) / std(last L), ddof = 1 | median ≈ 0.99; 1 %–99 % ≈ 0.66–1.35 (S = 21, L = 252) |
| vol_z | (ln vol_ratio − m₀) / s₀, m₀, s₀ the exact χ² log-moments (`log_vol_ratio_null`), clipped ±10 | ≈ N(0, 1) |
| drift_z | Σ(last S) / (std(last L)·√S): the month's cumulative return in long-run sd units | ≈ N(0, 1) |
| entropy | normalised permutation entropy (order `entropy_order`, delay 1) of the last R | ≈ 0.984 (order 3, R = 64) |
| entropy_z | (entropy − E₀) / sd₀, E₀ and sd₀ from a seeded Monte-Carlo null | ≈ 0 mean, sd 1 (left-skewed) |
| fine_share | energy share of detail levels 1..`turbulence_level` in the DWT of the demeaned last R′ | k_f / (R′ − 1) |
| turbulence | Φ⁻¹ of the exact null CDF of fine_share (a z-score) | exactly N(0, 1) (Gaussian) |
| score | (vol_z + turbulence − drift_z − entropy_z) / √(#finite terms) | ≈ N(0, 1) |

DWT turbulence. The last R′ = R rounded down to a multiple of 2^level returns are demeaned and decomposed with an
orthogonal wavelet (`wavelet`, default db4) in periodization mode. That transform is orthonormal, and its detail
coefficients ignore a constant, so for iid Gaussian noise the k_f fine coefficients (levels 1..level, R′ − R′/2^level
of them) and the R′/2^level − 1 remaining degrees of freedom of the approximation are iid N(0, σ²): fine_share
~ Beta(k_f/2, (R′/2^level − 1)/2) exactly, whatever σ. `turbulence` maps it through that CDF and Φ⁻¹, so it is a
standard normal on noise at any vol, window or level. It rises when short-period energy dominates (choppy,
mean-reverting whipsaw: an AR(1) with φ = −0.6 over the recent window reads ≈ +4) and falls with persistence
(φ = +0.5 reads ≈ −3.4). The ordinal
patterns and the scale shares are both scale-free, so neither moves with the volatility level itself; that is
vol_ratio's job. The older MarketRegimeDetector compared the raw Haar level-3 detail share (≈ 7/8 on noise, so
99 % of noise windows were above its 0.7 threshold) to a fixed threshold: the same quantity is `fine_share` here
with wavelet = haar, level = 3 (expectation 56/63 ≈ 0.889 after demeaning 64 points), and its `turbulence` is
≈ N(0, 1) on noise.

Permutation entropy is distribution-free under any continuous iid law (every ordinal pattern is equally likely),
so its null (mean and sd at each window length, 4000 seeded noise windows) is exact up to Monte-Carlo error and
is computed once per (order, R) and cached.

Classification (first match wins):

1. fewer than `min_history` valid returns → NORMAL, reason "insufficient history"; std(last L) = 0 (a constant
   series) → NORMAL, reason "zero variance" (no information, components NaN).
2. CRISIS: vol_ratio ≥ crisis_vol_ratio **and** drift_z ≤ crisis_drift_z (extreme volatility with a large loss
   over the short window).
3. TURBULENT: vol_ratio ≥ turbulent_vol_ratio, **or** turbulence ≥ turbulent_turbulence (fine-scale energy
   clearly above the noise expectation).
4. QUIET: vol_ratio ≤ quiet_vol_ratio **and** turbulence < quiet_max_turbulence (NaN turbulence counts as low).
5. NORMAL otherwise.

Entropy and score are reported, not gates. Ordinal patterns do not see a volatility change at all, and the
entropy drops both for trends (a calm bull market) and for tied returns (stale prices): as a gate it would flag
calm or stale data as stress. It enters the score, which ranks "how unlike noise, in the stressed direction".

Calibration of the defaults (tests/test_allocation_regime.py prints the shares):
- thresholds sit in the tails of the iid-noise law of vol_ratio (S = 21, L = 252: 1 % / 99 % / 99.9 % quantiles
  ≈ 0.66 / 1.35 / 1.46): quiet 0.65 (≈ 1 %), turbulent 1.4 (≈ 0.5 %); turbulence ≥ 3 is 0.13 %;
- crisis 1.8: a 3×-vol month reads only ≈ 2.2 because the long window contains it (and its drift); crisis_drift_z
  −2.5 is a month's loss of 2.5 long-run sds (≈ −11 % at 1 % daily vol);
- iid Gaussian noise, daily vols 0.5 %, 1 %, 3 %, n = 252, 300, 500 (2700 windows): NORMAL 98.6 %, QUIET 0.8 %,
  TURBULENT 0.6 %, CRISIS 0; every (vol, n) cell ≥ 97 % NORMAL; n = 63–200 alike. Fat tails widen the law of
  a 21-day std: Student-t(4) noise is ≈ 89 % NORMAL, t(3) ≈ 79 % (QUIET ≈ 14 %, TURBULENT ≈ 7 %);
- crafted last months (base vol 1 %, n = 300): 2× vol → TURBULENT (exactly standardised shocks: always; random
  shocks: 92 %, the rest NORMAL 5 % / CRISIS 3 % when the draw lost heavily); 3× vol at −1.5 %/day (≈ −30 %)
  → CRISIS (exact: always; random: 82 %, the rest TURBULENT); 3× vol with no drift, or a rally → TURBULENT;
  0.4× vol → QUIET (99 %); a short window with zero variance (stale prices) → QUIET.

Cost: ≈ 0.2 ms a call (one pywt.wavedec, one ordinal-pattern bincount, no Python loop over observations); the
first call for a new (order, R) builds the cached entropy null once (≈ 15 ms).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pywt
from scipy.special import betainc, betaincc, digamma, ndtri, polygamma

from tsp_platform.config.allocation import Regime, RegimeConfig
from tsp_platform.selection.features import permutation_entropy

DEGENERATE_RTOL = 1e-12  # std ≤ this × max|r| counts as zero variance
ENTROPY_NULL_DRAWS = 4000
ENTROPY_NULL_SEED = 20240611
Z_CLIP = 10.0  # |vol_z|, |turbulence| clipped here: no extra information beyond, and no ±inf (ln 0, Φ⁻¹(0))


@dataclass(frozen=True)
class RegimeReading:
    """The regime and the components it was read from (NaN where a component could not be computed)."""

    regime: Regime
    vol_ratio: float
    vol_z: float
    drift_z: float
    entropy: float
    entropy_expected: float  # noise expectation at this window length and order
    entropy_z: float
    turbulence: float  # z-score of fine_share against its exact iid-noise distribution
    fine_share: float
    fine_share_expected: float
    score: float
    n_obs: int
    reason: str


def check_config(config: RegimeConfig) -> None:
    """The cross-field constraints the pydantic fields cannot state alone."""
    problems = []
    if not config.short_window < config.min_history <= config.long_window:
        problems.append(
            f"need short_window < min_history ≤ long_window, got {config.short_window}, {config.min_history}, "
            f"{config.long_window}"
        )
    if not config.quiet_vol_ratio < 1.0 < config.turbulent_vol_ratio <= config.crisis_vol_ratio:
        problems.append(
            f"need quiet_vol_ratio < 1 < turbulent_vol_ratio ≤ crisis_vol_ratio, got {config.quiet_vol_ratio}, "
            f"{config.turbulent_vol_ratio}, {config.crisis_vol_ratio}"
        )
    if config.recent_window < config.entropy_order + 2:
        problems.append(f"recent_window {config.recent_window} too short for entropy order {config.entropy_order}")
    try:
        wavelet = pywt.Wavelet(config.wavelet)
    except ValueError:
        problems.append(f"unknown wavelet {config.wavelet!r}")
    else:
        if not wavelet.orthogonal:
            problems.append(f"wavelet {config.wavelet!r} is not orthogonal (the noise null needs an orthogonal one)")
    if problems:
        raise ValueError("invalid RegimeConfig: " + "; ".join(problems))


def detect_regime(returns: np.ndarray, config: RegimeConfig) -> RegimeReading:
    """Classify the regime at the end of `returns` (1-D, up to the as-of date). Rules: see the module docstring."""
    check_config(config)
    x = np.asarray(returns, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"expected a 1-D return series, got shape {x.shape}")
    if np.isinf(x).any():
        raise ValueError("returns contain ±inf; NaN is the only missing-value marker")
    x = x[~np.isnan(x)]
    n = x.size
    if n < config.min_history:
        return _neutral(n, f"insufficient history: {n} valid returns < min_history {config.min_history}")

    s_win, l_win = config.short_window, min(config.long_window, n)
    short, long = x[-s_win:], x[-l_win:]
    std_long = float(np.std(long, ddof=1))
    if std_long <= DEGENERATE_RTOL * float(np.max(np.abs(long))):  # also catches std 0 of an all-zero series
        return _neutral(n, f"zero variance over the last {l_win} returns: no volatility information")
    std_short = float(np.std(short, ddof=1))
    if std_short <= DEGENERATE_RTOL * float(np.max(np.abs(long))):
        std_short = 0.0
    vol_ratio = std_short / std_long
    vol_bias, vol_sd = log_vol_ratio_null(s_win, l_win)
    vol_z = float(np.clip((math.log(vol_ratio) - vol_bias) / vol_sd, -Z_CLIP, Z_CLIP)) if vol_ratio > 0 else -Z_CLIP
    drift_z = float(short.sum()) / (std_long * math.sqrt(s_win))

    recent = x[-min(config.recent_window, n) :]
    entropy, entropy_expected, entropy_z = _entropy(recent, config.entropy_order)
    turbulence, fine_share, fine_expected = _turbulence(recent, config.turbulence_level, config.wavelet)

    terms = np.array([vol_z, turbulence, -drift_z, -entropy_z])
    terms = terms[np.isfinite(terms)]
    score = float(terms.sum() / math.sqrt(terms.size)) if terms.size else math.nan

    regime, reason = _classify(vol_ratio, drift_z, turbulence, config)
    detail = (
        f"vol_ratio {vol_ratio:.2f}, drift_z {drift_z:+.2f}, turbulence {turbulence:+.2f}, "
        f"entropy {entropy:.3f} (noise {entropy_expected:.3f}), score {score:+.2f}, n {n}"
    )
    return RegimeReading(
        regime=regime,
        vol_ratio=vol_ratio,
        vol_z=vol_z,
        drift_z=drift_z,
        entropy=entropy,
        entropy_expected=entropy_expected,
        entropy_z=entropy_z,
        turbulence=turbulence,
        fine_share=fine_share,
        fine_share_expected=fine_expected,
        score=score,
        n_obs=n,
        reason=f"{regime.value}: {reason} [{detail}]",
    )


# --------------------------------------------------------------------------------------------------------------
# Rules


def _classify(vol_ratio: float, drift_z: float, turbulence: float, c: RegimeConfig) -> tuple[Regime, str]:
    turb_known = math.isfinite(turbulence)
    if vol_ratio >= c.crisis_vol_ratio and drift_z <= c.crisis_drift_z:
        return Regime.CRISIS, (
            f"extreme volatility (vol_ratio {vol_ratio:.2f} ≥ {c.crisis_vol_ratio}) with a large loss "
            f"(drift_z {drift_z:+.2f} ≤ {c.crisis_drift_z})"
        )
    if vol_ratio >= c.turbulent_vol_ratio:
        return Regime.TURBULENT, f"volatility up (vol_ratio {vol_ratio:.2f} ≥ {c.turbulent_vol_ratio})"
    if turb_known and turbulence >= c.turbulent_turbulence:
        return Regime.TURBULENT, (
            f"fine-scale energy above the noise expectation (turbulence {turbulence:+.2f} ≥ {c.turbulent_turbulence})"
        )
    if vol_ratio <= c.quiet_vol_ratio and not (turb_known and turbulence >= c.quiet_max_turbulence):
        return Regime.QUIET, (
            f"volatility down (vol_ratio {vol_ratio:.2f} ≤ {c.quiet_vol_ratio}) and turbulence low"
        )
    return Regime.NORMAL, "no threshold crossed"


def _neutral(n: int, reason: str) -> RegimeReading:
    nan = math.nan
    return RegimeReading(Regime.NORMAL, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, n, f"NORMAL: {reason}")


# --------------------------------------------------------------------------------------------------------------
# Components


def _turbulence(recent: np.ndarray, level: int, wavelet: str) -> tuple[float, float, float]:
    """(z-score, fine-band energy share, its noise expectation) of the demeaned recent window; NaN if undefined."""
    nan3 = (math.nan, math.nan, math.nan)
    block = 2**level
    m = (recent.size // block) * block
    coarse = m // block
    if coarse < 2 or level > pywt.dwt_max_level(m, pywt.Wavelet(wavelet).dec_len):
        return nan3  # too short for this level: at least one approximation degree of freedom, no boundary overrun
    y = recent[-m:] - recent[-m:].mean()
    coeffs = pywt.wavedec(y, wavelet, mode="periodization", level=level)
    e_coarse = float(np.dot(coeffs[0], coeffs[0]))
    e_fine = float(sum(np.dot(d, d) for d in coeffs[1:]))
    total = e_coarse + e_fine
    if not total > 0:
        return nan3
    a, b = (m - coarse) / 2.0, (coarse - 1) / 2.0  # fine coefficients, approximation dof left after demeaning
    share = e_fine / total
    expected = a / (a + b)
    # Φ⁻¹ of the Beta CDF, taken from the nearer tail so that neither side rounds to 0 or 1
    z = float(ndtri(betainc(a, b, share))) if share <= expected else -float(ndtri(betaincc(a, b, share)))
    return float(np.clip(z, -Z_CLIP, Z_CLIP)), share, expected


def log_vol_ratio_null(short: int, long: int) -> tuple[float, float]:
    """Mean and sd of ln(std(last short) / std(last long)) for iid Gaussian noise (nested windows).

    ln s = ½ ln(σ² χ²_ν / ν): mean ½(ψ(ν/2) − ln(ν/2)), variance ¼ ψ′(ν/2). The long window contains the short
    one, so Cov(ln s_short, ln s_long) ≈ Var(ln s_long) and the variance of the difference is the difference.
    """
    hs, hl = (short - 1) / 2.0, (long - 1) / 2.0
    mean = 0.5 * (float(digamma(hs)) - math.log(hs)) - 0.5 * (float(digamma(hl)) - math.log(hl))
    var = 0.25 * (float(polygamma(1, hs)) - float(polygamma(1, hl)))
    return mean, math.sqrt(max(var, 1e-12))


def _entropy(recent: np.ndarray, order: int) -> tuple[float, float, float]:
    """(entropy, noise expectation, z) of the recent window; NaN when it has zero variance or too few points."""
    if recent.size < order + 2 or np.ptp(recent) == 0.0:
        return math.nan, math.nan, math.nan
    h = float(permutation_entropy(recent[:, None], order)[0])
    mean0, sd0 = entropy_null(order, recent.size)
    return h, mean0, (h - mean0) / sd0 if sd0 > 0 else math.nan


@lru_cache(maxsize=64)
def entropy_null(order: int, length: int) -> tuple[float, float]:
    """Mean and sd of the normalised permutation entropy of `length` iid values (distribution-free), seeded."""
    draws = np.random.default_rng([ENTROPY_NULL_SEED, order, length]).standard_normal((length, ENTROPY_NULL_DRAWS))
    h = permutation_entropy(draws, order)
    return float(h.mean()), float(h.std(ddof=1))
