"""The nautilus simulator against a plain numpy implementation of the contract in `tournament/types.py`."""

from __future__ import annotations

import time
from datetime import date, timedelta

import numpy as np
import pytest

from tsp_platform.core.panel import ReturnsPanel
from tsp_platform.tournament.simulators.nautilus import NautilusSimulator
from tsp_platform.tournament.types import Rebalance, SimulationRequest

PARITY_GATE = 0.015  # the tournament's gate on the annualised-return gap between simulators
PERIODS = 252


def reference(request: SimulationRequest) -> dict:
    """The contract, literally: weights drift with prices, cash earns 0, friction on Σ|w* − w_drifted|·equity."""
    values = np.nan_to_num(request.returns.values, nan=0.0)
    dates = request.returns.dates.astype("datetime64[D]")
    n_days, n_sym = values.shape
    weights = np.zeros(n_sym) if request.initial_weights is None else request.initial_weights.astype(float)
    rows = [int(np.searchsorted(dates, np.datetime64(r.date, "D"), side="right")) - 1 for r in request.rebalances]
    turnover, costs = np.zeros(len(rows)), np.zeros(len(rows))
    equity, path = 1.0, np.empty(n_days)

    def trade(day):
        nonlocal weights, equity
        for k, row in enumerate(rows):
            if row == day:
                target = request.rebalances[k].weights
                turnover[k] = 0.5 * np.abs(target - weights).sum()
                costs[k] = request.friction_rate * np.abs(target - weights).sum()
                equity *= 1.0 - costs[k]
                weights = target.astype(float)

    trade(-1)
    for t in range(n_days):
        gross = 1.0 + weights @ values[t]
        equity *= gross
        weights = weights * (1.0 + values[t]) / gross
        trade(t)
        path[t] = equity
    returns = path / np.concatenate([[1.0], path[:-1]]) - 1.0
    return {"equity": path, "returns": returns, "turnover": turnover, "costs": costs, "final_weights": weights}


def annualised(equity: np.ndarray) -> float:
    return float(equity[-1] ** (PERIODS / len(equity)) - 1.0)


def make_request(weights_by_row, *, n_days=120, n_sym=3, rate=0.0006, seed=7, nan_cells=(), initial=None,
                 before_start=None):
    rng = np.random.default_rng(seed)
    values = rng.normal(0.0006, 0.015, (n_days, n_sym))
    for row, col in nan_cells:
        values[row, col] = np.nan
    start = date(2024, 1, 2)
    dates = np.array([np.datetime64(start + timedelta(days=d), "D") for d in range(n_days)])
    panel = ReturnsPanel(values, dates, tuple(f"SYM{i}" for i in range(n_sym)))
    rebalances = [Rebalance(dates[row].astype(date), np.asarray(w, float)) for row, w in weights_by_row]
    if before_start is not None:
        rebalances.insert(0, Rebalance(start - timedelta(days=3), np.asarray(before_start, float)))
    return SimulationRequest(panel, tuple(rebalances), rate, None if initial is None else np.asarray(initial, float))


def run(request):
    started = time.perf_counter()
    result = NautilusSimulator().simulate(request)
    elapsed = time.perf_counter() - started
    expected = reference(request)
    gap = abs(annualised(result.equity) - annualised(expected["equity"]))
    print(f"\nnautilus {elapsed:.3f}s  ann={annualised(result.equity):.6%}  ref={annualised(expected['equity']):.6%}"
          f"  gap={gap:.2e}  bars={result.diagnostics['bars']}  orders={result.diagnostics['orders']}")
    return result, expected, gap


def check_accounting(result, expected, request):
    rate = request.friction_rate
    diag = result.diagnostics
    assert np.isfinite(result.equity).all() and np.isfinite(result.returns).all()
    assert result.equity.shape == result.returns.shape == (len(request.returns.dates),)
    np.testing.assert_allclose(np.cumprod(1.0 + result.returns), result.equity, rtol=1e-12)
    # fees are the friction rate on the traded notional, fill by fill
    assert diag["commission_usd"] == pytest.approx(rate * diag["traded_notional_usd"], rel=1e-6)
    assert result.costs == pytest.approx(2.0 * rate * result.turnover, rel=2.0 * rate, abs=1e-9)
    # fills happen at the rebalance date's close, and the account reconciles with the fills
    assert diag["max_fill_price_gap"] < 1e-9
    assert diag["ledger_gap"] < 1e-9
    # per-rebalance and per-day figures against the reference. The differences are share rounding (≤ 5e-8 of
    # equity per position) and the O(rate²) gap between the contract's rate·Σ|w* − w_d|·E and the commission on
    # the notional actually traded to hold w* of the post-cost equity (≤ rate·cost·Σ|w*| on a rebalance day).
    np.testing.assert_allclose(result.turnover, expected["turnover"], atol=1e-6)
    np.testing.assert_allclose(result.costs, expected["costs"], rtol=2.0 * rate, atol=1e-9)
    np.testing.assert_allclose(result.returns, expected["returns"], atol=5e-6)
    np.testing.assert_allclose(result.final_weights, expected["final_weights"], atol=1e-6)


def test_long_only_parity():
    request = make_request([
        (0, [0.3, 0.3, 0.4]),
        (30, [0.6, 0.2, 0.2]),
        (60, [0.1, 0.5, 0.3]),  # 10 % cash
        (90, [0.34, 0.33, 0.33]),
    ])
    result, expected, gap = run(request)
    assert result.simulator == "nautilus"
    assert gap < PARITY_GATE
    assert gap < 5e-5  # what remains is share rounding and the O(rate²) cost term
    check_accounting(result, expected, request)
    assert result.liquidated_on is None
    assert result.costs.sum() > 0


