"""Typed configuration, and nothing else: every configuration model, the profile manifest and the layered
scanner configs. Loading it imports no stage, no solver and no Dagster (a test proves it)."""

from tsp_platform.config.errors import ConfigError
from tsp_platform.config.manifest import CONFIG_DIR, Manifest, load_manifest
from tsp_platform.config.models import (
    DiscoverySource,
    Friction,
    HealthThresholds,
    MarketDataSource,
    PoolConfig,
    Profile,
)

__all__ = [
    "CONFIG_DIR",
    "ConfigError",
    "DiscoverySource",
    "Friction",
    "HealthThresholds",
    "Manifest",
    "MarketDataSource",
    "PoolConfig",
    "Profile",
    "load_manifest",
]
