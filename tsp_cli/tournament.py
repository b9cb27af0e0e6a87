"""Drive one profile × date's tournament to its scoreboard in this process, as the daemon would.

The steps come from the sensor's own decision function (`assets.tournament_sensor.plan_requests`), so the demo
exercises exactly what `tournament_fanout` requests: snapshot → cells → scoreboard → report. Cell runs never touch the
DuckDB file, so they run `workers` at a time in separate processes (one per core); the snapshot and the
scoreboard, which do, run one at a time here.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
MAX_STEPS = 8  # snapshot, cells, scoreboard, report, with room for one re-planned step each


def run_job(job_name: str, raise_on_error: bool = False, **kwargs):
    """Run a job of the project's Definitions in-process against the local instance, quietly."""
    import dagster as dg

    from assets.definitions import defs

    return defs.resolve_job_def(job_name).execute_in_process(
        instance=dg.DagsterInstance.get(), raise_on_error=raise_on_error, run_config=QUIET, **kwargs
    )


def execute_request(job_name: str, partition_key: str) -> tuple[bool, str, str]:
    """Run one requested job partition (`run_job`): (success, run id, first error)."""
    result = run_job(job_name, partition_key=partition_key)
    errors = [e.event_specific_data.error.message.strip() for e in result.all_events if e.is_step_failure]
    return result.success, result.run_id, errors[0] if errors else ""


def drive_tournament(profile: str, as_of: str, workers: int = 2, verbose: bool = True) -> bool:
    """Run the tournament of one partition until its scoreboard is current; False on the first failed run."""
    import dagster as dg

    from assets.tournament_sensor import plan_requests, tournament_cells_job
    from partitions import partition_key, tournament_cell_partitions
    from tsp_platform.config import load_manifest

    instance = dg.DagsterInstance.get()
    manifest = load_manifest(os.environ.get("TSP_MANIFEST") or None)
    key = str(partition_key(profile, as_of))
    seen: set[str] = set()
    for _ in range(MAX_STEPS):
        requests, to_add = plan_requests(instance, manifest, [key])
        if to_add:
            instance.add_dynamic_partitions(tournament_cell_partitions.name, to_add)
        fresh = [r for r in requests if r.run_key not in seen]
        if not fresh:
            return not requests  # nothing behind: done; the same requests again: a step keeps failing
        seen.update(r.run_key for r in fresh)
        cells = [r for r in fresh if r.job_name == tournament_cells_job.name]
        others = [r for r in fresh if r.job_name != tournament_cells_job.name]
        outcomes = [(r, execute_request(r.job_name, r.partition_key)) for r in others]
        if cells:
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                futures = [(r, pool.submit(execute_request, r.job_name, r.partition_key)) for r in cells]
                outcomes += [(r, future.result()) for r, future in futures]
        for request, (success, run_id, error) in outcomes:
            if verbose or not success:
                print(f"  {request.job_name} {request.partition_key}: {'ok' if success else 'FAILED'} (run {run_id})"
                      + (f"\n    {error}" if error else ""))
        if not all(success for _, (success, _, _) in outcomes):
            return False
    return False


def print_scoreboard(board, top: int = 10) -> None:
    """The strict candidates (best first), the baselines, and how many cells each gate failed."""
    import polars as pl

    cols = ["scorer", "risk_profile", "engine", "simulator", "cagr", "sharpe", "max_drawdown", "avg_turnover",
            "friction_decay", "parity_gap"]
    strict = board.filter(pl.col("strict")).sort("strict_rank")
    cells = board.filter(~pl.col("is_baseline") & pl.col("status").is_in(["ok", "partial"]))
    others = board.filter(~pl.col("is_baseline") & ~pl.col("status").is_in(["ok", "partial"]))
    with pl.Config(tbl_rows=top + 5, tbl_cols=len(cols) + 1, tbl_hide_dataframe_shape=True, float_precision=3,
                   tbl_width_chars=160, tbl_hide_column_data_types=True):
        print(f"  {strict.height} strict candidates of {cells.height} simulated cells (scorer × risk profile × engine × "
              f"simulator); not run: " + (", ".join(f"{n} {s}" for s, n in others.group_by("status").len().iter_rows())
                                          or "none"))
        if strict.height:
            print(strict.select("strict_rank", *cols).head(top))
        else:
            print("  best simulated cells by Sharpe, with the gates they failed")
            print(cells.sort("sharpe", descending=True, nulls_last=True).select(*cols[:6], "failed_gates").head(top))
        print("  baselines")
        print(board.filter(pl.col("is_baseline")).select(cols))
        failures = (
            cells.filter(pl.col("failed_gates") != "")
            .select(pl.col("failed_gates").str.split(",").explode().alias("gate"))
            .group_by("gate").len().sort("len", descending=True)
        )
        if failures.height:
            print("  cells failing each gate")
            print(failures.rename({"len": "cells"}))
        else:
            print("  every simulated cell passed every gate")
