"""Every lakehouse-writing asset appends an intent record before it runs and an outcome record after it.

`@audited(reads=..., writes=...)` sits under `@dg.asset`. The intent names the step, the partition, the run's
parameters (profile configuration id, as-of date) and the content hashes of the tables it reads; the outcome
names the status, the content hashes of the tables it wrote (plus any `*_id` metadata, such as a snapshot's
content id) and the numeric metadata as a summary, or the error. The run's genesis record (code version,
manifest hash, package versions) precedes its first record. Tournament cells never open the database: the
scoreboard appends their outcomes when it stores them.
"""

import functools
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from partitions import partition_of
from tsp_platform.audit import AuditLedger, environment_body
from tsp_platform.lakehouse import TABLES, Lakehouse


def _hashes(lake: Lakehouse, tables: tuple[str, ...], profile: str | None, as_of) -> dict[str, str | None]:
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


@contextmanager
def audit_step(context, lakehouse, manifest, step: str | None = None, reads: tuple[str, ...] = (),
               writes: tuple[str, ...] = ()) -> Iterator[dict]:
    """Intent before the block, outcome after it (failure, with the error, if it raises). The block may fill the
    yielded dict's `summary` (numbers) and `ids` (extra output ids)."""
    lake = lakehouse.lakehouse()
    ledger = AuditLedger(lake)
    run_id = context.run.run_id
    profile = as_of = partition = None
    params: dict = {}
    if context.has_partition_key:
        partition = str(context.partition_key)
        dims = context.partition_key.keys_by_dimension
        if "profile" in dims:
            profile, as_of = partition_of(context)
            params = {"profile": profile, "as_of": as_of,
                      "profile_config_id": manifest.manifest().profile(profile).config_id()}
        elif "meta" in dims:  # a meta profile: its tables carry the meta name in their profile column
            profile, as_of = dims["meta"], dims["date"]
            params = {"meta": profile, "as_of": as_of,
                      "meta_config_id": manifest.manifest().file.meta_profiles[profile].config_id()}
    base = {"step": step or context.asset_key.to_user_string(), "partition": partition}
    intent = {**base, "params": params, "inputs": _hashes(lake, reads, profile, as_of) if reads else {}}
    ledger.append(run_id, [("intent", intent)], genesis=environment_body(manifest.path))
    outcome: dict = {"summary": {}, "ids": {}}
    try:
        yield outcome
        outputs = {**_hashes(lake, writes, profile, as_of), **outcome["ids"]}
    except BaseException as error:  # an interrupted run too: an intent never stays without its outcome
        failure = {**base, "status": "failure", "error": f"{type(error).__name__}: {error}"[:1000]}
        try:
            ledger.append(run_id, [("outcome", failure)])
        except Exception as ledger_error:  # noqa: BLE001  (never hide the step's own error)
            context.log.error(f"audit ledger: could not record the failure: {ledger_error}")
        raise
    ledger.append(run_id, [("outcome", {**base, "status": "success", "outputs": outputs,
                                        "summary": outcome["summary"]})])


def audited(reads: tuple[str, ...] = (), writes: tuple[str, ...] = ()) -> Callable:
    """`audit_step` around an asset function returning a MaterializeResult (its numeric metadata is the summary)."""
    def wrap(fn):
        @functools.wraps(fn)
        def inner(context, *args, **kwargs):
            with audit_step(context, kwargs["lakehouse"], kwargs["manifest"], reads=reads, writes=writes) as outcome:
                result = fn(context, *args, **kwargs)
                outcome["summary"], outcome["ids"] = _summary(result)
            return result

        return inner

    return wrap


def record_outcomes(context, lakehouse, manifest, outcomes: list[dict]) -> None:
    """Append outcome records on behalf of steps that cannot write the database (tournament cells)."""
    AuditLedger(lakehouse.lakehouse()).append(
        context.run.run_id, [("outcome", body) for body in outcomes], genesis=environment_body(manifest.path)
    )

