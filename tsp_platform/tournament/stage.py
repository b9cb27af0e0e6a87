"""Tournament stages for one (profile, as-of) partition: the Parquet snapshot, one cell group, the scoreboard.

* `build_snapshot` reads the lakehouse once (every window's pool as of its own date, returns over
  `tournament.history_days`, bars, execution metadata) into a validated `TournamentSnapshot`; fan-out cells
  read that snapshot, never the database.
* `run_cell_group` runs one group of cells from the snapshot: an allocation engine's cells (every scorer ×
  risk profile) or the baselines, each simulated by every configured simulator. Allocation is planned once per
  cell and shared by the simulators, so parity compares the same weights. The frictionless twin (for friction
  decay) is simulated by the parity reference simulator. Nothing is written here: the caller stores the batch.
* `build_scoreboard_rows` joins every group's cells, adds the tail-risk ratio (against the `market` baseline
  on the same simulator) and the parity gap (against the reference simulator's run of the same cell), and
  judges the strict gates.

Every read goes through the stage context (`ctx.read`, `ctx.bars`): the audit ledger records them all.

Decision (cell failures): an exception inside one cell (an engine or simulator error) is recorded as that cell's
status `failed` with the error's type and text, so one broken library does not hide the other cells' results;
its metrics are null, so every gate reports it as missing and it is never strict.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from tsp_platform.config.models import DiscoverySource, Profile
from tsp_platform.config.scanners import load_scanner
from tsp_platform.config.tournament import BASELINE_GROUP, TournamentConfig
from tsp_platform.context import StageContext
from tsp_platform.core.atoms import atoms_frame
from tsp_platform.core.calendars import to_date
from tsp_platform.core.clock import utc_now
from tsp_platform.core.frame_files import read_frames, write_frames
from tsp_platform.core.identifiers import path_segment
from tsp_platform.core.panel import ReturnsPanel
from tsp_platform.discovery.offline import discover_offline, offline_universe, pool_from_scans, screener_start
from tsp_platform.discovery.scan import ScanEnvelope
from tsp_platform.health.verdicts import quarantine_list, require_healthy
from tsp_platform.lakehouse.schema import (
    TOURNAMENT_CELLS,
    TOURNAMENT_RETURNS,
    TOURNAMENT_SCOREBOARD,
    TOURNAMENT_WEIGHTS,
    TOURNAMENT_WINDOWS,
)
from tsp_platform.market_data.returns import build_returns
from tsp_platform.market_data.universe import symbol_calendars
from tsp_platform.selection.execution import execution_metadata
from tsp_platform.tournament import metrics as M
from tsp_platform.tournament.cell import (
    BASELINES,
    CellPlan,
    CellResult,
    TournamentInputs,
    WindowSelection,
    plan_baseline,
    plan_cell,
    select_windows,
    simulate_plan,
)
from tsp_platform.tournament.scoreboard import KEY_COLUMNS, build_scoreboard
from tsp_platform.tournament.snapshot import TournamentSnapshot
from tsp_platform.tournament.verify import snapshot_problems, span_problem
from tsp_platform.tournament.walkforward import windows

CELL_TABLES = ("tournament_cells", "tournament_returns", "tournament_weights", "tournament_windows")
METRIC_COLUMNS = ("total_return", "cagr", "volatility", "sharpe", "sortino", "max_drawdown", "calmar", "avg_turnover")


# ------------------------------------------------------------------------------------------------------ snapshot


def tournament_start(ctx: StageContext) -> date:
    """First date of the tournament span ending at the as-of date."""
    return ctx.as_of - timedelta(days=ctx.profile.tournament.history_days - 1)


def snapshot_directory(root: Path, profile: str, as_of: date) -> Path:
    """Where a partition's snapshot lives under the snapshot root."""
    return Path(root) / "tournament" / path_segment(profile, "profile") / as_of.isoformat() / "inputs"


def cells_directory(root: Path, profile: str, as_of: date, group: str) -> Path:
    """Where one cell group's results wait (Parquet) until the scoreboard stores them in the lakehouse."""
    return (Path(root) / "tournament" / path_segment(profile, "profile") / as_of.isoformat() / "cells"
            / path_segment(group, "cell group"))


ATOM_COLUMNS = ("atom_id", "symbol", "logic", "direction", "identity", "sector", "asset_class")