def test_long_short_parity_with_gaps_and_carried_holdings():
    request = make_request(
        [
            (0, [0.5, -0.3, 0.6]),  # net long, gross 1.4
            (29, [-0.4, 0.7, 0.2]),  # shorts flip through zero in one order
            (58, [0.0, -0.5, 0.9]),  # trades on a day SYM1 has no session
            (91, [0.3, 0.3, -0.3]),
        ],
        nan_cells=[(58, 1), (59, 1), (10, 0), (40, 2)],
        initial=[0.2, 0.2, 0.2],
        seed=11,
    )
    result, expected, gap = run(request)
    assert gap < PARITY_GATE
    assert gap < 5e-5  # what remains is share rounding and the O(rate²) cost term
    check_accounting(result, expected, request)
    assert (result.final_weights < 0).any()


def test_rebalance_before_the_panel_and_a_day_without_sessions():
    request = make_request(
        [(50, [0.2, 0.5, 0.3]), (80, [0.25, 0.25, 0.5])],
        before_start=[0.4, 0.4, 0.2],
        nan_cells=[(20, 0), (20, 1), (20, 2)],
        n_days=100,
        rate=0.001,
    )
    result, expected, gap = run(request)
    assert gap < 5e-5  # what remains is share rounding and the O(rate²) cost term
    check_accounting(result, expected, request)
    assert result.returns[20] == pytest.approx(0.0, abs=1e-12)  # no session anywhere: equity unchanged
    # bought from cash before the first row: E' = 1 − 0.001·E' of the starting equity invested, cost 0.001·E'
    assert result.costs[0] == pytest.approx(0.001 / 1.001, rel=1e-6)
    assert result.equity[0] == pytest.approx((1.0 - 0.001 / 1.001) * (1.0 + request.returns.values[0] @ [0.4, 0.4, 0.2]))


def test_zero_friction_and_a_rebalance_after_the_panel_trades_at_the_last_close():
    request = make_request([(0, [1.0, 0.0, 0.0])], rate=0.0, n_days=30)
    late = SimulationRequest(
        request.returns, (*request.rebalances, Rebalance(date(2030, 1, 1), np.array([0.0, 0.0, 0.5]))), 0.0
    )
    result, expected, _ = run(late)
    assert result.costs == pytest.approx([0.0, 0.0])
    np.testing.assert_allclose(result.equity, expected["equity"], rtol=1e-6)
    np.testing.assert_allclose(result.final_weights, [0.0, 0.0, 0.5], atol=1e-6)
    assert result.turnover[1] == pytest.approx(0.5 * (1.0 + 0.5), abs=1e-6)


def test_liquidation_at_zero_equity():
    n_days = 30
    values = np.zeros((n_days, 2))
    values[10, 0] = 0.30  # a 4× short loses 120 %
    dates = np.array([np.datetime64(date(2024, 1, 2) + timedelta(days=d), "D") for d in range(n_days)])
    request = SimulationRequest(
        ReturnsPanel(values, dates, ("A", "B")),
        (Rebalance(date(2024, 1, 2), np.array([-4.0, 0.0])), Rebalance(date(2024, 1, 25), np.array([0.5, 0.5]))),
        0.0006,
    )
    result = NautilusSimulator().simulate(request)
    assert result.liquidated_on == date(2024, 1, 12)
    assert result.returns[10] == -1.0
    assert (result.returns[11:] == 0.0).all() and (result.equity[10:] == 0.0).all()
    assert result.equity[9] == pytest.approx(1.0 - 4 * 0.0006, abs=1e-5)  # cost on 4 × the post-cost equity
    assert result.turnover == pytest.approx([2.0, 0.0], abs=1e-6)
    assert result.costs[1] == 0.0
    assert (result.final_weights == 0.0).all()


def test_parity_with_the_vectorised_reference_simulator():
    simulators = pytest.importorskip("tsp_platform.tournament.simulators")
    if not hasattr(simulators, "VectorisedSimulator"):
        pytest.skip("no vectorised simulator")
    request = make_request(
        [(0, [0.4, -0.2, 0.5]), (40, [0.3, 0.3, 0.3]), (80, [-0.1, 0.6, 0.4]), (110, [0.2, 0.2, 0.5])],
        nan_cells=[(40, 0), (41, 0), (75, 2)],
        seed=3,
    )
    ours = NautilusSimulator().simulate(request)
    theirs = simulators.VectorisedSimulator().simulate(request)
    gap = simulators.parity_gap(ours, theirs, PERIODS)
    print(f"\nparity gap vs {theirs.simulator}: {gap:.2e}")
    assert gap < simulators.PARITY_GAP_GATE
    assert gap < 5e-5
    np.testing.assert_allclose(ours.returns, theirs.returns, atol=5e-6)
    np.testing.assert_allclose(ours.turnover, theirs.turnover, atol=1e-6)
    np.testing.assert_allclose(ours.final_weights, theirs.final_weights, atol=1e-6)


def test_satisfies_the_simulator_protocol():
    simulators = pytest.importorskip("tsp_platform.tournament.simulators")
    protocol = getattr(simulators, "Simulator", None)
    if protocol is None:
        pytest.skip("no Simulator protocol yet")
    simulator = NautilusSimulator()
    assert simulator.name == "nautilus"
    try:
        assert isinstance(simulator, protocol)
    except TypeError:  # a protocol without @runtime_checkable
        assert callable(simulator.simulate)
