"""The audit ledger: canonical JSON, the hash chain in a real DuckDB file, export, and tamper detection."""

from __future__ import annotations

import json
import math
from datetime import date

import numpy as np
import pytest

from tsp_cli.main import main as tsp
from tsp_platform.audit import AuditLedger, LedgerError, canonical_json, environment_body, verify_lines
from tsp_platform.audit.store import verify_file
from tsp_platform.config.manifest import DEFAULT_MANIFEST
from tsp_platform.lakehouse import Lakehouse


def test_canonical_json_is_stable_and_refuses_what_it_cannot_hash_exactly():
    a = canonical_json({"b": 1, "a": {"y": np.float64(0.5), "x": [np.int64(2), date(2022, 1, 3)]}})
    b = canonical_json({"a": {"x": [2, "2022-01-03"], "y": 0.5}, "b": 1})
    assert a == b == '{"a":{"x":[2,"2022-01-03"],"y":0.5},"b":1}'
    with pytest.raises(LedgerError, match="not a string"):
        canonical_json({1: "cluster sizes keyed by int"})
    with pytest.raises(LedgerError, match="finite"):
        canonical_json({"sharpe": math.nan})
    with pytest.raises(LedgerError, match="cannot record"):
        canonical_json({"x": object()})


@pytest.fixture
def ledger(tmp_path) -> AuditLedger:
    ledger = AuditLedger(Lakehouse(tmp_path / "lake.duckdb"))
    genesis = environment_body(DEFAULT_MANIFEST)
    for run in ("run-a", "run-b"):
        for step in ("discovery_scan", "raw_pool"):
            ledger.append(run, [("intent", {"step": step, "partition": "2022-12-28|p", "params": {"k": 1},
                                            "inputs": {"raw_pool": "ab" * 32}})], genesis=genesis)
            ledger.append(run, [("outcome", {"step": step, "partition": "2022-12-28|p", "status": "success",
                                             "outputs": {"scan_results": "cd" * 32}, "summary": {"rows": 3}})])
    return ledger


def test_each_run_opens_with_a_genesis_record_and_the_chain_verifies(ledger, tmp_path):
    records = [json.loads(line) for line in ledger.lines()]
    assert [r["kind"] for r in records] == ["genesis", "intent", "outcome", "intent", "outcome"] * 2
    assert [r["seq"] for r in records] == list(range(10))
    assert records[0]["body"]["manifest_hash"] and records[0]["body"]["code_version"]
    assert all(records[i]["prev_hash"] == records[i - 1]["hash"] for i in range(1, 10))
    assert ledger.verify().ok and ledger.verify().records == 10
    path = ledger.export(tmp_path / "audit.jsonl")
    assert verify_file(path).ok
    assert tsp(["ledger", "verify", str(path)]) == 0


def test_a_run_cannot_append_before_its_genesis(tmp_path):
    with pytest.raises(ValueError, match="no genesis record"):
        AuditLedger(Lakehouse(tmp_path / "lake.duckdb")).append("r", [("intent", {"step": "x"})])


def _tampered(lines: list[str], how: str) -> list[str]:
    out = list(lines)
    if how == "modified":
        record = json.loads(out[4])
        record["body"]["summary"]["rows"] = 4  # a changed summary, hash left as it was
        out[4] = canonical_json(record)
    elif how == "deleted":
        del out[4]
    elif how == "inserted":
        out.insert(4, out[2])
    elif how == "reordered":
        out[3], out[4] = out[4], out[3]
    elif how == "rehashed":  # modified and re-hashed: the next record's link breaks
        record = json.loads(out[4])
        record.pop("hash")
        record["body"]["summary"]["rows"] = 4
        from tsp_platform.audit.ledger import sha256_text

        record["hash"] = sha256_text(canonical_json(record))
        out[4] = canonical_json(record)
    return out


@pytest.mark.parametrize("how, first_bad", [("modified", 5), ("deleted", 5), ("inserted", 5), ("reordered", 4),
                                            ("rehashed", 6)])
def test_every_kind_of_tampering_is_caught_at_the_first_bad_record(ledger, tmp_path, capsys, how, first_bad):
    lines = ledger.lines()
    result = verify_lines(_tampered(lines, how))
    assert not result.ok and result.first_bad == first_bad, result
    path = tmp_path / f"{how}.jsonl"
    path.write_text("".join(line + "\n" for line in _tampered(lines, how)))
    assert tsp(["ledger", "verify", str(path)]) == 1
    assert f"record {first_bad}" in capsys.readouterr().out


def test_tampering_inside_the_lakehouse_is_caught(ledger):
    ledger.lakehouse.query("SELECT 1")  # the file exists
    import duckdb

    with duckdb.connect(str(ledger.lakehouse.path)) as conn:
        record = json.loads(conn.execute("SELECT record FROM audit_ledger WHERE seq = 7").fetchall()[0][0])
        record["body"]["status"] = "failure"
        conn.execute("UPDATE audit_ledger SET record = ? WHERE seq = 7", [canonical_json(record)])
    result = ledger.verify()
    assert not result.ok and result.first_bad == 8


def test_verifying_a_missing_file_is_a_clear_error(tmp_path, capsys):
    assert tsp(["ledger", "verify", str(tmp_path / "nope.jsonl")]) == 2
    assert "no ledger file" in capsys.readouterr().err


