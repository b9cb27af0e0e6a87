"""The aligned returns panel selection works on: dates × symbols, NaN where a symbol has no session.

Built from the long `returns_matrix` (each symbol on its own calendar). Aligning on the union of dates keeps
every observation; a NaN means "no session", never a zero return, and every consumer handles it explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl


@dataclass(frozen=True, eq=False)
class ReturnsPanel:
    values: np.ndarray  # (T, N) float64 daily simple returns; NaN = no session
    dates: np.ndarray  # (T,) datetime64[D], ascending
    symbols: tuple[str, ...]  # (N,)

    def __post_init__(self):
        if self.values.shape != (len(self.dates), len(self.symbols)):
            raise ValueError(f"panel shape {self.values.shape} != ({len(self.dates)}, {len(self.symbols)})")
        if len(self.dates) > 1 and not np.all(np.diff(self.dates.astype("datetime64[D]").astype(np.int64)) > 0):
            raise ValueError("panel dates must be strictly ascending")

    @classmethod
    def from_long(cls, frame: pl.DataFrame) -> "ReturnsPanel":
        """From rows (symbol, date, ret)."""
        if frame.is_empty():
            return cls(np.empty((0, 0)), np.empty(0, dtype="datetime64[D]"), ())
        wide = frame.pivot(on="symbol", index="date", values="ret").sort("date")
        symbols = tuple(sorted(c for c in wide.columns if c != "date"))
        values = wide.select(symbols).to_numpy().astype(np.float64)
        dates = wide["date"].to_numpy().astype("datetime64[D]")
        return cls(values, dates, symbols)

    @property
    def last_date(self) -> date | None:
        return None if len(self.dates) == 0 else self.dates[-1].astype(date)

    def tail(self, rows: int) -> "ReturnsPanel":
        return ReturnsPanel(self.values[-rows:], self.dates[-rows:], self.symbols)

    def until(self, as_of: date) -> "ReturnsPanel":
        """Rows up to and including `as_of` (walk-forward windows slice with this)."""
        keep = self.dates <= np.datetime64(as_of, "D")
        return ReturnsPanel(self.values[keep], self.dates[keep], self.symbols)

    def select(self, symbols: list[str] | tuple[str, ...]) -> "ReturnsPanel":
        index = {s: i for i, s in enumerate(self.symbols)}
        cols = [index[s] for s in symbols]
        return ReturnsPanel(self.values[:, cols], self.dates, tuple(symbols))


def compound_onto(frame: pl.DataFrame, column: str, common: list) -> list[float]:
    """The stream's return on each common day: its own returns compounded since the previous common day (the
    first common day keeps its own return: nothing before it is in the shared window)."""
    dates = frame["date"].to_list()
    wealth = np.cumprod(1.0 + frame[column].to_numpy())
    index = {d: i for i, d in enumerate(dates)}
    positions = [index[d] for d in common]
    out = [float(frame[column][positions[0]])] if positions else []
    out += [float(wealth[b] / wealth[a] - 1.0) for a, b in zip(positions, positions[1:])]
    return out
