"""The audit ledger: every decision as a hash-chained canonical-JSON record (`ledger`), kept in the lakehouse
(`store`) and exported as `audit.jsonl`."""

from tsp_platform.audit.ledger import GENESIS_PREV, LedgerError, Verification, canonical_json, verify_lines
from tsp_platform.audit.store import AuditLedger, environment_body

__all__ = ["GENESIS_PREV", "AuditLedger", "LedgerError", "Verification", "canonical_json", "environment_body",
           "verify_lines"]
