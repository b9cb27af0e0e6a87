"""Faults end to end: real Dagster runs on real DuckDB files; every fault ends in a clear error or an explicit gate,
and no stored data is lost or half-written.

* Live sources (profile `binance_spot_ratings`) misbehaving on the cycle after a good one: the screener and the
  exchange time out, throttle (429) then answer, answer malformed JSON, or answer fewer bars than asked. Both
  clients run their production code and are replayed at the HTTP transport: TradingView through a `requests`
  adapter on the screener's Session (as in test_live_profile), Binance through a `requests` adapter mounted on
  ccxt's own Session, so ccxt's real `fetch` (timeouts → RequestTimeout, status → exception mapping, JSON
  parsing) runs too. The lakehouse starts as a copy of one holding the good partition D.
* A process killed (SIGKILL) while the seed job writes: the re-run completes and every table equals a clean seed's.
* A solver that fails during a real alpha cycle: the fallback served, and allocation_runs, the materialisation
  metadata and the audit ledger all say so.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import dagster as dg
import polars as pl
import pytest
import requests
from requests.structures import CaseInsensitiveDict

from resources import LiveSourcesResource
from tests.test_live_profile import (
    CRYPTO_SCAN,
    LOOKBACK,
    MULTI_QUOTE_SCAN,
    PROFILE,
    QUIET,
    BinanceMarket,
    D,
    TradingViewServer,
    ms,
    noon_after,
    run_cycle,
)
from tests.test_live_sources import REASONS, ReplayAdapter, SleepRecorder, recorded
from tsp_platform.audit import AuditLedger
from tsp_platform.context import PRICING_BUFFER_DAYS
from tsp_platform.core.hashing import frame_hash
from tsp_platform.lakehouse import TABLES, Lakehouse
from tsp_platform.lakehouse.lineage import VOLATILE_COLUMNS
from tsp_platform.sources.binance import BinanceOhlcvClient, make_exchange
from tsp_platform.sources.tradingview import TradingViewScreener

D1 = D + timedelta(days=1)  # the cycle after the good one
TV_URL = "https://scanner.tradingview.com/crypto/scan"
KLINES = "/api/v3/klines"
EXCHANGE_INFO = "/api/v3/exchangeInfo"
DATA_STEPS = ("discovery_scan", "raw_pool", "ohlcv_history", "returns_matrix")

pytestmark = pytest.mark.usefixtures("no_network")


# --------------------------------------------------------------------------------------------
# Binance at the HTTP transport (under ccxt's real fetch)
# --------------------------------------------------------------------------------------------


@dataclass
class Fault:
    """A scripted answer for requests to `endpoint` (optionally one symbol's): an exception the transport raises,
    or (status, body bytes); used `times` times (None: every time)."""

    endpoint: str
    step: BaseException | tuple[int, bytes]
    symbol: str | None = None
    times: int | None = None


class BinanceHttp(requests.adapters.BaseAdapter):
    """api.binance.com as a transport: exchangeInfo from the fixture, klines from `BinanceMarket` (generated wire
    bars, `limit`/`startTime`/`endTime` honoured, never past the clock), then the scripted faults and shortages."""

    def __init__(self, market: BinanceMarket, faults: list[Fault] = (), max_bars: int | None = None,
                 listed: dict[str, date] | None = None) -> None:
        super().__init__()
        self.market = market
        self.faults = list(faults)
        self.max_bars = max_bars  # the server answers at most this many bars, whatever the limit asked
        self.listed = listed or {}  # ticker -> first day the exchange has bars for
        self.sent: list[str] = []

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):  # noqa: ANN001
        self.sent.append(request.url)
        parts = urlsplit(request.url)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        for fault in self.faults:
            if fault.endpoint == parts.path and fault.symbol in (None, query.get("symbol")) and fault.times != 0:
                if fault.times is not None:
                    fault.times -= 1
                if isinstance(fault.step, BaseException):
                    raise fault.step
                return self._response(request, *fault.step)
        if parts.path == EXCHANGE_INFO:
            return self._response(request, 200, json.dumps(self.market.exchange_info).encode())
        assert parts.path == KLINES, f"unexpected request {request.method} {request.url}"
        self.market.calls.append(request.url)
        bars = self.market.klines(query)
        if query["symbol"] in self.listed:
            first = self.listed[query["symbol"]]
            bars = [b for b in bars if b[0] >= ms(first)]
        if self.max_bars is not None:
            bars = bars[: self.max_bars]
        return self._response(request, 200, json.dumps(bars).encode())

    @staticmethod
    def _response(request, status: int, body: bytes) -> requests.Response:
        response = requests.Response()
        response.status_code, response.reason = status, REASONS.get(status, "")
        response._content = body
        response.headers = CaseInsensitiveDict({"Content-Type": "application/json"})
        response.encoding, response.url, response.request = "utf-8", request.url, request
        return response

    def close(self) -> None:
        pass

    def klines_sent(self) -> list[dict[str, str]]:
        return [{k: v[0] for k, v in parse_qs(urlsplit(u).query).items()} for u in self.sent if KLINES in u]


@dataclass
class Scenario:
    tradingview: ReplayAdapter
    binance: BinanceHttp
    sleep: SleepRecorder = field(default_factory=SleepRecorder)


SCENARIOS: dict[str, Scenario] = {}


class HttpReplayedSources(LiveSourcesResource):
    """The production clients; TradingView on a replay adapter, Binance = ccxt's real fetch on a replay adapter."""

    scenario: str

    def screener(self):
        scenario = SCENARIOS[self.scenario]
        session = requests.Session()
        session.mount("https://", scenario.tradingview)
        return TradingViewScreener(session, timeout=self.timeout_s, max_attempts=self.max_attempts,
                                   sleep=scenario.sleep).scan

    def bar_fetcher(self):
        scenario = SCENARIOS[self.scenario]
        exchange = make_exchange()
        exchange.rateLimit = 1  # ccxt's own throttle sleeps for real: keep it negligible
        exchange.session.mount("https://", scenario.binance)
        return BinanceOhlcvClient(exchange, max_attempts=self.max_attempts, sleep=scenario.sleep,
                                  now=lambda: scenario.binance.market.now)


def live_defs(lake_path: Path, tradingview: ReplayAdapter | None = None, now=None, **binance: Any):
    """Definitions on `lake_path` with the replayed live sources, and their scenario (cleared after the test)."""
    from assets.definitions import build_definitions
    from resources import resources_for

    market = BinanceMarket(now=now or noon_after(D1))
    screener = tradingview or ReplayAdapter(TradingViewServer(recorded(CRYPTO_SCAN)))
    scenario = Scenario(screener, BinanceHttp(market, **binance))
    key = f"reliability-{uuid.uuid4().hex}"
    SCENARIOS[key] = scenario
    return build_definitions(resources_for(lake_path, live_sources=HttpReplayedSources(scenario=key))), scenario


@pytest.fixture(autouse=True)
def _forget_scenarios():
    yield
    SCENARIOS.clear()


# --------------------------------------------------------------------------------------------
# Lakehouse state: every table (partitioned ones per partition), and the ledger
# --------------------------------------------------------------------------------------------


def state(lake: Lakehouse) -> dict[tuple, str]:
    """Content hash of every table of TABLES except the audit ledger; partitioned tables per (profile, as_of).

    The hashes equal `Lakehouse.content_hash` (same order, same dropped write-time columns, `frame_hash`), read
    over one connection."""
    hashes: dict[tuple, str] = {}
    with lake.connect(read_only=True) as conn:
        for name, table in TABLES.items():
            if name == "audit_ledger":
                continue
            frame = pl.from_arrow(conn.sql(f"SELECT * FROM {name} ORDER BY {', '.join(table.key)}").to_arrow_table())
            frame = frame.drop([c for c in frame.columns if c in VOLATILE_COLUMNS])
            if table.partition == ("profile", "as_of"):
                for (profile, as_of), part in frame.partition_by(["profile", "as_of"], as_dict=True).items():
                    hashes[(name, profile, as_of)] = frame_hash(part, table.key)
            else:
                hashes[(name,)] = frame_hash(frame, table.key)
    return hashes


def slices_of(hashes: dict[tuple, str], day: date) -> dict[tuple, str]:
    return {k: h for k, h in hashes.items() if len(k) == 3 and k[2] == day}


def run_records(lake: Lakehouse, run_id: str) -> list[dict]:
    return [json.loads(line) for line in AuditLedger(lake).lines() if json.loads(line)["run_id"] == run_id]


def outcomes(records: list[dict]) -> dict[str, dict]:
    return {r["body"]["step"]: r["body"] for r in records if r["kind"] == "outcome"}


def assert_ledger_of_failed_step(lake: Lakehouse, result, step: str, *fragments: str) -> dict[str, dict]:
    """The run's records: genesis, then intent + outcome per step that ran; the failed step's outcome names the
    error. The chain verifies. Returns the outcomes by step."""
    records = run_records(lake, result.run_id)
    assert records[0]["kind"] == "genesis"
    ran = [r["body"]["step"] for r in records if r["kind"] == "intent"]
    assert [r["body"]["step"] for r in records if r["kind"] == "outcome"] == ran  # every intent has its outcome
    by_step = outcomes(records)
    failure = by_step[step]
    assert failure["status"] == "failure" and "outputs" not in failure, failure
    for fragment in fragments:
        assert fragment in failure["error"], (fragment, failure["error"])
    assert all(body["status"] == "success" for s, body in by_step.items() if s != step)
    assert AuditLedger(lake).verify().ok
    return by_step


def step_error(result, step: str) -> str:
    return result.failure_data_for_node(step).error.to_string()


def checks_by_name(result) -> dict[str, Any]:
    return {f"{e.asset_key.to_user_string()}:{e.check_name}": e for e in result.get_asset_check_evaluations()}


def materialised(result) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


# --------------------------------------------------------------------------------------------
# The good partition D, built once and copied into each test's lakehouse
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def good_lakehouse(tmp_path_factory) -> Path:
    """Built once per session: under xdist the workers share the session's temp root and take turns on a lock."""
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    path = root / "reliability-good-partition" / "lake.duckdb"
    with open(root / "reliability-good-partition.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (path.parent / "complete").exists():
            shutil.rmtree(path.parent, ignore_errors=True)
            defs, _ = live_defs(path, now=noon_after(D))
            with dg.instance_for_test() as instance:
                assert run_cycle(defs, instance, D).success
            SCENARIOS.clear()
            (path.parent / "complete").touch()
    return path


@pytest.fixture
def stocked(good_lakehouse, lakehouse_path) -> tuple[Lakehouse, dict]:
    """This test's lakehouse: a copy of the one holding partition D, and its state."""
    for suffix in ("", ".wal"):
        if Path(f"{good_lakehouse}{suffix}").exists():
            shutil.copy(f"{good_lakehouse}{suffix}", f"{lakehouse_path}{suffix}")
    lake = Lakehouse(lakehouse_path)
    return lake, state(lake)


def assert_only_new_partition_written(lake: Lakehouse, before: dict, after: dict, result, tables: set[str],
                                      day: date = D1) -> None:
    """Every table is as it was except the new partition's slices of `tables`, each equal to the hash the
    ledger's success outcome of its step recorded (complete outputs of steps that succeeded)."""
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert changed == {(t, PROFILE, day) for t in tables}, sorted(changed)
    recorded_outputs = {t: h for body in outcomes(run_records(lake, result.run_id)).values()
                        if body["status"] == "success" for t, h in body["outputs"].items()}
    for table in tables:
        assert after[(table, PROFILE, day)] == recorded_outputs[table], table


# --------------------------------------------------------------------------------------------
# 1. A live source times out or answers malformed JSON: the step fails naming source and fault
# --------------------------------------------------------------------------------------------

READ_TIMEOUT = "HTTPSConnectionPool(host='{}', port=443): Read timed out. (read timeout=10.0)"
TRUNCATED_SCAN = b'{"totalCount": 187, "data": [{"s": "BINANCE:BTCUSDT", "d": [62431.25,'
TRUNCATED_INFO = b'{"timezone":"UTC","serverTime":1719705600000,"rateLimits":[],"symbols":[{"symbol":"BTCUSDT",'

FAILING_SOURCES = {
    "screener-timeout": (
        dict(tradingview=ReplayAdapter(requests.exceptions.ReadTimeout(READ_TIMEOUT.format("scanner.tradingview.com")))),
        "discovery_scan",
        ("SourceUnavailableError", "source 'tradingview' unavailable", TV_URL, "failed after 5 attempts",
         "ReadTimeout"),
    ),
    "screener-malformed-json": (
        dict(tradingview=ReplayAdapter((200, TRUNCATED_SCAN))),
        "discovery_scan",
        ("SourceDataError", "source 'tradingview' returned bad data", TV_URL, "answered malformed JSON"),
    ),
    "exchange-timeout": (
        dict(faults=[Fault(KLINES, requests.exceptions.ReadTimeout(READ_TIMEOUT.format("api.binance.com")))]),
        "ohlcv_history",
        ("SourceUnavailableError", "source 'ccxt_binance' unavailable", "failed after 5 attempts",
         "RequestTimeout: binance GET https://api.binance.com/api/v3/klines?"),
    ),
    "exchange-malformed-json": (
        dict(faults=[Fault(EXCHANGE_INFO, (200, TRUNCATED_INFO))]),
        "ohlcv_history",
        ("SourceDataError", "source 'ccxt_binance' returned bad data",
         "BadResponse: binance GET https://api.binance.com/api/v3/exchangeInfo answered malformed JSON"),
    ),
}


@pytest.mark.parametrize("case", list(FAILING_SOURCES))
def test_a_failing_source_fails_the_cycle_naming_it_and_keeps_the_stored_data(case, stocked, instance, lakehouse_path):
    lake, before = stocked
    sources, failed_step, fragments = FAILING_SOURCES[case]
    defs, scenario = live_defs(lakehouse_path, **sources)
    symbols_before = lake.read_table("symbols")

    result = run_cycle(defs, instance, D1, raise_on_error=False)

    assert not result.success and result.get_failed_step_keys() == {failed_step}
    error = step_error(result, failed_step)
    for fragment in fragments:
        assert fragment in error, (fragment, error)
    by_step = assert_ledger_of_failed_step(lake, result, failed_step, *fragments)
    assert list(by_step) == list(DATA_STEPS[: DATA_STEPS.index(failed_step) + 1])  # nothing after it ran
    after = state(lake)
    if failed_step == "discovery_scan":  # the first step: nothing at all was written
        assert after == before
        assert materialised(result) == set()
    else:  # discovery and the pool of D1 are complete outputs of steps that succeeded; nothing else moved
        written = {"scan_results", "discovery_runs", "raw_pool"}
        if case == "exchange-malformed-json":
            # discovery re-attributes the pool's known symbol rows to the screener (`source`), which the
            # exchange's market list puts back once it answers; no other column of `symbols` moves
            before, after = dict(before), dict(after)
            symbols_after = lake.read_table("symbols")
            assert symbols_after.drop("source").equals(symbols_before.drop("source"))
            del before[("symbols",)], after[("symbols",)]
        assert_only_new_partition_written(lake, before, after, result, written)
        assert materialised(result) == {"discovery_scan", "raw_pool"}
        assert lake.read_partition("health_results", PROFILE, D1).is_empty()
    assert lake.read_partition("returns_matrix", PROFILE, D1).is_empty()
    if "timeout" in case:  # every retry waited its backoff (injected, not slept)
        assert scenario.sleep.calls == ([2.0, 4.0, 8.0, 16.0] if "screener" in case else [1.0, 2.0, 4.0, 8.0])


# --------------------------------------------------------------------------------------------
# 2. Throttled (HTTP 429), then answered: the cycle succeeds with exactly a clean cycle's tables
# --------------------------------------------------------------------------------------------


def test_throttled_then_answered_stores_exactly_what_a_clean_cycle_stores(good_lakehouse, tmp_path, instance):
    throttled_scan = (429, {"totalCount": 0, "error": "Too many requests", "data": None})
    throttled_rest = (429, json.dumps(recorded("binance_error_429_weight.json")).encode())
    lakes = {}
    for name in ("clean", "throttled"):
        path = tmp_path / name / "lake.duckdb"
        path.parent.mkdir()
        shutil.copy(good_lakehouse, path)
        lakes[name] = Lakehouse(path)
    before = state(lakes["clean"])
    clean_defs, _ = live_defs(lakes["clean"].path)
    adapter = ReplayAdapter(throttled_scan, TradingViewServer(recorded(CRYPTO_SCAN)))
    defs, scenario = live_defs(lakes["throttled"].path, tradingview=adapter, faults=[
        Fault(EXCHANGE_INFO, throttled_rest, times=1), Fault(KLINES, throttled_rest, symbol="BTCUSDT", times=2),
    ])

    clean = run_cycle(clean_defs, instance, D1)
    result = run_cycle(defs, instance, D1)

    assert clean.success and result.success
    assert sorted(scenario.sleep.calls) == [1.0, 1.0, 2.0, 2.0]  # exchangeInfo once, BTC klines twice, the scan once
    btc = [q for q in scenario.binance.klines_sent() if q["symbol"] == "BTCUSDT"]
    assert len(btc) == 3 and btc[0] == btc[1] == btc[2]  # retried as asked
    assert state(lakes["throttled"]) == state(lakes["clean"])  # every table, D1 slices included
    assert slices_of(state(lakes["throttled"]), D) == slices_of(before, D)
    records = run_records(lakes["throttled"], result.run_id)
    assert [(s, b["status"]) for s, b in outcomes(records).items()] == [(s, "success") for s in DATA_STEPS]
    clean_outputs = {s: b["outputs"] for s, b in outcomes(run_records(lakes["clean"], clean.run_id)).items()}
    assert {s: b["outputs"] for s, b in outcomes(records).items()} == clean_outputs


# --------------------------------------------------------------------------------------------
# 3. One symbol's answer is malformed: refused, and the staleness gate names it with the fault
# --------------------------------------------------------------------------------------------


def test_a_symbol_whose_answer_is_malformed_is_refused_and_the_gate_names_the_fault(stocked, instance, lakehouse_path):
    lake, before = stocked
    bars_before = lake.read_table("ohlcv")
    defs, scenario = live_defs(lakehouse_path, faults=[
        Fault(KLINES, (200, b'[[1719792000000,"145.10","151.00"'), symbol="SOLUSDT"),
    ])

    result = run_cycle(defs, instance, D1, raise_on_error=False)

    assert not result.success and result.get_failed_step_keys() == {"ohlcv_health_gates"}
    staleness = checks_by_name(result)["ohlcv_history:staleness"]
    assert not staleness.passed and staleness.severity.value == "ERROR"
    assert staleness.description.startswith("BINANCE:SOLUSDT: refused by the source (source 'ccxt_binance' "
                                            "returned bad data: BadResponse: binance GET")
    assert "symbol=SOLUSDT" in staleness.description and "answered malformed JSON" in staleness.description
    assert all(e.passed for k, e in checks_by_name(result).items() if k != "ohlcv_history:staleness")
    assert materialised(result) == {"discovery_scan", "raw_pool", "ohlcv_history"}  # returns_matrix is blocked
    # The other symbols' D1 bars landed (each fetch is its own transaction); no stored bar changed or was lost.
    bars_after = lake.read_table("ohlcv")
    added = bars_after.join(bars_before, on=["symbol", "date"], how="anti")
    assert added["date"].unique().to_list() == [D1] and "BINANCE:SOLUSDT" not in set(added["symbol"])
    assert added.height == 7
    kept = bars_after.join(added, on=["symbol", "date"], how="anti")
    assert kept.drop("ingested_at").equals(bars_before.drop("ingested_at"))
    ledger = outcomes(run_records(lake, result.run_id))
    assert list(ledger) == ["discovery_scan", "raw_pool", "ohlcv_history"]
    assert ledger["ohlcv_history"]["status"] == "success" and ledger["ohlcv_history"]["summary"]["gate_failures"] == 1
    after = state(lake)
    for key, digest in before.items():
        if key != ("ohlcv",):
            assert after[key] == digest, key
    assert lake.read_partition("returns_matrix", PROFILE, D1).is_empty()


def test_a_market_list_without_the_pool_refuses_every_symbol_by_name(stocked, instance, lakehouse_path):
    """exchangeInfo answers well-formed JSON listing no market: each pool symbol is refused by name (before the
    fix, the gap-repair pass then ran the gates over no symbol and failed with a polars SchemaError)."""
    lake, before = stocked
    empty = {**recorded("binance_exchangeInfo_spot_live_pool.json"), "symbols": []}
    defs, scenario = live_defs(lakehouse_path, faults=[Fault(EXCHANGE_INFO, (200, json.dumps(empty).encode()))])

    result = run_cycle(defs, instance, D1, raise_on_error=False)

    assert not result.success and result.get_failed_step_keys() == {"ohlcv_health_gates"}
    staleness = checks_by_name(result)["ohlcv_history:staleness"]
    pool = sorted(lake.read_partition("raw_pool", PROFILE, D1)["symbol"])
    assert staleness.description == "; ".join(
        f"{s}: refused by the source (source 'ccxt_binance' returned bad data: {s!r} is not a Binance spot market); "
        f"last bar {D} (24 h before the as-of date)" for s in pool
    )
    assert scenario.binance.klines_sent() == []
    assert state(lake)[("ohlcv",)] == before[("ohlcv",)]  # no bar fetched, none lost
    assert lake.read_partition("returns_matrix", PROFILE, D1).is_empty()


# --------------------------------------------------------------------------------------------
# 4. Fewer bars than asked: a named gate fails (strict profile), the returns matrix is not built
# --------------------------------------------------------------------------------------------

TRUNCATED_END = D1 - timedelta(days=LOOKBACK - 1 + PRICING_BUFFER_DAYS) + timedelta(days=99)  # 100 bars from the start
SHORT_ANSWERS = {
    # every klines answer stops at 100 bars whatever the limit: the client takes a short page for the end of the
    # data, so the new symbol's history stops ~14 months early
    "truncated-pages": (dict(max_bars=100), "staleness",
                        f"BINANCE:AVAXUSDC: last bar {TRUNCATED_END} ({(D1 - TRUNCATED_END).days * 24} h before the as-of date)"),
    # the exchange has only the last 60 days (a recent listing): fewer bars than the lookback asked for
    "short-listing": (dict(listed={"AVAXUSDC": D1 - timedelta(days=59)}), "history_floor",
                      "BINANCE:AVAXUSDC: 60 bars in the lookback (floor 90)"),
}


@pytest.mark.parametrize("case", list(SHORT_ANSWERS))
def test_fewer_bars_than_asked_fail_a_gate_naming_the_symbol(case, stocked, instance, lakehouse_path):
    """D1's screener answer adds AVAXUSDC (deeper than AVAXUSDT), whose whole lookback must be fetched."""
    lake, before = stocked
    binance, gate, description = SHORT_ANSWERS[case]
    defs, scenario = live_defs(lakehouse_path, tradingview=ReplayAdapter(TradingViewServer(recorded(MULTI_QUOTE_SCAN))),
                               **binance)

    result = run_cycle(defs, instance, D1, raise_on_error=False)

    assert not result.success and result.get_failed_step_keys() == {"ohlcv_health_gates"}
    failing = {k: e for k, e in checks_by_name(result).items() if not e.passed}
    assert set(failing) == {f"ohlcv_history:{gate}"}
    assert failing[f"ohlcv_history:{gate}"].description == description
    assert failing[f"ohlcv_history:{gate}"].severity.value == "ERROR"
    requested = [q for q in scenario.binance.klines_sent() if q["symbol"] == "AVAXUSDC"]
    assert len(requested) == 1 and requested[0]["limit"] == "1000"  # one page asked; a short one came back
    assert materialised(result) == {"discovery_scan", "raw_pool", "ohlcv_history"}
    assert lake.read_partition("returns_matrix", PROFILE, D1).is_empty()
    health = lake.read_partition("health_results", PROFILE, D1).filter(~pl.col("passed"))
    assert health.select("gate", "symbol").rows() == [(gate, "BINANCE:AVAXUSDC")]
    assert slices_of(state(lake), D) == slices_of(before, D)
    assert outcomes(run_records(lake, result.run_id))["ohlcv_history"]["summary"]["gate_failures"] == 1


# --------------------------------------------------------------------------------------------
# 5. A process killed mid-ingest: the re-run completes and every table equals a clean run's
# --------------------------------------------------------------------------------------------

# The seed run (the real `seed_lakehouse` job) in a child process. The seed writes one transaction per embedded
# source; the child pauses inside the second one, after its rows are merged and before COMMIT, and says so with a
# marker file; the parent then SIGKILLs it. Nothing else of the code path is changed.
KILLED_SEED = textwrap.dedent(
    """
    import os, pathlib, sys, time, warnings
    import dagster as dg
    warnings.filterwarnings("ignore")
    from tsp_platform.lakehouse import store

    merge, merged = store._merge, []

    def pausing_merge(conn, table, frame):
        counts = merge(conn, table, frame)
        if table.name == "ohlcv":
            merged.append(frame.height)
            if len(merged) == 2:  # the second source's bars are in the open transaction
                pathlib.Path(os.environ["TSP_TEST_MARKER"]).write_text(str(merged))
                time.sleep(600)
        return counts

    store._merge = pausing_merge
    from assets.definitions import build_definitions
    from resources import resources_for
    from tsp_cli.tournament import QUIET

    defs = build_definitions(resources_for(sys.argv[1]))
    with dg.instance_for_test() as instance:
        defs.resolve_job_def("seed_lakehouse").execute_in_process(instance=instance, run_config=QUIET)
    sys.exit(3)  # never reached: the parent kills the process first
    """
)
PROJECT = Path(__file__).resolve().parents[2]


def seed_job(defs, instance):
    return defs.resolve_job_def("seed_lakehouse").execute_in_process(instance=instance, run_config=QUIET)


def test_a_seed_killed_mid_write_reruns_to_exactly_a_clean_seed(tmp_path, lakehouse_path, defs_for, instance):
    from assets.definitions import build_definitions
    from resources import resources_for

    marker, log = tmp_path / "paused", tmp_path / "child.log"
    with log.open("wb") as out:
        child = subprocess.Popen([sys.executable, "-c", KILLED_SEED, str(lakehouse_path)], cwd=PROJECT,
                                 env={**os.environ, "TSP_TEST_MARKER": str(marker)}, stdout=out, stderr=out)
    clean_path = tmp_path / "clean" / "lake.duckdb"  # the clean seed runs while the child starts
    assert seed_job(build_definitions(resources_for(clean_path)), instance).success
    clean = Lakehouse(clean_path)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert child.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the child never reached the write"
            time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL

    # The killed file opens; it holds exactly what committed: the first source, none of the second.
    lake = Lakehouse(lakehouse_path)
    bars = lake.query("SELECT source, count(*) AS n FROM ohlcv GROUP BY source").rows()
    reference = dict(clean.query("SELECT source, count(*) AS n FROM ohlcv GROUP BY source").rows())
    assert len(bars) == 1 and bars[0][1] == reference[bars[0][0]] and len(reference) == 2
    first = bars[0][0]
    for table in ("ohlcv", "symbols"):
        committed, reference_rows = (x.read_table(table).drop("ingested_at", strict=False) for x in (lake, clean))
        assert committed.equals(reference_rows.filter(pl.col("source") == first)), table
    # The ledger shows the killed run's intent without an outcome, and still verifies.
    killed = [json.loads(line) for line in AuditLedger(lake).lines()]
    assert [r["kind"] for r in killed] == ["genesis", "intent"] and killed[1]["body"]["step"] == "embedded_market_data"
    assert AuditLedger(lake).verify().ok

    rerun = seed_job(defs_for(), instance)

    assert rerun.success
    assert state(lake) == state(clean)  # every table of TABLES but the ledger, content-equal to a clean seed
    ledger = [json.loads(line) for line in AuditLedger(lake).lines()]
    assert [r["kind"] for r in ledger] == ["genesis", "intent", "genesis", "intent", "outcome"]
    assert ledger[-1]["body"]["status"] == "success"
    clean_outcome = json.loads(AuditLedger(clean).lines()[-1])["body"]
    assert ledger[-1]["body"]["outputs"] == clean_outcome["outputs"]  # the same data hashes as the clean seed's
    assert AuditLedger(lake).verify().ok


# --------------------------------------------------------------------------------------------
# 6. A solver that fails during a real alpha cycle: the fallback serves and is recorded everywhere
# --------------------------------------------------------------------------------------------


def test_failing_solvers_fall_back_and_allocation_runs_metadata_and_ledger_record_it(defs_for, instance, lakehouse,
                                                                                   monkeypatch):
    """Both solvers fail for real inputs: our active-set QP (the custom engine's min-variance, max-Sharpe and
    market-neutral primaries) and Clarabel, the conic solver every library engine calls through cvxpy."""
    import cvxpy
    from cvxpy.reductions.solvers.conic_solvers.clarabel_conif import CLARABEL

    from tests.test_alpha_cycle import run_alpha
    from tests.test_data_cycle import run_cycle as run_data_cycle
    from tsp_platform.allocation import custom
    from tsp_platform.allocation.qp import QPNotConverged

    def qp_fails(*args, **kwargs):
        raise QPNotConverged("forced: iteration limit reached")

    def clarabel_fails(self, *args, **kwargs):
        raise cvxpy.error.SolverError("Solver 'CLARABEL' failed. Try another solver")

    monkeypatch.setattr(custom, "solve_qp", qp_fails)
    monkeypatch.setattr(CLARABEL, "solve_via_data", clarabel_fails)
    profile, day = "us_equities_sample", date(2022, 12, 28)
    defs = defs_for()
    assert seed_job(defs, instance).success
    assert run_data_cycle(defs, instance, profile, day.isoformat()).success

    result = run_alpha(defs, instance, profile, day.isoformat())

    assert result.success
    assert all(e.passed for e in checks_by_name(result).values())  # the fallback weights hold every constraint
    runs = lakehouse.read_partition("allocation_runs", profile, day)
    status = {(r["engine"], r["risk_profile"]): r for r in runs.iter_rows(named=True)}
    for qp_profile in ("min_variance", "max_sharpe", "market_neutral"):
        row = status[("custom", qp_profile)]
        assert (row["status"], row["fallback_used"]) == ("fallback", "slsqp")
        assert row["message"] == "active_set: QPNotConverged: forced: iteration limit reached"
        for engine in ("skfolio", "riskfolio", "cvxportfolio"):
            row = status[(engine, qp_profile)]
            assert (row["status"], row["fallback_used"]) == ("fallback", "custom:slsqp"), (engine, row)
            assert row["message"].startswith(f"{engine} failed: {engine} {qp_profile}: ")
            assert row["message"].endswith("; custom active_set: QPNotConverged: forced: iteration limit reached")
    assert "SolverError: Solver 'CLARABEL' failed" in status[("cvxportfolio", "min_variance")]["message"]
    assert "Solver 'CLARABEL' failed" in status[("skfolio", "min_variance")]["message"]
    assert status[("custom", "hrp")]["status"] == "ok"  # no QP in it: untouched
    assert not runs.filter(pl.col("status") == "failed").height
    fallbacks = runs.filter(pl.col("status") == "fallback")
    weights = lakehouse.read_partition("portfolio_weights", profile, day)
    served = weights.join(fallbacks.select("engine", "risk_profile"), on=["engine", "risk_profile"])
    assert served.select("engine", "risk_profile").unique().height == fallbacks.height  # every fallback stored weights

    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == "portfolio_weights"]
    meta = {k: v.value for k, v in event.materialization.metadata.items()}
    assert meta["fallbacks"] == fallbacks.height >= 12 and meta["failed"] == 0
    assert "fallback" in meta["engine_x_profile"]

    outcome = outcomes(run_records(lakehouse, result.run_id))["portfolio_weights"]
    assert outcome["status"] == "success"
    assert outcome["summary"]["fallbacks"] == fallbacks.height and outcome["summary"]["failed"] == 0
    assert outcome["outputs"]["allocation_runs"] == lakehouse.content_hash("allocation_runs", profile, day)
    assert outcome["outputs"]["portfolio_weights"] == lakehouse.content_hash("portfolio_weights", profile, day)
