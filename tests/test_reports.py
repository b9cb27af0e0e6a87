"""tsp_platform.reports: QuantStats tear-sheet, PNG charts and the markdown dashboard, all offline in tmp_path."""

from __future__ import annotations

import datetime as dt
import re
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import polars as pl
import pytest
from PIL import Image

from tsp_platform.reports import (
    DashboardInputs,
    plot_correlation,
    plot_dendrogram,
    plot_drawdowns,
    plot_equity,
    plot_weights,
    read_tearsheet_metrics,
    render_dashboard,
    streams_from_tournament_returns,
    write_tearsheet,
)
from tsp_platform.reports.correlation import pairwise_correlation
from tsp_platform.tournament import metrics

RNG_SEED = 7


def _bdays(n: int, start: str = "2021-01-04") -> np.ndarray:
    return pd.bdate_range(start, periods=n).values.astype("datetime64[D]")


@pytest.fixture(scope="module")
def streams() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(RNG_SEED)
    d = _bdays(300)
    return {
        "momentum/balanced/hrp": (d, rng.normal(6e-4, 0.010, 300)),
        "quality/balanced/mv": (d[40:], rng.normal(3e-4, 0.008, 260)),
        "market": (d, rng.normal(2e-4, 0.012, 300)),
    }


@pytest.fixture(scope="module")
def panel() -> tuple[np.ndarray, list[str]]:
    """Three correlated blocks of three assets; one asset listed late, random missing days everywhere."""
    rng = np.random.default_rng(RNG_SEED)
    factors = rng.normal(0, 0.01, (250, 3))
    x = np.column_stack([factors[:, k % 3] + rng.normal(0, 0.005, 250) for k in range(9)])
    x[:120, 4] = np.nan
    x[rng.random(x.shape) < 0.1] = np.nan
    return x, [f"S{k}" for k in range(9)]


def _assert_png(path) -> None:
    assert path.exists() and path.stat().st_size > 0
    with Image.open(path) as img:
        img.verify()
    with Image.open(path) as img:
        assert img.format == "PNG" and img.size[0] > 0 and img.size[1] > 0


# -- tear-sheet ---------------------------------------------------------------------------------------------


def test_tearsheet_has_metrics_table_agreeing_with_our_sharpe(tmp_path, streams):
    dates, returns = streams["momentum/balanced/hrp"]
    returns = returns.copy()
    returns[:5] = 0.0  # flat days before the first trade must not be trimmed away
    market = streams["market"][1]

    started = time.perf_counter()
    path = write_tearsheet(returns, dates, tmp_path / "sheets" / "cand.html", "momentum", 252,
                           benchmark=(market, "market"))
    assert time.perf_counter() - started < 30

    html = path.read_text(encoding="utf-8")
    assert "Sharpe" in html and ("CAGR﹪" in html or "CAGR" in html)
    table = read_tearsheet_metrics(path)
    assert table["Sharpe"]["Strategy"] == f"{metrics.sharpe(returns, 252):.2f}"
    assert table["Sharpe"]["market"] == f"{metrics.sharpe(market, 252):.2f}"
    cagr = float(table["CAGR﹪"]["Strategy"].rstrip("%")) / 100
    assert cagr == pytest.approx(metrics.cagr(returns, 252), abs=6e-5)
    assert not list(tmp_path.glob("sheets/.*partial"))


def test_tearsheet_without_benchmark_uses_calendar_annualisation(tmp_path):
    rng = np.random.default_rng(RNG_SEED + 1)
    dates = np.arange(np.datetime64("2022-01-01"), np.datetime64("2022-12-31"))
    returns = rng.normal(1e-3, 0.03, dates.size)
    path = write_tearsheet(returns, dates, tmp_path / "crypto.html", "crypto", 365)
    table = read_tearsheet_metrics(path)
    assert list(table["Sharpe"]) == ["Strategy"]
    assert table["Sharpe"]["Strategy"] == f"{metrics.sharpe(returns, 365):.2f}"


def test_tearsheet_rejects_inputs_quantstats_would_misread(tmp_path):
    dates = _bdays(5)
    with pytest.raises(ValueError, match="as prices"):
        write_tearsheet(np.array([0.0, 0.1, 1.5, 0.0, 0.2]), dates, tmp_path / "x.html", "x", 252)
    with pytest.raises(ValueError, match="one return per strategy date"):
        write_tearsheet(np.zeros(5) + 0.01, dates, tmp_path / "x.html", "x", 252, benchmark=(np.zeros(4), "m"))
    with pytest.raises(ValueError, match="finite"):
        write_tearsheet(np.array([0.01, np.nan, 0.0, 0.0, 0.0]), dates, tmp_path / "x.html", "x", 252)
    assert not list(tmp_path.iterdir())


# -- plots --------------------------------------------------------------------------------------------------


