"""Live sources replayed at their HTTP/client boundary from recorded payloads (no network is touched).

TradingView: a `requests` transport adapter mounted on the screener's Session answers the POSTs.
Binance: the ccxt exchange's `fetch(url, method, headers, body)` is replaced by a replay of recorded
REST JSON, so ccxt's own URL building, parsing and HTTP-status → exception mapping all run.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import ccxt
import polars as pl
import pytest
import requests
from requests.structures import CaseInsensitiveDict

from tsp_platform.config.scanners import FilterOp, Layer, ScannerConfig, ScreenFilter, SortOrder
from tsp_platform.core.vocabulary import Direction
from tsp_platform.lakehouse.schema import SYMBOLS
from tsp_platform.sources.base import (
    OHLCV_SCHEMA,
    SCREENER_FIELDS,
    SCREENER_SCHEMA,
    SourceDataError,
    SourceUnavailableError,
)
from tsp_platform.sources.binance import SYMBOLS_SCHEMA, BinanceOhlcvClient, make_exchange
from tsp_platform.sources.tradingview import TradingViewScreener, filter_expression, request_columns

RECORDED = Path(__file__).parent / "fixtures" / "recorded"
TV_CRYPTO_URL = "https://scanner.tradingview.com/crypto/scan"
REASONS = {200: "OK", 400: "Bad Request", 429: "Too Many Requests", 503: "Service Unavailable"}


def recorded(name: str) -> Any:
    return json.loads((RECORDED / name).read_text())


pytestmark = pytest.mark.usefixtures("no_network")


class SleepRecorder:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


# --------------------------------------------------------------------------------------------
# TradingView: replay through a requests transport adapter
# --------------------------------------------------------------------------------------------

Step = tuple[int, Any] | tuple[int, Any, dict[str, str]] | BaseException | Callable[[requests.PreparedRequest], tuple]


class ReplayAdapter(requests.adapters.BaseAdapter):
    """Answers each request with the next scripted step (the last step repeats); records what was sent."""

    def __init__(self, *steps: Step) -> None:
        super().__init__()
        self.steps = list(steps)
        self.sent: list[requests.PreparedRequest] = []
        self.timeouts: list[Any] = []

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):  # noqa: ANN001
        self.sent.append(request)
        self.timeouts.append(timeout)
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if isinstance(step, BaseException):
            raise step
        status, body, *rest = step(request) if callable(step) else step
        response = requests.Response()
        response.status_code = status
        response.reason = REASONS.get(status, "")
        response._content = body if isinstance(body, bytes) else json.dumps(body).encode()
        response.headers = CaseInsensitiveDict({"Content-Type": "application/json", **(rest[0] if rest else {})})
        response.encoding = "utf-8"
        response.url = request.url
        response.request = request
        return response

    def close(self) -> None:
        pass

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.body) for r in self.sent]


def scan_server(payload: dict[str, Any]) -> Callable[[requests.PreparedRequest], tuple[int, Any]]:
    """A recorded answer served like the scanner does: rows sliced by the request's `range`."""

    def answer(request: requests.PreparedRequest) -> tuple[int, Any]:
        start, end = json.loads(request.body)["range"]
        return 200, {"totalCount": payload["totalCount"], "data": payload["data"][start:end]}

    return answer


def binance_spot_config(**overrides: Any) -> ScannerConfig:
    """Mirrors configs/scanners/crypto/binance_spot_rating_all_long.yaml after layer merging."""
    values: dict[str, Any] = dict(
        name="crypto/binance_spot_rating_all_long",
        layer=Layer.L4,
        direction=Direction.LONG,
        markets=("crypto",),
        exchanges=("BINANCE",),
        filters=(
            ScreenFilter(left="type", operation=FilterOp.EQUAL, right="spot"),
            ScreenFilter(left="Volatility.D", operation=FilterOp.GREATER, right=0.1),
            ScreenFilter(left="Recommend.All", operation=FilterOp.GREATER, right=-0.3),
        ),
        value_traded_min=1_000_000,
        columns=tuple(SCREENER_FIELDS),
        sort_by="Recommend.All",
        sort_order=SortOrder.DESC,
        limit=10,
    )
    values.update(overrides)
    return ScannerConfig(**values)


