"""The tournament's jobs and the sensor that fans a profile × date out into its cells.

`tournament_fanout` reads the event log, not just its cursor: for every profile × date touched since the last
tick it compares the latest materialisations of `selection`, `tournament_inputs`, the partition's
`tournament_cells` and `tournament_scoreboard`, and requests the next step that is behind:

1. `selection` newer than `tournament_inputs` → add the cell partitions (`cell_keys`) and run the snapshot;
2. a cell missing or older than the snapshot → run that cell (one run per cell partition; runs go two at a
   time on this 2-core box, the run queue's limit, and each can be re-run alone from the UI);
3. every cell newer than the snapshot, the scoreboard older than the newest cell → run the scoreboard.

Run keys name the event that triggered a request, so the daemon never launches the same step twice for it
(a failed cell is not retried in a loop; re-run it from the UI). The state-based rule also makes a first tick
with no cursor safe: partitions already complete request nothing.
"""

from collections.abc import Iterable

import dagster as dg

from assets.selection import selection
from assets.tournament import tournament_cells, tournament_inputs, tournament_scoreboard
from partitions import cell_keys, cell_of, parse_partition_key, partition_key, tournament_cell_partitions
from resources import ManifestResource

MATERIALIZATION = dg.DagsterEventType.ASSET_MATERIALIZATION
RECORDS_PER_TICK = 1000

tournament_inputs_job = dg.define_asset_job(
    "tournament_inputs_job", selection=dg.AssetSelection.assets(tournament_inputs),
    description="Snapshot a profile × date for its tournament (Parquet), with the snapshot's checks",
)
tournament_cells_job = dg.define_asset_job(
    "tournament_cells_job", selection=dg.AssetSelection.assets(tournament_cells),
    description="One tournament cell group (dynamic partition date|profile|group)",
)
tournament_scoreboard_job = dg.define_asset_job(
    "tournament_scoreboard_job", selection=dg.AssetSelection.assets(tournament_scoreboard),
    description="Store a profile × date's cells in the lakehouse and judge the strict scoreboard",
)
TOURNAMENT_JOBS = [tournament_inputs_job, tournament_cells_job, tournament_scoreboard_job]


def _new_records(instance: dg.DagsterInstance, asset: dg.AssetsDefinition, after: int) -> list:
    result = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset.key, after_storage_id=after), limit=RECORDS_PER_TICK, ascending=True
    )
    return list(result.records)


def _latest(instance: dg.DagsterInstance, asset: dg.AssetsDefinition, partitions: Iterable[str]) -> dict[str, int]:
    return dict(instance.get_latest_storage_id_by_partition(asset.key, MATERIALIZATION, set(partitions)))


def _partition_of_record(record) -> str | None:
    key = record.partition_key
    if key is None:
        return None
    if record.asset_key == tournament_cells.key:
        profile, as_of, _ = cell_of(key)
        return str(partition_key(profile, as_of))
    return key


def plan_requests(instance: dg.DagsterInstance, manifest, partitions: Iterable[str]):
    """(run requests, cell keys to add) that bring each profile × date partition one step forward."""
    requests, to_add = [], []
    existing = set(instance.get_dynamic_partitions(tournament_cell_partitions.name))
    for key in sorted(set(partitions)):
        profile_name, day = parse_partition_key(key)
        profile = manifest.profile(profile_name)
        cells = cell_keys(profile, day)
        to_add += [c for c in cells if c not in existing and c not in to_add]
        selected = _latest(instance, selection, [key]).get(key)
        snapshot = _latest(instance, tournament_inputs, [key]).get(key)
        if selected is None:
            continue
        if snapshot is None or snapshot < selected:
            requests.append(dg.RunRequest(job_name=tournament_inputs_job.name, partition_key=key,
                                          run_key=f"inputs:{key}:{selected}"))
            continue
        done = _latest(instance, tournament_cells, cells)
        behind = [c for c in cells if done.get(c, -1) < snapshot]
        if behind:
            requests += [dg.RunRequest(job_name=tournament_cells_job.name, partition_key=c,
                                       run_key=f"cells:{c}:{snapshot}") for c in behind]
            continue
        newest_cell = max(done[c] for c in cells)
        board = _latest(instance, tournament_scoreboard, [key]).get(key, -1)
        if board < newest_cell:
            requests.append(dg.RunRequest(job_name=tournament_scoreboard_job.name, partition_key=key,
                                          run_key=f"scoreboard:{key}:{newest_cell}"))
    return requests, to_add


@dg.sensor(
    name="tournament_fanout", jobs=TOURNAMENT_JOBS, minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="When selection materialises: snapshot, add and run the tournament cells, then the scoreboard",
)
def tournament_fanout(context: dg.SensorEvaluationContext, manifest: ManifestResource) -> dg.SensorResult:
    after = int(context.cursor) if context.cursor else 0
    touched, newest = set(), after
    for asset in (selection, tournament_inputs, tournament_cells, tournament_scoreboard):
        for record in _new_records(context.instance, asset, after):
            newest = max(newest, record.storage_id)
            partition = _partition_of_record(record)
            if partition is not None:
                touched.add(partition)
    requests, to_add = plan_requests(context.instance, manifest.manifest(), touched)
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[tournament_cell_partitions.build_add_request(to_add)] if to_add else [],
        cursor=str(newest),
        skip_reason=None if requests or to_add else "no tournament step is behind",
    )
