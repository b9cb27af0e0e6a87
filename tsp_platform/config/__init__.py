"""Typed configuration: the profile manifest and the layered scanner configs."""

from tsp_platform.config.errors import ConfigError
from tsp_platform.config.manifest import CONFIG_DIR, Manifest, load_manifest
from tsp_platform.config.models import (
    AssetClass,
    Calendar,
    Direction,
    DiscoverySource,
    Friction,
    HealthThresholds,
    MarketDataSource,
    PoolConfig,
    Profile,
)

__all__ = [
    "CONFIG_DIR",
    "AssetClass",
    "Calendar",
    "ConfigError",
    "Direction",
    "DiscoverySource",
    "Friction",
    "HealthThresholds",
    "Manifest",
    "MarketDataSource",
    "PoolConfig",
    "Profile",
    "load_manifest",
]