def screener(adapter: ReplayAdapter, sleep: SleepRecorder | None = None, **kwargs: Any) -> TradingViewScreener:
    session = requests.Session()
    session.mount("https://", adapter)
    return TradingViewScreener(session, sleep=sleep or SleepRecorder(), **kwargs)


def test_scan_turns_recorded_answer_into_screener_frame() -> None:
    adapter = ReplayAdapter(scan_server(recorded("tradingview_scan_crypto_binance_spot.json")))
    frame = screener(adapter).scan(binance_spot_config())

    assert frame.schema == pl.Schema(SCREENER_SCHEMA)
    assert frame.height == 10
    assert frame["symbol"].to_list()[:3] == ["BINANCE:SOLUSDT", "BINANCE:BTCUSDT", "BINANCE:ETHUSDT"]
    assert frame["recommend_all"].is_sorted(descending=True)  # server order kept
    btc = frame.row(1, named=True)
    assert btc["exchange"] == "BINANCE" and btc["sector"] is None
    assert btc["close"] == 62431.25 and btc["perf_1m"] == 45.1206 and btc["adx"] == 48.7012
    assert btc["value_traded"] == pytest.approx(62431.25 * 51234.11021, rel=1e-9)
    wld = frame.filter(pl.col("symbol") == "BINANCE:WLDUSDT")
    assert wld["adx"].to_list() == [None]  # null stays null, not 0
    # liquidity floors are local gates: the sub-$1M row is returned untouched
    assert "BINANCE:JASMYUSDT" in frame["symbol"].to_list()


def test_request_carries_markets_filters_columns_sort_and_limit() -> None:
    adapter = ReplayAdapter(scan_server(recorded("tradingview_scan_crypto_binance_spot.json")))
    screener(adapter).scan(binance_spot_config())

    (request,) = adapter.sent
    body = json.loads(request.body)
    assert request.method == "POST" and request.url == TV_CRYPTO_URL
    assert adapter.timeouts == [10.0]
    assert body["markets"] == ["crypto"]
    assert body["filter"] == [
        {"left": "type", "operation": "equal", "right": "spot"},
        {"left": "Volatility.D", "operation": "greater", "right": 0.1},
        {"left": "Recommend.All", "operation": "greater", "right": -0.3},
        {"left": "exchange", "operation": "equal", "right": "BINANCE"},
    ]
    assert "filter2" not in body  # the package's stock-only preset must not leak into a crypto scan
    assert body["columns"][:3] == ["name", "exchange", "sector"]
    assert set(SCREENER_FIELDS) <= set(body["columns"])
    assert body["sort"]["sortBy"] == "Recommend.All" and body["sort"]["sortOrder"] == "desc"
    assert body["range"] == [0, 10]
    assert "Value.Traded" not in {f["left"] for f in body["filter"]}  # value_traded_min stays local


def test_multi_exchange_stock_scan_uses_in_range_and_keeps_sectors() -> None:
    adapter = ReplayAdapter(scan_server(recorded("tradingview_scan_america_stocks.json")))
    config = binance_spot_config(
        name="tradfi/x",
        markets=("america",),
        exchanges=("NASDAQ", "NYSE"),
        filters=(),
        sort_by="Value.Traded",
        limit=50,
    )
    frame = screener(adapter).scan(config)

    body = adapter.bodies()[0]
    assert adapter.sent[0].url == "https://scanner.tradingview.com/america/scan"
    assert body["filter"] == [{"left": "exchange", "operation": "in_range", "right": ["NASDAQ", "NYSE"]}]
    assert body["range"] == [0, 50]
    assert frame["symbol"].to_list() == ["NASDAQ:NVDA", "NASDAQ:AAPL", "NYSE:JPM"]
    assert frame["exchange"].to_list() == ["NASDAQ", "NASDAQ", "NYSE"]
    assert frame["sector"].to_list() == ["Electronic Technology", "Electronic Technology", "Finance"]


