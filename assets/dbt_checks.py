"""dbt_checks/ wired into Dagster: SQL health gates as dbt tests that land as asset checks on the Python assets.

The dbt project (dbt_checks/, package-free, offline) reads the lakehouse tables as SOURCES mapped to the Dagster
assets that write them (`meta.dagster.asset_key`). With `enable_source_tests_as_checks=True`, dagster-dbt turns
the source tests into asset checks ON those assets:

* ohlcv_history:  ohlcv_close_not_null, ohlcv_close_positive, ohlcv_symbol_date_unique (ERROR),
                  ohlcv_ohlc_consistent, ohlcv_close_move_not_toxic (WARN: the embedded synthetic market stores
                  such faults on purpose and the Python gates quarantine them; see dbt_checks/models/sources.yml)
* returns_matrix: returns_matrix_ret_not_null, returns_matrix_ret_not_toxic, returns_matrix_key_unique,
                  returns_matrix_no_weekend_for_weekday_symbols, returns_matrix_no_excluded_symbols (all ERROR)

plus three small dbt models (asset keys health_summary, ohlcv_coverage, returns_coverage; group dbt_checks) in
the `dbt_checks` schema of the lakehouse file. They are useful summaries AND required: dagster-dbt only attaches
a source's tests when a selected model reads that source.

Decisions:

* `dbt build` runs with `raise_on_error=False`, then `_raise_on_dbt_error` inspects run_results.json: a test that
  ran and found rows (status fail/warn) is a RESULT, reported as a failed asset check (severity ERROR or WARN), and
  never crashes the step; anything else (a model or test that could not execute, e.g. a missing table or a DuckDB
  lock, or dbt dying before writing run_results.json) is an ERROR and fails the step. Note that Dagster itself
  still fails the step when a *blocking* check fails with ERROR severity (dagster-dbt marks error-severity
  tests blocking): that is the gate working, the check result is recorded either way; dbt also skips the models
  downstream of a failed ERROR test.
* Blocking ERROR checks are real gates in a job that also materialises the data cycle: Dagster splits this
  multi-asset (can_subset) into `dbt_checks` (ohlcv tests + ohlcv_coverage/health_summary, after ohlcv_history,
  before returns_matrix) and `dbt_checks_2` (returns tests + returns_coverage, after returns_matrix, before
  anything downstream of it); each part is its own `dbt build` (~2-4 s of dbt, ~8 s of step). Since dbt tests
  judge whole tables, a bad row in ANY (profile, as_of) then blocks downstream of every partition run until fixed.
* Every dbt step is in the `duckdb` pool (single writer: dbt opens the lakehouse file read-write).
* dbt tests are not partition-aware (dagster#17560): the dbt step is unpartitioned and every run judges whole
  tables, all (profile, as_of). The Python partitioned checks remain the per-partition gates.
* The DuckDB file reaches dbt through `TSP_LAKEHOUSE` (read by dbt_checks/profiles.yml); `dbt_resource(path)`
  sets it for each dbt subprocess only, so one process can drive several lakehouses (tests do).
"""

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, DbtProject, dbt_assets

from assets._audit import audit_step
from resources import DUCKDB_POOL, LakehouseResource, ManifestResource
from resources import lakehouse_path as configured_lakehouse_path
from resources.dbt import DBT_PROJECT_DIR, LAKEHOUSE_ENV, dbt_executable, dbt_resource, normalized_path

# The lakehouse tables dbt_checks/ reads (its models and tests): the dbt step's audited inputs.
DBT_SOURCES = ("symbols", "ohlcv", "health_results", "returns_matrix", "returns_exclusions")

__all__ = ["DBT_PROJECT_DIR", "dbt_check_assets", "dbt_resource", "prepare_dbt_manifest"]

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


def _manifest_is_stale(manifest: Path) -> bool:
    """Missing, or older than any project file (so edits to dbt_checks/ are picked up without a manual parse)."""
    if not manifest.exists():
        return True
    built = manifest.stat().st_mtime
    sources = [DBT_PROJECT_DIR / "dbt_project.yml", DBT_PROJECT_DIR / "profiles.yml"]
    for folder in ("models", "macros", "tests"):
        sources.extend(p for p in (DBT_PROJECT_DIR / folder).rglob("*") if p.suffix in (".sql", ".yml", ".yaml"))
    return any(p.stat().st_mtime > built for p in sources if p.exists())


def _default_lakehouse() -> str:
    """The lakehouse the deployment runs against (TSP_LAKEHOUSE, else the manifest's path), as dbt_resource sees it."""
    try:
        return normalized_path(configured_lakehouse_path())
    except Exception:  # an unreadable manifest must not stop a parse: the path only matters for partial parsing
        return normalized_path(DBT_PROJECT_DIR.parent / "data" / "lakehouse.duckdb")


