"""Allocation configuration. Defaults are pinned so that engines configured alike agree (parity tests)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from tsp_platform.core.frozen import FrozenConfig


class RiskProfile(StrEnum):
    EQUAL_WEIGHT = "equal_weight"
    MIN_VARIANCE = "min_variance"
    HRP = "hrp"
    RISK_PARITY = "risk_parity"  # equal risk contribution
    MAX_SHARPE = "max_sharpe"  # a true Sharpe-ratio maximisation
    BARBELL = "barbell"  # antifragile core + aggressor sleeve sized by regime
    MARKET_NEUTRAL = "market_neutral"  # beta to the benchmark inside a band; shorts allowed
    MARKET = "market"  # baseline: 100 % benchmark
    BENCHMARK = "benchmark"  # baseline: equal weight of the winners


class EngineName(StrEnum):
    CUSTOM = "custom"
    SKFOLIO = "skfolio"
    RISKFOLIO = "riskfolio"
    CVXPORTFOLIO = "cvxportfolio"


class Regime(StrEnum):
    QUIET = "QUIET"
    NORMAL = "NORMAL"
    TURBULENT = "TURBULENT"
    CRISIS = "CRISIS"


class CovarianceMethod(StrEnum):
    SAMPLE = "sample"
    LEDOIT_WOLF = "ledoit_wolf"


class Linkage(StrEnum):
    SINGLE = "single"
    WARD = "ward"


class CovarianceConfig(FrozenConfig):
    method: CovarianceMethod = CovarianceMethod.LEDOIT_WOLF
    max_condition: float = Field(1e4, gt=1, description="above this condition number a ridge is added")
    ridge_step: float = Field(0.01, gt=0, lt=1, description="ridge intensity increments (shrink towards the diagonal)")


class RegimeConfig(FrozenConfig):
    """Regime thresholds, calibrated so that iid noise is mostly NORMAL (tsp_platform/allocation/regime.py).

    Ratios are std(last short_window) / std(last long_window); *_z fields are in noise standard deviations.
    The cross-field constraints (short < min_history ≤ long, quiet < 1 < turbulent ≤ crisis, an orthogonal
    wavelet) are checked by `regime.check_config`.
    """

    short_window: int = Field(21, ge=5, description="recent volatility window (sessions)")
    long_window: int = Field(252, ge=30, description="reference volatility window (sessions)")
    recent_window: int = Field(64, ge=16, description="window of the permutation entropy and the DWT turbulence")
    min_history: int = Field(63, ge=10, description="fewer valid returns than this: NORMAL, 'insufficient history'")
    quiet_vol_ratio: float = Field(0.65, gt=0, description="≈ 1 % of iid-noise windows fall at or below it")
    turbulent_vol_ratio: float = Field(1.4, gt=0, description="≈ 0.5 % of iid-noise windows reach it")
    crisis_vol_ratio: float = Field(1.8, gt=0, description="a 3× volatility month reads ≈ 2.2 (long std includes it)")
    crisis_drift_z: float = Field(
        -2.5, lt=0, description="CRISIS also needs Σ(last short_window) / (std_long·√short_window) at or below this",
    )
    turbulent_turbulence: float = Field(3.0, gt=0, description="turbulence z at or above this: TURBULENT")
    quiet_max_turbulence: float = Field(2.5, description="QUIET needs turbulence z below this")
    entropy_order: int = Field(3, ge=2, le=6)
    turbulence_level: int = Field(1, ge=1, le=6, description="the finest detail levels 1..L form the 'fine' band")
    wavelet: str = Field("db4", description="an orthogonal PyWavelets wavelet (periodization mode)")


class AllocationConfig(FrozenConfig):
    profiles: tuple[RiskProfile, ...] = tuple(RiskProfile)
    engines: tuple[EngineName, ...] = tuple(EngineName)
    covariance: CovarianceConfig = CovarianceConfig()
    regime: RegimeConfig = RegimeConfig()
    window: int = Field(252, ge=30, description="trailing common sessions the estimators see")
    hrp_linkage: Linkage = Linkage.SINGLE
    max_weight: float = Field(0.25, gt=0, le=1, description="per-asset upper bound (long-only profiles)")
    cluster_caps: dict[Regime, float] = {
        Regime.QUIET: 0.25, Regime.NORMAL: 0.25, Regime.TURBULENT: 0.20, Regime.CRISIS: 0.15,
    }
    aggressor_sleeve: dict[Regime, float] = {
        Regime.QUIET: 0.15, Regime.NORMAL: 0.10, Regime.TURBULENT: 0.05, Regime.CRISIS: 0.03,
    }
    neutral_beta_band: float = Field(0.05, ge=0, description="|portfolio beta| must stay within this band")
    neutral_gross_max: float = Field(2.0, ge=1, description="Σ|w| bound of the market-neutral book")
    turnover_penalty: float = Field(0.001, ge=0, description="used only with feat_turnover_penalty")
    risk_free_rate: float = 0.0
