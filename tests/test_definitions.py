"""The full Definitions load, and partitions are built by one helper."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from assets.definitions import defs
from partitions import MANIFEST, partition_key, profile_date_partitions

ROOT = Path(__file__).resolve().parents[1]


def test_definitions_load_with_the_contracted_assets_checks_and_jobs():
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"embedded_market_data", "discovery_scan", "raw_pool", "ohlcv_history", "returns_matrix"} <= keys
    checks = {(c.asset_key.to_user_string(), c.name) for c in graph.asset_check_keys}
    gates = {"gaps", "staleness", "toxic_return", "ohlc_consistency", "flat_closes", "history_floor", "weekend_padding"}
    assert {("ohlcv_history", g) for g in gates} <= checks
    for name in ("seed_lakehouse", "data_cycle", "health_gates", "dbt_health_gates", "alpha_cycle",
                 "tournament_inputs_job", "tournament_cells_job", "tournament_scoreboard_job", "tournament_gates"):
        assert defs.resolve_job_def(name) is not None
    assert {"tournament_inputs", "tournament_cells", "tournament_scoreboard"} <= keys
    cells = graph.get(dg.AssetKey("tournament_cells")).partitions_def
    assert isinstance(cells, dg.DynamicPartitionsDefinition) and cells.name == "tournament_cells"
    sensor = defs.resolve_sensor_def("tournament_fanout")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert {j.name for j in sensor.jobs} == {
        "tournament_inputs_job", "tournament_cells_job", "tournament_scoreboard_job", "portfolio_report_job"}
    assert {s.name for s in defs.sensors} == {"tournament_fanout", "alpha_after_gates", "meta_after_sleeves"}
    live = {f"{p.name}_daily" for p in MANIFEST.profiles() if p.live}
    assert {s.name for s in defs.schedules} == live | {"lakehouse_freshness_daily", "audit_ledger_daily"}
    freshness = {c.name for c in graph.asset_check_keys if c.asset_key == dg.AssetKey("lakehouse")}
    assert freshness == {"scan_results_fresh", "raw_pool_fresh", "health_results_fresh", "returns_matrix_fresh",
                         "selection_winners_fresh", "portfolio_weights_fresh", "rebalance_orders_fresh"}


def test_partitions_are_profile_by_date_and_keys_come_from_the_helper():
    assert [d.name for d in profile_date_partitions.partitions_defs] == ["date", "profile"]
    key = partition_key("equities", "2022-12-28")  # an alias resolves to its profile
    assert key.keys_by_dimension == {"profile": "us_equities_sample", "date": "2022-12-28"}
    assert set(MANIFEST.profile_names) >= {"us_equities_sample", "crypto_synthetic", "binance_spot_ratings", "us_stocks_tradingview"}


def test_domain_never_imports_dagster():
    offenders = [
        str(p.relative_to(ROOT)) for p in (ROOT / "tsp_platform").rglob("*.py")
        if any(line.strip().startswith(("import dagster", "from dagster")) for line in p.read_text().splitlines())
    ]
    assert offenders == []


def test_dagster_cli_validates_the_workspace(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", str(ROOT / "workspace.yaml")],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
