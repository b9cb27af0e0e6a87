"""Live TradingView screener: run a ScannerConfig against `scanner.tradingview.com` and conform the answer.

The request body is built with the `tradingview-screener` package (`Query` / `col`), but the POST goes
through our own `requests.Session`: the package calls the module-level `requests.post`, which offers no
session, retries or transport hook. Owning the session gives one boundary for retries and for tests
(mount a transport adapter that replays recorded answers).

Only server-side filtering happens here. Trend gates, include/exclude lists and liquidity floors are
local post-filters applied by discovery on the returned frame.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import polars as pl
import requests
from tradingview_screener import Query, col
from tradingview_screener.query import HEADERS

from tsp_platform.config.scanners import FilterOp, ScannerConfig, ScreenFilter, SortOrder
from tsp_platform.sources.retry import Backoff
from tsp_platform.sources.base import (
    SCREENER_FIELDS,
    SCREENER_SCHEMA,
    SourceDataError,
    SourceUnavailableError,
)

SOURCE = "tradingview"
# Always requested first, in this order; the answer's `d` arrays follow the request's column order.
ID_COLUMNS: tuple[str, ...] = ("name", "exchange", "sector")
RETRYABLE_EXCEPTIONS: tuple[type[BaseException], ...] = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


def request_columns(config: ScannerConfig) -> list[str]:
    """Identity columns, every SCREENER_FIELDS source field, then the config's extra columns (deduplicated)."""
    columns: list[str] = []
    for name in (*ID_COLUMNS, *SCREENER_FIELDS, *config.columns):
        if name not in columns:
            columns.append(name)
    return columns


def filter_expression(screen_filter: ScreenFilter) -> dict[str, Any]:
    """Map one config filter to the package's filter dict (the wire form `{left, operation, right}`)."""
    column, right = col(screen_filter.left), screen_filter.right
    match screen_filter.operation:
        case FilterOp.GREATER:
            return column > right
        case FilterOp.LESS:
            return column < right
        case FilterOp.EGREATER:
            return column >= right
        case FilterOp.ELESS:
            return column <= right
        case FilterOp.EQUAL:
            return column == (list(right) if isinstance(right, tuple) else right)
        case FilterOp.NEQUAL:
            return column != (list(right) if isinstance(right, tuple) else right)
        case FilterOp.IN_RANGE:
            low, high = right  # the config validator guarantees a pair
            return column.between(low, high)
        case FilterOp.NOT_IN_RANGE:
            low, high = right
            return column.not_between(low, high)
    raise ValueError(f"unsupported screener operation {screen_filter.operation!r}")  # pragma: no cover


def build_query(config: ScannerConfig) -> Query:
    """The package Query for a scanner: markets, filters (+ exchange filter), columns, sort, full range."""
    expressions = [filter_expression(f) for f in config.filters]
    if len(config.exchanges) == 1:
        expressions.append(col("exchange") == config.exchanges[0])
    elif config.exchanges:
        expressions.append(col("exchange").isin(config.exchanges))
    query = (
        Query()
        .set_markets(*config.markets)
        .select(*request_columns(config))
        .where(*expressions)
        .order_by(config.sort_by, ascending=config.sort_order is SortOrder.ASC)
        .set_property("range", [0, config.limit])
    )
    # Query() starts from the package's *stock* preset; its `filter2` (type == stock, ...) would empty
    # any crypto/forex scan, and the config is the only source of filters.
    query.query.pop("filter2", None)
    return query


