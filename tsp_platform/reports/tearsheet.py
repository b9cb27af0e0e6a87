"""QuantStats HTML tear-sheets, offline.

Decisions:
* The benchmark is always a pandas Series on the strategy's own dates (QuantStats downloads a ticker string).
* `match_dates=False`: the series are already aligned, and QuantStats' matching would drop the strategy's leading
  flat days (before its first trade), so the tear-sheet's Sharpe/CAGR would disagree with the scoreboard's.
* Inputs QuantStats would misread as prices (all returns ≥ 0 with one above +100 %) are rejected, not guessed.
* Importing QuantStats restyles matplotlib globally (seaborn theme, a font absent here that logs a warning per
  text); the import is lazy and fenced so that restyling applies only inside `write_tearsheet`.
* The file is written beside its target and renamed, so a failed run never leaves a half-written tear-sheet.
"""

from __future__ import annotations

import functools
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType
from typing import Any

import matplotlib
import numpy as np
import pandas as pd

from tsp_platform.core.files import atomic_path
from tsp_platform.reports.streams import validate_stream

STRATEGY_TITLE = "Strategy"
REQUIRED_METRICS = ("Sharpe", "CAGR﹪")  # rows the tear-sheet must show (QuantStats 0.0.86 spells CAGR so)


@contextmanager
def _quiet() -> Iterator[None]:
    """Mute QuantStats' pandas/matplotlib deprecation warnings and font-fallback log lines, here only."""
    logger = logging.getLogger("matplotlib.font_manager")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


@functools.cache
def _quantstats() -> tuple[ModuleType, dict[str, Any]]:
    """QuantStats and the matplotlib style its import set, with the global rcParams restored afterwards."""
    with _quiet(), matplotlib.rc_context():
        before = dict(matplotlib.rcParams)
        import quantstats as qs  # slow (~2 s): imported on first use only

        style = {k: v for k, v in matplotlib.rcParams.items() if before.get(k) != v}
    # QuantStats asks for Arial; a generic family falls back silently when it is not installed.
    style["font.family"] = ["sans-serif"]
    return qs, style


def _series(dates: np.ndarray, returns: np.ndarray, name: str) -> pd.Series:
    d, r = validate_stream(dates, returns, name)
    if r.min() >= 0 and r.max() > 1:
        raise ValueError(f"{name}: QuantStats would read these returns (all ≥ 0, one above +100 %) as prices")
    return pd.Series(r, index=pd.DatetimeIndex(d), name=name)


def write_tearsheet(
    returns: np.ndarray,
    dates: np.ndarray,
    path: Path,
    title: str,
    annualisation: int,
    benchmark: tuple[np.ndarray, str] | None = None,
) -> Path:
    """Write a QuantStats HTML tear-sheet of one daily return stream (optionally against a benchmark's returns
    on the same dates) to `path` and return it. Raises ValueError on bad inputs, RuntimeError if QuantStats fails
    or writes a page without its metrics table."""
    if isinstance(annualisation, bool) or not isinstance(annualisation, (int, np.integer)) or annualisation < 1:
        raise ValueError(f"annualisation must be a positive integer, got {annualisation!r}")
    strategy = _series(dates, returns, STRATEGY_TITLE)
    bench = None
    if benchmark is not None:
        bench_returns, bench_name = benchmark
        if str(bench_name) == STRATEGY_TITLE:
            raise ValueError(f"a benchmark cannot be named {STRATEGY_TITLE!r}: the metrics table needs two columns")
        if np.shape(bench_returns) != strategy.shape:
            raise ValueError(f"benchmark {bench_name!r} needs one return per strategy date ({strategy.size})")
        bench = _series(strategy.index.values, bench_returns, str(bench_name))

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    qs, style = _quantstats()
    with atomic_path(path) as partial:
        try:
            with _quiet(), matplotlib.rc_context(style):
                qs.reports.html(
                    strategy, benchmark=bench, periods_per_year=int(annualisation), output=str(partial), title=title,
                    match_dates=False, strategy_title=STRATEGY_TITLE,
                )
        except Exception as exc:
            span = f"{strategy.index[0]:%Y-%m-%d}…{strategy.index[-1]:%Y-%m-%d}"
            raise RuntimeError(
                f"QuantStats could not write the tear-sheet {title!r} ({strategy.size} returns, {span}): "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        _check_metrics(partial, title)
    return path


def _check_metrics(html_path: Path, title: str) -> None:
    table = read_tearsheet_metrics(html_path)
    absent = [m for m in REQUIRED_METRICS if STRATEGY_TITLE not in table.get(m, {})]
    if absent:
        html_path.unlink(missing_ok=True)
        raise RuntimeError(f"QuantStats wrote the tear-sheet {title!r} without the metrics rows {absent}")


class _MetricsTableParser(HTMLParser):
    """Collects the rows of the first table whose header starts with "Metric" (QuantStats' key metrics)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._state = "before"  # before → inside → done

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._state == "done":
            return
        if tag == "tr":
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if self._state == "done":
            return
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if self._state == "before" and self._row[:1] == ["Metric"]:
                self._state = "inside"
            if self._state == "inside":
                self.rows.append(self._row)
            self._row = None
        elif tag == "table" and self._state == "inside":
            self._state = "done"


def read_tearsheet_metrics(path: Path) -> dict[str, dict[str, str]]:
    """The key-metrics table of a QuantStats tear-sheet as {metric: {column: displayed text}}; columns are the
    benchmark's name (if any) and "Strategy". Separator rows are skipped; a repeated metric keeps its first row."""
    parser = _MetricsTableParser()
    parser.feed(Path(path).read_text(encoding="utf-8"))
    if not parser.rows:
        return {}
    header, *body = parser.rows
    table: dict[str, dict[str, str]] = {}
    for row in body:
        if len(row) == len(header) and row[0]:
            table.setdefault(row[0], dict(zip(header[1:], row[1:])))
    return table
