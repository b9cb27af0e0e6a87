"""The LIVE profile `binance_spot_ratings` end to end: real Dagster runs on a real DuckDB file, no network.

Both live sources run their production code (our clients, `tradingview-screener`'s query builder, ccxt's
URL building, parsing and error mapping) and are replayed only at their transport boundary:

* TradingView: a `requests` transport adapter (`ReplayAdapter` from test_live_sources) mounted on the
  screener's Session. `TradingViewServer` answers a `POST /crypto/scan` from a recorded payload the way the
  scanner does: it applies the request's filters, sorts by `sort.sortBy`/`sortOrder`, and slices `range`.
* Binance: ccxt's `exchange.fetch` is replaced (`GeneratedBinance`, a `BinanceReplay`). `/exchangeInfo`
  comes from `fixtures/recorded/binance_exchangeInfo_spot_live_pool.json` (the recorded exchangeInfo plus
  every symbol the screener payloads name, same wire shape); `/klines` are generated deterministically in
  Binance's wire format (12-field arrays, prices as strings) as a clean geometric random walk per symbol,
  served by `startTime`/`endTime`/`limit` (500 by default, 1000 at most) and never past the replay clock,
  so pagination and the "today's bar is still open" rule behave as on the exchange.

`ReplayedLiveSources` (a `LiveSourcesResource`) wires the real `TradingViewScreener` and `BinanceOhlcvClient`
to those transports; its `scenario` config names a `LiveScenario` registered in `SCENARIOS` by the `live`
fixture, which holds the replay state (request logs, scripted failures, the injected clock and sleep).

`fixtures/recorded/tradingview_scan_crypto_binance_spot_multi_quote.json` (hand-made, like the other
payloads) is a crypto scan where several bases trade against more than one quote (SOL: USDT/FDUSD/USDC,
ETH: USDT/FDUSD with the FDUSD book deeper, AVAX: USDC deep and USDT illiquid). Its `sector` values are
null, as TradingView's crypto rows carry none; the test that needs a screener sector sets one explicitly.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import json
import math
import random
import uuid
import zlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import polars as pl
import pytest
import requests

from assets.health_checks import RETURNS_SPECS
from partitions import partition_key
from resources import LiveSourcesResource
from tests.test_live_sources import BinanceReplay, ReplayAdapter, SleepRecorder, recorded
from tsp_platform.audit import AuditLedger
from tsp_platform.config.scanners import load_scanner
from tsp_platform.context import PRICING_BUFFER_DAYS
from tsp_platform.health import Gate
from tsp_platform.sources.binance import BinanceOhlcvClient, make_exchange
from tsp_platform.sources.tradingview import TradingViewScreener, request_columns

PROFILE = "binance_spot_ratings"
D = date(2024, 6, 30)  # a Sunday: the as-of date of the first cycle
LOOKBACK = 500
LOOKBACK_START = D - timedelta(days=LOOKBACK - 1)
HISTORY = LOOKBACK + PRICING_BUFFER_DAYS  # bars kept: the lookback plus the closes that price its first return
HISTORY_START = LOOKBACK_START - timedelta(days=PRICING_BUFFER_DAYS)
LONG = "crypto/binance_spot_rating_all_long"
SHORT = "crypto/binance_spot_rating_all_short"
TV_URL = "https://scanner.tradingview.com/crypto/scan"
CRYPTO_SCAN = "tradingview_scan_crypto_binance_spot.json"
MULTI_QUOTE_SCAN = "tradingview_scan_crypto_binance_spot_multi_quote.json"
EXCHANGE_INFO = "binance_exchangeInfo_spot_live_pool.json"
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
DAY_MS = 86_400_000

# What the recorded crypto scan yields once the scanners' rules run (server filters, trend gate, $1M floor):
# longs by Recommend.All desc; the only bearish name above the liquidity floor is DOGE (ETHBTC and JASMYUSDT
# are scanned but trade < $1M).
EXPECTED_LONG = ["SOLUSDT", "BTCUSDT", "ETHUSDT", "BNBUSDT", "FETUSDT", "WLDUSDT", "AVAXUSDT"]
EXPECTED_SHORT = ["DOGEUSDT"]
POOL = sorted(f"BINANCE:{t}" for t in EXPECTED_LONG + EXPECTED_SHORT)


pytestmark = pytest.mark.usefixtures("no_network")


def ms(day: date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)


def noon_after(day: date) -> dt.datetime:
    """A clock at which `day`'s daily bar is closed and the next one is open."""
    return dt.datetime.combine(day + timedelta(days=1), dt.time(12), tzinfo=dt.UTC)


