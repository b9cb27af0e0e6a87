"""One tournament cell: walk-forward selection → allocation → one simulation over the stitched out-of-sample span.

The matrix is selection scorer × risk profile × engine × simulator, plus baselines as first-class rows
(`market`, `selected_ew`, `raw_pool_ew`). Pure domain (numpy / polars); the caller supplies every input.

Walk-forward (`walkforward.windows` over the panel rows, `inputs.windows` = the profile's train / test / step):

* **Selection sees the train slice only.** `select_windows` runs features → inference → partitioning → policy on
  `train_panel(panel, window)`, with the atoms restricted to the symbols *eligible* in that slice (finite returns on
  at least `MIN_TRAIN_COVERAGE` of its rows) and the execution snapshot as of the window's as-of date (its last
  train row; `inputs.snapshot(as_of)` must itself use bars up to that date only). One selection per window, shared
  by every cell; it keeps each scorer's winners and the winners' atom returns on the train rows (SHORT negated).
* **Each window chooses from its own pool** when `inputs.pools` is given: the latest pool dated on or before its
  as-of date (`pool_for`), never the as-of date's pool of the whole tournament, which would pick today's
  survivors for windows years back. No pool dated early enough: the window holds cash (`"cash:no_pool"`).
* **Allocation sees the train slice only**: the winners' atom returns on the train rows they all share (and the
  benchmark, when there is one), the last `allocation.window` of them; the regime is `detect_regime` on the
  benchmark over those rows (the winners' equal weight without a benchmark).
  The problem is built by `allocation.problem`, as the alpha cycle builds it, and solved by
  `allocation.solve.solve` (fallbacks, validation, cap projection).
* **Cash windows (decision).** A window holds cash (target weights 0, the trade to cash is charged) and is
  recorded with its reason in `CellResult.windows["status"]` when: fewer than `MIN_ELIGIBLE_SYMBOLS` symbols are
  eligible (`"cash:too_few_eligible"`, selection is not run), the scorer has no winner (`"cash:no_winners"`), the
  winners share fewer than `allocation.problem.MIN_COMMON_SESSIONS` train sessions (`"cash:short_history"`), or the
  solve failed after its fallbacks (`"cash:failed"`; the cell's status is then `"partial"`). An engine that does
  not support the profile makes the whole cell `"not_supported"` (no simulation, never a substitute).
* **Plan, then simulate.** `plan_cell` (and `plan_baseline`) decides a cell's rebalances once; `simulate_plan`
  runs them through one simulator, so every simulator of a cell sees identical weights. `run_cell` does both.
* **One simulation per cell and simulator**: the physical weights (`flatten_weights` of the atom weights, net of direction)
  rebalance at each window's as-of date, and a single `SimulationRequest` spans the first to the last test row, so
  weights drift between rebalances, holdings carry across windows (the next rebalance trades from the drifted
  book), friction is charged on traded notional and a cell whose equity reaches zero is liquidated and stays flat
  (the simulator's contract, `tournament.types`). The same request is simulated with friction 0 (the "ideal" run,
  for `friction_decay`; `ideal_simulator` may name another simulator for that twin).
* **Test rows.** Needs step ≤ test (ValueError otherwise: rows between test slices would belong to no window).
  With step < test the slices overlap and each row earns the latest rebalance, so window k's weights are held on
  [start_k, start_{k+1}) and its Sharpe is measured there; with step == test (the default) that is its test slice.
  The stitched returns are the simulation's returns: exactly the union of the test rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import polars as pl

from tsp_platform.allocation.problem import allocation_problem, antifragility_vector, read_regime, shared_sessions
from tsp_platform.allocation.solve import engines, solve
from tsp_platform.config.allocation import AllocationConfig, EngineName, RiskProfile
from tsp_platform.config.selection import SelectionConfig
from tsp_platform.config.tournament import BASELINE_GROUP, WalkForwardConfig
from tsp_platform.core.atoms import atom_returns, flatten_weights
from tsp_platform.core.calendars import to_date
from tsp_platform.core.panel import ReturnsPanel
from tsp_platform.selection.context import SelectionContext
from tsp_platform.selection.pipeline import run_selection
from tsp_platform.tournament import metrics as M
from tsp_platform.tournament.simulators import get_simulator
from tsp_platform.tournament.types import Rebalance, SimulationRequest, SimulationResult
from tsp_platform.tournament.walkforward import Window, train_panel, windows

MIN_TRAIN_COVERAGE = 0.9  # a symbol is eligible in a window with finite returns on ≥ 90 % of its train rows
MIN_ELIGIBLE_SYMBOLS = 2  # fewer eligible symbols: the window holds cash, selection is not run
BASELINES = ("market", "selected_ew", "raw_pool_ew")
WEIGHT_EPS = 1e-12  # weights rows below this magnitude are not listed


@dataclass(frozen=True, eq=False)
class TournamentInputs:
    panel: ReturnsPanel  # physical daily returns of every pool symbol (+ benchmark), rows up to the as-of date
    atoms: pl.DataFrame  # pool atoms: atom_id, symbol, logic, direction, identity, sector, asset_class
    snapshot: Callable[[date], pl.DataFrame]  # execution snapshot as of a date (bars up to that date only)
    selection: SelectionConfig = SelectionConfig()
    allocation: AllocationConfig = AllocationConfig()
    windows: WalkForwardConfig = WalkForwardConfig()
    annualisation: int = 252
    allow_short: bool = False
    benchmark: str | None = None
    friction_rate: float = 0.0006
    pools: Mapping[date, frozenset[str]] | None = None  # atom ids admitted as of each pool date (None: all, always)

    def __post_init__(self):
        missing = sorted(set(self.atoms["symbol"]) - set(self.panel.symbols))
        if missing:
            raise ValueError(f"atoms reference symbols absent from the panel: {missing[:5]}")
        if self.benchmark is not None and self.benchmark not in self.panel.symbols:
            raise ValueError(f"benchmark {self.benchmark!r} is not a panel symbol")
        if self.windows.step > self.windows.test:
            raise ValueError(
                f"step {self.windows.step} > test {self.windows.test}: rows between test slices would be in no window"
            )


@dataclass(frozen=True, eq=False)
class WindowSelection:
    """One window's selection on its train slice, shared by every cell."""

    window: Window
    as_of: date  # last train row's date: rebalances trade at its close
    eligible_symbols: tuple[str, ...]  # pool symbols with enough train data
    eligible_atoms: int
    winners: dict[str, pl.DataFrame]  # scorer → atom_id, symbol, logic, direction, cluster, score, rank, htr_stage
    champion: str | None  # the champion scorer's name (None when selection did not run)
    atom_train: ReturnsPanel | None  # train returns of every scorer's winners, one column per atom (SHORT negated)
    benchmark_train: np.ndarray | None  # physical benchmark returns on the same train rows
    antifragility: dict[str, float] = field(default_factory=dict)  # per winner atom (NaN when the data lacks it)
    note: str = ""  # why the window has no selection
    pool_date: date | None = None  # the pool the window chose from (None: the whole atom list)

    def selected(self, scorer: str) -> tuple[str, ...]:
        frame = self.winners.get(scorer)
        return () if frame is None else tuple(frame["atom_id"])