def _stored_pools(ctx: StageContext) -> pl.DataFrame:
    """Every raw pool the data cycle stored for the profile up to the as-of date, dated by its as-of."""
    return ctx.lakehouse.query(
        "SELECT * FROM raw_pool WHERE profile = ? AND as_of <= ? ORDER BY as_of, symbol", [ctx.profile.name, ctx.as_of]
    ).rename({"as_of": "pool_date"})


def _offline_pools(ctx: StageContext, decision_dates: list[date], scanners, universe: pl.DataFrame,
                   symbols: pl.DataFrame, bars: pl.DataFrame) -> list[tuple[date, pl.DataFrame]]:
    """(pool date, its atoms) for every decision date: offline discovery recomputed as of that date from the bars
    up to it. A date on which no scanner admits anything is an empty pool, so its window holds cash rather than
    reuse an older pool."""
    pools = []
    for day in sorted(set(decision_dates)):
        envelope = ScanEnvelope(ctx.profile.name, day, ctx.run_id, utc_now(), ctx.profile.discovery.value)
        scans = discover_offline(scanners, universe, bars, envelope).scans
        pools.append((day, atoms_frame(pool_from_scans(scans, symbols, ctx.profile.pool))))
    return pools


def _stored_pool_atoms(stored: pl.DataFrame) -> list[tuple[date, pl.DataFrame]]:
    """(pool date, its atoms) of every pool a live profile's data cycles stored: a live screener cannot be asked
    about the past, so a window with no pool dated on or before it holds cash."""
    return [(day, atoms_frame(frame.drop("pool_date"))) for (day,), frame in stored.group_by("pool_date")]


def build_snapshot(ctx: StageContext) -> TournamentSnapshot:
    """What the tournament of (P, D) needs: every window's pool, the returns over the span, the bars for the
    execution snapshots, execution metadata. Validated before it is returned (`snapshot_problems`).

    Decisions: each window chooses from the pool of its own as-of date (`_offline_pools`, `_stored_pool_atoms`),
    not D's, which would pick today's survivors years back. Symbols that failed a data-health gate as of D are quarantined from every
    window: a data fault makes the whole series suspect, and the exclusion does not depend on performance. A
    strict profile whose gates failed is refused (`DataHealthFailed`), as the alpha cycle is."""
    health = ctx.read("health_results")
    if ctx.profile.features.feat_strict_health:
        require_healthy(health, ctx.profile.name, ctx.as_of)
    if health.is_empty():
        raise LookupError(f"no health results for {ctx.profile.name} as of {ctx.as_of}: run the data cycle first")
    config, start = ctx.profile.tournament, tournament_start(ctx)
    symbols = ctx.read("symbols")
    offline = ctx.profile.discovery is DiscoverySource.LAKEHOUSE
    if offline:
        scanners = [load_scanner(name) for name in ctx.profile.scanners]
        universe = offline_universe(symbols, scanners, ctx.profile.name)
        names = universe["symbol"].to_list()
    else:
        stored = _stored_pools(ctx)
        names = stored["symbol"].unique().to_list()
    candidates = symbol_calendars(symbols, names, ctx.profile)
    bars = ctx.bars(candidates["symbol"].to_list(), screener_start(start))
    returns = build_returns(
        bars, candidates, ctx.as_of, start, ctx.profile.history_floor_days, quarantine_list(health)
    ).returns.select("symbol", "date", "ret")
    panel = ReturnsPanel.from_long(returns)
    short = span_problem(len(panel.dates), config)
    if short:
        raise ValueError(f"{ctx.profile.name} as of {ctx.as_of}: {short}")
    decisions = [to_date(panel.dates[w.as_of]) for w in windows(len(panel.dates), config.windows)]
    with_returns = set(returns["symbol"])
    pools = [(day, atoms.filter(pl.col("symbol").is_in(sorted(with_returns))) if atoms.height else atoms)
             for day, atoms in (_offline_pools(ctx, decisions, scanners, universe, symbols, bars) if offline
                                else _stored_pool_atoms(stored))]
    if not any(atoms.height for _, atoms in pools):
        raise LookupError(
            f"{ctx.profile.name} as of {ctx.as_of}: no window's pool has a symbol with returns over the tournament "
            f"span ({len(decisions)} windows from {start})"
        )
    atoms = pl.concat([a.select(ATOM_COLUMNS) for _, a in pools if a.height]).unique("atom_id").sort("atom_id")
    # One row per (pool date, atom); an empty pool keeps one row with a null atom, so its date is not lost.
    pool_rows = pl.DataFrame(
        [{"pool_date": day, "atom_id": atom} for day, a in pools for atom in (a["atom_id"].to_list() or [None])],
        schema={"pool_date": pl.Date, "atom_id": pl.String},
    ).sort("pool_date", "atom_id")
    keep = sorted(set(atoms["symbol"]) | ({ctx.profile.benchmark} if ctx.profile.benchmark else set()))
    snapshot = TournamentSnapshot(
        profile=ctx.profile.name, as_of=ctx.as_of, returns=returns.filter(pl.col("symbol").is_in(keep)),
        atoms=atoms, pools=pool_rows,
        bars=bars.filter(pl.col("symbol").is_in(keep)).select("symbol", "date", "open", "high", "low", "close", "volume"),
        meta=execution_metadata(symbols),
    )
    problems = [p for found in snapshot_problems(snapshot, config).values() for p in found]
    if problems:
        raise ValueError(f"{ctx.profile.name} as of {ctx.as_of}: the tournament snapshot is unusable: "
                         + "; ".join(problems))
    return snapshot