def test_every_plot_writes_a_decodable_png_and_leaves_no_figure_open(tmp_path, streams, panel):
    open_before = plt.get_fignums()
    weights = pl.DataFrame(
        [(d.astype(object), s, w) for d in _bdays(300)[::21] for s, w in
         (("AAA", 0.5), ("BBB", 0.4), ("CCC", 0.3), ("DDD", -0.2))],
        schema={"date": pl.Date, "symbol": pl.String, "weight": pl.Float64}, orient="row",
    ).filter(~((pl.col("symbol") == "CCC") & (pl.col("date").dt.month() == 3)))  # not held that rebalance
    written = [
        plot_equity(streams, tmp_path / "equity.png", baselines={"market"}),
        plot_drawdowns(streams, tmp_path / "drawdowns.png", baselines={"market"}),
        plot_weights(weights, tmp_path / "weights.png"),
        plot_dendrogram(*panel, tmp_path / "dendrogram.png"),
        plot_correlation(*panel, tmp_path / "correlation.png"),
    ]
    assert [p.name for p in written] == ["equity.png", "drawdowns.png", "weights.png", "dendrogram.png",
                                         "correlation.png"]
    for path in written:
        _assert_png(path)
    assert plt.get_fignums() == open_before


def test_plots_are_byte_for_byte_deterministic(tmp_path, streams):
    a = plot_equity(streams, tmp_path / "a.png")
    b = plot_equity(streams, tmp_path / "b.png")
    assert a.read_bytes() == b.read_bytes()


def test_dendrogram_uses_pairwise_complete_correlation_with_gaps(tmp_path, panel):
    x, labels = panel
    assert np.isnan(x).any()
    corr = pairwise_correlation(x, labels)
    both = ~np.isnan(x[:, 0]) & ~np.isnan(x[:, 4])
    assert corr[0, 4] == pytest.approx(np.corrcoef(x[both, 0], x[both, 4])[0, 1])
    # Filling gaps with 0 would give a different (shrunk) correlation: we never do that.
    assert corr[0, 4] != pytest.approx(np.corrcoef(np.nan_to_num(x[:, 0]), np.nan_to_num(x[:, 4]))[0, 1])
    _assert_png(plot_dendrogram(x, labels, tmp_path / "dendrogram.png"))


def test_dendrogram_refuses_a_pair_without_shared_days(tmp_path):
    rng = np.random.default_rng(RNG_SEED)
    x = rng.normal(0, 0.01, (100, 3))
    x[:50, 1] = np.nan
    x[50:, 2] = np.nan
    with pytest.raises(ValueError, match="S1~S2"):
        plot_dendrogram(x, ["S0", "S1", "S2"], tmp_path / "d.png")
    # The heatmap shows that pair blank instead.
    _assert_png(plot_correlation(x, ["S0", "S1", "S2"], tmp_path / "c.png"))


def test_streams_from_tournament_returns_frame(streams):
    rows = [
        {"scorer": "momentum", "risk_profile": "balanced", "engine": "hrp", "simulator": "vector",
         "date": d.astype(object), "ret": float(r), "equity": 1.0}
        for d, r in zip(*streams["momentum/balanced/hrp"])
    ]
    frame = pl.DataFrame(rows[::-1])  # unsorted on purpose
    out = streams_from_tournament_returns(frame)
    (label, (d, r)), = out.items()
    assert label == "momentum/balanced/hrp/vector"
    np.testing.assert_array_equal(d, streams["momentum/balanced/hrp"][0])
    np.testing.assert_allclose(r, streams["momentum/balanced/hrp"][1])


# -- dashboard ----------------------------------------------------------------------------------------------


def _scoreboard() -> pl.DataFrame:
    rows = [
        # scorer, engine, is_baseline, strict, rank, cagr, sharpe, mdd, turnover, failed_gates
        ("momentum", "hrp", False, True, 1, 0.18, 1.4321, -0.12, 0.21, ""),
        ("quality", "mv", False, True, 2, 0.11, 0.98765, -0.15, 0.18, ""),
        ("value", "hrp", False, False, None, 0.25, 1.9, -0.30, 0.9, "avg_turnover,parity_gap"),
        ("carry", "mv", False, False, None, 0.05, 0.4, -0.20, 0.7, "avg_turnover"),
        ("lowvol", "mv", False, False, None, float("nan"), float("nan"), -0.05, 0.1, "missing:friction_decay"),
        ("market", "baseline", True, False, None, 0.08, 0.61, -0.25, 0.0, "tail_risk_ratio"),
        ("equal_weight_pool", "baseline", True, False, None, 0.09, 0.7, -0.22, 0.05, ""),
    ]
    frame = pl.DataFrame(
        rows, orient="row",
        schema={"scorer": pl.String, "engine": pl.String, "is_baseline": pl.Boolean, "strict": pl.Boolean,
                "strict_rank": pl.Int32, "cagr": pl.Float64, "sharpe": pl.Float64, "max_drawdown": pl.Float64,
                "avg_turnover": pl.Float64, "failed_gates": pl.String},
    )
    return frame.with_columns(risk_profile=pl.lit("balanced"), simulator=pl.lit("vector"))


