"""The audit ledger's export, `audit.jsonl`, and the check that verifies the whole chain.

One chain per lakehouse file (not per partition): every run's records extend it, so the export is an
unpartitioned asset. Its own run's outcome record lands after the export, in the lakehouse only.
"""

import dagster as dg

from assets._audit import audited
from resources import DUCKDB_POOL, LakehouseResource, ManifestResource
from tsp_platform.audit import AuditLedger
from tsp_platform.audit.store import verify_file

AUDIT_GROUP = "audit"


@dg.asset(group_name=AUDIT_GROUP, pool=DUCKDB_POOL, kinds={"duckdb", "json"})
@audited
def audit_ledger(context: dg.AssetExecutionContext, lakehouse: LakehouseResource, manifest: ManifestResource) -> dg.MaterializeResult:
    """Export the hash-chained ledger to `audit.jsonl` (atomically) and verify the file written."""
    lakehouse.seal_reads()  # this run's intent is part of the export, so the export's anchor covers it
    path = AuditLedger(lakehouse.lakehouse()).export(lakehouse.audit_path())
    result = verify_file(path)
    if not result.ok:  # never report an export of a broken chain as a success
        raise dg.Failure(description=f"{path}: {result}", metadata={"path": dg.MetadataValue.path(str(path))})
    return dg.MaterializeResult(
        metadata={"path": dg.MetadataValue.path(str(path)), "records": result.records, "head": result.head,
                  "anchor": f"{result.records}:{result.head}", "verification": str(result)}
    )


def _previous_anchor(instance) -> tuple[int, str] | None:
    """The (count, head) the export before the latest one saw, kept in the Dagster event log: the chain must
    still hold it (a chain alone cannot show records cut from its end)."""
    records = instance.fetch_materializations(dg.AssetKey("audit_ledger"), limit=2).records
    if len(records) < 2:
        return None
    metadata = records[1].asset_materialization.metadata
    if "records" not in metadata or "head" not in metadata:
        return None
    return int(metadata["records"].value), str(metadata["head"].value)


@dg.asset_check(asset=audit_ledger, pool=DUCKDB_POOL, description="Every record's hash, link and sequence verify, "
                "in the lakehouse and in the exported file, and the head the previous export saw is still there")
def ledger_verifies(context: dg.AssetCheckExecutionContext, lakehouse: LakehouseResource) -> dg.AssetCheckResult:
    anchor = _previous_anchor(context.instance)
    ledger = AuditLedger(lakehouse.lakehouse())
    stored = ledger.verify(anchor)
    path = lakehouse.audit_path()
    exported = verify_file(path, anchor) if path.exists() else None
    problems = [f"lakehouse: {stored}"] if not stored.ok else []
    if exported is None:
        problems.append(f"no export at {path}")
    elif not exported.ok:
        problems.append(f"{path.name}: {exported}")
    else:  # the export is what the lakehouse held then: a prefix of the chain now
        lines = ledger.lines()
        with path.open(encoding="utf-8") as handle:
            written = [line.rstrip("\n") for line in handle]
        if written != lines[: len(written)]:
            problems.append(f"{path.name} is not a prefix of the lakehouse chain (one of them was replaced)")
    return dg.AssetCheckResult(
        passed=not problems, severity=dg.AssetCheckSeverity.ERROR,
        description="; ".join(problems) if problems else str(stored),
        metadata={"records": stored.records, "exported_records": exported.records if exported else 0},
    )


AUDIT_ASSETS = [audit_ledger]
AUDIT_CHECKS = [ledger_verifies]
