"""Tournament cell: walk-forward selection and allocation on train slices, one simulation over the test span."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from tsp_platform.config.tournament import WalkForwardConfig
from tsp_platform.core.atoms import atoms_frame
from tsp_platform.core.panel import ReturnsPanel
from tsp_platform.tournament.cell import BASELINES, TournamentInputs, run_baseline, run_cell, select_windows

N, T = 12, 700
WF = WalkForwardConfig(train=252, test=63, step=63)
RATE = 0.0006


def make_panel(seed: int = 0, values: np.ndarray | None = None) -> ReturnsPanel:
    rng = np.random.default_rng(seed)
    if values is None:
        drift = rng.normal(0.0004, 0.0004, N)
        assets = drift + 0.012 * rng.standard_normal((T, N)) + 0.006 * rng.standard_normal((T, 1))
        values = np.hstack([assets, assets.mean(axis=1, keepdims=True)])
    dates = np.busday_offset("2020-01-01", np.arange(T), roll="forward").astype("datetime64[D]")
    return ReturnsPanel(values, dates, tuple(f"S{i:02d}" for i in range(N)) + ("MKT",))


def pool_atoms() -> pl.DataFrame:
    symbols = [f"S{i:02d}" for i in range(N)]
    pool = pl.DataFrame(
        {"symbol": symbols, "logic": "trend", "direction": "long", "identity": symbols,
         "sector": [f"sec{i % 4}" for i in range(N)], "asset_class": "equity"}
    )
    return atoms_frame(pool).select("atom_id", "symbol", "logic", "direction", "identity", "sector", "asset_class")


def snapshot(as_of):
    symbols = [f"S{i:02d}" for i in range(N)] + ["MKT"]
    return pl.DataFrame(
        {"symbol": symbols, "adx": 25.0, "recommend_all": 0.3, "recommend_ma": 0.2, "recommend_other": 0.1,
         "adv": 1e9, "has_execution_metadata": True}
    )


def make_inputs(panel: ReturnsPanel, **kw) -> TournamentInputs:
    return TournamentInputs(panel, pool_atoms(), snapshot, windows=WF, benchmark="MKT", friction_rate=RATE, **kw)


@pytest.fixture(scope="module")
def base():
    inputs = make_inputs(make_panel())
    return inputs, select_windows(inputs)


@pytest.fixture(scope="module")
def mv_cell(base):
    inputs, sels = base
    return run_cell(inputs, sels, None, "min_variance", "custom")


def test_windows_and_selection_shape(base):
    inputs, sels = base
    assert len(sels) == 7  # starts 252, 315, …, 630 (≤ 700 − 63)
    for sel in sels:
        assert sel.champion == "log_mps" and set(sel.winners) == {"log_mps", "rank_sum"}
        assert len(sel.selected("log_mps")) > 0
        assert sel.as_of == inputs.panel.dates[sel.window.train.stop - 1].astype(object)
        assert sel.atom_train.values.shape[0] == WF.train


def test_no_look_ahead(base):
    inputs, sels = base
    k = 2
    cut = sels[k].window.train.stop  # first row after window k's train end
    values = inputs.panel.values.copy()
    rng = np.random.default_rng(99)
    values[cut:] = rng.normal(-0.01, 0.05, values[cut:].shape)  # a very different future
    perturbed = make_inputs(make_panel(values=values))
    sels2 = select_windows(perturbed)
    for j in range(k + 1):
        for scorer in sels[j].winners:
            assert sels[j].winners[scorer].equals(sels2[j].winners[scorer])
        assert np.array_equal(sels[j].atom_train.values, sels2[j].atom_train.values)
    a = run_cell(inputs, sels, None, "min_variance", "custom").weights
    b = run_cell(perturbed, sels2, None, "min_variance", "custom").weights
    early = pl.col("window") <= k
    assert a.filter(early).height > 0
    assert a.filter(early).equals(b.filter(early))
    assert not a.equals(b)  # the perturbation does reach later windows


def test_stitched_returns_cover_exactly_the_test_rows(base, mv_cell):
    inputs, sels = base
    rows = sorted({r for s in sels for r in range(s.window.test.start, s.window.test.stop)})
    assert rows == list(range(rows[0], rows[-1] + 1))
    assert np.array_equal(mv_cell.dates, inputs.panel.dates[rows])
    assert len(mv_cell.returns) == len(rows) == 7 * 63
    assert mv_cell.ideal is not None and np.array_equal(mv_cell.ideal.dates, mv_cell.dates)
    assert mv_cell.windows.height == 7 and (mv_cell.windows["status"] == "ok").all()


def test_holdings_carry_across_windows(mv_cell):
    result, w = mv_cell.result, mv_cell.weights
    first = w.filter(pl.col("window") == 0)["weight"].to_numpy()
    second = w.filter(pl.col("window") == 1)["weight"].to_numpy()
    assert result.costs[0] == pytest.approx(RATE * np.abs(first).sum())  # from cash
    assert 0 < result.costs[1] < RATE * np.abs(second).sum()  # from the drifted book, not from cash
    assert result.costs.sum() > 0 and (mv_cell.ideal.costs == 0).all()
    assert mv_cell.metrics.total_return < mv_cell.ideal_metrics.total_return


def test_liquidated_cell_stays_flat(base):
    inputs, sels = base
    values = inputs.panel.values.copy()
    crash = sels[3].window.test.start + 5
    values[crash, -1] = -1.0  # the benchmark loses everything in a test row
    crashed = TournamentInputs(make_panel(values=values), inputs.atoms, snapshot, windows=WF, benchmark="MKT",
                               friction_rate=RATE)
    market = run_baseline(crashed, sels, "market")  # selections: the benchmark is not a pool symbol
    r = market.result
    i = crash - sels[0].window.test.start
    assert r.liquidated_on == crashed.panel.dates[crash].astype(object)
    assert r.returns[i] == -1.0 and (r.returns[i + 1:] == 0).all() and (r.equity[i:] == 0).all()
    assert (r.costs[4:] == 0).all() and (r.turnover[4:] == 0).all()  # later rebalances do not trade
    assert market.metrics.total_return == -1.0 and market.metrics.max_drawdown == -1.0


def test_baselines_run(base):
    inputs, sels = base
    out = {kind: run_baseline(inputs, sels, kind) for kind in BASELINES}
    for kind, cell in out.items():
        assert cell.status == "ok" and cell.is_baseline and cell.engine == "baseline"
        assert math.isfinite(cell.metrics.sharpe) and len(cell.returns) == 7 * 63
    market = out["market"].weights
    assert set(market["symbol"]) == {"MKT"} and (market["weight"] == 1.0).all()
    raw = out["raw_pool_ew"].weights.filter(pl.col("window") == 0)
    assert raw.height == N and np.allclose(raw["weight"], 1 / N)
    sel = out["selected_ew"].weights.filter(pl.col("window") == 0)
    assert sel.height == len(sels[0].selected("log_mps")) and np.isclose(sel["weight"].sum(), 1.0)


def test_not_supported_pair_is_not_substituted(base):
    inputs, sels = base
    cell = run_cell(inputs, sels, "log_mps", "hrp", "cvxportfolio")
    assert cell.status == "not_supported"
    assert cell.result is None and cell.metrics is None and cell.weights.is_empty()


def test_metrics_finite(base, mv_cell):
    m = mv_cell.metrics.as_dict()
    for name in ("total_return", "cagr", "volatility", "sharpe", "sortino", "max_drawdown", "calmar", "avg_turnover"):
        assert math.isfinite(m[name]), name
    assert np.isfinite(mv_cell.window_sharpes).all()
    market = run_baseline(*base, "market")
    row = mv_cell.row(market=market)
    for name in ("friction_decay", "sharpe_dispersion", "selection_overlap", "tail_risk_ratio", "costs_paid"):
        assert math.isfinite(row[name]), name
    assert 0 <= row["selection_overlap"] <= 1 and row["friction_decay"] > 0


def test_window_with_too_few_eligible_symbols_holds_cash():
    values = make_panel().values.copy()
    values[:200, 1:N] = np.nan  # only S00 has data in window 0's train slice
    inputs = make_inputs(make_panel(values=values))
    sels = select_windows(inputs)
    assert sels[0].note.startswith("cash:too_few_eligible") and sels[0].winners == {}
    # window k's train rows are [63k, 63k + 252): S01…S11 reach 90 % coverage from k = 3 on
    assert [bool(s.winners) for s in sels] == [False, False, False, True, True, True, True]
    cell = run_cell(inputs, sels, None, "hrp", "custom")
    assert cell.windows["status"][0] == "cash:too_few_eligible"
    assert cell.weights.filter(pl.col("window") == 0).is_empty()
    assert (cell.result.returns[:63] == 0).all() and cell.result.costs[0] == 0


def test_step_larger_than_test_is_rejected():
    with pytest.raises(ValueError, match="step"):
        TournamentInputs(make_panel(), pool_atoms(), snapshot, windows=WalkForwardConfig(train=252, test=20, step=40))


def test_each_window_chooses_from_the_latest_pool_dated_on_or_before_it(base):
    inputs, sels = base
    from tsp_platform.tournament.cell import pool_for

    early = frozenset(inputs.atoms["atom_id"][:6])
    late = frozenset(inputs.atoms["atom_id"][6:])
    switch = sels[3].as_of
    pools = {sels[1].as_of: early, switch: late}
    assert pool_for(pools, sels[0].as_of) == (None, frozenset())
    assert pool_for(pools, sels[2].as_of) == (sels[1].as_of, early)
    assert pool_for(pools, switch) == (switch, late)
    pooled = TournamentInputs(inputs.panel, inputs.atoms, snapshot, windows=WF, benchmark="MKT", friction_rate=RATE,
                              pools=pools)
    chosen = select_windows(pooled)
    assert chosen[0].note.startswith("cash:no_pool") and chosen[0].winners == {}
    for sel in chosen[1:]:
        admitted = early if sel.as_of < switch else late
        assert sel.pool_date <= sel.as_of
        assert set(sel.selected("log_mps")) <= admitted and sel.selected("log_mps")
    cell = run_cell(pooled, chosen, None, "equal_weight", "custom")
    assert cell.windows["status"][0] == "cash:no_pool" and cell.windows["pool_date"][0] is None
