"""The domain's shared enums: every layer above may use them, and they depend on nothing."""

from __future__ import annotations

from enum import StrEnum


class Calendar(StrEnum):
    """Session calendars. WEEKDAYS approximates exchange sessions (holidays absorbed by the gap tolerance)."""

    WEEKDAYS = "weekdays"
    ALWAYS = "24/7"


class AssetClass(StrEnum):
    EQUITY = "equity"
    ETF = "etf"
    INDEX = "index"
    CRYPTO = "crypto"
    FOREX = "forex"
    FUTURES = "futures"


class Direction(StrEnum):
    LONG = "long"
    SHORT = "short"
