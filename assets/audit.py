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
@audited()
def audit_ledger(context: dg.AssetExecutionContext, lakehouse: LakehouseResource, manifest: ManifestResource) -> dg.MaterializeResult:
    """Export the hash-chained ledger to `audit.jsonl` (atomically) and verify the file written."""
    path = AuditLedger(lakehouse.lakehouse()).export(lakehouse.audit_path())
    result = verify_file(path)
    return dg.MaterializeResult(
        metadata={"path": dg.MetadataValue.path(str(path)), "records": result.records, "verification": str(result)}
    )


@dg.asset_check(asset=audit_ledger, pool=DUCKDB_POOL, description="Every record's hash, link and sequence verify, "
                "in the lakehouse and in the exported file")
def ledger_verifies(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
    stored = AuditLedger(lakehouse.lakehouse()).verify()
    path = lakehouse.audit_path()
    exported = verify_file(path) if path.exists() else None
    problems = [f"lakehouse: {stored}"] if not stored.ok else []
    if exported is None:
        problems.append(f"no export at {path}")
    elif not exported.ok:
        problems.append(f"{path.name}: {exported}")
    return dg.AssetCheckResult(
        passed=not problems, severity=dg.AssetCheckSeverity.ERROR,
        description="; ".join(problems) if problems else str(stored),
        metadata={"records": stored.records, "exported_records": exported.records if exported else 0},
    )


AUDIT_ASSETS = [audit_ledger]
AUDIT_CHECKS = [ledger_verifies]
