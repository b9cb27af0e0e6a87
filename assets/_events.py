"""Event-log reads the sensors share: new materialisations after a cursor position, a partition's latest record,
the latest verdict of a partition's checks, and whether a run belongs to a backfill.

Sensors judge state, not just the events since their cursor, so a first tick, a restart or a duplicate event
requests nothing that is already done.
"""

import json
from collections.abc import Sequence

import dagster as dg
from dagster._core.event_api import PartitionKeyFilter  # 1.13 has no public partition filter for check records

RECORDS_PER_TICK = 1000
BACKFILL_TAG = "dagster/backfill"  # set by Dagster on every run a backfill launches
FOLLOWS_BACKFILL_TAG = "tsp/backfill"  # set by our sensors on runs they start after a backfill's run
TOURNAMENTS_TAG = "tsp/tournaments"  # "true" on a backfill whose selections should still fan out tournaments


def read_cursor(context: dg.SensorEvaluationContext) -> dict[str, int]:
    return json.loads(context.cursor) if context.cursor else {}


def write_cursor(positions: dict[str, int]) -> str:
    return json.dumps(positions, sort_keys=True)


def sensor_result(context: dg.SensorEvaluationContext, sensor: str, decisions, positions: dict[str, int],
                  idle: str) -> dg.SensorResult:
    """The requests among `decisions` ((subject, (request or None, reason)) pairs), each held subject logged with
    its reason, and the advanced cursor."""
    requests = []
    for subject, (request, reason) in decisions:
        if request is None:
            context.log.info(f"{sensor}: {subject}: {reason}")
        else:
            requests.append(request)
    return dg.SensorResult(run_requests=requests, cursor=write_cursor(positions),
                           skip_reason=None if requests else idle)


def new_records(
    instance: dg.DagsterInstance, asset: dg.AssetsDefinition, positions: dict[str, int], finished_runs_only: bool = False
) -> list:
    """Materialisations of `asset` after its cursor position (one page), advancing the position past them.

    With `finished_runs_only`, reading stops before the first record whose run is still going (its checks may
    not have run yet), so the next tick reads it again."""
    name = asset.key.to_user_string()
    result = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset.key, after_storage_id=int(positions.get(name, 0))),
        limit=RECORDS_PER_TICK, ascending=True,
    )
    records = []
    for record in result.records:
        if finished_runs_only:
            run = instance.get_run_by_id(record.run_id)
            if run is not None and not run.is_finished:
                break
        records.append(record)
        positions[name] = record.storage_id  # ascending: the last one read is the furthest
    return records


def latest_record(instance: dg.DagsterInstance, asset: dg.AssetsDefinition, partition: str):
    """The latest materialisation record of one partition of `asset`, or None."""
    result = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset.key, asset_partitions=[partition]), limit=1
    )
    return result.records[0] if result.records else None


def record_meta(record, name: str) -> str | None:
    value = record.asset_materialization.metadata.get(name)
    return None if value is None else str(value.value)


def run_tags(instance: dg.DagsterInstance, run_id: str) -> dict[str, str]:
    run = instance.get_run_by_id(run_id)
    return dict(run.tags) if run is not None else {}


def backfill_of(tags: dict[str, str]) -> str | None:
    """The backfill a run belongs to, directly or as a sensor's follow-up of one of its runs."""
    return tags.get(BACKFILL_TAG) or tags.get(FOLLOWS_BACKFILL_TAG)


def follow_up_tags(tags: dict[str, str]) -> dict[str, str]:
    """Tags a sensor's follow-up run inherits from the run it follows (backfill membership, tournament choice)."""
    inherited = {TOURNAMENTS_TAG: tags[TOURNAMENTS_TAG]} if TOURNAMENTS_TAG in tags else {}
    backfill = backfill_of(tags)
    return {**inherited, FOLLOWS_BACKFILL_TAG: backfill} if backfill else inherited


def fans_out_tournaments(tags: dict[str, str]) -> bool:
    """A backfill's selections fan out a tournament only when it asks to (`tsp backfill --tournaments`): a year's
    backfill would otherwise queue a tournament per date."""
    return backfill_of(tags) is None or tags.get(TOURNAMENTS_TAG) == "true"


def planned_assets(instance: dg.DagsterInstance, run_id: str) -> set[dg.AssetKey]:
    """The assets a run planned to materialise."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED).records
    return {r.event_log_entry.dagster_event.asset_key for r in records}


def check_problems(
    instance: dg.DagsterInstance, checks: Sequence[dg.AssetCheckKey], partition: str, latest: dict[dg.AssetKey, int]
) -> list[str]:
    """What stops a partition's gates from counting as passed: a check never evaluated, evaluated against an
    older materialisation than `latest[asset]` (storage id), or failed with ERROR severity. WARN failures pass:
    they are the non-strict profiles' quarantine, reported but not halting."""
    records = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        list(checks), partition_filter=PartitionKeyFilter(key=partition)
    )
    problems = []
    for key in checks:
        name = f"{key.asset_key.to_user_string()}:{key.name}"
        evaluation = records[key].evaluation if key in records else None
        if evaluation is None:
            problems.append(f"{name} not evaluated")
            continue
        target = evaluation.target_materialization_data
        if target is None or target.storage_id != latest.get(key.asset_key):
            problems.append(f"{name} judged an older materialisation")
        elif not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR:
            problems.append(f"{name} failed: {(evaluation.description or '')[:200]}")
    return problems
