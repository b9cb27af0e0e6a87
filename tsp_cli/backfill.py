"""`tsp backfill`: replay the daily cycle of profiles over a date range, as a Dagster backfill.

The command sends the UI's own `launchPartitionBackfill` mutation to the project's instance, so a backfill from
the command line and one from the UI are the same object: listed under Runs → Backfills and run by the daemon
(`make ui` starts it). It backfills a job, by default `data_cycle`, one run per partition; the
`alpha_after_gates` sensor then starts each partition's alpha cycle once its gates pass, exactly as after a
scheduled run. `--wait` follows the backfill until it ends.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from tsp_platform.config import Manifest
from tsp_platform.core.calendars import is_session_day

PROJECT_ROOT = Path(__file__).resolve().parents[1]
JOBS = ("data_cycle", "alpha_cycle")
REPOSITORY = {"repositoryLocationName": "tsp_platform", "repositoryName": "__repository__"}
TERMINAL = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}

LAUNCH = """
mutation Backfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PartitionKeysNotFoundError { message }
    ... on PartitionSetNotFoundError { message }
    ... on PythonError { message }
    ... on UnauthorizedError { message }
    ... on InvalidSubsetError { message }
    ... on RunConflict { message }
    ... on InvalidStepError { invalidStepKey }
    ... on InvalidOutputError { invalidOutputName }
    ... on PipelineNotFoundError { message }
  }
}
"""


class BackfillError(ValueError):
    """A backfill request that cannot be submitted; the message names the argument at fault."""


@dataclass(frozen=True)
class BackfillPlan:
    profiles: tuple[str, ...]
    start: date
    end: date
    job: str
    partitions: tuple[str, ...]  # "date|profile" keys, sessions of each profile's calendar only


def plan_backfill(manifest: Manifest, profiles: list[str], start: str, end: str, job: str = "data_cycle",
                  today: date | None = None) -> BackfillPlan:
    """Validate the request and list its partitions: each profile's sessions in [start, end]."""
    from partitions import partition_key

    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError as error:
        raise BackfillError(f"--start/--end must be YYYY-MM-DD dates ({start!r}, {end!r}): {error}") from None
    if job not in JOBS:
        raise BackfillError(f"--job {job!r}: expected one of {JOBS}")
    if first > last:
        raise BackfillError(f"--start {first} is after --end {last}")
    floor = manifest.file.partitions_start
    ceiling = (today or datetime.now(timezone.utc).date()) - timedelta(days=1)  # the last closed UTC day
    if first < floor:
        raise BackfillError(f"--start {first} precedes the partitions' first date {floor} (manifest partitions_start)")
    if last > ceiling:
        raise BackfillError(f"--end {last} is after the last closed day {ceiling}: its partition does not exist yet")
    if not profiles:
        raise BackfillError("name at least one --profile")
    names = tuple(dict.fromkeys(manifest.canonical_name(p) for p in profiles))  # unknown names raise ConfigError
    keys = []
    day = first
    while day <= last:
        for name in names:
            if is_session_day(day, manifest.profile(name).calendar):
                keys.append(str(partition_key(name, day)))
        day += timedelta(days=1)
    if not keys:
        raise BackfillError(f"no session of {list(names)} falls between {first} and {last}")
    return BackfillPlan(names, first, last, job, tuple(keys))


def submit(instance, plan: BackfillPlan, tournaments: bool = False) -> str:
    """Submit the plan as a Dagster backfill (the UI's mutation) and return its id."""
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget
    from dagster_graphql.cli import execute_query

    from assets._events import TOURNAMENTS_TAG

    params = {
        # An asset job's partition set is named after the job; the job, not an asset selection, is backfilled
        # so each run is the one a schedule would launch (the same checks, none of dbt's whole-table tests).
        "selector": {"partitionSetName": f"{plan.job}_partition_set", "repositorySelector": REPOSITORY},
        "partitionNames": list(plan.partitions),
        "tags": [{"key": TOURNAMENTS_TAG, "value": "true" if tournaments else "false"}],
        "title": f"{plan.job}: {', '.join(plan.profiles)} {plan.start} → {plan.end}",
        "description": f"tsp backfill: {len(plan.partitions)} partitions",
    }
    target = WorkspaceFileTarget([str(PROJECT_ROOT / "workspace.yaml")])
    with WorkspaceProcessContext(instance, target) as workspace:
        for name, entry in workspace.create_request_context().get_code_location_entries().items():
            if entry.load_error is not None:
                raise BackfillError(f"code location {name} does not load: {entry.load_error.message.strip()}")
        result = execute_query(workspace, LAUNCH, {"params": params})
    if result.get("errors"):
        raise BackfillError(f"the instance refused the backfill: {result['errors'][0].get('message')}")
    answer = result["data"]["launchPartitionBackfill"]
    if answer["__typename"] != "LaunchBackfillSuccess":
        raise BackfillError(f"the instance refused the backfill ({answer['__typename']}): {answer}")
    return answer["backfillId"]


def wait(instance, backfill_id: str, timeout_s: float, poll_s: float = 5.0, echo=print) -> str:
    """Follow a backfill until it ends (the daemon runs it); returns its final status."""
    deadline = time.monotonic() + timeout_s
    last = None
    while True:
        backfill = instance.get_backfill(backfill_id)
        status = backfill.status.value
        if status != last:
            echo(f"  backfill {backfill_id}: {status}")
            last = status
        if status in TERMINAL:
            return status
        if time.monotonic() > deadline:
            raise TimeoutError(f"backfill {backfill_id} still {status} after {timeout_s:.0f} s: is the daemon "
                               "running (`make ui`)?")
        time.sleep(poll_s)