@dataclass(frozen=True, eq=False)
class CellResult:
    scorer: str
    risk_profile: str
    engine: str
    simulator: str
    status: str  # "ok", "partial" (some window's solve failed → cash), "not_supported"
    message: str
    result: SimulationResult | None  # with costs
    ideal: SimulationResult | None  # the same rebalances, friction 0
    weights: pl.DataFrame  # window, date, symbol, weight (targets at each rebalance; |w| > 1e-12)
    windows: pl.DataFrame  # one row per window: dates, status, regime, selected, turnover, cost, sharpe, message
    window_sharpes: np.ndarray  # (W,) Sharpe on the rows each window's weights were held (NaN when flat)
    window_rows: np.ndarray  # (W,) how many rows each window's weights were held
    selected: tuple[tuple[str, ...], ...]  # selected atom ids (or symbols for baselines) per window
    metrics: M.Metrics | None  # performance of the stitched net returns, avg turnover per rebalance
    ideal_metrics: M.Metrics | None
    is_baseline: bool = False

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.scorer, self.risk_profile, self.engine, self.simulator)

    @property
    def returns(self) -> np.ndarray:
        return np.empty(0) if self.result is None else self.result.returns

    @property
    def dates(self) -> np.ndarray:
        return np.empty(0, dtype="datetime64[D]") if self.result is None else self.result.dates

    @property
    def friction_decay(self) -> float:
        if self.metrics is None or self.ideal_metrics is None:
            return M.NAN
        return M.friction_decay(self.metrics.sharpe, self.ideal_metrics.sharpe)

    @property
    def sharpe_dispersion(self) -> float:
        if self.metrics is None:
            return M.NAN
        return M.sharpe_dispersion(self.window_sharpes, self.window_rows, self.metrics.annualisation)

    @property
    def selection_overlap(self) -> float:
        return M.selection_overlap(self.selected)

    def row(self, market: "CellResult | None" = None, parity_with: "CellResult | None" = None) -> dict:
        """A scoreboard row (`tournament.scoreboard` columns): keys, status, metrics and research metrics;
        tail_risk_ratio against `market` and parity_gap against another simulator's run of the same cell."""
        m = self.metrics.as_dict() if self.metrics is not None else {}
        tail = parity = M.NAN
        if market is not None and market.result is not None and self.result is not None:
            tail = M.tail_risk_ratio(self.returns, market.returns)
        if parity_with is not None and parity_with.metrics is not None and self.metrics is not None:
            parity = M.parity_gap(self.metrics.cagr, parity_with.metrics.cagr)
        return {
            "scorer": self.scorer, "risk_profile": self.risk_profile, "engine": self.engine,
            "simulator": self.simulator, "is_baseline": self.is_baseline, "status": self.status,
            **{k: m.get(k, M.NAN) for k in ("total_return", "cagr", "volatility", "sharpe", "sortino",
                                            "max_drawdown", "calmar", "avg_turnover")},
            "costs_paid": float(self.result.costs.sum()) if self.result is not None else M.NAN,
            "friction_decay": self.friction_decay, "sharpe_dispersion": self.sharpe_dispersion,
            "selection_overlap": self.selection_overlap, "tail_risk_ratio": tail, "parity_gap": parity,
        }


