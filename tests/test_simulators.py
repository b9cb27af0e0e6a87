"""Simulators: drift and cost arithmetic by hand, liquidation, a per-day reference loop, cvxportfolio parity, speed."""

from __future__ import annotations

import time
from datetime import date, timedelta

import numpy as np
import pytest

from tsp_platform.core.panel import ReturnsPanel
from tsp_platform.tournament.simulators import (
    PARITY_GAP_GATE,
    CvxportfolioSimulator,
    Simulator,
    VectorisedSimulator,
    annualised_return,
    available_simulators,
    get_simulator,
    parity_gap,
)
from tsp_platform.tournament.types import Rebalance, SimulationRequest

D1, D2, D3 = date(2024, 1, 2), date(2024, 1, 3), date(2024, 1, 4)
BEFORE = date(2024, 1, 1)
# two assets, three sessions: A +10 %, −5 %, +2 %; B −10 %, +20 %, no session (NaN = no price move)
HAND = ReturnsPanel(
    np.array([[0.10, -0.10], [-0.05, 0.20], [0.02, np.nan]]),
    np.array([D1, D2, D3], dtype="datetime64[D]"),
    ("A", "B"),
)


def request(panel, rebalances, rate=0.0, initial=None) -> SimulationRequest:
    rebs = tuple(Rebalance(d, np.asarray(w, dtype=float)) for d, w in rebalances)
    return SimulationRequest(panel, rebs, rate, None if initial is None else np.asarray(initial, dtype=float))


custom = VectorisedSimulator()


# ------------------------------------------------------------------------------------------ hand-computed cases


def test_registry_and_protocol():
    assert set(available_simulators()) >= {"custom", "cvxportfolio"}
    assert isinstance(get_simulator("custom"), VectorisedSimulator)
    assert isinstance(get_simulator("cvxportfolio"), CvxportfolioSimulator)
    assert isinstance(get_simulator("custom"), Simulator)
    with pytest.raises(KeyError, match="unknown simulator"):
        get_simulator("vectorbt")