# --------------------------------------------------------------------------------------------------- cell groups


@dataclass(frozen=True, eq=False)
class CellBatch:
    """One cell group's results, shaped as the lakehouse's tournament tables (not yet stored)."""

    group: str
    snapshot_id: str  # content id of the snapshot the cells ran on
    config_id: str  # the profile's configuration id when they ran (windows, matrix, friction, engines' settings)
    cells: pl.DataFrame
    returns: pl.DataFrame
    weights: pl.DataFrame
    windows: pl.DataFrame
    content_id: str = ""  # the written batch's content id (set when read back)

    def frames(self) -> dict[str, pl.DataFrame]:
        return dict(zip(CELL_TABLES, (self.cells, self.returns, self.weights, self.windows)))

    def write(self, directory: Path) -> str:
        info = {"group": self.group, "snapshot_id": self.snapshot_id, "config_id": self.config_id}
        return write_frames(directory, self.frames(), info)

    @classmethod
    def read(cls, directory: Path) -> "CellBatch":
        frames, info, content_id = read_frames(directory, CELL_TABLES)
        return cls(group=info["group"], snapshot_id=info["snapshot_id"], config_id=info["config_id"],
                   content_id=content_id,
                   **{name.removeprefix("tournament_"): frame for name, frame in frames.items()})


def _scorers(config: TournamentConfig, selections: list[WindowSelection]) -> tuple[str, ...]:
    seen = sorted({scorer for sel in selections for scorer in sel.winners})
    if config.scorers is None:
        return tuple(seen) or ("champion",)
    unknown = [s for s in config.scorers if seen and s not in seen]
    if unknown:
        raise ValueError(f"tournament.scorers {unknown} are not selection scorers (selection ran {seen})")
    return config.scorers


def _failed_plan(scorer: str, risk_profile: str, engine: str, error: Exception) -> CellPlan:
    return CellPlan(scorer=scorer, risk_profile=risk_profile, engine=engine, status="failed",
                    message=f"{type(error).__name__}: {error}")


def _plans(inputs: TournamentInputs, selections, config: TournamentConfig, group: str) -> list[CellPlan]:
    if group == BASELINE_GROUP:
        kinds = [k for k in BASELINES if k != "market" or inputs.benchmark is not None]
        specs = [(kind, kind, lambda kind=kind: plan_baseline(inputs, selections, kind)) for kind in kinds]
    else:
        specs = [
            (scorer, risk_profile.value,
             lambda scorer=scorer, risk_profile=risk_profile: plan_cell(inputs, selections, scorer, risk_profile, group))
            for scorer in _scorers(config, selections) for risk_profile in config.risk_profiles
        ]
    plans = []
    for scorer, risk_profile, plan in specs:
        try:
            plans.append(plan())
        except Exception as error:  # noqa: BLE001  (recorded as the cell's failure, see the module docstring)
            plans.append(_failed_plan(scorer, risk_profile, group, error))
    return plans