# --------------------------------------------------------------------------------------------
# TradingView: the scanner answering from a recorded payload
# --------------------------------------------------------------------------------------------

RECORDED_COLUMNS = request_columns(load_scanner(LONG))  # the order of every `d` array in the payloads


class TradingViewServer:
    """Answers `POST /crypto/scan` like the scanner: request filters, sort and range over recorded rows."""

    OPS = {
        "greater": lambda v, r: v is not None and v > r,
        "less": lambda v, r: v is not None and v < r,
        "egreater": lambda v, r: v is not None and v >= r,
        "eless": lambda v, r: v is not None and v <= r,
        "equal": lambda v, r: v == r,
        "nequal": lambda v, r: v != r,
        "in_range": lambda v, r: v is not None and r[0] <= v <= r[1],
        "not_in_range": lambda v, r: v is None or not r[0] <= v <= r[1],
    }

    def __init__(self, payload: dict[str, Any]) -> None:
        self.payload = payload

    def __call__(self, request: requests.PreparedRequest) -> tuple[int, Any]:
        body = json.loads(request.body)
        assert request.url == TV_URL and body["markets"] == ["crypto"]
        assert body["columns"] == RECORDED_COLUMNS, "the recorded `d` arrays follow RECORDED_COLUMNS"
        index = {name: i for i, name in enumerate(body["columns"])}
        rows = list(self.payload["data"])
        for rule in body["filter"]:
            if rule["left"] == "type":  # not a returned column: every recorded row is a spot pair
                rows = [r for r in rows if self.OPS[rule["operation"]]("spot", rule["right"])]
            else:
                i = index[rule["left"]]
                rows = [r for r in rows if self.OPS[rule["operation"]](r["d"][i], rule["right"])]
        i, descending = index[body["sort"]["sortBy"]], body["sort"]["sortOrder"] == "desc"
        present = sorted((r for r in rows if r["d"][i] is not None), key=lambda r: r["d"][i], reverse=descending)
        rows = present + [r for r in rows if r["d"][i] is None]
        start, end = body["range"]
        return 200, {"totalCount": len(rows), "data": copy.deepcopy(rows[start:end])}


def with_sector(payload: dict[str, Any], symbol: str, sector: str) -> dict[str, Any]:
    payload = copy.deepcopy(payload)
    for row in payload["data"]:
        if row["s"] == symbol:
            row["d"][RECORDED_COLUMNS.index("sector")] = sector
    return payload


# --------------------------------------------------------------------------------------------
# Binance: exchangeInfo from a fixture, klines generated in the wire format
# --------------------------------------------------------------------------------------------

GENESIS, HORIZON = date(2022, 1, 1), date(2025, 1, 1)


@functools.cache
def wire_klines(ticker: str) -> tuple[list[Any], ...]:
    """A clean geometric random walk as Binance daily klines (deterministic per ticker)."""
    rng = random.Random(zlib.crc32(ticker.encode()))
    close = round(10 ** rng.uniform(0.0, 3.0), 8)
    bars = []
    for i in range((HORIZON - GENESIS).days):
        open_ = close
        close = round(open_ * math.exp(rng.gauss(0.0, 0.03)), 8)
        high = round(max(open_, close) * (1 + abs(rng.gauss(0.0, 0.01))), 8)
        low = round(min(open_, close) * (1 - abs(rng.gauss(0.0, 0.01))), 8)
        volume = round(rng.uniform(1e4, 1e6), 8)
        start = ms(GENESIS + timedelta(days=i))
        bars.append([
            start, f"{open_:.8f}", f"{high:.8f}", f"{low:.8f}", f"{close:.8f}", f"{volume:.8f}",
            start + DAY_MS - 1, f"{volume * close:.8f}", rng.randint(10_000, 2_000_000),
            f"{volume / 2:.8f}", f"{volume * close / 2:.8f}", "0",
        ])
    return tuple(bars)


