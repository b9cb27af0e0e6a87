"""The default tournament's cost per cell group, and what a Dagster run costs to start: the granularity choice.

Sets up the default partition (us_equities_sample at its latest date) in a temporary lakehouse through real
in-process Dagster runs (seed, data cycle, alpha cycle), snapshots it, then times every cell group of the
default tournament configuration in this one process, with the seconds each simulator took. It also times a
fresh interpreter importing the code location, the floor of every launched run's start-up.

Prints a table, then one JSON line: {"groups_s": {…}, "cells_total_s": …, "simulator_s": {…},
"code_location_import_s": …, "partitions": …}.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import dagster as dg  # noqa: E402
import polars as pl  # noqa: E402

import tsp_platform  # noqa: E402,F401  (pins BLAS threads)

warnings.filterwarnings("ignore")

from assets.definitions import build_definitions  # noqa: E402
from partitions import partition_key  # noqa: E402
from resources import resources_for  # noqa: E402
from tsp_platform.config import load_manifest  # noqa: E402
from tsp_platform.context import StageContext  # noqa: E402
from tsp_platform.lakehouse import Lakehouse  # noqa: E402
from tsp_platform.tournament.stage import build_snapshot, run_cell_group  # noqa: E402

QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def code_location_import_s() -> float:
    """A new interpreter importing the Definitions: what every launched run pays before its first step."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import assets.definitions"], cwd=ROOT, check=True,
                   env={**os.environ, "PYTHONWARNINGS": "ignore"})
    return time.perf_counter() - start


def main() -> None:
    manifest = load_manifest(None)
    profile = manifest.profile(manifest.file.default_profile)
    day = profile.latest_date.isoformat()
    with tempfile.TemporaryDirectory() as tmp, dg.instance_for_test() as instance:
        path = Path(tmp) / "bench.duckdb"
        defs = build_definitions(resources_for(path))
        assert defs.resolve_job_def("seed_lakehouse").execute_in_process(instance=instance, run_config=QUIET).success
        for job in ("data_cycle", "alpha_cycle"):
            assert defs.resolve_job_def(job).execute_in_process(
                partition_key=partition_key(profile.name, day), instance=instance, run_config=QUIET).success
        ctx = StageContext(Lakehouse(path), profile, date.fromisoformat(day))
        start = time.perf_counter()
        snapshot = build_snapshot(ctx)
        snapshot_s = time.perf_counter() - start
        rows = []
        for group in profile.tournament.cell_groups():
            start = time.perf_counter()
            cells = run_cell_group(snapshot, profile, group, "bench").cells
            rows.append({"group": group, "seconds": time.perf_counter() - start,
                         "cells": cells.select("scorer", "risk_profile").unique().height,
                         "simulated": cells.filter(pl.col("status").is_in(["ok", "partial"])).height,
                         **{f"{s}_s": cells.filter(pl.col("simulator") == s)["seconds"].sum()
                            for s in ("custom", "cvxportfolio", "nautilus")}})
    table = pl.DataFrame(rows)
    import_s = code_location_import_s()
    with pl.Config(tbl_hide_dataframe_shape=True, float_precision=2, tbl_hide_column_data_types=True):
        print(f"default tournament: {profile.name} as of {day}, snapshot {snapshot_s:.2f} s, "
              f"{len(snapshot.panel.dates)} return rows")
        print(table)
    total = float(table["seconds"].sum())
    print(f"cells in one process: {total:.1f} s; a fresh interpreter importing the code location: {import_s:.1f} s "
          f"(one run per cell would pay it {int(table['cells'].sum() * 3)} times)")
    print(json.dumps({
        "groups_s": {r["group"]: round(r["seconds"], 2) for r in rows},
        "cells_total_s": round(total, 2),
        "simulator_s": {s: round(float(table[f"{s}_s"].sum()), 2) for s in ("custom", "cvxportfolio", "nautilus")},
        "code_location_import_s": round(import_s, 2),
        "partitions": len(rows),
    }))


if __name__ == "__main__":
    main()
