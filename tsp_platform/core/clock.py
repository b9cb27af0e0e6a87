"""The one clock: naive UTC timestamps, as the lakehouse stores TIMESTAMP."""

from __future__ import annotations

from datetime import datetime, timezone


def utc_now() -> datetime:
    """Naive UTC timestamp (the lakehouse stores TIMESTAMP in UTC)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)
