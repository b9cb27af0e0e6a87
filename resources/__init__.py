"""Resources, chosen by environment in one place (`build_resources`)."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from tsp_platform.config import Manifest, load_manifest
from tsp_platform.config.manifest import DEFAULT_MANIFEST
from tsp_platform.lakehouse import Lakehouse

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DUCKDB_POOL = "duckdb"  # every lakehouse writer runs in this pool; its limit is 1 (see configs/dagster.yaml)


class LakehouseResource(dg.ConfigurableResource):
    """The DuckDB lakehouse file. Connections open only for a read or a write, never at import time."""

    path: str

    def lakehouse(self) -> Lakehouse:
        return Lakehouse(self.path)

    def output_dir(self) -> Path:
        """Files the platform writes (snapshots, orders, reports, the ledger export) sit beside the database."""
        return Path(self.path).resolve().parent

    def audit_path(self) -> Path:
        return self.output_dir() / "audit.jsonl"

    def reports_root(self) -> Path:
        return self.output_dir() / "reports"

    def orders_root(self) -> Path:
        return self.output_dir() / "orders"

    def snapshot_root(self) -> Path:
        """Parquet snapshots for fan-out work, never read from the database file itself."""
        return self.output_dir() / "snapshots"


class ManifestResource(dg.ConfigurableResource):
    path: str = str(DEFAULT_MANIFEST)

    def manifest(self) -> Manifest:
        return load_manifest(self.path)


class LiveSourcesResource(dg.ConfigurableResource):
    """Live clients (TradingView screener, Binance through ccxt). Tests replace the transport, not this."""

    timeout_s: float = 10.0
    max_attempts: int = 5

    def screener(self):
        from tsp_platform.sources.tradingview import TradingViewScreener

        return TradingViewScreener(timeout=self.timeout_s, max_attempts=self.max_attempts).scan

    def bar_fetcher(self):
        from tsp_platform.sources.binance import BinanceOhlcvClient

        return BinanceOhlcvClient(max_attempts=self.max_attempts)


def lakehouse_path(manifest: Manifest | None = None) -> str:
    """`TSP_LAKEHOUSE` wins; otherwise the manifest's path, relative to the project root."""
    if os.environ.get("TSP_LAKEHOUSE"):
        return os.environ["TSP_LAKEHOUSE"]
    manifest = manifest or load_manifest(os.environ.get("TSP_MANIFEST") or None)
    path = Path(manifest.file.lakehouse_path)
    return str(path if path.is_absolute() else PROJECT_ROOT / path)


def build_resources(environment: str | None = None) -> dict[str, dg.ConfigurableResource]:
    """Resources for `local` (default) or `ci`; both use a local DuckDB file, paths from the environment."""
    environment = environment or os.environ.get("TSP_ENV", "local")
    if environment not in ("local", "ci"):
        raise ValueError(f"TSP_ENV={environment!r}: expected 'local' or 'ci'")
    manifest_path = os.environ.get("TSP_MANIFEST") or str(DEFAULT_MANIFEST)
    return resources_for(lakehouse_path(load_manifest(manifest_path)), manifest_path)


def resources_for(
    lakehouse: str | Path, manifest_path: str | Path = DEFAULT_MANIFEST, live_sources: LiveSourcesResource | None = None
) -> dict[str, dg.ConfigurableResource]:
    """The resource set for one lakehouse file (the environment picks the file; tests pick a temp one)."""
    from resources.dbt import dbt_resource

    return {
        "lakehouse": LakehouseResource(path=str(lakehouse)),
        "manifest": ManifestResource(path=str(manifest_path)),
        "live_sources": live_sources or LiveSourcesResource(),
        "dbt": dbt_resource(lakehouse),
    }