def _inputs(streams, board: pl.DataFrame | None = None) -> DashboardInputs:
    return DashboardInputs(
        profile="us_equities_sample",
        as_of=dt.date(2022, 12, 28),
        scoreboard=_scoreboard() if board is None else board,
        health=pl.DataFrame({
            "gate": ["staleness", "staleness", "gaps", "gaps", "gaps"],
            "symbol": ["AAA", "BBB", "AAA", "CCC", "BBB"],
            "passed": [True, False, True, False, True],
            "detail": ["ok", "last bar 9 days old", "ok", "14 missing sessions", "ok"],
        }),
        funnel={"universe": 500, "discovered": 120, "pool_atoms": 60, "with_returns": 55, "winners": 12},
        regime={"regime": "risk_off", "vol_ratio": 1.23456, "entropy": 0.87654, "turbulence": 12.3456},
        final_weights=pl.DataFrame({"name": ["BBB", "AAA", "CCC"], "weight": [0.3, 0.5, 0.2]}),
        plots={"Equity": "plots/equity.png", "Weights": "plots/weights.png"},
        tearsheets={"momentum/balanced/hrp": "tearsheets/momentum.html"},
        streams={k: streams[k] for k in ("momentum/balanced/hrp", "market")},
        annualisation=252,
    )


def test_dashboard_has_every_section_and_the_scoreboard_facts(streams):
    md = render_dashboard(_inputs(streams))
    for header in ("# Portfolio report: us_equities_sample, as of 2022-12-28", "## Funnel", "## Regime",
                   "## Data health", "### Health failures", "## Scoreboard", "### Strict candidates",
                   "### Baselines", "### Failed gates", "## Performance", "## Final weights", "## Tear-sheets",
                   "## Charts"):
        assert re.search(rf"^{re.escape(header)}$", md, re.MULTILINE), header
    assert "universe **500** → discovery **120** → pool **60** → with returns **55** → winners **12**" in md
    assert "- regime: **risk_off**" in md and "- vol ratio: 1.235" in md and "- turbulence: 12.35" in md
    # health: per-gate counts and the failures listed
    assert "| gaps | 2 | 1 |" in md and "| staleness | 1 | 1 |" in md
    assert "- `gaps` · `CCC`: 14 missing sessions" in md and "- `staleness` · `BBB`: last bar 9 days old" in md
    # strict candidates in rank order, then baselines by Sharpe
    assert "| 1 | momentum | balanced | hrp | vector | 18.00% | 1.432 | -12.00% | 21.00% |" in md
    assert "| 2 | quality | balanced | mv | vector | 11.00% | 0.9877 | -15.00% | 18.00% |" in md
    assert "| equal_weight_pool | balanced | vector | 9.00% | 0.7000 | -22.00% | 5.00% |" in md
    assert md.index("| equal_weight_pool |") < md.index("| market | balanced |")
    assert md.index("### Strict candidates") < md.index("| 1 | momentum") < md.index("### Baselines")
    assert "7 cells: 2 strict candidates, 3 other candidates, 2 baselines." in md
    # failed gates: candidate and baseline cell counts, gates in scoreboard order
    assert "| avg_turnover | 2 | 0 |" in md and "| parity_gap | 1 | 0 |" in md
    assert "| tail_risk_ratio | 0 | 1 |" in md and "| missing:friction_decay | 1 | 0 |" in md
    assert md.index("| missing:friction_decay |") < md.index("| avg_turnover |")
    # performance from tournament.metrics.performance
    sharpe = metrics.performance(streams["market"][1], 252).sharpe
    assert f"| {sharpe:#.4g} |" in md
    # weights, links, images
    assert "3 positions · gross 100.00% · net 100.00%" in md
    assert md.index("| AAA | 50.00% |") < md.index("| BBB | 30.00% |") < md.index("| CCC | 20.00% |")
    assert "- [momentum/balanced/hrp](tearsheets/momentum.html)" in md
    assert "![Equity](plots/equity.png)" in md and "![Weights](plots/weights.png)" in md


def test_dashboard_is_deterministic_and_accepts_list_failed_gates(streams):
    first, second = render_dashboard(_inputs(streams)), render_dashboard(_inputs(streams))
    assert first == second
    # The in-memory scoreboard carries failed_gates as list[str]; rows shuffled: same page.
    board = _scoreboard().with_columns(
        failed_gates=pl.col("failed_gates").str.split(",").list.eval(pl.element().filter(pl.element() != ""))
    ).reverse()
    assert render_dashboard(_inputs(streams, board)) == first


def test_dashboard_with_no_strict_candidate(streams):
    board = _scoreboard().with_columns(strict=pl.lit(False), strict_rank=pl.lit(None, dtype=pl.Int32))
    md = render_dashboard(_inputs(streams, board))
    assert "_No candidate passed every gate._" in md
    with pytest.raises(ValueError, match="lacks columns"):
        render_dashboard(_inputs(streams, board.drop("failed_gates")))
