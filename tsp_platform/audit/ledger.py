"""The audit ledger: a hash chain of canonical-JSON records, one per decision, stored in the lakehouse.

Record fields (every record): `seq` (0, 1, 2, … with no gap), `kind` (`genesis` | `intent` | `outcome`),
`run_id`, `ts` (UTC, ISO 8601 with "Z"), `prev_hash`, `hash`, and a `body` mapping:

* genesis (opens each run): code version, manifest hash, Python and key package versions, and the scheme its
  table hashes use (`table_hash`; absent in runs before it was recorded: `LEGACY_TABLE_HASH`);
* intent (before a step): step, partition, parameters, hashes of the inputs it reads;
* outcome (after it): step, partition, status (`success` | `failure`), hashes of the outputs it wrote, a small
  summary (row counts, metrics) or the error; never whole return series.

`hash` = SHA-256 of the canonical JSON of the record without `hash`; `prev_hash` = the previous record's hash
(64 zeros for the first). Canonical JSON (`canonical_json`): keys must be strings and are sorted, no
whitespace, UTF-8, and NaN or ±inf are refused rather than written as non-JSON tokens (the older system hashed
in-memory dicts whose integer keys re-loaded as strings in another order, so its own records failed
verification). Numpy scalars, dates and datetimes are converted before hashing, so the stored text is exactly
what was hashed.

Verification (`verify_lines`) recomputes every hash, checks each `prev_hash` against the previous record and
the `seq` run; it names the first bad record, so a modified, deleted, inserted or reordered record is caught.
A chain alone cannot show that records were cut from its *end*: that needs an anchor kept elsewhere (a record
count and head hash seen earlier; the `anchor` of `verify_lines`). The export asset records its head in the Dagster event log,
and `tsp ledger verify --anchor COUNT:HASH` checks a file against one.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timezone

import numpy as np

GENESIS_PREV = "0" * 64
KINDS = ("genesis", "intent", "outcome")
# The table-hash scheme of runs whose genesis names none: floats at 17 decimal places (`core.hashing`).
LEGACY_TABLE_HASH = "frame-hash/1"


class LedgerError(ValueError):
    """A value cannot be written to the ledger (non-string key, NaN, an unknown type)."""


def _plain(value, where: str = "record"):
    """JSON-ready plain value; refuses what canonical JSON cannot represent exactly."""
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise LedgerError(f"{where}: key {key!r} is not a string (keys must be strings to hash stably)")
            out[key] = _plain(item, f"{where}.{key}")
        return out
    if isinstance(value, (list, tuple)):
        return [_plain(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        if not math.isfinite(number):
            raise LedgerError(f"{where}: {number} is not a finite number (the ledger refuses NaN and infinities)")
        return number
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise LedgerError(f"{where}: the text is not valid Unicode (a lone surrogate)") from None
        return value
    if value is None:
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    raise LedgerError(f"{where}: cannot record a {type(value).__name__}")


def canonical_json(value) -> str:
    """Sorted string keys, no whitespace, no NaN: the same value always gives the same text."""
    return json.dumps(_plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def utc_timestamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def seal(seq: int, kind: str, run_id: str, body: Mapping, prev_hash: str, ts: str | None = None) -> dict:
    """A complete record: its fields, chained to `prev_hash`, with its own hash."""
    if kind not in KINDS:
        raise LedgerError(f"kind {kind!r} is not one of {KINDS}")
    record = {"seq": seq, "kind": kind, "run_id": run_id, "ts": ts or utc_timestamp(), "prev_hash": prev_hash,
              "body": _plain(body, "body")}
    record["hash"] = sha256_text(canonical_json(record))
    return record


@dataclass(frozen=True)
class Verification:
    records: int
    first_bad: int | None = None  # 1-based line number of the first bad record
    reason: str = ""
    head: str = GENESIS_PREV  # the last verified record's hash (an anchor against removals from the end)
    table_hashes: tuple[tuple[str, int], ...] = ()  # (table-hash scheme, runs) over the verified genesis records

    @property
    def ok(self) -> bool:
        return self.first_bad is None

    def __str__(self) -> str:
        if self.ok:
            schemes = "; ".join(f"{scheme} in {runs} run{'s' * (runs != 1)}" for scheme, runs in self.table_hashes)
            return (f"ledger intact: {self.records} records, every hash and link verified"
                    + (f" (table hashes: {schemes})" if schemes else ""))
        return f"ledger broken at record {self.first_bad} (line {self.first_bad}): {self.reason}"


def verify_lines(lines: Iterable[str], anchor: tuple[int, str] | None = None) -> Verification:
    """Check a ledger given as canonical-JSON lines, in order (see the module docstring); with an `anchor`
    (record count, that record's hash) seen earlier, the chain must still hold that record unchanged."""
    prev, count, anchored, opened, schemes = GENESIS_PREV, 0, None, set(), {}
    for number, line in enumerate(lines, start=1):
        bad = lambda reason: Verification(count, number, reason, prev)  # noqa: E731
        if not line.strip():
            return bad("empty line")
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            return bad(f"not JSON ({error})")
        if not isinstance(record, dict) or not isinstance(record.get("hash"), str):
            return bad("not a ledger record")
        claimed = record.pop("hash")
        try:
            actual = sha256_text(canonical_json(record))
            canonical = canonical_json({**record, "hash": claimed})
        except LedgerError as error:
            return bad(str(error))
        if actual != claimed:
            return bad("content does not match its hash (the record was modified)")
        if line != canonical:
            return bad("the line is not in canonical form (duplicate keys, spacing or escapes differ from what "
                       "was hashed)")
        if record.get("prev_hash") != prev:
            return bad("prev_hash does not match the previous record (a record was deleted, inserted or moved "
                       "before this one)")
        seq = record.get("seq")
        if type(seq) is not int or seq != number - 1:
            return bad(f"seq {seq!r} where {number - 1} was expected")
        if record.get("kind") not in KINDS or not isinstance(record.get("run_id"), str):
            return bad(f"kind {record.get('kind')!r} / run_id {record.get('run_id')!r} is not a ledger record's")
        if record["run_id"] not in opened:
            if record["kind"] != "genesis":
                return bad(f"run {record['run_id']} starts without a genesis record")
            opened.add(record["run_id"])
            body = record.get("body")
            scheme = str(body.get("table_hash", LEGACY_TABLE_HASH)) if isinstance(body, dict) else LEGACY_TABLE_HASH
            schemes[scheme] = schemes.get(scheme, 0) + 1
        prev, count = claimed, count + 1
        if anchor is not None and count == anchor[0]:
            anchored = claimed
    if anchor is not None:
        if count < anchor[0]:
            return Verification(count, count + 1, f"the ledger ends after {count} records but {anchor[0]} were "
                                                  "anchored: records were removed from its end", prev)
        if anchored != anchor[1]:
            return Verification(count, anchor[0], "the anchored record's hash differs: records were removed or "
                                                  "rewritten since the anchor", prev)
    return Verification(count, head=prev, table_hashes=tuple(sorted(schemes.items(), reverse=True)))