@dataclass
class BinanceMarket:
    """Exchange-side state shared by every run of a test: clock, scripted failures, holes, request log."""

    now: dt.datetime
    exchange_info: dict[str, Any] = field(default_factory=lambda: recorded(EXCHANGE_INFO))
    failures: dict[str, list[int]] = field(default_factory=dict)  # endpoint -> HTTP statuses, consumed in order
    holes: dict[str, set[date]] = field(default_factory=dict)  # ticker -> days missing from its first answers
    hole_answers: int = 1  # how many klines answers per ticker leave the hole out
    calls: list[str] = field(default_factory=list)
    answered: Counter = field(default_factory=Counter)

    def klines(self, query: dict[str, str]) -> list[list[Any]]:
        ticker = query["symbol"]
        assert query["interval"] == "1d"
        limit = int(query.get("limit", 500))
        assert 1 <= limit <= 1000, f"Binance rejects limit={limit}"
        start, end = int(query.get("startTime", 0)), int(query.get("endTime", 2**62))
        end = min(end, int(self.now.timestamp() * 1000))  # only bars that have opened (today's is partial)
        holes = {ms(d) for d in self.holes.get(ticker, ())} if self.answered[ticker] < self.hole_answers else set()
        self.answered[ticker] += 1
        bars = [b for b in wire_klines(ticker) if start <= b[0] <= end and b[0] not in holes]
        return copy.deepcopy(bars[:limit])

    def klines_requests(self, since: int = 0) -> list[dict[str, str]]:
        return [
            {k: v[0] for k, v in parse_qs(urlsplit(u).query).items()} for u in self.calls[since:] if "/klines" in u
        ]