def test_drift_weights_after_one_day_and_three():
    one_day = custom.simulate(request(HAND.until(D1), [(BEFORE, [0.5, 0.5])]))
    np.testing.assert_allclose(one_day.final_weights, [0.55, 0.45], atol=1e-15)  # 0.55 / 1.00, 0.45 / 1.00
    np.testing.assert_allclose(one_day.returns, [0.0], atol=1e-15)

    result = custom.simulate(request(HAND, [(BEFORE, [0.5, 0.5])]))
    # day 2: A 0.55·0.95 = 0.5225, B 0.45·1.2 = 0.54 → 1.0625; day 3: A 0.5225·1.02 = 0.53295, B flat → 1.07295
    np.testing.assert_allclose(result.equity, [1.0, 1.0625, 1.07295], rtol=1e-14)
    np.testing.assert_allclose(result.returns, [0.0, 0.0625, 1.07295 / 1.0625 - 1], rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(result.final_weights, [0.53295 / 1.07295, 0.54 / 1.07295], rtol=1e-14)
    assert result.liquidated_on is None
    assert result.dates.dtype == np.dtype("datetime64[D]") and list(result.dates) == list(HAND.dates)


def test_cost_on_traded_notional_from_drifted_weights():
    rate = 0.001
    result = custom.simulate(request(HAND, [(BEFORE, [0.5, 0.5]), (D1, [0.5, 0.5])], rate=rate))
    # entry from cash: Σ|Δw| = 1 → 10 bp of the starting equity, charged in row 0
    # at D1's close the weights drifted to (0.55, 0.45): Σ|Δw| = 0.1 → 1 bp of the equity then (0.999)
    np.testing.assert_allclose(result.turnover, [0.5, 0.05], rtol=1e-13)
    np.testing.assert_allclose(result.costs, [0.001, 0.0001], rtol=1e-12)
    paid_at_d1 = 0.0001 * 0.999  # in currency: the cost fraction times the pre-trade equity
    assert result.equity[0] == pytest.approx(0.999 - paid_at_d1, rel=1e-14)
    # day 2 earns 0.5·(−5 %) + 0.5·(+20 %) = +7.5 % on the post-cost equity
    assert result.returns[1] == pytest.approx(0.075, rel=1e-13)
    assert result.equity[1] == pytest.approx(0.999 * 0.9999 * 1.075, rel=1e-14)


def test_carried_in_holdings_cost_nothing_when_targets_equal_the_drift():
    # holdings (0.5, 0.5) carried in from the previous window; at D1's close the target is what they drifted to
    result = custom.simulate(request(HAND, [(D1, [0.55, 0.45])], rate=0.0006, initial=[0.5, 0.5]))
    assert result.costs[0] == pytest.approx(0.0, abs=1e-15)
    assert result.turnover[0] == pytest.approx(0.0, abs=1e-15)
    np.testing.assert_allclose(result.equity, [1.0, 1.0625, 1.07295], rtol=1e-14)
    # the same targets entered from cash pay for Σ|w| = 1
    fresh = custom.simulate(request(HAND, [(D1, [0.55, 0.45])], rate=0.0006))
    assert fresh.costs[0] == pytest.approx(0.0006) and fresh.returns[0] == pytest.approx(-0.0006)


def test_windows_stitch_to_the_full_run_with_holdings_carried():
    rng = np.random.default_rng(3)
    panel = _random_panel(rng, 120, 6, nan_share=0.05)
    rebalances = _random_rebalances(rng, panel, every=9, shorts=True)
    full = custom.simulate(SimulationRequest(panel, rebalances, 0.0006))
    cut = panel.dates[59].astype(date)
    first = SimulationRequest(panel.until(cut), tuple(r for r in rebalances if r.date <= cut), 0.0006)
    left = custom.simulate(first)
    rest = ReturnsPanel(panel.values[60:], panel.dates[60:], panel.symbols)
    second = SimulationRequest(rest, tuple(r for r in rebalances if r.date > cut), 0.0006, left.final_weights)
    right = custom.simulate(second)
    np.testing.assert_allclose(np.concatenate([left.returns, right.returns]), full.returns, atol=1e-13)
    np.testing.assert_allclose(left.equity[-1] * right.equity, full.equity[60:], rtol=1e-12)
    np.testing.assert_allclose(right.final_weights, full.final_weights, atol=1e-13)


def test_short_position_pnl_and_cash():
    # short A at −0.5: the proceeds sit in cash (1.5, earning 0); A +10 % costs 5 %, then A −5 % earns back
    short = custom.simulate(request(HAND, [(BEFORE, [-0.5, 0.0])]))
    assert short.returns[0] == pytest.approx(-0.05, rel=1e-14)  # equity 1.5 − 0.55 = 0.95
    assert short.equity[1] == pytest.approx(1.5 - 0.55 * 0.95, rel=1e-14)  # 0.9775
    assert short.returns[1] == pytest.approx(0.0275 / 0.95, rel=1e-13)
    assert short.final_weights[0] == pytest.approx(-0.55 * 0.95 * 1.02 / (1.5 - 0.55 * 0.95 * 1.02), rel=1e-13)

    # partly invested: cash 0.5 earns nothing; leveraged: cash −0.5 is borrowed at 0
    partial = custom.simulate(request(HAND, [(BEFORE, [0.3, 0.2])]))
    assert partial.returns[0] == pytest.approx(0.3 * 0.10 + 0.2 * -0.10, rel=1e-14)
    levered = custom.simulate(request(HAND, [(BEFORE, [1.5, 0.0])]))
    assert levered.returns[0] == pytest.approx(0.15, rel=1e-14)
    assert levered.final_weights[0] == pytest.approx(1.65 * 0.95 * 1.02 / (1.65 * 0.95 * 1.02 - 0.5), rel=1e-13)


def test_liquidation_of_a_levered_long_into_a_total_loss():
    panel = ReturnsPanel(np.array([[0.10, 0.0], [-1.0, 0.01], [0.5, 0.02]]), HAND.dates, HAND.symbols)
    req = request(panel, [(BEFORE, [2.0, 0.0]), (D3, [0.5, 0.5])], rate=0.0006)
    # day 1 from cash to 2× A: cost 2 × 6 bp. Ours holds 2× the post-cost equity; cvxportfolio holds 2 and pays
    # the cost from cash. Day 2: A is worth 0, the borrowed cash remains → equity ≤ 0 → −100 %, flat afterwards
    day_one = {"custom": (1 - 2 * 0.0006) * 1.2 - 1, "cvxportfolio": 2 * 1.1 - 1 - 2 * 0.0006 - 1}
    for simulator in (custom, CvxportfolioSimulator()):
        result = simulator.simulate(req)
        assert result.returns[0] == pytest.approx(day_one[simulator.name], rel=1e-12)
        assert result.liquidated_on == D2
        np.testing.assert_array_equal(result.returns[1:], [-1.0, 0.0])
        np.testing.assert_array_equal(result.equity[1:], [0.0, 0.0])
        np.testing.assert_array_equal(result.final_weights, [0.0, 0.0])
        assert result.costs[1] == 0.0 and result.turnover[1] == 0.0  # nothing left to trade
        assert annualised_return(result, 252) == -1.0


def test_rebalances_on_the_last_row_and_between_sessions():
    # Saturday and Sunday rebalances both execute at Friday's close; the last one on the panel's last row
    panel = _random_panel(np.random.default_rng(4), 10, 2)  # Mon 2020-01-06 … Fri 2020-01-17
    plan = [(date(2020, 1, 3), [0.5, 0.5]), (date(2020, 1, 11), [0.8, 0.2]), (date(2020, 1, 12), [0.2, 0.8]),
            (date(2020, 1, 17), [0.6, 0.3])]
    req = request(panel, plan, rate=0.0006)
    ours, theirs = custom.simulate(req), CvxportfolioSimulator().simulate(req)
    np.testing.assert_array_equal(ours.diagnostics["rebalance_rows"], [0, 5, 5, 10])
    # ours charges both weekend legs (drift → 0.8/0.2 → 0.2/0.8); cvxportfolio nets them into one trade
    assert ours.costs[2] == pytest.approx(0.0006 * 1.2) and ours.turnover[2] == pytest.approx(0.6)
    assert theirs.diagnostics["netted_rebalances"] == 1 and theirs.costs[1] == 0.0
    # the last-row trade is charged on the last row by both and its targets are the holdings carried out
    without = request(panel, plan[:-1], rate=0.0006)
    for simulator, result in ((custom, ours), (CvxportfolioSimulator(), theirs)):
        held = simulator.simulate(without)
        assert result.costs[3] > 0
        assert result.returns[-1] == pytest.approx((1 + held.returns[-1]) * (1 - result.costs[3]) - 1, rel=1e-12)
        np.testing.assert_allclose(result.returns[:-1], held.returns[:-1], rtol=1e-13, atol=1e-15)
    np.testing.assert_array_equal(ours.final_weights, [0.6, 0.3])
    np.testing.assert_allclose(theirs.final_weights, np.array([0.6, 0.3]) / (1 - theirs.costs[3]), rtol=1e-12)


# ----------------------------------------------------------------------------------- a naive per-day reference


def naive(req: SimulationRequest) -> dict:
    """The contract, one day at a time."""
    panel = req.returns
    t_count, n = panel.values.shape
    r = np.nan_to_num(panel.values, nan=0.0)
    first_row = []
    for reb in req.rebalances:
        k = 0
        while k < t_count and panel.dates[k].astype(date) <= reb.date:
            k += 1
        first_row.append(k)
    w = np.zeros(n) if req.initial_weights is None else req.initial_weights.astype(float).copy()
    equity, out, eq = 1.0, np.zeros(t_count), np.zeros(t_count)
    turnover, costs = np.zeros(len(first_row)), np.zeros(len(first_row))
    dead = False

    def trade(j):
        nonlocal w, equity
        delta = np.abs(req.rebalances[j].weights - w).sum()
        turnover[j], costs[j] = 0.5 * delta, req.friction_rate * delta
        equity *= 1 - costs[j]
        w = req.rebalances[j].weights.astype(float).copy()

    for t in range(t_count):
        before = equity if t else 1.0
        if not dead:
            if t == 0:
                for j, k in enumerate(first_row):
                    if k == 0:
                        trade(j)
            growth = 1.0 + w @ r[t]
            if growth <= 0:
                dead, equity, w = True, 0.0, np.zeros(n)
            else:
                equity *= growth
                w = w * (1 + r[t]) / growth
                for j, k in enumerate(first_row):
                    if k == t + 1:
                        trade(j)
        out[t] = equity / before - 1 if before > 0 else 0.0
        eq[t] = equity
    return {"returns": out, "equity": eq, "turnover": turnover, "costs": costs, "final_weights": w}


def _random_panel(rng, t_count, n, nan_share=0.0, start=date(2020, 1, 6)) -> ReturnsPanel:
    sessions, d = [], start
    while len(sessions) < t_count:  # weekdays: weekend rebalances execute at Friday's close
        if d.weekday() < 5:
            sessions.append(d)
        d += timedelta(days=1)
    values = rng.normal(0.0004, 0.02, (t_count, n))
    values[rng.random((t_count, n)) < nan_share] = np.nan
    return ReturnsPanel(values, np.array(sessions, dtype="datetime64[D]"), tuple(f"S{i}" for i in range(n)))


def _random_rebalances(rng, panel, every, shorts=False, first_before=True) -> tuple[Rebalance, ...]:
    n = len(panel.symbols)
    days = [panel.dates[0].astype(date) - timedelta(days=3)] if first_before else []
    for k in range(every, len(panel.dates), every):  # some fall on a Saturday: executed at Friday's close
        days.append(panel.dates[k].astype(date) + timedelta(days=int(rng.integers(0, 2))))
    days = sorted(set(d for d in days if d <= panel.dates[-1].astype(date)))
    out = []
    for d in days:
        w = rng.dirichlet(np.ones(n)) * rng.uniform(0.5, 1.5)
        if shorts:
            w = w - rng.dirichlet(np.ones(n)) * rng.uniform(0.0, 0.6)
        out.append(Rebalance(d, w))
    return tuple(out)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vectorised_equals_the_per_day_loop(seed):
    rng = np.random.default_rng(seed)
    panel = _random_panel(rng, 400, 12, nan_share=0.08)
    initial = rng.normal(0.05, 0.1, 12) if seed else None
    rebalances = _random_rebalances(rng, panel, every=7, shorts=seed > 0, first_before=seed != 2)
    req = SimulationRequest(panel, rebalances, 0.0006, initial)
    assert len(req.rebalances) > 50
    got, want = custom.simulate(req), naive(req)
    for key in ("returns", "equity", "turnover", "costs", "final_weights"):
        np.testing.assert_allclose(getattr(got, key), want[key], rtol=1e-12, atol=1e-12, err_msg=key)
    assert got.liquidated_on is None


def test_vectorised_equals_the_per_day_loop_through_a_liquidation():
    rng = np.random.default_rng(7)
    panel = _random_panel(rng, 200, 4)
    values = panel.values.copy()
    values[150] = [-0.6, -0.5, -0.55, -0.7]  # a crash the 3× levered book cannot survive
    panel = ReturnsPanel(values, panel.dates, panel.symbols)
    rebalances = tuple(Rebalance(r.date, r.weights / r.weights.sum() * 3.0) for r in _random_rebalances(rng, panel, 20))
    req = SimulationRequest(panel, rebalances, 0.0006)
    got, want = custom.simulate(req), naive(req)
    assert got.liquidated_on == panel.dates[150].astype(date)
    for key in ("returns", "equity", "turnover", "costs", "final_weights"):
        np.testing.assert_allclose(getattr(got, key), want[key], rtol=1e-12, atol=1e-12, err_msg=key)


# ------------------------------------------------------------------------------------- parity with cvxportfolio


def test_cvxportfolio_matches_exactly_without_friction():
    """Same clock, drift, NaN handling, shorts, leverage and carried-in holdings: identical up to rounding."""
    rng = np.random.default_rng(11)
    panel = _random_panel(rng, 120, 5, nan_share=0.05)
    req = SimulationRequest(panel, _random_rebalances(rng, panel, 10, shorts=True), 0.0, rng.normal(0.1, 0.2, 5))
    a, b = custom.simulate(req), CvxportfolioSimulator().simulate(req)
    np.testing.assert_allclose(b.returns, a.returns, atol=1e-12)
    np.testing.assert_allclose(b.equity, a.equity, rtol=1e-12)
    np.testing.assert_allclose(b.turnover, a.turnover, atol=1e-12)
    np.testing.assert_allclose(b.final_weights, a.final_weights, atol=1e-12)


@pytest.mark.parametrize("shorts", [False, True])
def test_parity_with_cvxportfolio_on_the_same_weights(shorts):
    rng = np.random.default_rng(5)
    panel = _random_panel(rng, 250, 5, nan_share=0.02)
    rebalances = _random_rebalances(rng, panel, every=21, shorts=shorts)  # monthly, first before the panel
    req = SimulationRequest(panel, rebalances, 0.0006)
    a, b = custom.simulate(req), CvxportfolioSimulator().simulate(req)
    gap = parity_gap(a, b, 252)
    print(
        f"\nparity (shorts={shorts}): ann. return custom {annualised_return(a, 252):+.6%}, cvxportfolio "
        f"{annualised_return(b, 252):+.6%}, gap {gap:.2e}; max |Δ daily| {np.abs(a.returns - b.returns).max():.2e}; "
        f"final equity {a.equity[-1]:.8f} vs {b.equity[-1]:.8f}"
    )
    assert gap < PARITY_GAP_GATE / 10
    # daily returns differ by where the cost lands (our rebalance session vs cvxportfolio's next one) and, on
    # every other day, only by fee on fee (cvxportfolio holds w/(1 − c) after paying c from cash)
    rows = a.diagnostics["rebalance_rows"]
    moved = np.zeros(len(a.returns), dtype=bool)
    moved[np.clip(np.concatenate([rows - 1, rows]), 0, len(moved) - 1)] = True
    diff = np.abs(a.returns - b.returns)
    print(f"max |Δ daily| on cost days {diff[moved].max():.2e}, elsewhere {diff[~moved].max():.2e}")
    assert diff[moved].max() <= 2 * a.costs.max()
    assert diff[~moved].max() < 5e-5
    np.testing.assert_allclose(b.equity, a.equity, rtol=5e-3)
    np.testing.assert_allclose(b.costs, a.costs, rtol=0.02, atol=1e-6)
    np.testing.assert_allclose(b.turnover, a.turnover, rtol=0.02, atol=1e-4)


# ------------------------------------------------------------------------------------------------------- speed


def test_vectorised_speed_on_ten_years_of_a_hundred_assets():
    rng = np.random.default_rng(0)
    panel = _random_panel(rng, 2520, 100, nan_share=0.01)
    cuts = np.linspace(0, 2519, 108).astype(int)
    rebalances = tuple(
        Rebalance(panel.dates[0].astype(date) - timedelta(days=1) if i == 0 else panel.dates[k].astype(date),
                  rng.dirichlet(np.ones(100)))
        for i, k in enumerate(cuts)
    )
    req = SimulationRequest(panel, rebalances, 0.0006)
    custom.simulate(req)
    timings = []
    for _ in range(7):
        start = time.perf_counter()
        result = custom.simulate(req)
        timings.append(time.perf_counter() - start)
    print(f"\nvectorised 100 × 2520, 108 rebalances: best {min(timings) * 1e3:.2f} ms, "
          f"median {np.median(timings) * 1e3:.2f} ms, final equity {result.equity[-1]:.7f}")
    assert len(result.costs) == 108
    assert min(timings) < 0.025


def test_the_request_refuses_an_empty_panel_and_a_bad_friction_rate():
    """Validated once, in the contract every simulator receives."""
    import numpy as np
    import pytest

    from tsp_platform.core.panel import ReturnsPanel
    from tsp_platform.tournament.types import SimulationRequest

    empty = ReturnsPanel(np.empty((0, 1)), np.empty(0, dtype="datetime64[D]"), ("A",))
    with pytest.raises(ValueError, match="empty returns panel"):
        SimulationRequest(empty, (), 0.0006)
    one_day = ReturnsPanel(np.zeros((1, 1)), np.array(["2024-01-02"], dtype="datetime64[D]"), ("A",))
    for rate in (-0.001, float("nan")):
        with pytest.raises(ValueError, match="friction_rate"):
            SimulationRequest(one_day, (), rate)
