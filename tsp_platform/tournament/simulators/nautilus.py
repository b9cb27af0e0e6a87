"""The event-driven simulator: nautilus_trader's BacktestEngine on synthetic daily bars.

A `SimulationRequest` becomes one simulated venue (`SIM`) with one `Equity` instrument per panel symbol, a
MARGIN account in USD (the only account type nautilus lets short an equity) with a 1e9 starting balance, and
a `Strategy` that trades to target weights with market orders. Every number in the result is read back from
nautilus: the account balance, the open positions' unrealised PnL and the fill events.

Bars. Each symbol's price starts at 100 on an anchor bar one day before the panel's first row and then follows
close_t = close_{t−1}·(1 + r_t); the bar is open = previous close, high/low = max/min(open, close),
close. A NaN return (no session) emits no bar: the price is unchanged, so the position earns 0 as in the
contract. A day on which no symbol has a session gets one flat bar on the first symbol (no price moves) so the
strategy still sees that day's close. Prices carry 9 decimals; a return of −100 % or worse is floored at a
price of 1e-4 (the contract's price would be 0).

Timing (aligned with the contract: trades at the close of the rebalance date). The strategy counts the bars of
each day; on the day's last bar every instrument's market sits at that day's close, and the venue runs with
`use_message_queue=False`, so a market order submitted there fills at once at the close (bid = ask = close
after a LAST-price bar). Returns from the next session on are earned by the new holdings. A rebalance trades
at the close of the last row dated ≤ its date (as `vectorised.rebalance_rows`); one dated before the first row
trades on the anchor bar, and its cost lands in the first row's return.

Quantities. At a rebalance with pre-trade equity E and drifted weights w_d the strategy solves for the
post-cost equity E' = E − rate·Σ|w*·E' − w_d·E| (a few fixed-point steps from the contract's
E·(1 − rate·Σ|w* − w_d|)) and holds round(w*_i·E'/P_i) shares (`Equity` has no fractional units), so the
weights right after the trade are the targets. With E = 1e9 and prices near 100 the rounding is
≤ ½·P/E ≈ 5e-8 of equity per position per trade (reported as `diagnostics["max_rounding_error"]`).

Fees. Each instrument's taker fee is the friction rate and the venue uses `MakerTakerFeeModel`; market orders
are takers, so the commission is exactly rate × filled notional. The fill model has no slippage (the rate
already includes it). Holdings carried in (`initial_weights`) are established on the anchor bar with the fee
waived, since they were paid for in an earlier cell.

Shorts. Negative weights are MARGIN-account short positions (NETTING OMS, so a symbol can flip through zero in
one order). The instruments' margin_init/margin_maint are 0, so no margin is reserved and any gross exposure
is accepted, as in the contract: cash is 1 − Σw and earns
nothing; a short's proceeds earn nothing either and no borrow fee is charged.

Liquidation. If equity at a close is ≤ 0 (or a rebalance's friction alone would take it there), every
position is closed there (fee waived), that row returns −1, the rest of the run is flat, later rebalances report
zero turnover and costs and the final weights are 0 — as in the vectorised reference.

Differences from the vectorised accounting (annualised-return gaps of 1e-6 to 1e-5 on ordinary inputs):
- share rounding (above) makes the post-trade weights differ from the targets by ≤ ½·P/E each;
- the commission is rate·Σ|w*·E' − w_d·E|, the exact cost of holding w* of the post-cost equity; the
  contract's rate·Σ|w* − w_d|·E differs from it by O(rate²) (≤ rate·cost·Σ|w*|·E: about 1e-6 of equity for a
  full 6 bp rebalance), so nautilus pays marginally less;
- prices are rounded to 9 decimals, so each day's return differs from the panel's by ≤ 1e-9/price;
- turnover is ½·Σ|w_post − w_d| with w_post read from the positions and equity after the fills (the filled
  notional is measured against E', not E, so it is not used); costs = commission / E, the pre-trade equity.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import numpy as np

from tsp_platform.tournament.types import SimulationRequest, SimulationResult

NAME = "nautilus"
STARTING_BALANCE = 1e9
BASE_PRICE = 100.0
PRICE_FLOOR = 1e-4
PRICE_PRECISION = 9
VENUE = "SIM"


@dataclass(frozen=True)
class _Plan:
    """What the strategy needs: the day schedule, the orders of business at each close, the marks."""

    day_ts: np.ndarray  # (T+1,) int64 ns: anchor, then each panel row
    sessions: np.ndarray  # (T+1, N) bool: symbol i has a bar on day t
    bars_per_day: np.ndarray  # (T+1,) bars emitted on each day (≥ 1)
    marks: np.ndarray  # (T+1, N) close prices as fed to nautilus (forward-filled)
    rebalances_at: dict[int, list[int]]  # day index (0 = anchor) → rebalance indices, in order
    targets: tuple[np.ndarray, ...]  # (R,) target weights
    initial_weights: np.ndarray | None
    rate: float


class NautilusSimulator:
    """`simulate(request)` runs the request through a fresh nautilus BacktestEngine and reads the result back."""

    name = NAME

    def simulate(self, request: SimulationRequest) -> SimulationResult:
        started = time.perf_counter()
        panel = request.returns
        dates = panel.dates.astype("datetime64[D]")
        n_days, n_sym = panel.values.shape
        if n_sym == 0:  # empty dates and a bad friction rate are refused by SimulationRequest itself
            raise ValueError("nautilus simulator needs at least one symbol")
        if request.initial_weights is not None and (
            request.initial_weights.shape != (n_sym,) or not np.isfinite(request.initial_weights).all()
        ):
            raise ValueError(f"initial_weights must be {n_sym} finite numbers")

        plan = _plan(request)
        ledger = _run_engine(plan, n_sym)

        equity = ledger.equity_post[1:] / STARTING_BALANCE
        previous = np.concatenate([[1.0], equity[:-1]])
        with np.errstate(divide="ignore", invalid="ignore"):
            returns = np.where(previous > 0, equity / previous - 1.0, 0.0)
        liquidated_on = None
        if ledger.liquidated_day is not None:
            liquidated_on = dates[max(ledger.liquidated_day - 1, 0)].astype(date)
        return SimulationResult(
            simulator=NAME,
            dates=dates.copy(),
            returns=returns,
            equity=equity,
            turnover=ledger.turnover,
            costs=ledger.costs,
            final_weights=ledger.final_weights,
            liquidated_on=liquidated_on,
            diagnostics={
                "runtime_seconds": time.perf_counter() - started,
                "engine_seconds": ledger.engine_seconds,
                "bars": int(plan.bars_per_day.sum()),
                "orders": ledger.orders,
                "fills": ledger.fills,
                "commission_usd": ledger.commission,
                "traded_notional_usd": ledger.traded_notional,
                "fee_waived_notional_usd": ledger.waived_notional,
                "max_rounding_error": ledger.max_rounding_error,
                "max_fill_price_gap": ledger.max_fill_price_gap,
                "ledger_gap": ledger.ledger_gap,
                "starting_balance": STARTING_BALANCE,
                "fill_timing": "market order at the rebalance date's close (same bar)",
            },
        )


def _plan(request: SimulationRequest) -> _Plan:
    panel = request.returns
    values = panel.values
    dates = panel.dates.astype("datetime64[D]")
    n_days, n_sym = values.shape

    growth = np.where(np.isnan(values), 1.0, 1.0 + values)
    closes = BASE_PRICE * np.cumprod(growth, axis=0)
    closes = np.maximum(closes, PRICE_FLOOR)
    marks = np.round(np.vstack([np.full((1, n_sym), BASE_PRICE), closes]), PRICE_PRECISION)

    day_ts = np.concatenate([[dates[0] - np.timedelta64(1, "D")], dates]).astype("datetime64[ns]").astype(np.int64)
    sessions = np.vstack([np.ones((1, n_sym), bool), ~np.isnan(values)])
    bars_per_day = np.maximum(sessions.sum(axis=1), 1)

    rebalances_at: dict[int, list[int]] = {}
    for k, rebalance in enumerate(request.rebalances):
        # the close of the last row ≤ the date (−1: before the panel, traded on the anchor bar)
        row = int(np.searchsorted(dates, np.datetime64(rebalance.date, "D"), side="right")) - 1
        rebalances_at.setdefault(row + 1, []).append(k)

    return _Plan(
        day_ts=day_ts,
        sessions=sessions,
        bars_per_day=bars_per_day,
        marks=marks,
        rebalances_at=rebalances_at,
        targets=tuple(np.asarray(r.weights, dtype=np.float64) for r in request.rebalances),
        initial_weights=None if request.initial_weights is None else np.asarray(request.initial_weights, float),
        rate=float(request.friction_rate),
    )


@dataclass
class _Ledger:
    equity_post: np.ndarray  # (T+1,) equity after each close's trades, in USD (index 0 = anchor)
    turnover: np.ndarray
    costs: np.ndarray
    final_weights: np.ndarray
    liquidated_day: int | None
    orders: int
    fills: int
    commission: float
    traded_notional: float
    waived_notional: float
    max_rounding_error: float
    max_fill_price_gap: float
    ledger_gap: float
    engine_seconds: float


def _run_engine(plan: _Plan, n_sym: int) -> _Ledger:
    # nautilus imports are deferred: the package is heavy and only this simulator needs it.
    from nautilus_trader.backtest.engine import BacktestEngine
    from nautilus_trader.backtest.config import BacktestEngineConfig
    from nautilus_trader.backtest.models import FillModel, MakerTakerFeeModel
    from nautilus_trader.config import LoggingConfig, RiskEngineConfig
    from nautilus_trader.model.currencies import USD
    from nautilus_trader.model.data import Bar, BarType
    from nautilus_trader.model.enums import AccountType, OmsType
    from nautilus_trader.model.identifiers import InstrumentId, Symbol, TraderId, Venue
    from nautilus_trader.model.instruments import Equity
    from nautilus_trader.model.objects import Money, Price, Quantity

    venue = Venue(VENUE)
    instruments = [
        Equity(
            instrument_id=InstrumentId(Symbol(f"S{i:05d}"), venue),
            raw_symbol=Symbol(f"S{i:05d}"),
            currency=USD,
            price_precision=PRICE_PRECISION,
            price_increment=Price(10.0**-PRICE_PRECISION, PRICE_PRECISION),
            lot_size=Quantity.from_int(1),
            ts_event=0,
            ts_init=0,
            taker_fee=Decimal(repr(plan.rate)),
            maker_fee=Decimal(repr(plan.rate)),
        )
        for i in range(n_sym)
    ]
    bar_types = [BarType.from_str(f"{inst.id}-1-DAY-LAST-EXTERNAL") for inst in instruments]

    volume = Quantity.from_int(10**12)
    bars = []
    n_steps = len(plan.day_ts)
    for t in range(n_steps):
        ts = int(plan.day_ts[t])
        emitted = 0
        for i in np.flatnonzero(plan.sessions[t]):
            o = plan.marks[t - 1, i] if t > 0 else plan.marks[0, i]
            c = plan.marks[t, i]
            bars.append(_bar(Bar, Price, bar_types[i], o, c, volume, ts))
            emitted += 1
        if emitted == 0:  # no session anywhere: one flat bar so the strategy still sees the close
            c = plan.marks[t, 0]
            bars.append(_bar(Bar, Price, bar_types[0], c, c, volume, ts))

    class WaivableFeeModel(MakerTakerFeeModel):
        """The instrument's maker/taker fee on the filled notional, except while `waived` is set."""

        def __init__(self):
            super().__init__()
            self.waived = False

        def get_commission(self, order, fill_qty, fill_px, instrument):
            if self.waived:
                return Money(0, instrument.quote_currency)
            return super().get_commission(order, fill_qty, fill_px, instrument)

    fee_model = WaivableFeeModel()

    saved_random = random.getstate()  # FillModel reseeds the global `random` module
    try:
        engine = BacktestEngine(
            config=BacktestEngineConfig(
                trader_id=TraderId("TSP-001"),
                logging=LoggingConfig(log_level="ERROR", bypass_logging=True),
                risk_engine=RiskEngineConfig(bypass=True),
                run_analysis=False,
            )
        )
        engine.add_venue(
            venue=venue,
            oms_type=OmsType.NETTING,
            account_type=AccountType.MARGIN,
            starting_balances=[Money(STARTING_BALANCE, USD)],
            base_currency=USD,
            default_leverage=Decimal(1),
            fill_model=FillModel(prob_fill_on_limit=1.0, prob_slippage=0.0, random_seed=0),
            fee_model=fee_model,
            use_message_queue=False,
        )
    finally:
        random.setstate(saved_random)

    try:
        for inst in instruments:
            engine.add_instrument(inst)
        engine.add_data(bars)
        strategy = _make_strategy(plan, instruments, bar_types, venue, fee_model)
        engine.add_strategy(strategy)
        run_started = time.perf_counter()
        engine.run()
        engine_seconds = time.perf_counter() - run_started
        ledger = strategy.ledger(engine_seconds)
    finally:
        engine.dispose()
    return ledger