class GeneratedBinance(BinanceReplay):
    """`BinanceReplay` (ccxt's fetch replaced; failures through ccxt's own HTTP-error path) over a market."""

    def __init__(self, exchange: Any, market: BinanceMarket) -> None:
        super().__init__(exchange, klines={})
        self.market = market
        self.exchange_info = market.exchange_info
        self.failures = market.failures  # shared, so a scripted failure happens once per test, not per run
        self.calls = market.calls

    def fetch(self, url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        parts = urlsplit(url)
        if parts.path != "/api/v3/klines":
            return super().fetch(url, method, headers, body)
        self.calls.append(url)
        pending = self.failures.get("klines")
        if pending:
            self._http_error(pending.pop(0), url, method, headers, body)
        return self.market.klines({k: v[0] for k, v in parse_qs(parts.query).items()})


# --------------------------------------------------------------------------------------------
# The resource and the scenario registry
# --------------------------------------------------------------------------------------------


@dataclass
class LiveScenario:
    tradingview: ReplayAdapter
    binance: BinanceMarket
    page_limit: int = 1000
    sleep: SleepRecorder = field(default_factory=SleepRecorder)


SCENARIOS: dict[str, LiveScenario] = {}


class ReplayedLiveSources(LiveSourcesResource):
    """The production clients, on replay transports (`scenario` names an entry of SCENARIOS)."""

    scenario: str

    def screener(self):
        scenario = SCENARIOS[self.scenario]
        session = requests.Session()
        session.mount("https://", scenario.tradingview)
        return TradingViewScreener(
            session, timeout=self.timeout_s, max_attempts=self.max_attempts, sleep=scenario.sleep
        ).scan

    def bar_fetcher(self):
        scenario = SCENARIOS[self.scenario]
        exchange = make_exchange()
        exchange.rateLimit = 1  # ccxt's own throttle sleeps for real: keep it negligible
        GeneratedBinance(exchange, scenario.binance)
        return BinanceOhlcvClient(
            exchange,
            max_attempts=self.max_attempts,
            page_limit=scenario.page_limit,
            sleep=scenario.sleep,
            now=lambda: scenario.binance.now,
        )


@pytest.fixture
def live(defs_for):
    """`live(...)` -> (Definitions bound to this test's lakehouse with replayed sources, the scenario)."""
    keys: list[str] = []

    def make(tradingview: ReplayAdapter | None = None, page_limit: int = 1000, **market: Any):
        key = f"scenario-{uuid.uuid4().hex}"
        adapter = tradingview or ReplayAdapter(TradingViewServer(recorded(CRYPTO_SCAN)))
        scenario = LiveScenario(adapter, BinanceMarket(now=market.pop("now", noon_after(D)), **market), page_limit)
        SCENARIOS[key] = scenario
        keys.append(key)
        return defs_for(ReplayedLiveSources(scenario=key)), scenario

    yield make
    for key in keys:
        SCENARIOS.pop(key, None)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def run_cycle(defs, instance, day: date, raise_on_error: bool = True):
    return defs.resolve_job_def("data_cycle").execute_in_process(
        partition_key=partition_key(PROFILE, day), instance=instance, raise_on_error=raise_on_error, run_config=QUIET
    )


def checks_by_name(result) -> dict[str, Any]:
    return {f"{e.asset_key.to_user_string()}:{e.check_name}": e for e in result.get_asset_check_evaluations()}


ALL_CHECKS = {f"ohlcv_history:{g.value}" for g in Gate} | {f"returns_matrix:{n}" for n in RETURNS_SPECS}


def assert_all_checks_pass(result) -> None:
    checks = checks_by_name(result)
    assert set(checks) == ALL_CHECKS
    failing = {k: e.description for k, e in checks.items() if not e.passed}
    assert not failing, failing


def metadata(result, asset: str) -> dict[str, Any]:
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == asset]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def exchange_filters(ticker: str) -> tuple[float, float]:
    """(tickSize, stepSize) of a symbol in the exchangeInfo fixture."""
    (entry,) = [s for s in recorded(EXCHANGE_INFO)["symbols"] if s["symbol"] == ticker]
    filters = {f["filterType"]: f for f in entry["filters"]}
    return float(filters["PRICE_FILTER"]["tickSize"]), float(filters["LOT_SIZE"]["stepSize"])


