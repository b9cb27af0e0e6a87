"""Session calendars for daily bars: TradFi trades on weekdays, crypto every day.

WEEKDAYS approximates exchange sessions: single-day holidays are absorbed by the health gates'
one-missing-session tolerance. A full exchange holiday calendar can replace it behind the same functions.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl

from tsp_platform.core.vocabulary import Calendar


def sessions_between(start: pl.Expr, end: pl.Expr, calendar: Calendar) -> pl.Expr:
    """Number of sessions strictly after `start` and up to and including `end` (0 when end <= start)."""
    if calendar is Calendar.ALWAYS:
        return (end - start).dt.total_days().clip(lower_bound=0).cast(pl.Int64)
    one_day = pl.duration(days=1)
    return pl.business_day_count(start + one_day, end + one_day).clip(lower_bound=0).cast(pl.Int64)


def session_count(start: date, end: date, calendar: Calendar) -> int:
    """Sessions in (start, end]."""
    if end <= start:
        return 0
    if calendar is Calendar.ALWAYS:
        return (end - start).days
    return int(np.busday_count(start + timedelta(days=1), end + timedelta(days=1)))


def is_session(day: pl.Expr, calendar: Calendar) -> pl.Expr:
    if calendar is Calendar.ALWAYS:
        return pl.lit(True)
    return day.dt.weekday() <= 5


def is_session_day(day: date, calendar: Calendar) -> bool:
    return calendar is Calendar.ALWAYS or day.weekday() < 5


def previous_session(day: date, calendar: Calendar) -> date:
    """The last session strictly before `day` (the default as-of of a daily schedule)."""
    candidate = day - timedelta(days=1)
    while not is_session_day(candidate, calendar):
        candidate -= timedelta(days=1)
    return candidate


def to_date(value) -> date:
    """A numpy datetime64 (or anything numpy reads as a day) as a `datetime.date`."""
    return np.datetime64(value, "D").astype(date)
