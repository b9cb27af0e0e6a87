"""The tournament's jobs and the sensor that fans a profile × date out into its cells.

`tournament_fanout` reads the event log, not just its cursor: for every profile × date touched since the last
tick it compares the latest materialisations of `selection`, `tournament_inputs`, the partition's
`tournament_cells` and `tournament_scoreboard`, and requests the next step that is behind:

1. `selection` newer than `tournament_inputs` → add the cell partitions (`cell_keys`) and run the snapshot;
2. a cell missing, or computed from another snapshot (content id) or another configuration of the profile
   than the current ones → run that cell (one run per cell partition; runs go two at a time on this 2-core box,
   the run queue's limit, and each can be re-run alone from the UI);
3. every cell current, the scoreboard older than the newest cell → run the scoreboard;
4. the report older than the scoreboard → run the report.

Freshness is judged by content, not by event order: a cell that started on an old snapshot and finished after
a new one is still behind, and a snapshot re-materialised with identical content re-runs nothing.

Run keys name what a request is for (the triggering event, or the snapshot and configuration a cell must
match), so the daemon never launches the same step twice for it: a failed step is not retried in a loop
(re-run it from the UI). The state-based rule also makes a first tick with no cursor safe: partitions already
complete request nothing. The cursor keeps one position per watched asset, so a busy asset's backlog is read
page by page and never skipped. A record the sensor cannot interpret (a profile removed from the manifest, a
malformed key) is logged and passed over, never allowed to stop the sensor.

Selections materialised by a backfill (or by a sensor's follow-up of one) fan out only when the backfill
carries `tsp/tournaments=true` (`tsp backfill --tournaments`): a year's backfill would otherwise queue a
tournament per date.
"""

from collections.abc import Iterable

import dagster as dg

from assets._events import (
    fans_out_tournaments, latest_record, new_records, read_cursor, record_meta, run_tags, write_cursor,
)
from assets.jobs import asset_job
from assets.selection import selection
from assets.reports import portfolio_report
from assets.tournament import tournament_cells, tournament_inputs, tournament_scoreboard
from partitions import cell_keys, cell_of, parse_partition_key, partition_key, tournament_cell_partitions
from resources import ManifestResource
from tsp_platform.config import ConfigError

WATCHED = (selection, tournament_inputs, tournament_cells, tournament_scoreboard)
UNREADABLE = (ValueError, KeyError, ConfigError)

tournament_inputs_job = asset_job(
    "tournament_inputs_job", selection=dg.AssetSelection.assets(tournament_inputs),
    description="Snapshot a profile × date for its tournament (Parquet), with the snapshot's checks",
)
tournament_cells_job = asset_job(
    "tournament_cells_job", selection=dg.AssetSelection.assets(tournament_cells),
    description="One tournament cell group (dynamic partition date|profile|group)",
)
tournament_scoreboard_job = asset_job(
    "tournament_scoreboard_job", selection=dg.AssetSelection.assets(tournament_scoreboard),
    description="Store a profile × date's cells in the lakehouse and judge the strict scoreboard",
)
report_job = asset_job(
    "portfolio_report_job", selection=dg.AssetSelection.assets(portfolio_report),
    description="Dashboard, charts and QuantStats tear-sheets of a partition (after its tournament)",
)
TOURNAMENT_JOBS = [tournament_inputs_job, tournament_cells_job, tournament_scoreboard_job, report_job]


def _partition_of_record(record) -> str | None:
    key = record.partition_key
    if key is None:
        return None
    if record.asset_key == tournament_cells.key:
        profile, as_of, _ = cell_of(key)
        return str(partition_key(profile, as_of))
    return key


def _next_steps(instance: dg.DagsterInstance, manifest, key: str) -> tuple[list[dg.RunRequest], list[str]]:
    profile_name, day = parse_partition_key(key)
    profile = manifest.profile(profile_name)
    cells = cell_keys(profile, day)
    selected = latest_record(instance, selection, key)
    if selected is None:
        return [], []
    snapshot = latest_record(instance, tournament_inputs, key)
    if snapshot is None or snapshot.storage_id < selected.storage_id:
        return [dg.RunRequest(job_name=tournament_inputs_job.name, partition_key=key,
                              run_key=f"inputs:{key}:{selected.storage_id}")], cells
    snapshot_id, config_id = record_meta(snapshot, "snapshot_id"), profile.config_id()
    latest = {c: latest_record(instance, tournament_cells, c) for c in cells}
    behind = [c for c, r in latest.items()
              if r is None or record_meta(r, "snapshot_id") != snapshot_id or record_meta(r, "config_id") != config_id]
    if behind:
        return [dg.RunRequest(job_name=tournament_cells_job.name, partition_key=c,
                              run_key=f"cells:{c}:{snapshot_id}:{config_id}") for c in behind], cells
    newest = max(r.storage_id for r in latest.values())
    board = latest_record(instance, tournament_scoreboard, key)
    if board is None or board.storage_id < newest:
        return [dg.RunRequest(job_name=tournament_scoreboard_job.name, partition_key=key,
                              run_key=f"scoreboard:{key}:{newest}")], cells
    report = latest_record(instance, portfolio_report, key)
    if report is None or report.storage_id < board.storage_id:
        return [dg.RunRequest(job_name=report_job.name, partition_key=key,
                              run_key=f"report:{key}:{board.storage_id}")], cells
    return [], cells


def plan_requests(instance: dg.DagsterInstance, manifest, partitions: Iterable[str], log=None):
    """(run requests, cell keys to add) that bring each profile × date partition one step forward."""
    requests, to_add = [], []
    existing = set(instance.get_dynamic_partitions(tournament_cell_partitions.name))
    for key in sorted(set(partitions)):
        try:
            steps, cells = _next_steps(instance, manifest, key)
        except UNREADABLE as error:
            if log is not None:
                log.warning(f"tournament_fanout: passing over partition {key!r}: {error}")
            continue
        requests += steps
        to_add += [c for c in cells if c not in existing and c not in to_add]
    return requests, to_add


@dg.sensor(
    name="tournament_fanout", jobs=TOURNAMENT_JOBS, minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="When selection materialises: snapshot, add and run the tournament cells, the scoreboard, the report",
)
def tournament_fanout(context: dg.SensorEvaluationContext, manifest: ManifestResource) -> dg.SensorResult:
    positions = read_cursor(context)
    touched = set()
    for asset in WATCHED:
        for record in new_records(context.instance, asset, positions):
            if asset is selection and not fans_out_tournaments(run_tags(context.instance, record.run_id)):
                continue
            try:
                partition = _partition_of_record(record)
            except UNREADABLE as error:
                context.log.warning(f"tournament_fanout: passing over {asset.key.to_user_string()} "
                                    f"{record.partition_key!r}: {error}")
                continue
            if partition is not None:
                touched.add(partition)
    requests, to_add = plan_requests(context.instance, manifest.manifest(), touched, context.log)
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[tournament_cell_partitions.build_add_request(to_add)] if to_add else [],
        cursor=write_cursor(positions),
        skip_reason=None if requests or to_add else "no tournament step is behind",
    )