def _cell_row(plan: CellPlan, simulator: str, result: CellResult | None, seconds: float, message: str = "") -> dict:
    metrics = result.metrics.as_dict() if result is not None and result.metrics is not None else {}
    simulated = result is not None and result.result is not None
    return {
        "scorer": plan.scorer, "risk_profile": plan.risk_profile, "engine": plan.engine, "simulator": simulator,
        "is_baseline": plan.is_baseline, "status": result.status if result is not None else "failed",
        "message": message or plan.message, "windows": len(plan.rebalances),
        "first_date": to_date(result.dates[0]) if simulated else None,
        "last_date": to_date(result.dates[-1]) if simulated else None,
        "liquidated_on": result.result.liquidated_on if simulated else None,
        **{k: metrics.get(k) for k in METRIC_COLUMNS},
        "costs_paid": float(result.result.costs.sum()) if simulated else None,
        "ideal_sharpe": result.ideal_metrics.sharpe if simulated else None,
        "friction_decay": result.friction_decay if simulated else None,
        "sharpe_dispersion": result.sharpe_dispersion if simulated else None,
        "selection_overlap": result.selection_overlap if simulated else None,
        "seconds": seconds,
    }


def run_cell_group(
    snapshot: TournamentSnapshot, profile: Profile, group: str, run_id: str, snapshot_id: str = ""
) -> CellBatch:
    """Every cell of one group, simulated by every configured simulator (see the module docstring)."""
    config = profile.tournament
    if group not in config.cell_groups():
        raise ValueError(f"{profile.name}: unknown cell group {group!r}; one of {config.cell_groups()}")
    inputs = snapshot.inputs(profile)
    selections = select_windows(inputs)
    if not selections:
        raise ValueError(f"{profile.name} as of {snapshot.as_of}: {span_problem(len(inputs.panel.dates), config)}")
    reference = config.parity_reference.value
    cells, returns, weights, windows = [], [], [], []
    for plan in _plans(inputs, selections, config, group):
        key = {"scorer": plan.scorer, "risk_profile": plan.risk_profile, "engine": plan.engine}
        weights_stored = False  # target weights are the plan's: stored once, whichever simulator ran
        for simulator in (s.value for s in config.simulators):
            if plan.status == "failed":
                cells.append(_cell_row(plan, simulator, None, 0.0))
                continue
            started = time.perf_counter()
            try:
                result = simulate_plan(inputs, selections, plan, simulator, ideal_simulator=reference)
            except Exception as error:  # noqa: BLE001  (recorded as the cell's failure)
                cells.append(_cell_row(plan, simulator, None, time.perf_counter() - started,
                                       f"{simulator} failed: {type(error).__name__}: {error}"))
                continue
            cells.append(_cell_row(plan, simulator, result, time.perf_counter() - started))
            if result.result is None:  # not supported: nothing was simulated
                continue
            returns.append(pl.DataFrame({
                **key, "simulator": simulator, "date": result.dates.astype("datetime64[D]"),
                "ret": result.returns, "equity": result.result.equity,
            }))
            windows.append(_windows_frame(result, key, simulator))
            if not weights_stored:
                weights.append(result.weights.rename({"window": "window_index"}).with_columns(
                    **{k: pl.lit(v) for k, v in key.items()}))
                weights_stored = True
    return CellBatch(
        group=group, snapshot_id=snapshot_id, config_id=profile.config_id(),
        cells=_tagged(snapshot, pl.DataFrame(cells, schema_overrides=_CELL_TYPES, infer_schema_length=None)
                      .with_columns(pl.lit(run_id).alias("run_id")), TOURNAMENT_CELLS),
        returns=_tagged(snapshot, _concat(returns, TOURNAMENT_RETURNS), TOURNAMENT_RETURNS),
        weights=_tagged(snapshot, _concat(weights, TOURNAMENT_WEIGHTS), TOURNAMENT_WEIGHTS),
        windows=_tagged(snapshot, _concat(windows, TOURNAMENT_WINDOWS), TOURNAMENT_WINDOWS),
    )


_CELL_TYPES = {
    **{k: pl.Float64 for k in (*METRIC_COLUMNS, "costs_paid", "ideal_sharpe", "friction_decay", "sharpe_dispersion",
                               "selection_overlap", "seconds")},
    "windows": pl.Int32, "first_date": pl.Date, "last_date": pl.Date, "liquidated_on": pl.Date,
}


def _windows_frame(result: CellResult, key: dict, simulator: str) -> pl.DataFrame:
    ids = [",".join(chosen) for chosen in result.selected] or [""] * result.windows.height
    return result.windows.rename({"window": "window_index", "as_of": "rebalance_date"}).with_columns(
        **{k: pl.lit(v) for k, v in key.items()}, simulator=pl.lit(simulator),
        selected_ids=pl.Series(ids, dtype=pl.String), message=pl.col("message").fill_null(""),
    )