def test_every_materialisation_is_recorded_through_dagster(defs_for, instance, lakehouse, lakehouse_path):
    from datetime import date as day

    import dagster as dg

    from partitions import partition_key
    from tests.test_data_cycle import QUIET, run_cycle, seed

    defs = defs_for()
    seed(defs, instance)
    run_cycle(defs, instance, "us_equities_sample", "2022-12-28")
    failed = defs.resolve_job_def("alpha_cycle").execute_in_process(
        partition_key=partition_key("crypto_synthetic", "2022-12-31"), instance=instance, run_config=QUIET,
        raise_on_error=False)  # no data cycle for this partition: feature_store fails
    assert not failed.success
    export = defs.resolve_job_def("audit_ledger_job").execute_in_process(instance=instance, run_config=QUIET)
    assert export.success
    [check] = export.get_asset_check_evaluations()
    assert check.check_name == "ledger_verifies" and check.passed

    records = [json.loads(line) for line in AuditLedger(lakehouse).lines()]
    runs = {r["run_id"] for r in records}
    assert len(runs) == 4  # seed, data cycle, failed alpha cycle, export
    for run in runs:
        assert next(r for r in records if r["run_id"] == run)["kind"] == "genesis"
    steps = [(r["kind"], r["body"].get("step")) for r in records if r["kind"] != "genesis"]
    for step in ("embedded_market_data", "discovery_scan", "raw_pool", "ohlcv_history", "returns_matrix"):
        assert ("intent", step) in steps and ("outcome", step) in steps
    pool = next(r for r in records if r["kind"] == "outcome" and r["body"]["step"] == "raw_pool")["body"]
    assert pool["status"] == "success" and pool["partition"] == "2022-12-28|us_equities_sample"
    assert pool["outputs"]["raw_pool"] == lakehouse.content_hash("raw_pool", "us_equities_sample", day(2022, 12, 28))
    failure = next(r for r in records if r["kind"] == "outcome" and r["body"]["step"] == "feature_store")["body"]
    assert failure["status"] == "failure" and "raw_pool and returns_matrix must be materialised" in failure["error"]
    assert (lakehouse_path.parent / "audit.jsonl").exists()
    assert tsp(["ledger", "verify", str(lakehouse_path.parent / "audit.jsonl")]) == 0
    assert dg.AssetKey("audit_ledger") in {e.asset_key for e in export.get_asset_materialization_events()}


def test_records_cut_from_the_end_are_caught_against_an_anchor(ledger, tmp_path, capsys):
    lines = ledger.lines()
    head = json.loads(lines[-1])["hash"]
    path = tmp_path / "cut.jsonl"
    path.write_text("".join(line + "\n" for line in lines[:-2]))
    assert verify_lines(lines[:-2]).ok  # a chain alone cannot see it ...
    result = verify_lines(lines[:-2], anchor=(len(lines), head))  # ... an anchor kept elsewhere can
    assert not result.ok and result.first_bad == len(lines) - 1 and "removed from its end" in result.reason
    assert tsp(["ledger", "verify", str(path), "--anchor", f"{len(lines)}:{head}"]) == 1
    assert "removed from its end" in capsys.readouterr().out
    rewritten = _tampered(lines, "rehashed")[:5]  # a consistent prefix that differs from the anchored one
    assert not verify_lines(rewritten, anchor=(5, json.loads(lines[4])["hash"])).ok
    assert tsp(["ledger", "verify", str(path), "--anchor", "nonsense"]) == 2


def test_the_ledger_check_catches_records_deleted_since_the_last_export(defs_for, instance, lakehouse):
    import duckdb

    from tests.test_data_cycle import QUIET, seed

    defs = defs_for()
    seed(defs, instance)
    export = defs.resolve_job_def("audit_ledger_job")
    assert export.execute_in_process(instance=instance, run_config=QUIET).success
    with duckdb.connect(str(lakehouse.path)) as conn:  # cut the tail: the chain that remains is consistent
        last = conn.execute("SELECT max(seq) FROM audit_ledger").fetchall()[0][0]
        conn.execute("DELETE FROM audit_ledger WHERE seq >= ?", [last - 1])
    result = export.execute_in_process(instance=instance, run_config=QUIET, raise_on_error=False)
    [check] = result.get_asset_check_evaluations()
    # the second export's own records now sit where the cut ones were: the anchored head is gone
    assert not check.passed and "records were removed or rewritten since the anchor" in check.description


def test_non_canonical_text_and_misfiled_columns_are_caught(ledger):
    import duckdb

    lines = ledger.lines()
    spaced = lines[3].replace('"kind":"intent"', '"kind": "intent"')
    assert verify_lines(lines[:3] + [spaced] + lines[4:]).first_bad == 4
    duplicate = lines[3].replace('"kind":"intent"', '"kind":"outcome","kind":"intent"')
    assert "canonical" in verify_lines(lines[:3] + [duplicate] + lines[4:]).reason
    with duckdb.connect(str(ledger.lakehouse.path)) as conn:
        conn.execute("UPDATE audit_ledger SET step = 'something_else' WHERE seq = 2")
    result = ledger.verify()
    assert not result.ok and result.first_bad == 3 and "['step']" in result.reason
    with pytest.raises(LedgerError, match="lone surrogate"):
        canonical_json({"text": "\ud800"})
