"""Sensors that carry the daily cycle forward (the tournament's own fan-out is in `tournament_sensor`).

- `alpha_after_gates`: a partition's alpha cycle starts once its data cycle's gates pass. It watches
  `returns_matrix`; for each partition it touched, every data-cycle gate's latest evaluation must judge the
  latest materialisation of its asset and must not have failed with ERROR (WARN is the non-strict profiles'
  quarantine: reported, not halting). A partition whose selection is already newer than its returns matrix
  needs nothing, and a run that planned `selection` itself (the UI materialising everything downstream, an
  asset backfill) is left to do so. Materialisations from a still-running run wait for the next tick (its
  checks come after it). The alpha run inherits the data run's backfill membership and tournament choice.
- `meta_after_sleeves`: a meta profile's partition runs once every sleeve has a scoreboard on that date, and
  again whenever a sleeve's scoreboard is newer than the meta's last run.
"""

from collections import defaultdict

import dagster as dg

from assets._events import (
    check_problems, follow_up_tags, latest_record, new_records, planned_assets, read_cursor, run_tags, sensor_result,
)
from assets.data_cycle import ohlcv_history, returns_matrix
from assets.health_checks import HEALTH_CHECKS
from assets.jobs import alpha_cycle_job, meta_job
from assets.meta import meta_portfolio
from assets.schedules import TRIGGER_TAG
from assets.selection import selection
from assets.tournament import tournament_scoreboard
from partitions import meta_key, parse_partition_key, partition_key
from resources import ManifestResource

DATA_GATES = [key for checks in HEALTH_CHECKS for key in checks.check_keys]


def alpha_request(
    instance: dg.DagsterInstance, partition: str, tags: dict[str, str] | None = None
) -> tuple[dg.RunRequest | None, str]:
    """(the alpha cycle's run request, or None, and why) for one profile × date partition; `tags` are those the
    request inherits from the data cycle's run."""
    data = latest_record(instance, returns_matrix, partition)
    if data is None:
        return None, "no returns matrix"
    chosen = latest_record(instance, selection, partition)
    if chosen is not None and chosen.storage_id > data.storage_id:
        return None, "the alpha cycle already ran on this data"
    bars = latest_record(instance, ohlcv_history, partition)
    latest = {returns_matrix.key: data.storage_id, ohlcv_history.key: bars.storage_id if bars else None}
    problems = check_problems(instance, DATA_GATES, partition, latest)
    if problems:
        return None, "gates not passed: " + "; ".join(problems)
    return dg.RunRequest(
        job_name=alpha_cycle_job.name, partition_key=partition, run_key=f"alpha:{partition}:{data.storage_id}",
        tags={**(tags or {}), TRIGGER_TAG: "alpha_after_gates"},
    ), "gates passed"


@dg.sensor(
    name="alpha_after_gates", job=alpha_cycle_job, minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Start a partition's alpha cycle once its data cycle's gates pass",
)
def alpha_after_gates(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    positions = read_cursor(context)
    touched: dict[str, dict[str, str]] = {}  # partition → tags its alpha run inherits
    for record in new_records(context.instance, returns_matrix, positions, finished_runs_only=True):
        if record.partition_key and selection.key not in planned_assets(context.instance, record.run_id):
            touched[record.partition_key] = follow_up_tags(run_tags(context.instance, record.run_id))
    decisions = ((p, alpha_request(context.instance, p, tags)) for p, tags in sorted(touched.items()))
    return sensor_result(context, "alpha_after_gates", decisions, positions, "no partition with newly passed gates")


def meta_request(instance: dg.DagsterInstance, meta_name: str, meta, day) -> tuple[dg.RunRequest | None, str]:
    """(the meta portfolio's run request, or None, and why) for one meta profile on one date."""
    boards = {sleeve: latest_record(instance, tournament_scoreboard, str(partition_key(sleeve, day)))
              for sleeve in meta.sleeves}
    waiting = sorted(s for s, record in boards.items() if record is None)
    if waiting:
        return None, f"waiting for the scoreboards of {waiting}"
    key = str(meta_key(meta_name, day))
    newest = max(record.storage_id for record in boards.values())
    last = latest_record(instance, meta_portfolio, key)
    if last is not None and last.storage_id > newest:
        return None, "already allocated on the sleeves' latest scoreboards"
    return dg.RunRequest(job_name=meta_job.name, partition_key=key, run_key=f"meta:{key}:{newest}",
                         tags={TRIGGER_TAG: "meta_after_sleeves"}), "every sleeve has a scoreboard"


@dg.sensor(
    name="meta_after_sleeves", job=meta_job, minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Allocate a meta profile across its sleeves once every sleeve's tournament scoreboard is stored",
)
def meta_after_sleeves(context: dg.SensorEvaluationContext, manifest: ManifestResource) -> dg.SensorResult:
    metas = manifest.manifest().file.meta_profiles
    positions = read_cursor(context)
    dates_by_meta = defaultdict(set)
    for record in new_records(context.instance, tournament_scoreboard, positions):
        try:
            profile, day = parse_partition_key(record.partition_key)
        except Exception as error:  # noqa: BLE001  (a malformed key never stops the sensor)
            context.log.warning(f"meta_after_sleeves: passing over {record.partition_key!r}: {error}")
            continue
        for name, meta in metas.items():
            if profile in meta.sleeves:
                dates_by_meta[name].add(day)
    decisions = ((f"{name} on {day}", meta_request(context.instance, name, metas[name], day))
                 for name in sorted(dates_by_meta) for day in sorted(dates_by_meta[name]))
    return sensor_result(context, "meta_after_sleeves", decisions, positions,
                         "no meta profile has new sleeve scoreboards")


SENSORS = [alpha_after_gates, meta_after_sleeves]
