"""Live Binance spot data through ccxt: daily bars (paginated klines) and the spot market list.

ccxt does the HTTP, payload parsing and error mapping (HTTP 429 → RateLimitExceeded/DDoSProtection,
5xx → ExchangeNotAvailable, connection failures → NetworkError); this module adds retries with
backoff, the symbol mapping "BINANCE:BTCUSDT" ↔ "BTC/USDT", validation and our frame schemas.
The exchange object is injectable so tests can replay recorded REST payloads at `exchange.fetch`.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import ccxt
import polars as pl

from tsp_platform.lakehouse.schema import SYMBOLS
from tsp_platform.sources.base import OHLCV_SCHEMA, SourceDataError, SourceUnavailableError, conform
from tsp_platform.sources.retry import Backoff
from tsp_platform.sources.symbols import STABLECOINS

SOURCE = "ccxt_binance"
EXCHANGE = "BINANCE"
DAY_MS = 86_400_000
MAX_KLINES_LIMIT = 1000  # Binance spot caps /api/v3/klines at 1000 bars per request
# Transient by nature (rate limits, DDoS guard, maintenance, timeouts, dropped connections): retried.
RETRYABLE = (
    ccxt.RateLimitExceeded,
    ccxt.DDoSProtection,
    ccxt.ExchangeNotAvailable,
    ccxt.RequestTimeout,
    ccxt.NetworkError,
)

SYMBOLS_SCHEMA: dict[str, pl.DataType] = SYMBOLS.polars_schema

T = TypeVar("T")


@dataclass(frozen=True)
class FetchResult:
    """Daily bars plus completeness: fewer bars than days is legal (listing date, halts) but visible."""

    frame: pl.DataFrame
    expected_days: int  # closed UTC days in [since, until]
    received_days: int  # distinct bars received in that window

    @property
    def missing_days(self) -> int:
        return self.expected_days - self.received_days

    @property
    def complete(self) -> bool:
        return self.received_days >= self.expected_days


def make_exchange(timeout_ms: int = 10_000) -> ccxt.binance:
    """The production exchange: rate-limited, spot markets only (no futures/options exchangeInfo calls)."""
    return ccxt.binance(
        {
            "enableRateLimit": True,
            "timeout": timeout_ms,
            "options": {"fetchMarkets": {"types": ["spot"]}, "fetchMargins": False},
        }
    )


class BinanceOhlcvClient:
    """Daily OHLCV and spot markets from Binance; transient errors retried, failures raised, never empty."""

    def __init__(
        self,
        exchange: ccxt.Exchange | None = None,
        *,
        max_attempts: int = 5,
        backoff_base: float = 1.0,
        backoff_max: float = 30.0,
        page_limit: int = MAX_KLINES_LIMIT,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        if not 1 <= page_limit <= MAX_KLINES_LIMIT:
            raise ValueError(f"1 <= page_limit <= {MAX_KLINES_LIMIT} required")
        self.exchange = _refusing_malformed_json(exchange if exchange is not None else make_exchange())
        self.backoff = Backoff(max_attempts, backoff_base, backoff_max, sleep)
        self.page_limit = page_limit
        self.now = now

    # -- public API ---------------------------------------------------------------------------

    def fetch_daily(self, symbol: str, since: dt.date, until: dt.date) -> FetchResult:
        """Closed daily bars for `symbol` ("BINANCE:BTCUSDT") from `since` to `until` inclusive (UTC days).

        Today's still-open bar is dropped: a partial close would corrupt returns.
        """
        if until < since:
            raise ValueError(f"until {until} is before since {since}")
        market_symbol = self.ccxt_symbol(symbol)
        last_closed = (self.now().astimezone(dt.UTC) - dt.timedelta(days=1)).date()
        window_end = min(until, last_closed)
        since_ms, end_ms = _day_ms(since), _day_ms(window_end)
        bars: dict[int, list[float]] = {}
        cursor = since_ms
        while cursor <= end_ms:
            page = self._call(
                self.exchange.fetch_ohlcv,
                market_symbol,
                "1d",
                cursor,
                limit=self.page_limit,
                params={"until": end_ms + DAY_MS - 1},
            )
            page = _validated_bars(page, symbol)
            if not page:
                break
            for bar in page:
                if since_ms <= bar[0] <= end_ms:
                    bars[bar[0]] = bar
            if page[-1][0] < cursor:
                raise SourceDataError(SOURCE, f"{symbol}: klines page ends before its start time {cursor}")
            cursor = page[-1][0] + DAY_MS
            if len(page) < self.page_limit:
                break
        expected = max(0, (window_end - since).days + 1)
        return FetchResult(_ohlcv_frame(symbol, bars), expected_days=expected, received_days=len(bars))

    def fetch_markets(self, include_inactive: bool = False) -> pl.DataFrame:
        """SYMBOLS-table rows for Binance spot markets (active ones unless `include_inactive`)."""
        markets = self._markets()
        rows = []
        for market in markets.values():
            if not market.get("spot") or not (include_inactive or market.get("active")):
                continue
            base, quote = market["baseId"], market["quoteId"]  # exchange-native, like the ticker
            precision = market.get("precision") or {}
            rows.append(
                {
                    "symbol": f"{EXCHANGE}:{market['id']}",
                    "exchange": EXCHANGE,
                    "ticker": market["id"],
                    "base": base,
                    "quote": quote,
                    "asset_class": "crypto",
                    "sector": None,
                    "industry": None,
                    "currency": quote,
                    "calendar": "24/7",
                    "tick_size": precision.get("price"),
                    "lot_size": precision.get("amount"),
                    "is_stablecoin": base in STABLECOINS,
                    "is_synthetic": False,
                    "source": SOURCE,
                    "description": None,
                }
            )
        return pl.DataFrame(rows, schema=SYMBOLS_SCHEMA).sort("symbol")

    def ccxt_symbol(self, symbol: str) -> str:
        """"BINANCE:BTCUSDT" → "BTC/USDT", resolved against the loaded spot markets."""
        exchange, _, ticker = symbol.partition(":")
        if exchange != EXCHANGE or not ticker:
            raise SourceDataError(SOURCE, f"{symbol!r} is not a {EXCHANGE}:TICKER symbol")
        self._markets()
        for market in self.exchange.markets_by_id.get(ticker, []):
            if market.get("spot"):
                return market["symbol"]
        raise SourceDataError(SOURCE, f"{symbol!r} is not a Binance spot market")

    # -- plumbing -----------------------------------------------------------------------------

    def _markets(self) -> dict[str, Any]:
        if not self.exchange.markets:
            self._call(self.exchange.load_markets)
        return self.exchange.markets

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call a ccxt method with exponential backoff on transient errors; map the rest to our errors."""
        last: Exception | None = None
        for attempt in self.backoff.attempts():
            try:
                return fn(*args, **kwargs)
            except RETRYABLE as exc:
                last = exc
            except (ccxt.BadSymbol, ccxt.BadResponse) as exc:
                raise SourceDataError(SOURCE, f"{type(exc).__name__}: {exc}") from exc
            except ccxt.BaseError as exc:
                raise SourceUnavailableError(SOURCE, f"{type(exc).__name__}: {exc}") from exc
            except (TypeError, ValueError, KeyError, IndexError) as exc:  # ccxt choking on a payload
                raise SourceDataError(SOURCE, f"unparseable answer: {type(exc).__name__}: {exc}") from exc
            self.backoff.pause(attempt)
        # ccxt's messages carry the method and URL, e.g. "binance GET https://api.binance.com/api/v3/klines?..."
        raise SourceUnavailableError(
            SOURCE, f"failed after {self.backoff.max_attempts} attempts; last error: {type(last).__name__}: {last}"
        )


