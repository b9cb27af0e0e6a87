"""A data-cycle run under each executor: the reason every job defaults to in-process (assets/jobs.py).

Seeds a temporary lakehouse, then runs the `data_cycle` job for crypto_synthetic as of 2022-12-31 as a real
launched-style run (`execute_job` of a reconstructable job, a fresh run each time) with the in-process executor
and with the multiprocess executor, which starts a fresh process per step. Each is timed end to end.

Prints a table, then one JSON line: {"in_process_s": …, "multiprocess_s": …, "ratio": …, "steps": …}.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import tsp_platform  # noqa: E402,F401  (pins BLAS threads)
import dagster as dg  # noqa: E402

warnings.filterwarnings("ignore")

PROFILE, DAY = "crypto_synthetic", "2022-12-31"
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def data_cycle_job() -> dg.JobDefinition:
    """Module-level so `reconstructable` can rebuild it in the multiprocess executor's step processes."""
    from assets.definitions import build_definitions
    from resources import resources_for

    return build_definitions(resources_for(os.environ["TSP_LAKEHOUSE"])).resolve_job_def("data_cycle")


def timed_run(instance: dg.DagsterInstance, executor: dict) -> tuple[float, int]:
    from partitions import partition_tags

    started = time.perf_counter()
    with dg.execute_job(dg.reconstructable(data_cycle_job), instance=instance, tags=partition_tags(PROFILE, DAY),
                        run_config={**QUIET, "execution": {"config": executor}}) as result:
        assert result.success, f"data_cycle failed under {executor}"
        steps = sum(1 for e in result.all_events if e.event_type_value == "STEP_SUCCESS")
    return time.perf_counter() - started, steps


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TSP_LAKEHOUSE"] = str(Path(tmp) / "lake.duckdb")
        with dg.instance_for_test(temp_dir=tmp) as instance:
            from assets.definitions import build_definitions
            from resources import resources_for

            defs = build_definitions(resources_for(os.environ["TSP_LAKEHOUSE"]))
            assert defs.resolve_job_def("seed_lakehouse").execute_in_process(instance=instance, run_config=QUIET).success
            timed_run(instance, {"in_process": {}})  # warm the lakehouse's pages and the import caches once
            in_process, steps = timed_run(instance, {"in_process": {}})
            multiprocess, _ = timed_run(instance, {"multiprocess": {"max_concurrent": 2}})
    print(f"data_cycle {PROFILE} as of {DAY}: {steps} steps")
    print(f"{'executor':<14}{'seconds':>10}")
    print(f"{'in_process':<14}{in_process:>10.1f}")
    print(f"{'multiprocess':<14}{multiprocess:>10.1f}")
    print(json.dumps({"in_process_s": round(in_process, 2), "multiprocess_s": round(multiprocess, 2),
                      "ratio": round(multiprocess / in_process, 1), "steps": steps}))


if __name__ == "__main__":
    main()