def _bar(Bar, Price, bar_type, open_, close, volume, ts):
    return Bar(
        bar_type=bar_type,
        open=Price(open_, PRICE_PRECISION),
        high=Price(max(open_, close), PRICE_PRECISION),
        low=Price(min(open_, close), PRICE_PRECISION),
        close=Price(close, PRICE_PRECISION),
        volume=volume,
        ts_event=ts,
        ts_init=ts,
    )


def _make_strategy(plan, instruments, bar_types, venue, fee_model):
    from nautilus_trader.config import StrategyConfig
    from nautilus_trader.model.currencies import USD
    from nautilus_trader.model.enums import OrderSide
    from nautilus_trader.model.objects import Price, Quantity
    from nautilus_trader.trading.strategy import Strategy

    n_sym = len(instruments)
    ids = [inst.id for inst in instruments]
    index_of = {inst_id: i for i, inst_id in enumerate(ids)}
    n_rebalances = len(plan.targets)

    class TargetWeightStrategy(Strategy):
        """At the close of each rebalance date, market orders for the difference to the target holdings."""

        def __init__(self):
            super().__init__(StrategyConfig(strategy_id="TARGET-WEIGHTS-001"))
            self.day = 0  # index into plan.day_ts
            self.seen = 0  # bars seen for the current day
            self.equity_post = np.full(len(plan.day_ts), np.nan)
            self.turnover = np.zeros(n_rebalances)
            self.costs = np.zeros(n_rebalances)
            self.liquidated_day = None
            self.orders = 0
            self.fills = 0
            self.commission = 0.0
            self.traded_notional = 0.0  # notional of fee-bearing fills
            self.waived_notional = 0.0  # notional of fee-free fills (carried-in holdings, liquidation)
            self.max_rounding_error = 0.0
            self.max_fill_price_gap = 0.0
            # an independent cash ledger from the fill events, to reconcile with the account
            self.cash = STARTING_BALANCE
            self.shares = np.zeros(n_sym)
            self._fill_commission = 0.0  # commission of the fills of the rebalance being traded

        def on_start(self):
            for bar_type in bar_types:
                self.subscribe_bars(bar_type)

        def on_bar(self, bar):
            ts = bar.ts_init
            while self.day < len(plan.day_ts) and int(plan.day_ts[self.day]) < ts:
                self.day += 1  # (never happens with a well-formed plan: every day has ≥ 1 bar)
            self.seen += 1
            if self.seen == int(plan.bars_per_day[self.day]):
                self.close_of_day(self.day)
                self.seen = 0
                self.day += 1

        def on_order_filled(self, event):
            i = index_of[event.instrument_id]
            qty = float(event.last_qty)
            px = float(event.last_px)
            signed = qty if event.order_side == OrderSide.BUY else -qty
            fee = float(event.commission)
            self.fills += 1
            if fee_model.waived:
                self.waived_notional += qty * px
            else:
                self.traded_notional += qty * px
            self._fill_commission += fee
            self.cash -= signed * px + fee
            self.shares[i] += signed
            self.max_fill_price_gap = max(self.max_fill_price_gap, abs(px - plan.marks[self.day, i]))

        # -- reading nautilus back ----------------------------------------------------------------------------

        def positions(self) -> np.ndarray:
            return np.array([float(self.portfolio.net_position(inst_id)) for inst_id in ids])

        def equity(self, day: int) -> float:
            account = self.portfolio.account(venue)
            total = float(account.balance_total(USD))
            for i, inst_id in enumerate(ids):
                pnl = self.portfolio.unrealized_pnl(inst_id, Price(plan.marks[day, i], PRICE_PRECISION))
                if pnl is not None:
                    total += float(pnl)
            return total

        # -- the close of each day ------------------------------------------------------------------------------

        def close_of_day(self, day: int):
            if self.liquidated_day is not None:
                self.equity_post[day] = 0.0
                return
            marks = plan.marks[day]
            if day == 0 and plan.initial_weights is not None:
                fee_model.waived = True
                self.trade_to(plan.initial_weights * STARTING_BALANCE / marks, marks)
                fee_model.waived = False
            equity = self.equity(day)
            if equity <= 0:
                self.liquidate(day, marks)
                return
            for k in plan.rebalances_at.get(day, ()):
                shares = self.positions()
                drifted = shares * marks / equity
                target = plan.targets[k]
                post = equity * (1.0 - plan.rate * np.abs(target - drifted).sum())
                for _ in range(3):  # E' = E − rate·Σ|w*·E' − w_d·E|: a contraction (factor rate·Σ|w*|)
                    post = equity - plan.rate * np.abs(target * post - drifted * equity).sum()
                if post <= 0:  # friction alone wipes the equity out
                    self.turnover[k] = 0.5 * np.abs(target - drifted).sum()
                    self.costs[k] = plan.rate * np.abs(target - drifted).sum()
                    self.liquidate(day, marks)
                    return
                wanted = target * post / marks
                self._fill_commission = 0.0
                self.trade_to(wanted, marks)
                self.costs[k] = self._fill_commission / equity
                equity = self.equity(day)
                if equity <= 0:
                    self.liquidate(day, marks)
                    return
                self.turnover[k] = 0.5 * np.abs(self.positions() * marks / equity - drifted).sum()
            self.equity_post[day] = equity

        def trade_to(self, wanted: np.ndarray, marks: np.ndarray):
            held = self.positions()
            target = np.round(wanted)
            rounding = np.abs(target - wanted) * marks / STARTING_BALANCE
            self.max_rounding_error = max(self.max_rounding_error, float(rounding.max(initial=0.0)))
            for i in np.argsort(target - held):  # sells first, then buys
                delta = target[i] - held[i]
                if delta == 0:
                    continue
                side = OrderSide.BUY if delta > 0 else OrderSide.SELL
                order = self.order_factory.market(ids[i], side, Quantity(abs(delta), 0))
                self.orders += 1
                self.submit_order(order)

        def liquidate(self, day: int, marks: np.ndarray):
            fee_model.waived = True
            self.trade_to(np.zeros(n_sym), marks)
            fee_model.waived = False
            self.liquidated_day = day
            self.equity_post[day] = 0.0

        def ledger(self, engine_seconds: float) -> _Ledger:
            last = len(plan.day_ts) - 1
            if np.isnan(self.equity_post).any():
                missing = int(np.isnan(self.equity_post).sum())
                raise RuntimeError(f"nautilus run ended with {missing} day closes unprocessed")
            if self.liquidated_day is None:
                equity = self.equity(last)
                final = self.positions() * plan.marks[last] / equity
                own = self.cash + float(self.shares @ plan.marks[last])
                gap = abs(own - equity) / STARTING_BALANCE
            else:
                final = np.zeros(n_sym)
                gap = 0.0
            return _Ledger(
                equity_post=self.equity_post,
                turnover=self.turnover,
                costs=self.costs,
                final_weights=final,
                liquidated_day=self.liquidated_day,
                orders=self.orders,
                fills=self.fills,
                commission=float(self.portfolio.account(venue).commission(USD) or 0.0),
                traded_notional=float(self.traded_notional),
                waived_notional=float(self.waived_notional),
                max_rounding_error=self.max_rounding_error,
                max_fill_price_gap=self.max_fill_price_gap,
                ledger_gap=gap,
                engine_seconds=engine_seconds,
            )

    return TargetWeightStrategy()