def _refusing_malformed_json(exchange: ccxt.Exchange) -> ccxt.Exchange:
    """Make a 2xx answer whose JSON does not parse a `ccxt.BadResponse` (→ SourceDataError naming the URL).

    ccxt hands such an answer back as text and its parsers read text as "no data": truncated klines became an
    empty page (a symbol silently without bars) and a truncated exchangeInfo an empty market list."""
    if getattr(exchange, "_tsp_strict_json", False):
        return exchange
    read = exchange.on_rest_response

    def on_rest_response(code, reason, url, method, response_headers, response_body, request_headers, request_body):
        body = read(code, reason, url, method, response_headers, response_body, request_headers, request_body)
        if 200 <= int(code) < 300 and isinstance(body, str):
            try:
                json.loads(body)
            except ValueError as exc:
                raise ccxt.BadResponse(
                    f"{exchange.id} {method} {url} answered malformed JSON ({exc}): {body[:120]!r}"
                ) from exc
        return body

    exchange.on_rest_response = on_rest_response
    exchange._tsp_strict_json = True
    return exchange


def _validated_bars(page: Any, symbol: str) -> list[list[float]]:
    """ccxt bars `[ms, o, h, l, c, v]`: numeric, finite, midnight-aligned, high >= low, ascending."""
    if not isinstance(page, list):
        raise SourceDataError(SOURCE, f"{symbol}: klines answer is not a list: {str(page)[:200]}")
    bars = []
    for bar in page:
        if not isinstance(bar, (list, tuple)) or len(bar) < 6:
            raise SourceDataError(SOURCE, f"{symbol}: malformed bar {bar!r}")
        ts, *values = bar[:6]
        if not isinstance(ts, int) or ts % DAY_MS:
            raise SourceDataError(SOURCE, f"{symbol}: bar time {ts!r} is not a UTC midnight in ms")
        if any(not isinstance(v, (int, float)) or not math.isfinite(v) for v in values):
            raise SourceDataError(SOURCE, f"{symbol}: non-numeric value in bar {bar!r}")
        open_, high, low, close, volume = (float(v) for v in values)
        if low <= 0 or high < low or volume < 0:
            raise SourceDataError(SOURCE, f"{symbol}: inconsistent bar {bar!r}")
        bars.append([ts, open_, high, low, close, volume])
    if any(b[0] >= c[0] for b, c in zip(bars, bars[1:])):
        raise SourceDataError(SOURCE, f"{symbol}: bars are not strictly ascending in time")
    return bars


def _ohlcv_frame(symbol: str, bars: dict[int, list[float]]) -> pl.DataFrame:
    rows = [
        {
            "symbol": symbol,
            "date": dt.datetime.fromtimestamp(ts / 1000, dt.UTC).date(),
            "open": o,
            "high": h,
            "low": low,
            "close": c,
            "volume": v,
            "source": SOURCE,
        }
        for ts, (_, o, h, low, c, v) in sorted(bars.items())
    ]
    return conform(pl.DataFrame(rows, schema=OHLCV_SCHEMA), OHLCV_SCHEMA, SOURCE)


def _day_ms(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)
