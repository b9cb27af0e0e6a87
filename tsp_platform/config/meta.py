"""Meta profiles: portfolios of other profiles' (sleeves') out-of-sample return streams."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from pydantic import Field, field_validator, model_validator

from tsp_platform.config.allocation import EngineName, RiskProfile
from tsp_platform.config.tournament import SimulatorName
from tsp_platform.core.frozen import FrozenConfig


class MetaMethod(StrEnum):
    HRP = "hrp"
    EQUAL_WEIGHT = "equal_weight"


class SleeveStream(FrozenConfig):
    """Which tournament cell of a sleeve is its return stream (and whose final weights are flattened)."""

    engine: EngineName = EngineName.CUSTOM
    risk_profile: RiskProfile = RiskProfile.HRP
    scorer: str | None = Field(None, description="selection scorer (None: the sleeve's champion)")
    simulator: SimulatorName = SimulatorName.CUSTOM


class MetaProfile(FrozenConfig):
    description: str = ""
    sleeves: tuple[str, ...] = Field(min_length=2, description="profile names, each one sleeve")
    method: MetaMethod = MetaMethod.HRP
    min_weight: float = Field(0.05, ge=0, le=1, allow_inf_nan=False)
    max_weight: float = Field(0.95, gt=0, le=1, allow_inf_nan=False)
    stream: SleeveStream = SleeveStream()
    min_common_days: int = Field(60, ge=10, description="common out-of-sample days the sleeves must share")
    latest_date: date | None = Field(None, description="the demo's as-of date (every sleeve must have run then)")

    @field_validator("sleeves")
    @classmethod
    def _distinct(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("sleeves must be distinct")
        return value

    @model_validator(mode="after")
    def _feasible(self) -> "MetaProfile":
        n = len(self.sleeves)
        if self.min_weight > self.max_weight or self.min_weight * n > 1 + 1e-12 or self.max_weight * n < 1 - 1e-12:
            raise ValueError(f"min_weight {self.min_weight} / max_weight {self.max_weight} cannot sum to 1 over {n} sleeves")
        return self
