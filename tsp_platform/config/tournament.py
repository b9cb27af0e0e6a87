"""A profile's tournament: its walk-forward windows, history span, the cell matrix and the scoreboard gates."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, field_validator, model_validator

from tsp_platform.config.allocation import EngineName, RiskProfile
from tsp_platform.core.frozen import FrozenConfig

# The cell group of the baseline rows (every other group is one allocation engine's cells).
BASELINE_GROUP = "baseline"
# Allocation profiles a cell can run (the baselines `market` / `benchmark` are first-class baseline rows instead).
CELL_RISK_PROFILES = tuple(p for p in RiskProfile if p not in (RiskProfile.MARKET, RiskProfile.BENCHMARK))


class SimulatorName(StrEnum):
    CUSTOM = "custom"
    CVXPORTFOLIO = "cvxportfolio"
    NAUTILUS = "nautilus"


class WalkForwardConfig(FrozenConfig):
    train: int = Field(252, ge=2, description="train rows per window (rolling; from row 0 when expanding)")
    test: int = Field(20, ge=1, description="test rows per window")
    step: int = Field(20, ge=1, description="rows between consecutive test starts")
    expanding: bool = Field(False, description="train on [0, i) instead of [i − train, i)")


class ScoreboardGates(FrozenConfig):
    """Thresholds of the strict scoreboard; None disables a gate."""

    max_friction_decay: float | None = Field(
        0.30, allow_inf_nan=False, description="1 − Sharpe with costs / Sharpe without costs"
    )
    max_sharpe_dispersion: float | None = Field(
        1.5, ge=0, allow_inf_nan=False, description="std across walk-forward windows of the Sharpe t-statistics (1 ≈ sampling noise)"
    )
    min_selection_overlap: float | None = Field(
        0.30, ge=0, le=1, allow_inf_nan=False, description="mean Jaccard of consecutive windows' selected sets"
    )
    max_avg_turnover: float | None = Field(
        0.5, ge=0, allow_inf_nan=False, description="mean one-way turnover per rebalance"
    )
    max_tail_risk_ratio: float | None = Field(
        1.25, gt=0, allow_inf_nan=False, description="max(CVaR95, max drawdown) of the cell as a multiple of market's"
    )
    max_parity_gap: float | None = Field(
        0.015, ge=0, allow_inf_nan=False, description="absolute annual-return gap between simulators"
    )

    def gates(self) -> tuple[tuple[str, str, float], ...]:
        """(metric column, "le" | "ge", threshold) of every enabled gate, in table order."""
        table = (
            ("friction_decay", "le", self.max_friction_decay),
            ("sharpe_dispersion", "le", self.max_sharpe_dispersion),
            ("selection_overlap", "ge", self.min_selection_overlap),
            ("avg_turnover", "le", self.max_avg_turnover),
            ("tail_risk_ratio", "le", self.max_tail_risk_ratio),
            ("parity_gap", "le", self.max_parity_gap),
        )
        return tuple((metric, op, threshold) for metric, op, threshold in table if threshold is not None)


class TournamentConfig(FrozenConfig):
    """The tournament matrix is scorer × risk profile × engine × simulator, plus the three baselines."""

    history_days: int = Field(
        1100, ge=30, le=20000, description="calendar days before the as-of date the walk-forward runs over"
    )
    windows: WalkForwardConfig = WalkForwardConfig()
    scorers: tuple[str, ...] | None = Field(None, description="selection scorers to run (None: every scorer)")
    risk_profiles: tuple[RiskProfile, ...] = CELL_RISK_PROFILES
    engines: tuple[EngineName, ...] = tuple(EngineName)
    simulators: tuple[SimulatorName, ...] = tuple(SimulatorName)
    parity_reference: SimulatorName = Field(
        SimulatorName.CUSTOM, description="the simulator every other one's annual return is compared with"
    )
    gates: ScoreboardGates = ScoreboardGates()

    def cell_groups(self) -> tuple[str, ...]:
        """The tournament's cell groups, each one fan-out unit: one per allocation engine, then the baselines."""
        return (*(engine.value for engine in self.engines), BASELINE_GROUP)

    @field_validator("risk_profiles")
    @classmethod
    def _cell_profiles(cls, value: tuple[RiskProfile, ...]) -> tuple[RiskProfile, ...]:
        baselines = [p.value for p in value if p not in CELL_RISK_PROFILES]
        if baselines:
            raise ValueError(f"{baselines} are baselines (always scored as baseline rows), not cell risk profiles")
        return value

    @field_validator("risk_profiles", "engines", "simulators", "scorers")
    @classmethod
    def _distinct(cls, value):
        if value is not None and (not value or len(set(value)) != len(value)):
            raise ValueError("must list distinct values, at least one")
        return value

    @model_validator(mode="after")
    def _reference_runs(self) -> "TournamentConfig":
        if self.parity_reference not in self.simulators:
            raise ValueError(f"parity_reference {self.parity_reference.value!r} is not one of the simulators")
        return self
