"""Return streams: (dates, daily simple returns) pairs, validated once, and read from TOURNAMENT_RETURNS frames."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import polars as pl

# (dates as datetime64[D], daily simple returns), one date per return, strictly ascending.
Stream = tuple[np.ndarray, np.ndarray]

CELL_COLUMNS = ("scorer", "risk_profile", "engine", "simulator")


def validate_stream(dates: np.ndarray, returns: np.ndarray, name: str = "returns") -> Stream:
    """Checked copies: 1-d, same length, non-empty, finite, ≥ −100 %, dates strictly ascending."""
    r = np.asarray(returns, dtype=float)
    try:
        d = np.asarray(dates).astype("datetime64[D]")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: dates must be dates") from exc
    if r.ndim != 1 or d.shape != r.shape:
        raise ValueError(f"{name}: need one date per return, got dates {d.shape} and returns {r.shape}")
    if r.size == 0:
        raise ValueError(f"{name}: no returns")
    if not np.isfinite(r).all():
        raise ValueError(f"{name}: returns must be finite (a day without a session is a zero return)")
    if (r < -1.0).any():
        raise ValueError(f"{name}: a daily return below −100 % ({r.min():.6g}) is impossible")
    if r.size > 1 and not (np.diff(d) > np.timedelta64(0, "D")).all():
        raise ValueError(f"{name}: dates must be strictly ascending")
    return d, r


def validate_streams(series: Mapping[str, Stream]) -> dict[str, Stream]:
    if not series:
        raise ValueError("no return streams given")
    return {str(name): validate_stream(d, r, str(name)) for name, (d, r) in series.items()}


def equity(returns: np.ndarray) -> np.ndarray:
    """Compounded wealth after each day, starting from 1.0 (excluded)."""
    return np.cumprod(1.0 + returns)


def drawdown(returns: np.ndarray) -> np.ndarray:
    """Fall from the running peak after each day; the start (1.0) counts as a peak, as `metrics.max_drawdown`."""
    e = equity(returns)
    return e / np.maximum(np.maximum.accumulate(e), 1.0) - 1.0


def cell_label(scorer: str, risk_profile: str, engine: str, simulator: str) -> str:
    return f"{scorer}/{risk_profile}/{engine}/{simulator}"


def streams_from_tournament_returns(frame: pl.DataFrame) -> dict[str, Stream]:
    """One stream per cell of a TOURNAMENT_RETURNS-shaped frame (cell key, simulator, date, ret), keyed by
    `cell_label`, in cell-key order so callers get the same dict (and plot legend) every run."""
    needed = (*CELL_COLUMNS, "date", "ret")
    absent = [c for c in needed if c not in frame.columns]
    if absent:
        raise ValueError(f"tournament returns lack columns {absent}")
    streams: dict[str, Stream] = {}
    for key, part in sorted(frame.partition_by(list(CELL_COLUMNS), as_dict=True).items()):
        part = part.sort("date")
        label = cell_label(*key)
        streams[label] = validate_stream(part["date"].to_numpy(), part["ret"].to_numpy(), label)
    return streams
