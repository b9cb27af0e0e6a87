"""A profile's tournament: its walk-forward windows, history span, the cell matrix and the scoreboard gates."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, field_validator, model_validator

from tsp_platform.allocation.config import EngineName, RiskProfile
from tsp_platform.frozen import FrozenConfig
from tsp_platform.tournament.scoreboard import ScoreboardGates
from tsp_platform.tournament.walkforward import WalkForwardConfig

# Allocation profiles a cell can run (the baselines `market` / `benchmark` are first-class baseline rows instead).
CELL_RISK_PROFILES = tuple(p for p in RiskProfile if p not in (RiskProfile.MARKET, RiskProfile.BENCHMARK))


class SimulatorName(StrEnum):
    CUSTOM = "custom"
    CVXPORTFOLIO = "cvxportfolio"
    NAUTILUS = "nautilus"


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
