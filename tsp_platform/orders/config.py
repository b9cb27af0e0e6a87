"""A profile's `orders` settings: which weights become orders, the capital, the current positions file."""

from __future__ import annotations

from pydantic import Field

from tsp_platform.allocation.config import EngineName, RiskProfile
from tsp_platform.frozen import FrozenConfig


class OrdersSettings(FrozenConfig):
    engine: EngineName = EngineName.CUSTOM
    risk_profile: RiskProfile = RiskProfile.HRP
    capital: float = Field(1_000_000.0, gt=0, allow_inf_nan=False)
    positions_file: str | None = Field(None, description="CSV or Parquet of symbol, quantity (absent: start flat)")
    min_notional: float = Field(0.0, ge=0, allow_inf_nan=False)
    default_lot_size: float = Field(1.0, gt=0, allow_inf_nan=False)