def prepare_dbt_manifest(force: bool = False) -> Path:
    """Ensure dbt_checks/target/manifest.json exists (`dbt parse`, offline, ~4 s) and return its path.

    Runs only when the manifest is missing or older than a project file, or when `force`. Safe under
    concurrency (code server, run workers, pytest-xdist): a file lock serialises parsers, and the manifest is
    parsed into a private folder and moved into place atomically, so a reader never sees half a file.
    `dbt parse` does not open the DuckDB file.
    """
    manifest = dbt_project.manifest_path
    target = manifest.parent  # absolute (dbt_project.target_path is relative to the project dir)
    if not force and not _manifest_is_stale(manifest):
        return manifest
    target.mkdir(parents=True, exist_ok=True)
    scratch = target / f".parse-{os.getpid()}"
    with open(target / ".prepare.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not force and not _manifest_is_stale(manifest):
                return manifest  # another process parsed while we waited
            shutil.rmtree(scratch, ignore_errors=True)
            # Parse with the lakehouse the runs will use: dbt keys partial parsing on the rendered profile, so a
            # matching path lets every `dbt build` reuse partial_parse.msgpack (~2 s saved per run).
            env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", LAKEHOUSE_ENV: _default_lakehouse()}
            proc = subprocess.run(
                [
                    dbt_executable(), "parse", "--quiet",
                    "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
                    "--target-path", str(scratch), "--log-path", str(scratch),
                ],
                cwd=DBT_PROJECT_DIR, env=env, capture_output=True, text=True, timeout=300,
            )
            if proc.returncode != 0 or not (scratch / "manifest.json").exists():
                output = f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
                raise RuntimeError(f"dbt parse failed ({proc.returncode}):\n{output}")
            if (scratch / "partial_parse.msgpack").exists():  # dagster-dbt seeds each invocation with it
                os.replace(scratch / "partial_parse.msgpack", target / "partial_parse.msgpack")
            os.replace(scratch / "manifest.json", manifest)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
            fcntl.flock(lock, fcntl.LOCK_UN)
    return manifest


# -- assets -----------------------------------------------------------------------------------------------

translator = DagsterDbtTranslator(
    settings=DagsterDbtTranslatorSettings(
        enable_asset_checks=True,
        enable_source_tests_as_checks=True,
        # One asset writes several tables (ohlcv_history: ohlcv + health_results; returns_matrix: returns_matrix +
        # returns_exclusions), so several sources legitimately share an asset key.
        enable_duplicate_source_asset_keys=True,
    )
)

# Only test results are results; these statuses mean dbt could not do its job (run_results.json `status`).
_TEST_VERDICTS = {"pass", "fail", "warn", "skipped"}  # a skipped test follows an upstream error, reported itself
_MODEL_OK = {"success", "skipped"}  # skipped = downstream of a failed ERROR test: a consequence, not a fault


def _raise_on_dbt_error(invocation, context: dg.AssetExecutionContext) -> None:
    """Fail the step for dbt errors, never for test failures (those are already failed asset checks)."""
    try:
        run_results: dict[str, Any] = invocation.get_artifact("run_results.json")
    except Exception:  # dbt died before writing results (profile error, lock, crash)
        run_results = {}
    results = run_results.get("results", [])
    broken = [
        r for r in results
        if (r["status"] not in _TEST_VERDICTS if r["unique_id"].startswith("test.") else r["status"] not in _MODEL_OK)
    ]
    failed_tests = [r["unique_id"] for r in results if r["status"] in ("fail", "warn")]
    if failed_tests:
        context.log.warning(f"dbt tests with findings (reported as failed asset checks): {failed_tests}")
    if broken or (not results and not invocation.is_successful()):
        detail = "; ".join(f"{r['unique_id']}: {r['status']}: {(r.get('message') or '')[:300]}" for r in broken)
        error = invocation.get_error()
        raise dg.Failure(
            description=f"dbt build could not run every node: {detail or error}",
            metadata={"dbt_command": invocation.dbt_command},
        )


prepare_dbt_manifest()  # @dbt_assets reads the manifest at import; a no-op when it is up to date


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=translator,
    name="dbt_checks",
    pool=DUCKDB_POOL,
)
def dbt_check_assets(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, lakehouse: LakehouseResource, manifest: ManifestResource
):
    """`dbt build` of dbt_checks/: the summary models, and the source tests as checks on the Python assets."""
    # (no `from __future__ import annotations` in this module: Dagster inspects the `context` hint at definition)
    with audit_step(context, lakehouse, manifest, step="dbt_checks", declared_reads=DBT_SOURCES) as outcome:
        invocation = dbt.cli(["build"], context=context, raise_on_error=False)
        events = 0
        for event in invocation.stream():
            events += 1
            yield event
        _raise_on_dbt_error(invocation, context)
        outcome["summary"] = {"dbt_events": events}


if __name__ == "__main__":  # `python -m assets.dbt_checks [--force]`: (re)parse the manifest (Makefile / CI)
    print(prepare_dbt_manifest(force="--force" in sys.argv[1:]))
