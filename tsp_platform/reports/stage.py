"""The `portfolio_report` stage: one profile × date's dashboard, charts and tear-sheets, from the lakehouse.

Files go to `<out>/<profile>/<as-of>/`: `dashboard.md`, `equity.png`, `drawdowns.png`, `weights.png`,
`dendrogram.png`, `correlation.png` and `tearsheets/*.html`.

Decisions:
* Tear-sheets: each baseline, and the strict candidates on the parity-reference simulator (the other simulators
  run the same weights to within the parity gate), best first, at most `MAX_CANDIDATE_TEARSHEETS` of them (a
  QuantStats page takes about 2 s); the dashboard says how many more there were. Each is benchmarked against
  the `market` baseline on the same days.
* Charts: equity and drawdowns of the leading cells (the strict candidates, or the best cells by Sharpe when
  none is strict) against the baselines; weights over time of the leading cell; the dendrogram and correlation
  heatmap of the pool's returns matrix as of D.
* Final weights: the physical weights the orders use (`orders.engine` × `orders.risk_profile`).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from tsp_platform.context import StageContext
from tsp_platform.core.files import atomic_path
from tsp_platform.core.identifiers import path_segment
from tsp_platform.core.panel import ReturnsPanel
from tsp_platform.reports.dashboard import DashboardInputs, render_dashboard
from tsp_platform.reports.plots import plot_correlation, plot_dendrogram, plot_drawdowns, plot_equity, plot_weights
from tsp_platform.reports.streams import cell_label, streams_from_tournament_returns
from tsp_platform.reports.tearsheet import write_tearsheet
from tsp_platform.selection.funnel import build_funnel
from tsp_platform.tournament.scoreboard import KEY_COLUMNS

MAX_CANDIDATE_TEARSHEETS = 10
LEADING_CELLS = 5


@dataclass(frozen=True)
class ReportResult:
    directory: Path
    dashboard: Path
    markdown: str
    plots: dict[str, Path]
    tearsheets: dict[str, Path]
    candidates_without_tearsheet: int


def report_directory(out: Path, profile: str, as_of) -> Path:
    """Where a partition's dashboard, charts and tear-sheets are written (always inside `out`)."""
    return Path(out) / path_segment(profile, "profile") / as_of.isoformat()


def funnel(ctx: StageContext) -> dict[str, int]:
    """The selection funnel from the stored tables (as the selection stage counts it)."""
    pool, returns, winners = ctx.read("raw_pool"), ctx.read("returns_matrix"), ctx.read("selection_winners")
    with_returns = pool.filter(pl.col("symbol").is_in(returns["symbol"].unique().to_list())).height
    champion = winners.filter(pl.col("is_champion")).height if winners.height else 0
    return build_funnel(ctx.read("discovery_runs"), ctx.read("scan_results"), pool, with_returns=with_returns,
                        winners=champion).as_dict()


def _label(row: dict) -> str:
    return cell_label(*(row[c] for c in KEY_COLUMNS))