@pytest.mark.parametrize(
    ("operation", "right", "wire"),
    [
        (FilterOp.GREATER, 1.0, ("greater", 1.0)),
        (FilterOp.LESS, 2.0, ("less", 2.0)),
        (FilterOp.EGREATER, 3.0, ("egreater", 3.0)),
        (FilterOp.ELESS, 4.0, ("eless", 4.0)),
        (FilterOp.EQUAL, "spot", ("equal", "spot")),
        (FilterOp.NEQUAL, "swap", ("nequal", "swap")),
        (FilterOp.IN_RANGE, (0.5, 9.0), ("in_range", [0.5, 9.0])),
        (FilterOp.NOT_IN_RANGE, ("USDT", "USDC"), ("not_in_range", ["USDT", "USDC"])),
    ],
)
def test_every_filter_op_maps_to_the_tradingview_operation(operation: FilterOp, right: Any, wire: tuple) -> None:
    expression = filter_expression(ScreenFilter(left="x", operation=operation, right=right))
    assert expression == {"left": "x", "operation": wire[0], "right": wire[1]}


def test_pages_are_requested_until_the_limit() -> None:
    adapter = ReplayAdapter(scan_server(recorded("tradingview_scan_crypto_binance_spot.json")))
    frame = screener(adapter, page_size=4).scan(binance_spot_config())

    assert [b["range"] for b in adapter.bodies()] == [[0, 4], [4, 8], [8, 10]]
    assert frame.height == 10 and frame["symbol"].n_unique() == 10


def test_429_then_200_succeeds_after_backoff() -> None:
    sleep = SleepRecorder()
    throttled = (429, {"totalCount": 0, "error": "Too many requests", "data": None})
    adapter = ReplayAdapter(throttled, throttled, scan_server(recorded("tradingview_scan_crypto_binance_spot.json")))
    frame = screener(adapter, sleep).scan(binance_spot_config())

    assert frame.height == 10
    assert len(adapter.sent) == 3
    assert sleep.calls == [2.0, 4.0]  # exponential: base 2 s, doubling


def test_retry_after_header_is_honoured() -> None:
    sleep = SleepRecorder()
    answer = scan_server(recorded("tradingview_scan_crypto_binance_spot.json"))
    adapter = ReplayAdapter((429, b"", {"Retry-After": "7"}), answer)
    screener(adapter, sleep).scan(binance_spot_config())
    assert sleep.calls == [7.0]


def test_repeated_5xx_raises_unavailable_naming_url_and_last_error() -> None:
    sleep = SleepRecorder()
    adapter = ReplayAdapter((503, b"<html>503 Service Temporarily Unavailable</html>"))
    with pytest.raises(SourceUnavailableError) as info:
        screener(adapter, sleep, max_attempts=3).scan(binance_spot_config())

    assert info.value.source == "tradingview"
    assert TV_CRYPTO_URL in str(info.value) and "HTTP 503" in str(info.value)
    assert len(adapter.sent) == 3 and sleep.calls == [2.0, 4.0]


def test_timeout_raises_unavailable_after_retries() -> None:
    sleep = SleepRecorder()
    adapter = ReplayAdapter(requests.exceptions.ReadTimeout("Read timed out. (read timeout=10.0)"))
    with pytest.raises(SourceUnavailableError, match="ReadTimeout") as info:
        screener(adapter, sleep, max_attempts=4).scan(binance_spot_config())

    assert TV_CRYPTO_URL in str(info.value)
    assert len(adapter.sent) == 4 and sleep.calls == [2.0, 4.0, 8.0]


def test_connection_error_then_success() -> None:
    adapter = ReplayAdapter(
        requests.exceptions.ConnectionError("Connection reset by peer"),
        scan_server(recorded("tradingview_scan_crypto_binance_spot.json")),
    )
    assert screener(adapter).scan(binance_spot_config()).height == 10


def test_malformed_json_raises_data_error_without_retry() -> None:
    adapter = ReplayAdapter((200, b'{"totalCount": 187, "data": [{"s": "BINANCE:BTCUSDT", "d": [62431.25,'))
    with pytest.raises(SourceDataError, match="malformed JSON") as info:
        screener(adapter).scan(binance_spot_config())
    assert info.value.source == "tradingview"
    assert len(adapter.sent) == 1