class TradingViewScreener:
    """Runs scanner configs live; retries transient failures, never turns a failure into an empty frame."""

    def __init__(
        self,
        session: requests.Session | None = None,
        *,
        timeout: float = 10.0,
        max_attempts: int = 5,
        backoff_base: float = 2.0,
        backoff_max: float = 60.0,
        page_size: int = 1000,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be >= 1")
        self.session = session or requests.Session()
        self.timeout = timeout
        self.backoff = Backoff(max_attempts, backoff_base, backoff_max, sleep)
        self.page_size = page_size

    def scan(self, config: ScannerConfig) -> pl.DataFrame:
        """One SCREENER_SCHEMA row per symbol, in the server's sort order, at most `config.limit` rows."""
        query = build_query(config)
        columns = request_columns(config)
        records: dict[str, dict[str, Any]] = {}
        offset = 0
        while offset < config.limit:
            end = min(offset + self.page_size, config.limit)
            query.set_property("range", [offset, end])
            total, rows = parse_scan(self._post(query.url, query.query), columns)
            for record in rows:
                records.setdefault(record["symbol"], record)  # rankings can shift between pages
            if len(rows) < end - offset or end >= total:
                break
            offset = end
        return pl.DataFrame(list(records.values()), schema=SCREENER_SCHEMA)

    def _post(self, url: str, body: dict[str, Any]) -> Any:
        """POST with exponential backoff on connection errors, timeouts, 429 and 5xx; returns decoded JSON."""
        last_error = "no attempt made"
        for attempt in self.backoff.attempts():
            retry_after: float | None = None
            try:
                response = self.session.post(url, json=body, headers=HEADERS, timeout=self.timeout)
            except RETRYABLE_EXCEPTIONS as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 429 or response.status_code >= 500:
                    last_error = f"HTTP {response.status_code}: {response.text[:300]}"
                    retry_after = _retry_after_seconds(response)
                elif not response.ok:  # 4xx other than 429: retrying will not help
                    raise SourceUnavailableError(
                        SOURCE, f"{url} answered HTTP {response.status_code}: {response.text[:500]}"
                    )
                else:
                    try:
                        return response.json()
                    except ValueError as exc:
                        raise SourceDataError(SOURCE, f"{url} answered malformed JSON: {exc}") from exc
            self.backoff.pause(attempt, retry_after)
        raise SourceUnavailableError(
            SOURCE, f"{url} failed after {self.backoff.max_attempts} attempts; last error: {last_error}"
        )


def parse_scan(payload: Any, columns: Sequence[str]) -> tuple[int, list[dict[str, Any]]]:
    """Validate a `/scan` answer (`{"totalCount": N, "data": [{"s", "d"}]}`) into SCREENER_SCHEMA records."""
    if not isinstance(payload, dict) or "data" not in payload or "totalCount" not in payload:
        raise SourceDataError(SOURCE, f"answer lacks 'totalCount'/'data': {_preview(payload)}")
    if payload.get("error"):
        raise SourceDataError(SOURCE, f"answer carries an error: {payload['error']}")
    total, data = payload["totalCount"], payload["data"]
    if not isinstance(total, int) or not isinstance(data, list):
        raise SourceDataError(SOURCE, f"'totalCount' must be int and 'data' a list: {_preview(payload)}")
    index = {name: i for i, name in enumerate(columns)}
    records = []
    for row in data:
        if not isinstance(row, dict) or not isinstance(row.get("s"), str) or ":" not in row["s"]:
            raise SourceDataError(SOURCE, f"row without an 'EXCHANGE:TICKER' symbol: {_preview(row)}")
        values = row.get("d")
        if not isinstance(values, list) or len(values) != len(columns):
            raise SourceDataError(SOURCE, f"{row['s']}: expected {len(columns)} values in 'd', got {_preview(values)}")
        exchange = values[index["exchange"]] or row["s"].split(":", 1)[0]
        sector = values[index["sector"]]
        record: dict[str, Any] = {
            "symbol": row["s"],
            "exchange": str(exchange),
            "sector": sector if isinstance(sector, str) else None,
        }
        for field, column in SCREENER_FIELDS.items():
            record[column] = _number(values[index[field]], row["s"], field)
        records.append(record)
    return total, records


def _number(value: Any, symbol: str, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SourceDataError(SOURCE, f"{symbol}: field {field!r} is not numeric: {value!r}")
    return float(value)


def _retry_after_seconds(response: requests.Response) -> float | None:
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None


def _preview(value: Any, limit: int = 200) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text[:limit]