def _concat(frames: list[pl.DataFrame], table) -> pl.DataFrame:
    if not frames:
        return pl.DataFrame(schema=table.polars_schema)
    return pl.concat(frames, how="diagonal_relaxed")


def _tagged(snapshot: TournamentSnapshot, frame: pl.DataFrame, table) -> pl.DataFrame:
    return table.partition_rows(frame, snapshot.profile, snapshot.as_of).cast(table.polars_schema)


# ----------------------------------------------------------------------------------------------------- scoreboard


def missing_groups(cells: pl.DataFrame, config: TournamentConfig) -> list[str]:
    """Cell groups of the configuration with no stored row (their partitions have not run yet)."""
    present = set(cells["engine"]) if cells.height else set()
    return [group for group in config.cell_groups() if group not in present]


def build_scoreboard_rows(cells: pl.DataFrame, returns: pl.DataFrame, config: TournamentConfig) -> pl.DataFrame:
    """The strict scoreboard of one partition from its stored cells and stitched returns."""
    missing = missing_groups(cells, config)
    if missing:
        raise LookupError(f"tournament cells missing for groups {missing}: materialise their tournament_cells partitions")
    series = {
        key[:4]: frame["ret"].to_numpy()
        for key, frame in returns.sort("date").group_by([*KEY_COLUMNS], maintain_order=True)
    }
    reference = config.parity_reference.value
    cagr = {tuple(r[c] for c in KEY_COLUMNS): r["cagr"] for r in cells.iter_rows(named=True)}
    others = [s.value for s in config.simulators if s.value != reference]
    tails, gaps = [], []
    for row in cells.iter_rows(named=True):
        key = tuple(row[c] for c in KEY_COLUMNS)
        market = series.get(("market", "market", BASELINE_GROUP, row["simulator"]))
        own = series.get(key)
        tail = M.NAN
        if market is not None and own is not None and len(market) == len(own):
            tail = M.tail_risk_ratio(own, market)
        tails.append(tail)
        if row["simulator"] == reference:
            peer = [M.parity_gap(row["cagr"], cagr.get((*key[:3], other))) for other in others]
            gap = M.NAN if not peer or any(np.isnan(peer)) else max(peer)
        else:
            gap = M.parity_gap(row["cagr"], cagr.get((*key[:3], reference)))
        gaps.append(gap)
    scored = cells.with_columns(
        tail_risk_ratio=pl.Series(tails, dtype=pl.Float64), parity_gap=pl.Series(gaps, dtype=pl.Float64)
    )
    board = build_scoreboard(scored, config.gates)
    return board.with_columns(
        failed_gates=pl.col("failed_gates").list.join(","),
        strict_rank=pl.col("strict_rank").cast(pl.Int32),
        gates_id=pl.lit(config.gates.config_id()),
    ).select(TOURNAMENT_SCOREBOARD.column_names)


def store_tournament(ctx: StageContext, batches: list[CellBatch], snapshot_id: str) -> pl.DataFrame:
    """Store every group's cells and the scoreboard they make in one transaction (all or nothing).

    Refuses batches computed from another snapshot than the partition's current one (`snapshot_id`) or under
    another configuration of the profile: a scoreboard mixing them would compare cells that did not see the
    same data or rules."""
    stale = sorted(b.group for b in batches if b.snapshot_id != snapshot_id)
    if stale:
        raise LookupError(
            f"{ctx.profile.name} as of {ctx.as_of}: cell groups {stale} ran on an older tournament snapshot; "
            "re-materialise their tournament_cells partitions"
        )
    reconfigured = sorted(b.group for b in batches if b.config_id != ctx.profile.config_id())
    if reconfigured:
        raise LookupError(
            f"{ctx.profile.name} as of {ctx.as_of}: cell groups {reconfigured} ran under another configuration of "
            "the profile; re-materialise their tournament_cells partitions"
        )
    frames = {name: pl.concat([b.frames()[name] for b in batches], how="vertical") for name in CELL_TABLES}
    cells = frames["tournament_cells"]
    board = build_scoreboard_rows(
        cells.drop("message", "windows", "first_date", "last_date", "liquidated_on", "seconds", "run_id"),
        frames["tournament_returns"], ctx.profile.tournament,
    )
    ctx.write(**frames, tournament_scoreboard=board)
    return board
