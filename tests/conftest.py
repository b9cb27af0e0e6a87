"""Shared fixtures: real DuckDB files in temp dirs and real Dagster instances."""

from __future__ import annotations

import os
import socket
import warnings

import dagster as dg
import pytest

import tsp_platform  # noqa: F401  (BLAS threads pinned before numpy loads)

warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)

from assets.definitions import build_definitions  # noqa: E402
from resources import resources_for  # noqa: E402
from tsp_platform.lakehouse import Lakehouse  # noqa: E402

DEMO_PARTITIONS = [("us_equities_sample", "2022-12-28"), ("crypto_synthetic", "2022-12-31")]


@pytest.fixture
def lakehouse_path(tmp_path):
    return tmp_path / "lake.duckdb"


@pytest.fixture
def lakehouse(lakehouse_path) -> Lakehouse:
    return Lakehouse(lakehouse_path)


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


@pytest.fixture
def defs_for(lakehouse_path):
    """Definitions bound to this test's lakehouse (optionally with replayed live sources)."""

    def make(live_sources=None) -> dg.Definitions:
        return build_definitions(resources_for(lakehouse_path, live_sources=live_sources))

    return make


@pytest.fixture(autouse=True)
def _no_ambient_lakehouse(monkeypatch):
    """Tests never touch the developer's data/ folder by accident."""
    monkeypatch.delenv("TSP_LAKEHOUSE", raising=False)
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")


@pytest.fixture
def no_network(monkeypatch):
    """Any real socket connection fails the test loudly (live sources are replayed at their boundary)."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"test tried to open a network connection: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