# --------------------------------------------------------------------------------------------------- selection


def eligible_symbols(train: ReturnsPanel, pool: list[str]) -> tuple[str, ...]:
    """Pool symbols with finite returns on at least MIN_TRAIN_COVERAGE of the train rows."""
    index = {s: i for i, s in enumerate(train.symbols)}
    rows = len(train.dates)
    need = math.ceil(MIN_TRAIN_COVERAGE * rows)
    counts = np.isfinite(train.values).sum(axis=0)
    return tuple(s for s in sorted(pool) if rows > 0 and counts[index[s]] >= need)


def pool_for(pools: Mapping[date, frozenset[str]], as_of: date) -> tuple[date | None, frozenset[str]]:
    """The latest pool dated on or before `as_of` (never a later one): (its date, its atom ids)."""
    dates = [d for d in pools if d <= as_of]
    if not dates:
        return None, frozenset()
    latest = max(dates)
    return latest, pools[latest]


def _window_selection(inputs: TournamentInputs, window: Window) -> WindowSelection:
    train = train_panel(inputs.panel, window)
    as_of = to_date(train.dates[-1])
    bench = train.select([inputs.benchmark]).values[:, 0].copy() if inputs.benchmark else None
    atoms, pool_date = inputs.atoms, None
    if inputs.pools is not None:
        pool_date, admitted = pool_for(inputs.pools, as_of)
        atoms = atoms.filter(pl.col("atom_id").is_in(sorted(admitted)))
        if pool_date is None:
            return WindowSelection(
                window=window, as_of=as_of, eligible_symbols=(), eligible_atoms=0, winners={}, champion=None,
                atom_train=None, benchmark_train=bench, note=f"cash:no_pool (no pool dated on or before {as_of})",
            )
    eligible = eligible_symbols(train, sorted(set(atoms["symbol"])))
    atoms = atoms.filter(pl.col("symbol").is_in(list(eligible)))
    empty = dict(window=window, as_of=as_of, eligible_symbols=eligible, eligible_atoms=atoms.height, pool_date=pool_date)
    if len(eligible) < MIN_ELIGIBLE_SYMBOLS:
        return WindowSelection(
            **empty, winners={}, champion=None, atom_train=None, benchmark_train=bench,
            note=f"cash:too_few_eligible ({len(eligible)} symbols with ≥ {MIN_TRAIN_COVERAGE:.0%} train coverage)",
        )
    snapshot = inputs.snapshot(as_of).filter(pl.col("symbol").is_in(list(eligible)))
    ctx = SelectionContext(
        config=inputs.selection, annualisation=inputs.annualisation, allow_short=inputs.allow_short,
        benchmark=inputs.benchmark, atoms=atoms, panel=train.select(list(eligible)), execution=snapshot,
    )
    sc = run_selection(ctx)
    champion = sc.scores.filter(pl.col("is_champion"))["scorer"][0] if sc.scores.height else None
    winners = {
        str(scorer): result.winners.select(
            "atom_id", "symbol", "logic", "direction", "cluster", "score", "rank", "htr_stage"
        ).sort("rank")
        for scorer, result in sc.policies.items()
    }
    ids = sorted({a for frame in winners.values() for a in frame["atom_id"]})
    union = atoms.filter(pl.col("atom_id").is_in(ids)).sort("atom_id")
    atom_train = atom_returns(train, union) if union.height else None
    af = {}
    if ids and "antifragility" in sc.features.columns:
        af = dict(sc.features.filter(pl.col("atom_id").is_in(ids)).select("atom_id", "antifragility").iter_rows())
    return WindowSelection(
        **empty, winners=winners, champion=champion, atom_train=atom_train, benchmark_train=bench,
        antifragility={k: (M.NAN if v is None else float(v)) for k, v in af.items()},
    )


