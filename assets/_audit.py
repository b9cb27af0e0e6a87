"""Every lakehouse-writing asset appends an intent record before its first write and an outcome record after it.

`@audited` sits under `@dg.asset`. The step runs with its lakehouse recording (`LakehouseResource.recording`),
so the records name what the step did, not what it was declared to do:

* the **intent** names the step, the partition, the run's parameters (profile configuration id, as-of date)
  and the content hash of everything the step read through the lakehouse, by table; it is appended just before
  the step's first lakehouse write (an intent precedes every change it explains); a step whose output is files
  appends it when it calls `LakehouseResource.seal_reads()` before writing them (the tournament snapshot, the
  ledger export), and a step that does neither at its end;
* the **outcome** names the status, the content hashes of every table the step wrote (the partition's slice of
  a partitioned table, the whole table otherwise) plus any `*_id` metadata (a snapshot's content id), what it
  read after its first write (`late_inputs`), and the numeric metadata as a summary, or the error.

The run's genesis record (code version, manifest hash, package versions, the table-hash scheme) precedes its
first record. A step whose work runs in another process (dbt) declares the tables it reads
(`declared_reads`); its intent is appended first, with their hashes. Tournament cells never open the database: the scoreboard appends their outcomes when it
stores them.
"""

import functools
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from partitions import partition_of
from tsp_platform.audit import AuditLedger, environment_body
from tsp_platform.lakehouse import TABLES, Lakehouse
from tsp_platform.lakehouse.lineage import Lineage


def _hashes(lake: Lakehouse, tables, profile: str | None, as_of) -> dict[str, str | None]:
    """Content hashes of the tables (their partition's slice where partitioned); None before the file exists."""
    if not lake.exists():
        return {table: None for table in tables}
    hashes = {}
    for table in tables:
        scoped = TABLES[table].partition == ("profile", "as_of") and profile is not None
        hashes[table] = lake.content_hash(table, profile, as_of) if scoped else lake.content_hash(table)
    return hashes


def _summary(result) -> tuple[dict, dict]:
    """(numeric metadata, `*_id` metadata) of a MaterializeResult."""
    numbers, ids = {}, {}
    for key, value in (getattr(result, "metadata", None) or {}).items():
        raw = getattr(value, "value", value)
        if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
            continue
        if key.endswith("_id") and isinstance(raw, str):
            ids[key] = raw
        elif isinstance(raw, (int, float)) and math.isfinite(raw):
            numbers[key.removeprefix("dagster/")] = raw
    return numbers, ids


def _partition(context, manifest) -> tuple[str | None, str | None, object, dict]:
    """(partition key, profile or meta name, as-of, parameters) of the step."""
    if not context.has_partition_key:
        return None, None, None, {}
    partition = str(context.partition_key)
    dims = context.partition_key.keys_by_dimension
    if "profile" in dims:
        profile, as_of = partition_of(context)
        return partition, profile, as_of, {
            "profile": profile, "as_of": as_of, "profile_config_id": manifest.manifest().profile(profile).config_id()}
    if "meta" in dims:  # a meta profile: its tables carry the meta name in their profile column
        name, as_of = dims["meta"], dims["date"]
        return partition, name, as_of, {
            "meta": name, "as_of": as_of, "meta_config_id": manifest.manifest().file.meta_profiles[name].config_id()}
    return partition, None, None, {}


@contextmanager
def audit_step(context, lakehouse, manifest, step: str | None = None,
               declared_reads: tuple[str, ...] = ()) -> Iterator[dict]:
    """Intent before the block's first lakehouse write, outcome after the block (failure, with the error, if it
    raises). The block may fill the yielded dict's `summary` (numbers) and `ids` (extra output ids)."""
    lake = lakehouse.unrecorded()
    ledger = AuditLedger(lake)
    run_id = context.run.run_id
    partition, profile, as_of, params = _partition(context, manifest)
    base = {"step": step or context.asset_key.to_user_string(), "partition": partition}

    def append_intent() -> None:
        inputs = {**_hashes(lake, declared_reads, profile, as_of), **lineage.inputs}
        ledger.append(run_id, [("intent", {**base, "params": params, "inputs": inputs})],
                      genesis=environment_body(manifest.path))

    lineage = Lineage(before_first_write=append_intent)
    if declared_reads:  # the work happens in another process (dbt): its intent goes first
        lineage.seal()
    outcome: dict = {"summary": {}, "ids": {}}
    try:
        with lakehouse.recording(lineage):
            yield outcome
        lineage.seal()  # a step that wrote nothing in the lakehouse: its intent now, before its outcome
        outputs = {**_hashes(lake, lineage.written, profile, as_of), **outcome["ids"]}
    except BaseException as error:  # an interrupted run too: an intent never stays without its outcome
        failure = {**base, "status": "failure", "error": f"{type(error).__name__}: {error}"[:1000]}
        try:
            lineage.seal()
            ledger.append(run_id, [("outcome", failure)])
        except Exception as ledger_error:  # noqa: BLE001  (never hide the step's own error)
            context.log.error(f"audit ledger: could not record the failure: {ledger_error}")
        raise
    body = {**base, "status": "success", "outputs": outputs, "summary": outcome["summary"]}
    if lineage.late_inputs:
        body["late_inputs"] = lineage.late_inputs
    ledger.append(run_id, [("outcome", body)])


def audited(fn: Callable) -> Callable:
    """`audit_step` around an asset function returning a MaterializeResult (its numeric metadata is the summary)."""
    @functools.wraps(fn)
    def inner(context, *args, **kwargs):
        with audit_step(context, kwargs["lakehouse"], kwargs["manifest"]) as outcome:
            result = fn(context, *args, **kwargs)
            outcome["summary"], outcome["ids"] = _summary(result)
        return result

    return inner


def record_outcomes(context, lakehouse, manifest, outcomes: list[dict]) -> None:
    """Append outcome records on behalf of steps that cannot write the database (tournament cells)."""
    AuditLedger(lakehouse.unrecorded()).append(
        context.run.run_id, [("outcome", body) for body in outcomes], genesis=environment_body(manifest.path)
    )
