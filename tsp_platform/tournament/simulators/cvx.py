"""The cvxportfolio cross-check: `MarketSimulator` on the same returns, its cost model set to the same friction.

Offline set-up (nothing is downloaded):

* `UserProvidedMarketData` built from the panel's returns (NaN → 0, the contract's "no session"), a zero-return
  cash column, `min_history=0`. cvxportfolio's return at time t is earned by the holdings chosen at t, so its
  clock is the panel's shifted by one: period 0 is a synthetic close before the first row (rebalances dated
  before the panel execute there) and period k ≥ 1 is the close of row k − 1, earning row k. One extra period
  with zero returns closes the calendar so a rebalance on the last row executes too (cvxportfolio never runs the
  policy at its final timestamp).
* `MarketSimulator(costs=[TransactionCost(a=rate, b=None)])`: linear friction rate × Σ|z|·v, no spread, market
  impact or holding (borrow) cost; no trade rounding (no prices).
* Policy: `FixedWeights` with one target row per rebalance period (cash = 1 − Σw). At every other period
  `FixedWeights` finds no row and does not trade, so the holdings drift.

How its accounting differs from the custom simulator's (both are the contract up to second order):

* Cost timing: cvxportfolio debits the cost at the start of the period that earns the new weights, i.e. inside
  the *next* session's return; ours charges it in the rebalance session's return. A rebalance dated before the
  panel lands in row 0 in both; a rebalance on the last row is charged in the closing zero-return period, which
  is folded into the last row here. Equity agrees at every day except between a trade and the next close.
* Fee on fee: cvxportfolio keeps the post-trade holdings at w_target × (pre-cost) equity and takes the cost from
  cash, so right after a trade the weights are w_target / (1 − c) and cash absorbs −c. Ours holds w_target of the
  post-cost equity. The gap is c × (segment return), ~1e-6 per rebalance at 6 bp.
* Two rebalances that map to the same period (no session between their dates) net into one trade here (the
  last target; the earlier one reports 0 turnover and cost); ours charges both legs.
* Bankruptcy: cvxportfolio stops the back-test when the value reaches ≤ 0; the result then applies the
  contract's liquidation (−1 on that row, flat afterwards).
"""

from __future__ import annotations

import logging
from contextlib import contextmanager

import numpy as np
import pandas as pd

from tsp_platform.tournament.simulators.vectorised import gross_returns, rebalance_rows
from tsp_platform.tournament.types import SimulationRequest, SimulationResult


@contextmanager
def _quiet(name: str = "cvxportfolio"):
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


class CvxportfolioSimulator:
    """cvxportfolio `MarketSimulator` + `FixedWeights` on the request's returns, friction as `TransactionCost(a)`."""

    name = "cvxportfolio"

    def simulate(self, request: SimulationRequest) -> SimulationResult:
        import cvxportfolio as cvx

        panel = request.returns
        t_count, n = panel.values.shape
        rate = float(request.friction_rate)
        symbols = list(panel.symbols)
        cash = "cash"
        while cash in symbols:
            cash = "_" + cash

        days = pd.DatetimeIndex(panel.dates.astype("datetime64[D]").astype("datetime64[ns]"))
        # period p's timestamp; p = 0 is a synthetic close before row 0, p = T + 1 only ends the calendar
        clock = pd.DatetimeIndex([days[0] - pd.Timedelta(days=1), *days, days[-1] + pd.Timedelta(days=1)])
        values = np.zeros((t_count + 2, n + 1))
        values[:t_count, :n] = gross_returns(panel.values) - 1.0  # period p earns row p; period T is flat
        frame = pd.DataFrame(values, index=clock, columns=[*symbols, cash])

        rows = rebalance_rows(panel.dates, request.rebalances)
        targets: dict[int, np.ndarray] = {}
        for row, rebalance in zip(rows, request.rebalances):
            targets[int(row)] = np.asarray(rebalance.weights, dtype=float)  # same period: the last target wins
        periods = sorted(targets)
        weights = pd.DataFrame(
            [[*targets[p], 1.0 - targets[p].sum()] for p in periods],
            index=clock[periods],
            columns=[*symbols, cash],
        )
        start = np.zeros(n + 1)
        if request.initial_weights is not None:
            start[:n] = np.asarray(request.initial_weights, dtype=float)
        start[n] = 1.0 - start[:n].sum()

        with _quiet():
            market = cvx.UserProvidedMarketData(
                returns=frame, cash_key=cash, min_history=pd.Timedelta(0)
            )
            simulator = cvx.MarketSimulator(
                market_data=market, costs=[cvx.TransactionCost(a=rate, b=None)], round_trades=False
            )
            result = simulator.backtest(
                cvx.FixedWeights(weights), h=pd.Series(start, index=[*symbols, cash])
            )

        value = result.v.reindex(clock).to_numpy(dtype=float)  # NaN after a bankruptcy stop
        # our row k ends at period k + 1; the last row also absorbs the closing period T (a last-row trade's cost)
        end_value = value[1 : t_count + 1].copy()
        end_value[-1] = value[t_count + 1]
        level = np.concatenate(([value[0]], end_value))
        bust = ~(level[1:] > 0.0)
        liquidated_row = int(np.argmax(bust)) if bust.any() else None
        factor = level[1:] / level[:-1]
        if liquidated_row is not None:
            factor[liquidated_row] = 0.0
            factor[liquidated_row + 1 :] = 1.0

        trade_value = result.v.reindex(result.u.index)
        traded = result.u.iloc[:, :-1].abs().sum(axis=1)
        cost_paid = result.costs["TransactionCost"].reindex(result.u.index)
        turnover = np.zeros(len(rows))
        costs = np.zeros(len(rows))
        last_of_period = {int(row): j for j, row in enumerate(rows)}  # the rebalance cvxportfolio executed
        for period, j in last_of_period.items():
            stamp = clock[period]
            if stamp in trade_value.index:
                turnover[j] = 0.5 * traded[stamp] / trade_value[stamp]
                costs[j] = cost_paid[stamp] / trade_value[stamp]

        if liquidated_row is None:
            final = result.h.iloc[-1]
            final_weights = (final.iloc[:-1] / final.sum()).reindex(symbols).to_numpy(dtype=float)
        else:
            final_weights = np.zeros(n)
        liquidated_on = None if liquidated_row is None else panel.dates[liquidated_row].astype("datetime64[D]").item()
        return SimulationResult(
            simulator=self.name,
            dates=panel.dates.astype("datetime64[D]"),
            returns=factor - 1.0,
            equity=np.cumprod(factor),
            turnover=turnover,
            costs=costs,
            final_weights=final_weights,
            liquidated_on=liquidated_on,
            diagnostics={
                "rebalance_rows": rows,
                "cost_timing": "return of the session after the rebalance (cvxportfolio period convention)",
                "netted_rebalances": len(rows) - len(last_of_period),
                "simulator_seconds": float(result.simulator_times.sum()),
            },
        )