@pytest.mark.parametrize(
    "payload",
    [
        {"data": []},  # no totalCount
        {"totalCount": 1},  # no data
        {"totalCount": 1, "data": [{"s": "BINANCE:BTCUSDT", "d": [1.0, 2.0]}]},  # short row
        {"totalCount": 1, "data": [{"d": []}]},  # no symbol
    ],
)
def test_answer_missing_expected_keys_raises_data_error(payload: dict[str, Any]) -> None:
    with pytest.raises(SourceDataError):
        screener(ReplayAdapter((200, payload))).scan(binance_spot_config())


def test_non_retryable_4xx_raises_immediately_with_the_body() -> None:
    body = {"totalCount": 0, "error": 'Unknown field "Perf.2M"', "data": None}
    adapter = ReplayAdapter((400, body))
    with pytest.raises(SourceUnavailableError, match="Unknown field"):
        screener(adapter).scan(binance_spot_config())
    assert len(adapter.sent) == 1


def test_request_columns_append_config_extras_once() -> None:
    config = binance_spot_config(columns=("close", "market_cap_calc"))
    assert request_columns(config)[-1] == "market_cap_calc"
    assert request_columns(config).count("close") == 1


# --------------------------------------------------------------------------------------------
# Binance via ccxt: replay at exchange.fetch
# --------------------------------------------------------------------------------------------