def select_windows(inputs: TournamentInputs) -> list[WindowSelection]:
    """Selection on each window's train slice (window order), one per window for every cell."""
    return [_window_selection(inputs, w) for w in windows(len(inputs.panel.dates), inputs.windows)]


# -------------------------------------------------------------------------------------------------- allocation


def _scorer_name(selections: list[WindowSelection], scorer: str | None) -> str:
    if scorer not in (None, "champion"):
        return str(scorer)
    for sel in selections:
        if sel.champion is not None:
            return sel.champion
    return "champion"


def _allocation_problem(inputs: TournamentInputs, sel: WindowSelection, winners: pl.DataFrame):
    """(problem, regime reading) from the window's train rows shared by the winners (+ benchmark), built as the
    alpha cycle builds it (`allocation.problem`); (None, None) when they share too few sessions."""
    ids = list(winners["atom_id"])
    shared = shared_sessions(sel.atom_train.select(ids).values, sel.benchmark_train, inputs.allocation.window)
    if not shared.enough:
        return None, None
    reading, _ = read_regime(shared, inputs.allocation)
    problem = allocation_problem(
        ids, winners["cluster"].to_numpy(), shared, inputs.allocation, annualisation=inputs.annualisation,
        regime=reading.regime, antifragility=antifragility_vector([sel.antifragility.get(a) for a in ids]),
        allow_short=inputs.allow_short,
    )
    return problem, reading


def _physical(inputs: TournamentInputs, physical: dict[str, float]) -> np.ndarray:
    index = {s: i for i, s in enumerate(inputs.panel.symbols)}
    w = np.zeros(len(index))
    for symbol, weight in physical.items():
        w[index[symbol]] += weight
    return w


def _engine(engine) -> object:
    if not isinstance(engine, (str, EngineName)):
        return engine
    return engines()[EngineName(engine)]


@dataclass(frozen=True, eq=False)
class CellPlan:
    """A cell's decisions before any simulation: the rebalances of every window (shared by all simulators)."""

    scorer: str
    risk_profile: str
    engine: str
    status: str  # "ok", "partial", "not_supported"
    message: str
    rebalances: tuple[Rebalance, ...] = ()
    records: tuple[dict, ...] = ()  # per window: status, regime, message, fallback
    selected: tuple[tuple[str, ...], ...] = ()

    @property
    def is_baseline(self) -> bool:
        return self.engine == BASELINE_GROUP


