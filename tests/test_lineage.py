"""The audit ledger names what each step actually read and wrote, read off the SQL that reached DuckDB.

Each step runs alone through Dagster with every DuckDB connection wrapped: the statements it sent are captured
at the connection, below the lakehouse object that records lineage, so a read that bypassed the recording
would show up here and not in the ledger. The tables those statements read must be exactly the intent's
inputs, the tables they changed exactly the outcome's outputs, and the intent must reach the ledger before
the step's first write.
"""

from __future__ import annotations

import json
import re

import dagster as dg
import duckdb
import pytest

from partitions import partition_key
from tests.test_alpha_cycle import run_alpha
from tests.test_data_cycle import QUIET, run_cycle, seed
from tsp_platform.audit import AuditLedger
from tsp_platform.lakehouse import Lakehouse
from tsp_platform.lakehouse.lineage import UNPARSED

PROFILE, DAY = "us_equities_sample", "2022-12-28"
STEPS = ("returns_matrix", "feature_store", "selection", "portfolio_weights", "tournament_inputs")
WRITE = re.compile(r"^\s*(?:DELETE\s+FROM|INSERT\s+INTO|MERGE\s+INTO)\s+(\w+)", re.IGNORECASE)
READ = re.compile(r"^\s*(?:SELECT|WITH)\b", re.IGNORECASE)


class Captured:
    """A DuckDB connection that logs every statement sent through `sql` or `execute`."""

    def __init__(self, conn, log: list[str]):
        self._conn, self._log = conn, log

    def sql(self, query, *args, **kwargs):
        self._log.append(query)
        return self._conn.sql(query, *args, **kwargs)

    def execute(self, query, *args, **kwargs):
        self._log.append(query)
        return self._conn.execute(query, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._conn, name)


def tables_read(statements: list[str]) -> set[str]:
    """Tables the captured SELECTs read, by DuckDB's parser (values are `?` parameters: parsed as NULL), leaving
    out the audit ledger's own bookkeeping and schema lookups."""
    tables = set()
    for statement in statements:
        if READ.match(statement) and "information_schema" not in statement:
            tables |= set(duckdb.get_table_names(statement.replace("?", "NULL"), qualified=False))
    return tables - {"audit_ledger"}


@pytest.fixture(scope="module")
def cycled(tmp_path_factory):
    """The default profile's data and alpha cycles, once; each test then re-runs one step alone."""
    from assets.definitions import build_definitions
    from resources import resources_for
    from tests.test_tournament_dagster import small_manifest

    tmp_path = tmp_path_factory.mktemp("lineage")
    lake_path = tmp_path / "lake.duckdb"
    defs = build_definitions(resources_for(lake_path, small_manifest(tmp_path)))
    with dg.instance_for_test() as instance:
        seed(defs, instance)
        run_cycle(defs, instance, PROFILE, DAY, raise_on_error=False)  # quarantined symbols fail WARN-free gates
        assert run_alpha(defs, instance, PROFILE, DAY).success
        yield defs, instance, Lakehouse(lake_path)


def run_alone(defs, instance, step: str, monkeypatch) -> list[str]:
    """Materialise one step of the partition with every DuckDB statement captured; its statements, in order."""
    log: list[str] = []
    real_connect = duckdb.connect
    monkeypatch.setattr(duckdb, "connect", lambda *a, **k: Captured(real_connect(*a, **k), log))
    job = dg.define_asset_job(f"only_{step}", selection=dg.AssetSelection.assets(step).without_checks())
    jobs = dg.Definitions.merge(defs, dg.Definitions(jobs=[job]))
    result = jobs.resolve_job_def(job.name).execute_in_process(
        partition_key=partition_key(PROFILE, DAY), instance=instance, run_config=QUIET)
    monkeypatch.undo()
    assert result.success
    return log


def step_records(lake: Lakehouse, step: str) -> tuple[dict, dict]:
    """The last intent and outcome of `step` in the ledger."""
    records = [json.loads(line) for line in AuditLedger(lake).lines()]
    intent = [r for r in records if r["kind"] == "intent" and r["body"]["step"] == step][-1]
    outcome = [r for r in records if r["kind"] == "outcome" and r["body"]["step"] == step][-1]
    assert intent["run_id"] == outcome["run_id"] and intent["seq"] < outcome["seq"]
    return intent["body"], outcome["body"]


# What the older ledger missed (issue 13): returns_matrix never named ohlcv, tournament_inputs omitted ohlcv and
# symbols, selection hashed 2 of the ~8 tables it reads.
NAMED = {
    "returns_matrix": {"ohlcv", "raw_pool", "health_results", "symbols"},
    "feature_store": {"ohlcv", "raw_pool", "returns_matrix", "symbols"},
    "selection": {"raw_pool", "returns_matrix", "features", "ohlcv", "symbols", "discovery_runs", "scan_results",
                  "health_results"},
    "portfolio_weights": {"selection_winners", "returns_matrix", "features", "regimes"},
    "tournament_inputs": {"ohlcv", "symbols", "health_results"},
}


@pytest.mark.parametrize("step", STEPS)
def test_the_intent_lists_every_table_the_step_read_and_the_outcome_every_table_it_wrote(cycled, step, monkeypatch):
    defs, instance, lake = cycled
    statements = run_alone(defs, instance, step, monkeypatch)
    intent, outcome = step_records(lake, step)
    ledger_writes = [i for i, s in enumerate(statements) if re.match(r"\s*INSERT\s+INTO\s+audit_ledger", s, re.I)]
    step_writes = [i for i, s in enumerate(statements) if WRITE.match(s) and "audit_ledger" not in s]
    intent_at = ledger_writes[0]  # the run's genesis and the step's intent, one transaction
    if step_writes:
        assert intent_at < step_writes[0], f"{step}: the intent reached the ledger after the step's first write"
    read = tables_read(statements[:intent_at])
    assert UNPARSED not in intent["inputs"]
    assert set(intent["inputs"]) == read, step
    assert NAMED[step] <= read, (step, sorted(read))
    assert "late_inputs" not in outcome  # these steps read everything before they write
    written = {WRITE.match(statements[i]).group(1) for i in step_writes}
    assert written == {t for t in outcome["outputs"] if not t.endswith("_id")}, step