def expected_bars(ticker: str, first: date, last: date) -> pl.DataFrame:
    """What Binance's wire klines must become in `ohlcv` (after ccxt's and our parsing)."""
    rows = [b for b in wire_klines(ticker) if ms(first) <= b[0] <= ms(last)]
    return pl.DataFrame(
        {
            "date": [first + timedelta(days=(b[0] - ms(first)) // DAY_MS) for b in rows],
            **{name: [float(b[i]) for b in rows] for i, name in enumerate(("open", "high", "low", "close", "volume"), 1)},
        }
    )


def per_symbol_starts(requests_: list[dict[str, str]]) -> dict[str, list[int]]:
    starts: dict[str, list[int]] = {}
    for query in requests_:
        starts.setdefault(query["symbol"], []).append(int(query["startTime"]))
    return starts


# --------------------------------------------------------------------------------------------
# 1. The first cycle
# --------------------------------------------------------------------------------------------


def test_first_cycle_discovers_fetches_and_builds_returns(live, instance, lakehouse):
    defs, scenario = live(page_limit=200)  # 500 days = 3 pages per symbol: pagination runs end to end
    result = run_cycle(defs, instance, D)

    assert result.success
    assert_all_checks_pass(result)

    # discovery: both scanners, on the live screener, with the server's filters and sort
    bodies = scenario.tradingview.bodies()
    assert [b["sort"]["sortOrder"] for b in bodies] == ["desc", "asc"]
    assert {"left": "Recommend.All", "operation": "less", "right": 0.3} in bodies[1]["filter"]
    scans = lakehouse.read_partition("scan_results", PROFILE, D)
    assert set(scans["source"]) == {"tradingview"}
    assert set(scans["scanner"]) == {LONG, SHORT}
    longs = scans.filter(pl.col("scanner") == LONG).sort("rank")
    shorts = scans.filter(pl.col("scanner") == SHORT).sort("rank")
    assert longs["symbol"].to_list() == [f"BINANCE:{t}" for t in EXPECTED_LONG]
    assert shorts["symbol"].to_list() == [f"BINANCE:{t}" for t in EXPECTED_SHORT]
    assert set(longs["direction"]) == {"long"} and set(shorts["direction"]) == {"short"}
    assert longs.filter(pl.col("symbol") == "BINANCE:WLDUSDT")["adx"].to_list() == [None]
    assert longs.filter(pl.col("symbol") == "BINANCE:BTCUSDT")["close"].item() == 62431.25

    # symbols: pool symbols carry exchangeInfo's tick/lot sizes, with the screener's calendar and class
    symbols = lakehouse.read_table("symbols")
    for symbol in POOL:
        row = symbols.filter(pl.col("symbol") == symbol).row(0, named=True)
        ticker = symbol.split(":")[1]
        assert (row["calendar"], row["asset_class"], row["exchange"], row["ticker"]) == ("24/7", "crypto", "BINANCE", ticker)
        assert (row["tick_size"], row["lot_size"]) == exchange_filters(ticker), symbol
        assert (row["base"], row["quote"], row["currency"]) == (ticker.removesuffix("USDT"), "USDT", "USDT")
        assert row["sector"] is None  # the screener has none for crypto; nothing invented
        assert row["source"] == "ccxt_binance" and not row["is_stablecoin"]
    # scanned but outside the pool: known from the screener only
    for symbol in ("BINANCE:ETHBTC", "BINANCE:JASMYUSDT"):
        row = symbols.filter(pl.col("symbol") == symbol).row(0, named=True)
        assert (row["source"], row["calendar"], row["tick_size"]) == ("tradingview", "24/7", None)

    # raw pool: one atom per (base, logic, direction)
    pool = lakehouse.read_partition("raw_pool", PROFILE, D)
    assert sorted(pool["symbol"]) == POOL
    assert pool.select("base", "logic", "direction").is_duplicated().sum() == 0
    assert set(pool["asset_class"]) == {"crypto"} and set(pool["logic"]) == {"rating_all"}

    # ohlcv: the 500-day lookback of every pool symbol, exactly the exchange's bars, nothing after D
    bars = lakehouse.query("SELECT * FROM ohlcv ORDER BY symbol, date")
    assert sorted(bars["symbol"].unique()) == POOL
    assert bars["date"].max() == D and set(bars["source"]) == {"ccxt_binance"}
    for symbol in POOL:
        mine = bars.filter(pl.col("symbol") == symbol)
        assert mine.height == HISTORY and mine["date"].min() == HISTORY_START, symbol
        assert mine["date"].diff().drop_nulls().dt.total_days().max() == 1
        expected = expected_bars(symbol.split(":")[1], HISTORY_START, D)
        assert mine.select(expected.columns).equals(expected), symbol

    # klines: 3 pages per symbol from the lookback start, each bounded by the end of D
    requested = scenario.binance.klines_requests()
    starts = per_symbol_starts(requested)
    assert sorted(f"BINANCE:{t}" for t in starts) == POOL
    page_starts = [ms(HISTORY_START + timedelta(days=200 * k)) for k in range(3)]
    assert all(s == page_starts for s in starts.values()), starts
    assert {q["limit"] for q in requested} == {"200"}
    assert {int(q["endTime"]) for q in requested} == {ms(D + timedelta(days=1)) - 1}
    assert sum("/exchangeInfo" in c for c in scenario.binance.calls) == 1

    history = metadata(result, "ohlcv_history")
    assert history["fetched_rows"] == HISTORY * len(POOL)
    assert history["repaired_rows"] == 0 and history["missing_symbols"] == "none" and history["gate_failures"] == 0

    # returns: every pool symbol, 24/7 so weekends are kept, inside the window
    rets = lakehouse.read_partition("returns_matrix", PROFILE, D)
    assert sorted(rets["symbol"].unique()) == POOL
    assert rets.filter(pl.col("date").dt.weekday() > 5).height > 0
    assert rets["date"].min() >= LOOKBACK_START and rets["date"].max() == D
    per_symbol = rets.group_by("symbol").len()["len"]
    assert per_symbol.min() >= 90 and per_symbol.n_unique() == 1
    assert lakehouse.read_partition("returns_exclusions", PROFILE, D).is_empty()
    assert scenario.sleep.calls == []

    # the audit ledger names every table each step wrote: the live fetch writes bars and symbol metadata too
    records = [json.loads(line) for line in AuditLedger(lakehouse).lines()]
    outputs = {r["body"]["step"]: set(r["body"]["outputs"]) for r in records
               if r["kind"] == "outcome" and r["body"].get("status") == "success"}
    assert outputs["ohlcv_history"] == {"ohlcv", "symbols", "health_results"}
    assert outputs["discovery_scan"] == {"symbols", "scan_results", "discovery_runs"}


def test_one_quote_per_base_and_screener_sector_survives_exchange_metadata(live, instance, lakehouse):
    payload = with_sector(recorded(MULTI_QUOTE_SCAN), "BINANCE:SOLUSDT", "Smart Contract Platforms")
    defs, scenario = live(tradingview=ReplayAdapter(TradingViewServer(payload)))
    result = run_cycle(defs, instance, D)
    assert result.success
    assert_all_checks_pass(result)

    pool = lakehouse.read_partition("raw_pool", PROFILE, D)
    assert pool.select("base", "logic", "direction").is_duplicated().sum() == 0
    chosen = {r["base"]: r for r in pool.iter_rows(named=True)}
    assert sorted(chosen) == ["AVAX", "BTC", "DOGE", "ETH", "SOL"]
    assert chosen["SOL"]["symbol"] == "BINANCE:SOLUSDT"
    assert set(json.loads(chosen["SOL"]["alternatives"])) == {"BINANCE:SOLUSDC", "BINANCE:SOLFDUSD"}
    assert chosen["ETH"]["symbol"] == "BINANCE:ETHUSDT"  # USDT first: its book is within the tie ratio of FDUSD's
    assert json.loads(chosen["ETH"]["alternatives"]) == ["BINANCE:ETHFDUSD"]
    assert chosen["AVAX"]["symbol"] == "BINANCE:AVAXUSDC"  # the USDT book is too thin next to USDC's
    assert json.loads(chosen["AVAX"]["alternatives"]) == ["BINANCE:AVAXUSDT"]
    assert chosen["DOGE"]["direction"] == "short"

    # bars only for the chosen venues
    fetched = {f"BINANCE:{q['symbol']}" for q in scenario.binance.klines_requests()}
    assert fetched == set(pool["symbol"])

    symbols = lakehouse.read_table("symbols")
    sol = symbols.filter(pl.col("symbol") == "BINANCE:SOLUSDT").row(0, named=True)
    assert sol["sector"] == "Smart Contract Platforms"  # kept through the exchangeInfo merge (ccxt has none)
    assert (sol["tick_size"], sol["lot_size"]) == exchange_filters("SOLUSDT") and sol["source"] == "ccxt_binance"
    assert chosen["SOL"]["sector"] == "Smart Contract Platforms"
    avax = symbols.filter(pl.col("symbol") == "BINANCE:AVAXUSDC").row(0, named=True)
    assert (avax["base"], avax["quote"], avax["currency"]) == ("AVAX", "USDC", "USDC")
    assert (avax["tick_size"], avax["lot_size"]) == exchange_filters("AVAXUSDC")
    rets = lakehouse.read_partition("returns_matrix", PROFILE, D)
    assert sorted(rets["symbol"].unique()) == sorted(pool["symbol"])


# --------------------------------------------------------------------------------------------
# 2. Incremental fetch on the next day
# --------------------------------------------------------------------------------------------


def test_next_day_fetches_only_the_missing_day(live, instance, lakehouse):
    defs, scenario = live()
    assert run_cycle(defs, instance, D).success
    before = lakehouse.query("SELECT symbol, count(*) AS n, max(date) AS last FROM ohlcv GROUP BY symbol ORDER BY symbol")
    assert before["n"].to_list() == [HISTORY] * len(POOL) and set(before["last"]) == {D}

    next_day = D + timedelta(days=1)
    scenario.binance.now = noon_after(next_day)
    mark = len(scenario.binance.calls)
    result = run_cycle(defs, instance, next_day)
    assert result.success
    assert_all_checks_pass(result)

    requested = scenario.binance.klines_requests(mark)
    assert per_symbol_starts(requested) == {s.split(":")[1]: [ms(next_day)] for s in POOL}
    assert {int(q["endTime"]) for q in requested} == {ms(next_day + timedelta(days=1)) - 1}
    after = lakehouse.query("SELECT symbol, count(*) AS n, max(date) AS last FROM ohlcv GROUP BY symbol ORDER BY symbol")
    assert after["n"].to_list() == [HISTORY + 1] * len(POOL) and set(after["last"]) == {next_day}
    history = metadata(result, "ohlcv_history")
    assert history["fetched_rows"] == len(POOL) and history["repaired_rows"] == 0
    for symbol in POOL:
        new_bar = lakehouse.ohlcv([symbol], next_day, next_day).select(["date", "open", "high", "low", "close", "volume"])
        assert new_bar.equals(expected_bars(symbol.split(":")[1], next_day, next_day)), symbol
    rets = lakehouse.read_partition("returns_matrix", PROFILE, next_day)
    assert rets["date"].max() == next_day and rets["date"].min() >= next_day - timedelta(days=LOOKBACK - 1)

    # the same partition again: nothing is missing, so no klines are requested at all
    mark = len(scenario.binance.calls)
    again = run_cycle(defs, instance, next_day)
    assert again.success and scenario.binance.klines_requests(mark) == []
    assert metadata(again, "ohlcv_history")["fetched_rows"] == 0

    # a screener outage later never replaces the partition's scans with an empty answer
    scans_before = lakehouse.content_hash("scan_results", PROFILE, next_day)
    scenario.tradingview = ReplayAdapter(requests.exceptions.ConnectionError("Connection refused"))
    failed = run_cycle(defs, instance, next_day, raise_on_error=False)
    assert not failed.success and failed.is_node_failed("discovery_scan")
    assert lakehouse.content_hash("scan_results", PROFILE, next_day) == scans_before


# --------------------------------------------------------------------------------------------
# 3. Gap repair
# --------------------------------------------------------------------------------------------


def test_repair_pass_refills_a_hole_the_first_fetch_left(live, instance, lakehouse):
    hole = [date(2024, 3, 10), date(2024, 3, 11), date(2024, 3, 12)]
    defs, scenario = live(holes={"SOLUSDT": set(hole)})
    result = run_cycle(defs, instance, D)
    assert result.success
    assert_all_checks_pass(result)

    history = metadata(result, "ohlcv_history")
    assert history["repaired_rows"] == len(hole)
    assert history["fetched_rows"] == HISTORY * len(POOL) - len(hole)
    sol_requests = [q for q in scenario.binance.klines_requests() if q["symbol"] == "SOLUSDT"]
    assert [(int(q["startTime"]), int(q["endTime"])) for q in sol_requests] == [
        (ms(HISTORY_START), ms(D + timedelta(days=1)) - 1),
        (ms(hole[0]), ms(hole[-1] + timedelta(days=1)) - 1),  # the repair asks for exactly the hole
    ]
    other = [q for q in scenario.binance.klines_requests() if q["symbol"] != "SOLUSDT"]
    assert len(other) == len(POOL) - 1  # symbols without gaps are not re-fetched

    sol = lakehouse.ohlcv(["BINANCE:SOLUSDT"], D, LOOKBACK_START)
    assert sol.height == LOOKBACK and sol["date"].diff().drop_nulls().dt.total_days().max() == 1
    assert sol.select(["date", "open", "high", "low", "close", "volume"]).equals(expected_bars("SOLUSDT", LOOKBACK_START, D))
    gaps = lakehouse.read_partition("health_results", PROFILE, D).filter(pl.col("gate") == "gaps")
    assert gaps.filter(pl.col("symbol") == "BINANCE:SOLUSDT")["value"].item() == 0
    assert checks_by_name(result)["ohlcv_history:gaps"].passed


# --------------------------------------------------------------------------------------------
# 4. Throttled, then answered
# --------------------------------------------------------------------------------------------


def test_http_429_then_200_during_the_run_still_succeeds(live, instance, lakehouse):
    throttled = (429, {"totalCount": 0, "error": "Too many requests", "data": None})
    adapter = ReplayAdapter(throttled, TradingViewServer(recorded(CRYPTO_SCAN)))
    defs, scenario = live(tradingview=adapter, failures={"klines": [429]})
    result = run_cycle(defs, instance, D)
    assert result.success
    assert_all_checks_pass(result)

    assert len(adapter.sent) == 3  # long scan throttled + retried, short scan
    requested = scenario.binance.klines_requests()
    assert len(requested) == len(POOL) + 1
    assert requested[0] == requested[1]  # the throttled klines request was retried as is
    assert sorted(scenario.sleep.calls) == [1.0, 2.0]  # Binance backoff 1 s, TradingView 2 s, both injected
    counts = lakehouse.query("SELECT symbol, count(*) AS n FROM ohlcv GROUP BY symbol ORDER BY symbol")
    assert counts["symbol"].to_list() == POOL and counts["n"].to_list() == [HISTORY] * len(POOL)
    assert lakehouse.read_partition("scan_results", PROFILE, D).height == len(EXPECTED_LONG) + len(EXPECTED_SHORT)


# --------------------------------------------------------------------------------------------
# 5. Unreachable screener
# --------------------------------------------------------------------------------------------


def test_unreachable_screener_fails_discovery_and_writes_nothing(live, instance, lakehouse):
    refused = requests.exceptions.ConnectionError(
        "HTTPSConnectionPool(host='scanner.tradingview.com', port=443): Max retries exceeded with url: /crypto/scan "
        "(Caused by NewConnectionError('Failed to establish a new connection: [Errno 101] Network is unreachable'))"
    )
    adapter = ReplayAdapter(refused)
    defs, scenario = live(tradingview=adapter)
    with lakehouse.connect():  # the tables exist, so "nothing written" is a real empty read
        pass

    result = run_cycle(defs, instance, D, raise_on_error=False)

    assert not result.success
    assert result.get_failed_step_keys() == {"discovery_scan"}
    error = result.failure_data_for_node("discovery_scan").error.to_string()
    assert "SourceUnavailableError" in error and "source 'tradingview' unavailable" in error
    assert TV_URL in error and "ConnectionError" in error and "failed after 5 attempts" in error
    assert len(adapter.sent) == 5 and scenario.sleep.calls == [2.0, 4.0, 8.0, 16.0]  # injected, not slept
    assert result.get_asset_materialization_events() == []
    for step in ("raw_pool", "ohlcv_history", "returns_matrix"):
        assert not result.is_node_success(step)
    assert scenario.binance.calls == []  # nothing downstream ran
    assert lakehouse.read_partition("scan_results", PROFILE, D).is_empty()
    assert lakehouse.read_table("scan_results").is_empty() and lakehouse.read_table("symbols").is_empty()


# --------------------------------------------------------------------------------------------
# Backfilling an older partition after a newer one fetches the head of its lookback
# --------------------------------------------------------------------------------------------


def test_backfilling_an_older_partition_fetches_its_whole_lookback(live, instance, lakehouse):
    defs, scenario = live()
    assert run_cycle(defs, instance, D).success
    older = D - timedelta(days=30)
    older_start = older - timedelta(days=LOOKBACK - 1)
    result = run_cycle(defs, instance, older)
    assert result.success
    counts = lakehouse.query(
        "SELECT symbol, count(*) AS n FROM ohlcv WHERE date BETWEEN ? AND ? GROUP BY symbol ORDER BY symbol",
        [older_start, older],
    )
    assert counts["n"].to_list() == [LOOKBACK] * len(POOL)