def plan_cell(
    inputs: TournamentInputs, selections: list[WindowSelection], scorer: str | None, risk_profile: RiskProfile | str,
    engine,
) -> CellPlan:
    """Per-window allocation on the train slice: the cell's rebalances.

    `scorer` None or "champion" means the champion scorer; `engine` is an EngineName / name or an engine object."""
    profile = RiskProfile(risk_profile)
    engine_obj = _engine(engine)
    spec = dict(scorer=_scorer_name(selections, scorer), risk_profile=profile.value, engine=str(engine_obj.name))
    if not engine_obj.supports(profile):
        return CellPlan(**spec, status="not_supported", message=f"{engine_obj.name} has no {profile}")

    rebalances, records = [], []
    for sel in selections:
        winners = sel.winners.get(spec["scorer"])
        record = {"status": "ok", "regime": None, "message": "", "fallback": None}
        target = np.zeros(len(inputs.panel.symbols))
        if sel.note:
            record.update(status=sel.note.split(" ")[0], message=sel.note)
        elif winners is None or winners.height == 0:
            record.update(status="cash:no_winners", message=f"scorer {spec['scorer']} has no winner")
        else:
            problem, reading = _allocation_problem(inputs, sel, winners)
            if problem is None:
                record.update(status="cash:short_history", message="the winners share too few train sessions")
            else:
                record["regime"] = reading.regime.value
                allocation = solve(engine_obj, problem, profile)
                if allocation.status == "not_supported":
                    return CellPlan(**spec, status="not_supported", message=allocation.message)
                if allocation.weights is None:
                    record.update(status="cash:failed", message=allocation.message)
                else:
                    atom_weights = dict(zip(problem.assets, allocation.weights.tolist()))
                    target = _physical(inputs, flatten_weights(atom_weights, winners))
                    record.update(status=allocation.status, message=allocation.message,
                                  fallback=allocation.fallback_used)
        rebalances.append(Rebalance(sel.as_of, target))
        records.append(record)
    failed = sum(r["status"] == "cash:failed" for r in records)
    return CellPlan(
        **spec, status="partial" if failed else "ok",
        message=f"{failed} window(s) failed to solve and held cash" if failed else "",
        rebalances=tuple(rebalances), records=tuple(records),
        selected=tuple(sel.selected(spec["scorer"]) for sel in selections),
    )


def run_cell(
    inputs: TournamentInputs,
    selections: list[WindowSelection],
    scorer: str | None,
    risk_profile: RiskProfile | str,
    engine,
    simulator_name: str = "custom",
) -> CellResult:
    """One cell: per-window allocation on the train slice, then one simulation over the stitched test span."""
    return simulate_plan(inputs, selections, plan_cell(inputs, selections, scorer, risk_profile, engine), simulator_name)


def _weights_frame(symbols, selections, rebalances) -> pl.DataFrame:
    """Long frame of the target weights at each rebalance (|w| > WEIGHT_EPS)."""
    rows = [
        {"window": sel.window.index, "date": rebalance.date, "symbol": symbol, "weight": float(w)}
        for sel, rebalance in zip(selections, rebalances)
        for symbol, w in zip(symbols, rebalance.weights)
        if abs(w) > WEIGHT_EPS
    ]
    return pl.DataFrame(rows, schema={"window": pl.Int32, "date": pl.Date, "symbol": pl.String, "weight": pl.Float64})


def _held_rows(selections: list[WindowSelection], first: int, total: int) -> list[slice]:
    """Rows (relative to the simulated span) each window's weights are held: [start_k, start_{k+1})."""
    starts = [sel.window.test.start - first for sel in selections] + [total]
    return [slice(a, b) for a, b in zip(starts, starts[1:])]


