"""Idempotency and reproducibility through real Dagster runs on real DuckDB files.

* The same partition materialised twice (data cycle + alpha cycle) into one lakehouse: every table is
  content-identical after run 1 and run 2, and the audit ledger's outcome records of the two runs carry identical
  output data hashes (and read identical inputs) step by step.
* Two fresh runs from the same inputs — two lakehouses, two Dagster instances, one of them in a child process
  with another hash seed — give bit-identical `portfolio_weights` and `returns_matrix` (exact float equality, and
  the same digest of the raw float bits), identical tables everywhere else, an identical tournament snapshot and
  a bit-identical `baseline` cell group (its stitched returns, weights and windows under all three simulators).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import yaml

from partitions import cell_key, partition_key, tournament_cell_partitions
from tests.reliability.test_faults import state
from tsp_cli.tournament import QUIET
from tsp_platform.audit import AuditLedger
from tsp_platform.config.manifest import DEFAULT_MANIFEST
from tsp_platform.lakehouse import TABLES, Lakehouse
from tsp_platform.lakehouse.lineage import VOLATILE_COLUMNS

PROJECT = Path(__file__).resolve().parents[2]
FRESH = ("us_equities_sample", "2022-12-28")
TWICE = ("crypto_synthetic", "2022-12-31")
# A small tournament for the fresh runs: the baseline group over three simulators, 560 days, 40-day test windows.
SMALL_TOURNAMENT = {
    "history_days": 560, "windows": {"train": 252, "test": 40, "step": 40}, "engines": ["custom"],
    "risk_profiles": ["equal_weight"], "simulators": ["custom", "cvxportfolio", "nautilus"],
}
CELL_FILES = ("tournament_cells", "tournament_returns", "tournament_weights", "tournament_windows")
CELL_KEYS = {
    "tournament_cells": ("scorer", "risk_profile", "engine", "simulator"),
    "tournament_returns": ("scorer", "risk_profile", "engine", "simulator", "date"),
    "tournament_weights": ("scorer", "risk_profile", "engine", "window_index", "symbol"),
    "tournament_windows": ("scorer", "risk_profile", "engine", "simulator", "window_index"),
}


def run(defs, instance, job: str, key=None) -> dg.ExecuteInProcessResult:
    result = defs.resolve_job_def(job).execute_in_process(
        instance=instance, run_config=QUIET, **({"partition_key": str(key)} if key is not None else {})
    )
    assert result.success, job
    return result


def materialise(lake_path: str, manifest_path: str, instance: dg.DagsterInstance | None = None) -> dict:
    """Seed, data cycle, alpha cycle, tournament snapshot and the baseline cell group of FRESH: {job: run id}
    plus the snapshot id and the cells directory. Runs in the test process and, unchanged, in a child."""
    from assets.definitions import build_definitions
    from resources import resources_for

    if instance is None:
        with dg.instance_for_test() as own:
            return materialise(lake_path, manifest_path, own)
    defs = build_definitions(resources_for(lake_path, manifest_path))
    profile, day = FRESH
    runs = {"seed": run(defs, instance, "seed_lakehouse").run_id}
    for job in ("data_cycle", "alpha_cycle", "tournament_inputs_job"):
        runs[job] = run(defs, instance, job, partition_key(profile, day)).run_id
    group = cell_key(profile, day, "baseline")
    instance.add_dynamic_partitions(tournament_cell_partitions.name, [group])
    cells = run(defs, instance, "tournament_cells_job", group)
    (event,) = cells.get_asset_materialization_events()
    meta = event.materialization.metadata
    return {"runs": runs, "snapshot_id": meta["snapshot_id"].value, "cells": meta["results"].value}


def small_manifest(directory: Path) -> Path:
    raw = yaml.safe_load(DEFAULT_MANIFEST.read_text())
    raw["profiles"][FRESH[0]]["tournament"] = SMALL_TOURNAMENT
    path = directory / "manifest.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def exact_digest(frame: pl.DataFrame, key: tuple[str, ...] | list[str]) -> str:
    """SHA-256 over the frame sorted by `key`: the raw IEEE-754 bits of float columns, the values of the others."""
    digest = hashlib.sha256()
    for name, series in frame.sort(list(key)).to_dict().items():
        digest.update(f"{name}:{series.dtype}:{series.null_count()}".encode())
        if series.dtype.is_float():
            digest.update(np.ascontiguousarray(series.to_numpy(), dtype=np.float64).view(np.uint64).tobytes())
        else:
            digest.update(repr(series.to_list()).encode())
    return digest.hexdigest()


def assert_bit_identical(a: pl.DataFrame, b: pl.DataFrame, key, what: str) -> None:
    a, b = a.sort(list(key)), b.sort(list(key))
    assert a.height and a.equals(b), what
    assert exact_digest(a, key) == exact_digest(b, key), what


def ledger_steps(lake: Lakehouse, run_id: str) -> dict[str, dict]:
    """{step: {"inputs": …, "outputs": …, "summary": …, "status": …}} from the run's intent and outcome records."""
    steps: dict[str, dict] = {}
    for record in (json.loads(line) for line in AuditLedger(lake).lines()):
        if record["run_id"] != run_id or record["kind"] == "genesis":
            continue
        body = record["body"]
        entry = steps.setdefault(body["step"], {})
        if record["kind"] == "intent":
            entry.update(inputs=body["inputs"], params=body["params"])
        else:
            entry.update(outputs=body.get("outputs"), summary=body.get("summary"), status=body["status"])
    return steps


