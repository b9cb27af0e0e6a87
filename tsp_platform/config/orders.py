"""Order configuration: a profile's `orders` settings (which weights become orders, the capital, the current
positions file) and the parameters `orders.rebalance.build_orders` runs with."""

from __future__ import annotations

from pydantic import Field

from tsp_platform.config.allocation import EngineName, RiskProfile
from tsp_platform.core.frozen import FrozenConfig


class OrdersSettings(FrozenConfig):
    engine: EngineName = EngineName.CUSTOM
    risk_profile: RiskProfile = RiskProfile.HRP
    capital: float = Field(1_000_000.0, gt=0, allow_inf_nan=False)
    positions_file: str | None = Field(None, description="CSV or Parquet of symbol, quantity (absent: start flat)")
    min_notional: float = Field(0.0, ge=0, allow_inf_nan=False)
    default_lot_size: float = Field(1.0, gt=0, allow_inf_nan=False)


class OrderConfig(FrozenConfig):
    capital: float = Field(gt=0, allow_inf_nan=False)
    # a fraction of notional (0.0006 = 6 bp); >= 1 is surely bp or percent passed by mistake
    friction_rate: float = Field(default=0.0, ge=0, lt=1, allow_inf_nan=False)
    min_notional: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    default_lot_size: float = Field(default=1.0, gt=0, allow_inf_nan=False)