class BinanceReplay:
    """Stands in for ccxt's `Exchange.fetch`: serves recorded REST JSON; scripted failures go through
    ccxt's own HTTP-error path (`handle_errors` then `handle_http_status_code`), as the real fetch does."""

    def __init__(
        self,
        exchange: ccxt.binance,
        klines: dict[str, list[list[Any]]],
        failures: dict[str, list[int]] | None = None,
    ) -> None:
        self.exchange = exchange
        self.exchange_info = recorded("binance_exchangeInfo_spot.json")
        self.klines = klines
        self.failures = {path: list(codes) for path, codes in (failures or {}).items()}
        self.calls: list[str] = []
        exchange.fetch = self.fetch

    def fetch(self, url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        self.calls.append(url)
        parts = urlsplit(url)
        endpoint = parts.path.rsplit("/", 1)[-1]
        pending = self.failures.get(endpoint)
        if pending:
            self._http_error(pending.pop(0), url, method, headers, body)
        if parts.path == "/api/v3/exchangeInfo":
            return copy.deepcopy(self.exchange_info)
        if parts.path == "/api/v3/klines":
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            start, end = int(query.get("startTime", 0)), int(query.get("endTime", 2**62))
            bars = [b for b in self.klines[query["symbol"]] if start <= b[0] <= end]
            return copy.deepcopy(bars[: int(query.get("limit", 500))])
        raise AssertionError(f"unexpected request {method} {url}")

    def _http_error(self, status: int, url: str, method: str, headers: Any, body: Any) -> None:
        text = json.dumps(recorded("binance_error_429_weight.json")) if status == 429 else "<html>Unavailable</html>"
        reason = REASONS.get(status, "Error")
        parsed = self.exchange.parse_json(text)
        self.exchange.handle_errors(status, reason, url, method, {}, text, parsed, headers, body)
        self.exchange.handle_http_status_code(status, reason, url, method, text)
        raise ccxt.ExchangeError(f"binance {method} {url}")  # what ccxt raises if nothing above matched


def fixed_now(year: int, month: int, day: int, hour: int = 12) -> Callable[[], dt.datetime]:
    return lambda: dt.datetime(year, month, day, hour, tzinfo=dt.UTC)


def binance_client(
    failures: dict[str, list[int]] | None = None, now: Callable[[], dt.datetime] = fixed_now(2024, 6, 1), **kwargs: Any
) -> tuple[BinanceOhlcvClient, BinanceReplay, SleepRecorder]:
    exchange = make_exchange()
    exchange.rateLimit = 1  # keep ccxt's own throttle (time.sleep between calls) negligible in tests
    klines = {
        "BTCUSDT": recorded("binance_klines_BTCUSDT_1d_2024-01.json"),
        "WIFUSDT": recorded("binance_klines_WIFUSDT_1d_2024-03-05_listing.json"),
    }
    replay = BinanceReplay(exchange, klines, failures)
    sleep = SleepRecorder()
    return BinanceOhlcvClient(exchange, sleep=sleep, now=now, **kwargs), replay, sleep


def klines_requests(replay: BinanceReplay) -> list[dict[str, str]]:
    return [{k: v[0] for k, v in parse_qs(urlsplit(u).query).items()} for u in replay.calls if "/klines" in u]


def test_fetch_daily_paginates_across_pages() -> None:
    client, replay, _ = binance_client(page_limit=10)
    result = client.fetch_daily("BINANCE:BTCUSDT", dt.date(2024, 1, 1), dt.date(2024, 1, 31))

    pages = klines_requests(replay)
    assert [dt.datetime.fromtimestamp(int(p["startTime"]) / 1000, dt.UTC).day for p in pages] == [1, 11, 21, 31]
    assert {p["limit"] for p in pages} == {"10"} and {p["interval"] for p in pages} == {"1d"}
    assert {p["symbol"] for p in pages} == {"BTCUSDT"}
    frame = result.frame
    assert frame.schema == pl.Schema(OHLCV_SCHEMA)
    assert frame.height == 31 and frame["date"].is_sorted() and frame["date"].n_unique() == 31
    assert frame["date"][0] == dt.date(2024, 1, 1) and frame["date"][-1] == dt.date(2024, 1, 31)
    first = frame.row(0, named=True)
    assert (first["open"], first["high"], first["low"], first["close"]) == (42283.58, 44184.10, 42180.77, 44179.55)
    assert frame["close"][-1] == 42580.0
    assert set(frame["symbol"]) == {"BINANCE:BTCUSDT"} and set(frame["source"]) == {"ccxt_binance"}
    assert (result.expected_days, result.received_days, result.complete) == (31, 31, True)


def test_fetch_daily_asks_binance_for_1000_bars_per_page_by_default() -> None:
    client, replay, _ = binance_client()
    result = client.fetch_daily("BINANCE:BTCUSDT", dt.date(2024, 1, 10), dt.date(2024, 1, 20))

    (page,) = klines_requests(replay)
    assert page["limit"] == "1000"
    assert int(page["endTime"]) == int(dt.datetime(2024, 1, 21, tzinfo=dt.UTC).timestamp() * 1000) - 1
    assert result.frame["date"].to_list() == [dt.date(2024, 1, d) for d in range(10, 21)]


def test_fetch_daily_retries_after_http_429() -> None:
    client, replay, sleep = binance_client(failures={"klines": [429]})
    result = client.fetch_daily("BINANCE:BTCUSDT", dt.date(2024, 1, 1), dt.date(2024, 1, 31))

    assert result.received_days == 31
    assert len(klines_requests(replay)) == 2  # the throttled call and its retry
    assert sleep.calls == [1.0]


def test_fetch_daily_gives_up_on_repeated_503() -> None:
    client, replay, sleep = binance_client(failures={"klines": [503, 503, 503]}, max_attempts=3)
    with pytest.raises(SourceUnavailableError, match="ExchangeNotAvailable") as info:
        client.fetch_daily("BINANCE:BTCUSDT", dt.date(2024, 1, 1), dt.date(2024, 1, 31))
    assert info.value.source == "ccxt_binance"
    assert "api.binance.com/api/v3/klines" in str(info.value)
    assert sleep.calls == [1.0, 2.0]


class RefusingAdapter(requests.adapters.BaseAdapter):
    def send(self, request, **kwargs):  # noqa: ANN001, ANN003
        raise requests.exceptions.ConnectionError(
            f"Failed to establish a new connection: [Errno 101] Network is unreachable ({request.url})"
        )

    def close(self) -> None:
        pass


def test_unreachable_exchange_raises_unavailable() -> None:
    """No fetch override here: ccxt's real fetch meets a refusing transport and maps it to NetworkError."""
    exchange = make_exchange()
    exchange.session.mount("https://", RefusingAdapter())
    sleep = SleepRecorder()
    client = BinanceOhlcvClient(exchange, sleep=sleep, max_attempts=3)
    with pytest.raises(SourceUnavailableError, match="NetworkError") as info:
        client.fetch_daily("BINANCE:BTCUSDT", dt.date(2024, 1, 1), dt.date(2024, 1, 31))
    assert "https://api.binance.com/api/v3/exchangeInfo" in str(info.value)
    assert sleep.calls == [1.0, 2.0]


def test_short_history_is_reported_not_raised() -> None:
    client, _, _ = binance_client()
    result = client.fetch_daily("BINANCE:WIFUSDT", dt.date(2024, 3, 1), dt.date(2024, 3, 10))

    assert (result.expected_days, result.received_days, result.missing_days) == (10, 6, 4)
    assert not result.complete
    assert result.frame["date"][0] == dt.date(2024, 3, 5)  # listing day


def test_todays_open_bar_is_dropped() -> None:
    client, _, _ = binance_client(now=fixed_now(2024, 1, 31, hour=15))
    result = client.fetch_daily("BINANCE:BTCUSDT", dt.date(2024, 1, 25), dt.date(2024, 1, 31))

    assert result.frame["date"][-1] == dt.date(2024, 1, 30)
    assert (result.expected_days, result.received_days) == (6, 6)


@pytest.mark.parametrize(
    ("field", "value"),
    [(4, "not-a-number"), (4, None), (2, "1.00000000")],  # unparseable close, missing close, high < low
    ids=["text-close", "null-close", "high-below-low"],
)
def test_malformed_bar_raises_data_error(field: int, value: Any) -> None:
    client, replay, _ = binance_client()
    replay.klines["BTCUSDT"] = copy.deepcopy(replay.klines["BTCUSDT"])
    replay.klines["BTCUSDT"][5][field] = value
    with pytest.raises(SourceDataError) as info:
        client.fetch_daily("BINANCE:BTCUSDT", dt.date(2024, 1, 1), dt.date(2024, 1, 31))
    assert info.value.source == "ccxt_binance"


def test_symbol_mapping_and_unknown_symbols() -> None:
    client, _, _ = binance_client()
    assert client.ccxt_symbol("BINANCE:BTCUSDT") == "BTC/USDT"
    assert client.ccxt_symbol("BINANCE:ETHBTC") == "ETH/BTC"
    with pytest.raises(SourceDataError, match="not a Binance spot market"):
        client.ccxt_symbol("BINANCE:NOPEUSDT")
    with pytest.raises(SourceDataError, match="BINANCE:TICKER"):
        client.ccxt_symbol("BYBIT:BTCUSDT")


def test_fetch_markets_builds_symbols_rows() -> None:
    client, replay, _ = binance_client()
    frame = client.fetch_markets()

    assert frame.columns == SYMBOLS.column_names and frame.schema == pl.Schema(SYMBOLS_SCHEMA)
    assert sum("/exchangeInfo" in c for c in replay.calls) == 1
    assert frame["symbol"].to_list() == [
        "BINANCE:BNBUSDT", "BINANCE:BTCUSDT", "BINANCE:ETHBTC", "BINANCE:ETHUSDT",
        "BINANCE:FDUSDUSDT", "BINANCE:SOLUSDT", "BINANCE:USDCUSDT", "BINANCE:WIFUSDT",
    ]  # BTCBUSD (status BREAK) is left out
    btc = frame.filter(pl.col("ticker") == "BTCUSDT").row(0, named=True)
    assert btc == {
        "symbol": "BINANCE:BTCUSDT", "exchange": "BINANCE", "ticker": "BTCUSDT", "base": "BTC", "quote": "USDT",
        "asset_class": "crypto", "sector": None, "industry": None, "currency": "USDT", "calendar": "24/7",
        "tick_size": 0.01, "lot_size": 0.00001, "is_stablecoin": False, "is_synthetic": False,
        "source": "ccxt_binance", "description": None,
    }
    stable = frame.filter(pl.col("is_stablecoin"))["ticker"].to_list()
    assert stable == ["FDUSDUSDT", "USDCUSDT"]
    assert frame.filter(pl.col("ticker") == "ETHBTC")["currency"].item() == "BTC"
    assert client.fetch_markets(include_inactive=True).height == 9
