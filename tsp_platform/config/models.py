"""The profile and the manifest: frozen pydantic models that reject unknown keys and hash to an id.

Each stage's own configuration lives beside this module (`config.allocation`, `config.selection`,
`config.tournament`, `config.orders`, `config.meta`); a profile composes them.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import ClassVar

from pydantic import Field, model_validator

from tsp_platform.config.allocation import AllocationConfig
from tsp_platform.config.meta import MetaProfile
from tsp_platform.config.orders import OrdersSettings
from tsp_platform.config.selection import SelectionConfig
from tsp_platform.config.tournament import TournamentConfig
from tsp_platform.core.frozen import FrozenConfig
from tsp_platform.core.vocabulary import Calendar


class MarketDataSource(StrEnum):
    """Where a profile's daily bars come from."""

    EMBEDDED_SP500 = "embedded_sp500"
    SYNTHETIC_CRYPTO = "synthetic_crypto"
    CCXT_BINANCE = "ccxt_binance"
    LAKEHOUSE = "lakehouse"  # bars imported with `tsp import-prices`


class DiscoverySource(StrEnum):
    """Where scanners run: the live TradingView screener or the offline lakehouse screener."""

    TRADINGVIEW = "tradingview"
    LAKEHOUSE = "lakehouse"


class Friction(FrozenConfig):
    slippage_bps: float = Field(5.0, ge=0, le=1000)
    commission_bps: float = Field(1.0, ge=0, le=1000)

    @property
    def total_rate(self) -> float:
        return (self.slippage_bps + self.commission_bps) / 1e4


class HealthThresholds(FrozenConfig):
    """Data-health gate thresholds (one value per invariant; the older system had three 'toxic' limits)."""

    max_missing_sessions: int = Field(1, ge=0, description="a gap of this many missing sessions is tolerated")
    stale_hours_crypto: float = Field(24.0, gt=0)
    stale_sessions_tradfi: int = Field(5, ge=1)
    toxic_daily_return: float = Field(5.0, gt=0, description="|close/prev - 1| above this is toxic (5.0 = 500 %)")
    flat_close_run: int = Field(3, ge=2, description="this many identical consecutive closes is a stall")
    ohlc_tolerance: float = Field(1e-9, ge=0)


class PoolConfig(FrozenConfig):
    """Raw-pool aggregation rules."""

    cap: int = Field(200, ge=1, le=5000)
    quote_priority: tuple[str, ...] = ("USDT", "USDC", "FDUSD", "USD")
    liquidity_tie_ratio: float = Field(0.3, gt=0, le=1, description="a better quote wins if its liquidity > ratio × incumbent")
    min_value_traded: float | None = Field(None, ge=0)
    exclude_stablecoins: bool = True


class FeatureFlags(FrozenConfig):
    feat_short_direction: bool = False
    feat_turnover_penalty: bool = False
    feat_audit_ledger: bool = True
    feat_strict_health: bool = True
    feat_repair_gaps: bool = True


CRON_FIELD = r"[0-9*/,\-]+"
CRON_PATTERN = rf"^{CRON_FIELD}( {CRON_FIELD}){{4}}$"


class ScheduleSettings(FrozenConfig):
    """The daily data cycle of a live profile: a UTC cron; each tick's as-of is the previous session of its date."""

    cron: str | None = Field(
        None, pattern=CRON_PATTERN,
        description="five-field cron in UTC (numbers, *, /, ranges, lists); default: 00:30 daily for 24/7 "
        "profiles, 06:30 Tuesday to Saturday for weekday profiles",
    )
    running: bool = Field(False, description="start the schedule running (otherwise turn it on in the UI)")

    def cron_for(self, calendar: "Calendar") -> str:
        if self.cron:
            return self.cron
        return "30 0 * * *" if calendar is Calendar.ALWAYS else "30 6 * * 2-6"


class ProfileSettings(FrozenConfig):
    """Everything a profile may set. `defaults` and each profile use this shape; all fields optional there."""

    description: str | None = None
    market_data: MarketDataSource | None = None
    discovery: DiscoverySource | None = None
    scanners: tuple[str, ...] | None = None
    scanners_add: tuple[str, ...] | None = None
    lookback_days: int | None = Field(None, ge=20, le=20000)
    history_floor_days: int | None = Field(None, ge=2, le=20000)
    calendar: Calendar | None = None
    annualisation: int | None = Field(None, ge=1, le=366)
    friction: Friction | None = None
    health: HealthThresholds | None = None
    pool: PoolConfig | None = None
    benchmark: str | None = None
    latest_date: date | None = Field(None, description="last date the embedded data has; the demo's as-of")
    synthetic_seed: int | None = None
    features: FeatureFlags | None = None
    selection: SelectionConfig | None = None
    allocation: AllocationConfig | None = None
    tournament: TournamentConfig | None = None
    orders: OrdersSettings | None = None
    live: bool | None = None
    schedule: ScheduleSettings | None = None


class Profile(FrozenConfig):
    """A fully resolved profile: defaults merged with its overrides, every field present."""

    name: str
    description: str = ""
    market_data: MarketDataSource
    discovery: DiscoverySource
    scanners: tuple[str, ...]
    lookback_days: int = 500
    history_floor_days: int = 90
    calendar: Calendar
    annualisation: int
    friction: Friction = Friction()
    health: HealthThresholds = HealthThresholds()
    pool: PoolConfig = PoolConfig()
    benchmark: str | None = None
    latest_date: date | None = None
    synthetic_seed: int = 7
    features: FeatureFlags = FeatureFlags()
    selection: SelectionConfig = Field(default_factory=lambda: SelectionConfig())
    allocation: AllocationConfig = Field(default_factory=lambda: AllocationConfig())
    tournament: TournamentConfig = TournamentConfig()
    orders: OrdersSettings = OrdersSettings()
    live: bool = False
    schedule: ScheduleSettings = ScheduleSettings()

    # When the daily cycle runs does not change what it computes: results keep their identity across a new cron.
    identity_exclude: ClassVar[frozenset[str]] = frozenset({"schedule"})

    @model_validator(mode="after")
    def _coherent(self) -> "Profile":
        if self.history_floor_days > self.lookback_days:
            raise ValueError(
                f"history_floor_days ({self.history_floor_days}) exceeds lookback_days ({self.lookback_days})"
            )
        if not self.scanners:
            raise ValueError("scanners: a profile needs at least one scanner")
        return self


class ManifestFile(FrozenConfig):
    """The manifest file as written: defaults, profiles, aliases and global settings."""

    version: int = Field(1, ge=1, le=1)
    default_profile: str
    partitions_start: date
    lakehouse_path: str = "data/lakehouse.duckdb"
    defaults: ProfileSettings = ProfileSettings()
    profiles: dict[str, ProfileSettings]
    aliases: dict[str, str] = {}
    meta_profiles: dict[str, MetaProfile] = {}

    @model_validator(mode="after")
    def _meta_sleeves_are_profiles(self) -> "ManifestFile":
        for name, meta in self.meta_profiles.items():
            if name in self.profiles or name in self.aliases:
                raise ValueError(f"meta_profiles.{name}: the name is already a profile or alias")
            unknown = [s for s in meta.sleeves if s not in self.profiles]
            if unknown:
                raise ValueError(f"meta_profiles.{name}.sleeves: {unknown} are not profiles (known: {sorted(self.profiles)})")
        return self
