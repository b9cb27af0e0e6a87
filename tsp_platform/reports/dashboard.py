"""The run dashboard: one markdown page per profile and as-of date.

Sections: title, funnel, regime, data health, scoreboard (strict candidates, baselines, failed gates),
performance (from `tournament.metrics.performance`, when return streams are given), final weights, tear-sheet
links and chart images. Rows are sorted by their data, never by input order, so the same inputs always render
the same page; plots, tear-sheets and streams keep the caller's order (a narrative order the caller chose).
Returns, drawdowns, turnover and weights print as percentages (2 decimals), ratios to 4 significant digits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from tsp_platform.reports._markdown import MISSING, fmt_int, fmt_num, fmt_pct, link_target, table
from tsp_platform.reports.streams import Stream, validate_stream
from tsp_platform.tournament.metrics import performance
from tsp_platform.tournament.scoreboard import GATE_NAMES

FUNNEL_STEPS = (
    ("universe", "universe"),
    ("discovered", "discovery"),
    ("pool_atoms", "pool"),
    ("with_returns", "with returns"),
    ("winners", "winners"),
)
SCOREBOARD_COLUMNS = (
    "scorer", "risk_profile", "engine", "simulator", "is_baseline", "strict", "strict_rank",
    "cagr", "sharpe", "max_drawdown", "avg_turnover", "failed_gates",
)
HEALTH_COLUMNS = ("gate", "symbol", "passed", "detail")
MAX_LISTED_FAILURES = 50  # a broken feed can fail hundreds of symbols; the counts table still has them all


@dataclass(frozen=True)
class DashboardInputs:
    profile: str
    as_of: dt.date | str
    scoreboard: pl.DataFrame  # TOURNAMENT_SCOREBOARD-shaped; failed_gates as list[str] or comma-separated
    health: pl.DataFrame  # gate, symbol, passed, detail (HEALTH_RESULTS)
    funnel: Mapping[str, int]  # universe, discovered, pool_atoms, with_returns, winners
    regime: Mapping[str, object]  # regime, vol_ratio, entropy, turbulence (REGIMES)
    final_weights: pl.DataFrame  # name, weight
    plots: Mapping[str, str | Path] = field(default_factory=dict)  # title → path relative to the page
    tearsheets: Mapping[str, str | Path] = field(default_factory=dict)  # title → path relative to the page
    streams: Mapping[str, Stream] = field(default_factory=dict)  # name → (dates, returns) for the performance table
    annualisation: int | None = None  # required with streams


def _require(frame: pl.DataFrame, columns: tuple[str, ...], what: str) -> None:
    absent = [c for c in columns if c not in frame.columns]
    if absent:
        raise ValueError(f"{what} lacks columns {absent}")


def _title(inputs: DashboardInputs) -> str:
    return f"# Portfolio report: {inputs.profile}, as of {inputs.as_of}"


def _funnel(funnel: Mapping[str, int]) -> str:
    steps = " → ".join(f"{label} **{fmt_int(funnel.get(key))}**" for key, label in FUNNEL_STEPS)
    return f"## Funnel\n\n{steps}"


def _regime(regime: Mapping[str, object]) -> str:
    name = regime.get("regime")
    lines = [f"- regime: **{name if name is not None else MISSING}**"]
    for key in ("vol_ratio", "entropy", "turbulence"):
        lines.append(f"- {key.replace('_', ' ')}: {fmt_num(regime.get(key))}")
    return "## Regime\n\n" + "\n".join(lines)


def _health(health: pl.DataFrame) -> str:
    _require(health, HEALTH_COLUMNS, "health")
    if health.is_empty():
        return "## Data health\n\n_No health checks recorded._"
    counts = (
        health.group_by("gate")
        .agg(passed=pl.col("passed").sum(), failed=(~pl.col("passed")).sum())
        .sort("gate")
    )
    failed = health.filter(~pl.col("passed")).sort("gate", "symbol")
    parts = [
        "## Data health",
        f"{health.height} checks over {health['symbol'].n_unique()} symbols: "
        f"{health.height - failed.height} passed, {failed.height} failed.",
        table(["gate", "passed", "failed"], counts.select("gate", "passed", "failed").rows(), right=(1, 2)),
        "### Health failures",
    ]
    if failed.is_empty():
        parts.append("_Every check passed._")
    else:
        items = [f"- `{g}` · `{s}`: {d}" for g, s, d in failed.select("gate", "symbol", "detail").rows()]
        if len(items) > MAX_LISTED_FAILURES:
            items = [*items[:MAX_LISTED_FAILURES], f"- … and {len(items) - MAX_LISTED_FAILURES} more"]
        parts.append("\n".join(items))
    return "\n\n".join(parts)


def _failed_gates(board: pl.DataFrame) -> pl.DataFrame:
    """failed_gates as list[str]: in memory it is a list, in the lakehouse a comma-separated string."""
    if board.schema["failed_gates"] == pl.String:
        gates = pl.col("failed_gates").fill_null("").str.split(",").list.eval(pl.element().filter(pl.element() != ""))
        return board.with_columns(failed_gates=gates)
    return board


def _metric_cells(row: dict) -> list[str]:
    return [fmt_pct(row["cagr"]), fmt_num(row["sharpe"]), fmt_pct(row["max_drawdown"]), fmt_pct(row["avg_turnover"])]


_METRIC_HEADERS = ["CAGR", "Sharpe", "max drawdown", "avg turnover"]


def _by_sharpe(frame: pl.DataFrame) -> pl.DataFrame:
    return (
        frame.with_columns(_s=pl.col("sharpe").cast(pl.Float64).fill_nan(None))
        .sort(["_s", "scorer", "risk_profile", "engine", "simulator"],
              descending=[True, False, False, False, False], nulls_last=True)
        .drop("_s")
    )


def _gate_order(gate: str) -> tuple[int, str]:
    base = gate.removeprefix("missing:")
    return (GATE_NAMES.index(base) if base in GATE_NAMES else len(GATE_NAMES), gate)


def _scoreboard(board: pl.DataFrame) -> str:
    _require(board, SCOREBOARD_COLUMNS, "scoreboard")
    board = _failed_gates(board)
    strict = board.filter(pl.col("strict")).sort("strict_rank", "scorer", "risk_profile", "engine", "simulator")
    baselines = _by_sharpe(board.filter(pl.col("is_baseline")))
    others = board.filter(~pl.col("strict") & ~pl.col("is_baseline"))
    parts = [
        "## Scoreboard",
        f"{board.height} cells: {strict.height} strict candidates, {others.height} other candidates, "
        f"{baselines.height} baselines.",
        "### Strict candidates",
    ]
    if strict.is_empty():
        parts.append("_No candidate passed every gate._")
    else:
        rows = [[fmt_int(r["strict_rank"]), r["scorer"], r["risk_profile"], r["engine"], r["simulator"],
                 *_metric_cells(r)] for r in strict.iter_rows(named=True)]
        parts.append(table(["rank", "scorer", "risk profile", "engine", "simulator", *_METRIC_HEADERS], rows,
                           right=(0, 5, 6, 7, 8)))
    parts.append("### Baselines")
    if baselines.is_empty():
        parts.append("_No baselines._")
    else:
        rows = [[r["scorer"], r["risk_profile"], r["simulator"], *_metric_cells(r)]
                for r in baselines.iter_rows(named=True)]
        parts.append(table(["baseline", "risk profile", "simulator", *_METRIC_HEADERS], rows, right=(3, 4, 5, 6)))
    parts.append("### Failed gates")
    counts = (
        board.select("is_baseline", "failed_gates").explode("failed_gates").drop_nulls("failed_gates")
        .group_by("failed_gates")
        .agg(candidates=(~pl.col("is_baseline")).sum(), baselines=pl.col("is_baseline").sum())
    )
    if counts.is_empty():
        parts.append("_No cell failed a gate._")
    else:
        rows = sorted(counts.rows(), key=lambda row: _gate_order(row[0]))
        parts.append("Cells failing each gate (a cell can fail several):")
        parts.append(table(["gate", "candidate cells", "baseline cells"], rows, right=(1, 2)))
    return "\n\n".join(parts)


def _performance(streams: Mapping[str, Stream], annualisation: int | None) -> str:
    if not streams:
        return "## Performance\n\n_No return streams given._"
    if annualisation is None:
        raise ValueError("annualisation is required to summarise return streams")
    rows = []
    for name, (dates, returns) in streams.items():
        d, r = validate_stream(dates, returns, str(name))
        m = performance(r, annualisation, dates=d)
        rows.append([name, f"{d[0]} … {d[-1]}", fmt_int(m.n_obs), fmt_pct(m.total_return), fmt_pct(m.cagr),
                     fmt_pct(m.volatility), fmt_num(m.sharpe), fmt_num(m.sortino), fmt_pct(m.max_drawdown),
                     fmt_num(m.calmar)])
    headers = ["stream", "dates", "days", "total return", "CAGR", "volatility", "Sharpe", "Sortino",
               "max drawdown", "Calmar"]
    return f"## Performance\n\nAnnualised over {annualisation} days a year.\n\n" + table(
        headers, rows, right=range(2, 10))


def _weights(weights: pl.DataFrame) -> str:
    _require(weights, ("name", "weight"), "final weights")
    if weights.is_empty():
        return "## Final weights\n\n_No weights._"
    ordered = weights.sort(["weight", "name"], descending=[True, False])
    w = ordered["weight"]
    rows = [[name, fmt_pct(weight)] for name, weight in ordered.select("name", "weight").rows()]
    summary = (f"{ordered.height} positions · gross {fmt_pct(w.abs().sum())} · net {fmt_pct(w.sum())}")
    return "## Final weights\n\n" + summary + "\n\n" + table(["name", "weight"], rows, right=(1,))


def _links(tearsheets: Mapping[str, str | Path]) -> str:
    if not tearsheets:
        return "## Tear-sheets\n\n_None._"
    return "## Tear-sheets\n\n" + "\n".join(f"- [{t}]({link_target(p)})" for t, p in tearsheets.items())


def _charts(plots: Mapping[str, str | Path]) -> str:
    if not plots:
        return "## Charts\n\n_None._"
    return "## Charts\n\n" + "\n\n".join(f"### {t}\n\n![{t}]({link_target(p)})" for t, p in plots.items())


def render_dashboard(sections: DashboardInputs) -> str:
    """The dashboard's markdown (deterministic: equal inputs give equal text)."""
    parts = [
        _title(sections),
        _funnel(sections.funnel),
        _regime(sections.regime),
        _health(sections.health),
        _scoreboard(sections.scoreboard),
        _performance(sections.streams, sections.annualisation),
        _weights(sections.final_weights),
        _links(sections.tearsheets),
        _charts(sections.plots),
    ]
    return "\n\n".join(parts) + "\n"