def build_report(ctx: StageContext, out: Path) -> ReportResult:
    board = ctx.read("tournament_scoreboard")
    if board.is_empty():
        raise LookupError(f"no tournament scoreboard for {ctx.profile.name} as of {ctx.as_of}: run the tournament first")
    directory = report_directory(out, ctx.profile.name, ctx.as_of)
    (directory / "tearsheets").mkdir(parents=True, exist_ok=True)
    reference = ctx.profile.tournament.parity_reference.value
    streams = streams_from_tournament_returns(ctx.read("tournament_returns"))
    on_reference = board.filter(pl.col("simulator") == reference)
    baselines = on_reference.filter(pl.col("is_baseline"))
    strict = on_reference.filter(pl.col("strict")).sort("strict_rank")
    leading = strict if strict.height else on_reference.filter(
        ~pl.col("is_baseline") & pl.col("status").is_in(["ok", "partial"])
    ).sort("sharpe", descending=True, nulls_last=True)
    leading_labels = [_label(r) for r in leading.head(LEADING_CELLS).iter_rows(named=True) if _label(r) in streams]
    baseline_labels = [_label(r) for r in baselines.iter_rows(named=True)]

    market = next((streams[label] for label in baseline_labels if label.startswith("market/")), None)
    tearsheets: dict[str, Path] = {}
    chosen = baseline_labels + [_label(r) for r in strict.head(MAX_CANDIDATE_TEARSHEETS).iter_rows(named=True)]
    for label in chosen:
        dates, returns = streams[label]
        path = directory / "tearsheets" / f"{label.replace('/', '__')}.html"
        benchmark = None if market is None or label.startswith("market/") else (market[1], "market")
        write_tearsheet(returns, dates, path, f"{ctx.profile.name} {label} as of {ctx.as_of}",
                        ctx.profile.annualisation, benchmark=benchmark)
        tearsheets[label] = path

    shown = {label: streams[label] for label in leading_labels + baseline_labels}
    plots = {
        "Equity": plot_equity(shown, directory / "equity.png", baselines=baseline_labels),
        "Drawdowns": plot_drawdowns(shown, directory / "drawdowns.png", baselines=baseline_labels),
    }
    if leading_labels:
        head = next(r for r in leading.iter_rows(named=True) if _label(r) == leading_labels[0])
        weights = ctx.read("tournament_weights").filter(
            *(pl.col(c) == head[c] for c in ("scorer", "risk_profile", "engine"))
        )
        if weights.height:
            plots["Weights over time"] = plot_weights(weights.select("date", "symbol", "weight"),
                                                      directory / "weights.png", title=f"Target weights: {leading_labels[0]}")
    panel = ReturnsPanel.from_long(ctx.read("returns_matrix").select("symbol", "date", "ret"))
    if len(panel.symbols) >= 3:
        plots["Cluster dendrogram"] = plot_dendrogram(panel.values, list(panel.symbols), directory / "dendrogram.png")
        plots["Correlation"] = plot_correlation(panel.values, list(panel.symbols), directory / "correlation.png")

    orders = ctx.profile.orders
    final = ctx.read("portfolio_weights").filter(
        (pl.col("engine") == orders.engine.value) & (pl.col("risk_profile") == orders.risk_profile.value)
        & (pl.col("level") == "physical")
    ).select("name", "weight")
    regime = ctx.read("regimes")
    inputs = DashboardInputs(
        profile=ctx.profile.name, as_of=ctx.as_of, scoreboard=board, health=ctx.read("health_results"),
        funnel=funnel(ctx), regime=regime.row(0, named=True) if regime.height else {},
        final_weights=final,
        plots={title: path.relative_to(directory) for title, path in plots.items()},
        tearsheets={label: path.relative_to(directory) for label, path in tearsheets.items()},
        streams={label: streams[label] for label in leading_labels[:LEADING_CELLS] + baseline_labels},
        annualisation=ctx.profile.annualisation,
    )
    markdown = render_dashboard(inputs)
    skipped = max(0, strict.height - MAX_CANDIDATE_TEARSHEETS)
    if skipped:
        markdown += (f"\n\n_{skipped} more strict candidates have no tear-sheet (at most "
                     f"{MAX_CANDIDATE_TEARSHEETS} are written, best first)._\n")
    dashboard = directory / "dashboard.md"
    with atomic_path(dashboard) as staging:
        staging.write_text(markdown, encoding="utf-8")
    written = {dashboard, *plots.values(), *tearsheets.values()}
    for stale in [*directory.glob("*.png"), *(directory / "tearsheets").glob("*.html")]:
        if stale not in written:  # a chart or tear-sheet of an earlier run that this one did not produce
            stale.unlink()
    return ReportResult(directory, dashboard, markdown, plots, tearsheets, skipped)


def image_markdown(path: Path, title: str) -> str:
    """A PNG inlined as a data URI, so the Dagster UI shows it inside markdown metadata."""
    return f"![{title}](data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()})"