def simulate_plan(
    inputs: TournamentInputs, selections: list[WindowSelection], plan: CellPlan, simulator_name: str = "custom",
    ideal_simulator: str | None = None,
) -> CellResult:
    """Simulate a plan's rebalances over the stitched test span with `simulator_name`, and with friction 0 (the
    ideal twin, for friction decay) on `ideal_simulator` (default: the same simulator)."""
    spec = dict(scorer=plan.scorer, risk_profile=plan.risk_profile, engine=plan.engine, simulator=simulator_name)
    if plan.status == "not_supported":
        return CellResult(
            **spec, status=plan.status, message=plan.message, result=None, ideal=None,
            weights=_weights_frame((), [], []), windows=pl.DataFrame(),
            window_sharpes=np.full(len(selections), M.NAN), window_rows=np.zeros(len(selections), dtype=int),
            selected=(), metrics=None, ideal_metrics=None,
            is_baseline=plan.is_baseline,
        )
    rebalances, records, selected = plan.rebalances, plan.records, plan.selected
    if not selections:
        raise ValueError("no walk-forward windows: the panel has fewer rows than train + test")
    first, last = selections[0].window.test.start, selections[-1].window.test.stop
    span = ReturnsPanel(inputs.panel.values[first:last].copy(), inputs.panel.dates[first:last].copy(),
                        inputs.panel.symbols)
    request = SimulationRequest(span, tuple(rebalances), inputs.friction_rate)
    result = get_simulator(simulator_name).simulate(request)
    ideal = get_simulator(ideal_simulator or simulator_name).simulate(SimulationRequest(span, tuple(rebalances), 0.0))
    a = inputs.annualisation
    held = _held_rows(selections, first, len(span.dates))
    sharpes = np.array([M.sharpe(result.returns[rows], a) if rows.stop > rows.start else M.NAN for rows in held])
    weights = _weights_frame(inputs.panel.symbols, selections, rebalances)
    table = pl.DataFrame(
        [
            {
                "window": sel.window.index, "as_of": sel.as_of,
                "test_start": to_date(inputs.panel.dates[sel.window.test.start]),
                "test_end": to_date(inputs.panel.dates[sel.window.test.stop - 1]),
                "pool_date": sel.pool_date,
                "status": rec["status"], "regime": rec["regime"], "fallback": rec["fallback"],
                "selected": len(sel_set), "gross": float(np.abs(reb.weights).sum()),
                "turnover": float(result.turnover[k]), "cost": float(result.costs[k]),
                "sharpe": float(sharpes[k]), "message": rec["message"],
            }
            for k, (sel, rec, reb, sel_set) in enumerate(zip(selections, records, rebalances, selected))
        ],
        schema_overrides={"regime": pl.String, "fallback": pl.String, "sharpe": pl.Float64, "pool_date": pl.Date},
    )
    return CellResult(
        **spec, status=plan.status, message=plan.message, result=result, ideal=ideal, weights=weights, windows=table,
        window_sharpes=sharpes, window_rows=np.array([rows.stop - rows.start for rows in held]), selected=selected,
        metrics=M.performance(result.returns, a, result.dates, result.turnover),
        ideal_metrics=M.performance(ideal.returns, a, ideal.dates, ideal.turnover),
        is_baseline=plan.is_baseline,
    )


# --------------------------------------------------------------------------------------------------- baselines


def run_baseline(
    inputs: TournamentInputs, selections: list[WindowSelection], kind: str, simulator_name: str = "custom"
) -> CellResult:
    """A baseline row (`plan_baseline`), simulated like a cell."""
    return simulate_plan(inputs, selections, plan_baseline(inputs, selections, kind), simulator_name)


def plan_baseline(inputs: TournamentInputs, selections: list[WindowSelection], kind: str) -> CellPlan:
    """A baseline row, rebalanced at every window's as-of date:

    * ``market`` — 100 % benchmark (needs `inputs.benchmark`);
    * ``selected_ew`` — equal weight of the champion's winner atoms, flattened to physical symbols net of
      direction (a long and a short of one symbol cancel); cash when the window has no winner;
    * ``raw_pool_ew`` — equal weight of every pool symbol eligible (with train data) in the window."""
    if kind not in BASELINES:
        raise ValueError(f"unknown baseline {kind!r}; one of {BASELINES}")
    if kind == "market" and inputs.benchmark is None:
        raise ValueError("the market baseline needs a benchmark")
    champion = _scorer_name(selections, None)
    n = len(inputs.panel.symbols)
    rebalances, records, selected = [], [], []
    for sel in selections:
        record = {"status": "ok", "regime": None, "message": "", "fallback": None}
        if kind == "market":
            physical, chosen = {inputs.benchmark: 1.0}, (inputs.benchmark,)
        elif kind == "raw_pool_ew":
            chosen = sel.eligible_symbols
            physical = {s: 1.0 / len(chosen) for s in chosen}
        else:
            winners = sel.winners.get(champion)
            if winners is None or winners.height == 0:
                physical, chosen = {}, ()
            else:
                ids = list(winners["atom_id"])
                chosen = tuple(ids)
                physical = flatten_weights({a: 1.0 / len(ids) for a in ids}, winners)
        if not physical:
            record.update(status=sel.note.split(" ")[0] if sel.note else "cash:no_winners",
                          message=sel.note or "nothing to hold")
        rebalances.append(Rebalance(sel.as_of, _physical(inputs, physical) if physical else np.zeros(n)))
        records.append(record)
        selected.append(tuple(chosen))
    return CellPlan(
        scorer=kind, risk_profile=kind, engine=BASELINE_GROUP, status="ok", message="",
        rebalances=tuple(rebalances), records=tuple(records), selected=tuple(selected),
    )