# --------------------------------------------------------------------------------------------
# The same partition twice into one lakehouse
# --------------------------------------------------------------------------------------------


def test_the_same_partition_twice_gives_identical_tables_and_ledger_hashes(defs_for, instance, lakehouse):
    defs = defs_for()
    run(defs, instance, "seed_lakehouse")
    profile, day = TWICE
    key = partition_key(profile, day)
    states, ledgers = [], []
    for _ in range(2):
        data, alpha = run(defs, instance, "data_cycle", key), run(defs, instance, "alpha_cycle", key)
        states.append(state(lakehouse))
        ledgers.append({**ledger_steps(lakehouse, data.run_id), **ledger_steps(lakehouse, alpha.run_id)})

    first, second = states
    partition = {k for k in first if len(k) == 3}
    written = {k[0] for k in partition}
    assert written >= {"scan_results", "raw_pool", "health_results", "returns_matrix", "returns_exclusions",
                       "features", "selection_winners", "regimes", "portfolio_weights", "allocation_runs"}
    assert {k[1:] for k in partition} == {(profile, date.fromisoformat(day))}
    assert second == first  # every table of TABLES but the ledger, the partition's slices and the shared tables

    one, two = ledgers
    assert list(one) == list(two) and len(one) >= 8
    for step in one:
        assert one[step]["status"] == two[step]["status"] == "success", step
        assert one[step]["outputs"] == two[step]["outputs"], step  # identical data hashes of what it wrote
        assert one[step]["inputs"] == two[step]["inputs"], step  # and of what it read
        assert one[step]["summary"] == two[step]["summary"], step
    outputs = {table: digest for step in one.values() for table, digest in step["outputs"].items() if table in TABLES}
    for table, digest in outputs.items():
        assert digest == first[(table, profile, date.fromisoformat(day))], table  # the ledger's hash is the table's
    assert AuditLedger(lakehouse).verify().ok


# --------------------------------------------------------------------------------------------
# Two fresh runs, one of them in a child process
# --------------------------------------------------------------------------------------------

CHILD = "import sys, json; from tests.reliability.test_reproducibility import materialise; " \
        "print('RESULT ' + json.dumps(materialise(sys.argv[1], sys.argv[2])))"


def test_two_fresh_runs_give_bit_identical_weights_returns_and_tournament_cells(tmp_path, instance):
    manifest = small_manifest(tmp_path)
    lakes = {name: tmp_path / name / "lake.duckdb" for name in ("here", "child")}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(lakes["child"]), str(manifest)], cwd=PROJECT,
        env={**os.environ, "PYTHONHASHSEED": "4242"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        here = materialise(str(lakes["here"]), str(manifest), instance)
        output, _ = child.communicate(timeout=600)
    finally:
        child.kill()
    assert child.returncode == 0, output[-4000:]
    there = json.loads(next(line for line in output.splitlines() if line.startswith("RESULT "))[len("RESULT "):])
    a, b = Lakehouse(lakes["here"]), Lakehouse(lakes["child"])
    profile, day = FRESH[0], date.fromisoformat(FRESH[1])

    for table in ("portfolio_weights", "returns_matrix", "selection_winners", "regimes"):
        assert_bit_identical(a.read_partition(table, profile, day), b.read_partition(table, profile, day),
                             TABLES[table].key, table)
    runs_a, runs_b = (lake.read_partition("allocation_runs", profile, day).drop("solve_ms") for lake in (a, b))
    assert_bit_identical(runs_a, runs_b, TABLES["allocation_runs"].key, "allocation_runs")
    assert state(a) == state(b)  # and every other table, content-hashed

    assert here["snapshot_id"] == there["snapshot_id"]  # the Parquet snapshot the cells read
    for name in CELL_FILES:
        cells_a, cells_b = (pl.read_parquet(Path(d) / f"{name}.parquet") for d in (here["cells"], there["cells"]))
        volatile = [c for c in cells_a.columns if c in VOLATILE_COLUMNS]
        assert_bit_identical(cells_a.drop(volatile), cells_b.drop(volatile), CELL_KEYS[name], name)
    returns = pl.read_parquet(Path(here["cells"]) / "tournament_returns.parquet")
    assert returns.select("scorer", "simulator").unique().height == 9  # 3 baselines × 3 simulators

    for job in ("seed", "data_cycle", "alpha_cycle", "tournament_inputs_job"):
        steps_a, steps_b = ledger_steps(a, here["runs"][job]), ledger_steps(b, there["runs"][job])
        assert steps_a.keys() == steps_b.keys() and steps_a, job
        for step in steps_a:
            assert steps_a[step]["outputs"] == steps_b[step]["outputs"], (job, step)
