"""PNG charts of return streams, weights and correlations.

Decisions:
* Figures are built with the object-oriented `Figure` API, never registered with pyplot, so nothing is left open
  after a write (and writers are safe to call from worker threads).
* Each chart is drawn under matplotlib's default style: importing QuantStats restyles matplotlib globally, and
  a chart must not depend on whether a tear-sheet was written first.
* PNG metadata omits the matplotlib version, so the same inputs give the same bytes across upgrades.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import matplotlib
import matplotlib.dates as mdates
import numpy as np
import pandas as pd
import polars as pl
import seaborn as sns
from matplotlib import style as mpl_style
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter
from scipy.cluster.hierarchy import dendrogram, leaves_list

from tsp_platform.core.files import atomic_path
from tsp_platform.reports.correlation import MIN_OVERLAP, average_linkage, pairwise_correlation
from tsp_platform.reports.streams import Stream, drawdown, equity, validate_streams

FIGSIZE = (10.0, 5.0)
SQUARE_FIGSIZE = (9.0, 7.5)  # a correlation matrix is square; a 2:1 canvas would squash its cells
DPI = 100
LEGEND_MAX = 15  # legend entries beyond this are drawn but not named


@contextmanager
def _axes(path: Path, title: str, figsize: tuple[float, float] = FIGSIZE) -> Iterator[Axes]:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with mpl_style.context("default"):
        fig = Figure(figsize=figsize, dpi=DPI, layout="constrained")
        ax = fig.add_subplot()
        ax.set_title(title)
        yield ax
        with atomic_path(path) as staging:
            fig.savefig(staging, format="png", dpi=DPI, metadata={"Software": None})
    fig.clear()


def _date_axis(ax: Axes) -> None:
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _plot_lines(ax: Axes, lines: Mapping[str, tuple[np.ndarray, np.ndarray]], baselines: Collection[str]) -> None:
    # Baselines are references: dashed, behind the candidates.
    for name, (x, y) in lines.items():
        is_base = name in baselines
        ax.plot(x, y, label=name, linewidth=1.0 if is_base else 1.4, linestyle="--" if is_base else "-",
                zorder=1 if is_base else 2)
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles[:LEGEND_MAX], labels[:LEGEND_MAX], fontsize="small", loc="best")
    ax.grid(alpha=0.3)
    _date_axis(ax)


def plot_equity(series: Mapping[str, Stream], path: Path, baselines: Collection[str] = (),
                title: str = "Equity (growth of 1)") -> Path:
    """Equity curves (compounded returns) of several named (dates, returns) streams on one axis; names in
    `baselines` are drawn dashed."""
    streams = validate_streams(series)
    with _axes(path, title) as ax:
        _plot_lines(ax, {n: (d, equity(r)) for n, (d, r) in streams.items()}, baselines)
        ax.axhline(1.0, color="grey", linewidth=0.8)
        ax.set_ylabel("equity")
    return Path(path)


def plot_drawdowns(series: Mapping[str, Stream], path: Path, baselines: Collection[str] = (),
                   title: str = "Drawdown from peak") -> Path:
    """Drawdown from the running peak (start counted as a peak, as `metrics.max_drawdown`) of each stream."""
    streams = validate_streams(series)
    with _axes(path, title) as ax:
        _plot_lines(ax, {n: (d, drawdown(r)) for n, (d, r) in streams.items()}, baselines)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_ylabel("drawdown")
    return Path(path)


def _weights_matrix(weights: pl.DataFrame) -> tuple[np.ndarray, list[str], np.ndarray]:
    absent = [c for c in ("date", "symbol", "weight") if c not in weights.columns]
    if absent:
        raise ValueError(f"weights lack columns {absent}")
    if weights.is_empty():
        raise ValueError("no weights to plot")
    if weights.select("date", "symbol").is_duplicated().any():
        raise ValueError("several weights for one (date, symbol): filter the frame to a single cell first")
    wide = weights.pivot(on="symbol", index="date", values="weight", sort_columns=True).sort("date")
    symbols = [c for c in wide.columns if c != "date"]
    # An absent symbol at a rebalance is not held: a true zero weight.
    w = wide.select(symbols).fill_null(0.0).to_numpy().astype(float)
    if not np.isfinite(w).all():
        raise ValueError("weights must be finite")
    return wide["date"].to_numpy().astype("datetime64[D]"), symbols, w


def plot_weights(weights: pl.DataFrame, path: Path, title: str = "Target weights") -> Path:
    """Target weights over time from a (date, symbol, weight) frame, e.g. one cell of TOURNAMENT_WEIGHTS:
    longs stacked above zero, shorts stacked below, net exposure as a line; each weight is held until the next
    rebalance date (steps)."""
    dates, symbols, w = _weights_matrix(weights)
    colors = [matplotlib.colormaps["tab20"](i % 20) for i in range(len(symbols))]
    # Name the largest positions in the legend; all are drawn.
    named = set(np.argsort(-np.abs(w).max(axis=0), kind="stable")[:LEGEND_MAX])
    labels = [s if i in named else "_" + s for i, s in enumerate(symbols)]
    with _axes(path, title) as ax:
        longs, shorts = np.clip(w, 0.0, None), np.clip(w, None, 0.0)
        ax.stackplot(dates, longs.T, labels=labels, colors=colors, step="post", linewidth=0)
        if (shorts < 0).any():
            ax.stackplot(dates, shorts.T, colors=colors, step="post", linewidth=0, alpha=0.6)
        ax.step(dates, w.sum(axis=1), where="post", color="black", linewidth=1.2, label="net")
        ax.axhline(0.0, color="grey", linewidth=0.8)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_ylabel("weight")
        ax.legend(fontsize="x-small", ncol=2, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        ax.grid(alpha=0.3)
        _date_axis(ax)
    return Path(path)


def plot_dendrogram(returns_panel: np.ndarray, labels: Sequence[str], path: Path,
                    title: str = "Average-linkage clustering, distance √(½(1−ρ))",
                    min_overlap: int = MIN_OVERLAP) -> Path:
    """Dendrogram of a T×N returns panel (NaN = missing day) on pairwise-complete correlation distances;
    ValueError when some pair shares fewer than `min_overlap` days (no honest distance exists for it)."""
    labels = [str(s) for s in labels]
    corr = pairwise_correlation(returns_panel, labels, min_overlap)
    tree = average_linkage(corr, labels)
    with _axes(path, title) as ax:
        dendrogram(tree, labels=labels, ax=ax, leaf_rotation=90,
                   leaf_font_size=float(max(4, min(10, 400 // len(labels)))))
        ax.set_ylabel("correlation distance")
        ax.grid(axis="y", alpha=0.3)
    return Path(path)


def plot_correlation(returns_panel: np.ndarray, labels: Sequence[str], path: Path,
                     title: str = "Pairwise-complete correlation", min_overlap: int = MIN_OVERLAP) -> Path:
    """Correlation heatmap (pairwise-complete; a pair with too few shared days is left blank), ordered by the
    average-linkage tree when every pair has a correlation so that clusters show as blocks."""
    labels = [str(s) for s in labels]
    corr = pairwise_correlation(returns_panel, labels, min_overlap)
    order = list(range(len(labels)))
    if len(labels) > 1 and not np.isnan(corr).any():
        order = [int(i) for i in leaves_list(average_linkage(corr, labels))]
    ordered = [labels[i] for i in order]
    frame = pd.DataFrame(corr[np.ix_(order, order)], index=ordered, columns=ordered)
    with _axes(path, title, SQUARE_FIGSIZE) as ax, warnings.catch_warnings():
        # seaborn 0.13 calls a colormap method matplotlib 3.11 has slated for deprecation: not ours to fix.
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        sns.heatmap(frame, ax=ax, vmin=-1.0, vmax=1.0, center=0.0, cmap="RdBu_r", square=True,
                    annot=len(labels) <= 12, fmt=".2f", xticklabels="auto", yticklabels="auto",
                    cbar_kws={"label": "ρ"}, mask=np.isnan(frame.to_numpy()))
    return Path(path)
