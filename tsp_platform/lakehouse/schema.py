"""Lakehouse tables: one DDL per table, its primary key, and the partition columns that scope a rewrite."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

_POLARS_TYPES = {
    "VARCHAR": pl.String, "DOUBLE": pl.Float64, "INTEGER": pl.Int32, "DATE": pl.Date,
    "BOOLEAN": pl.Boolean, "TIMESTAMP": pl.Datetime("us"),
}


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[tuple[str, str], ...]
    key: tuple[str, ...]
    partition: tuple[str, ...] = ()  # columns that identify one (profile, as_of) slice

    @property
    def column_names(self) -> list[str]:
        return [name for name, _ in self.columns]

    @property
    def value_columns(self) -> list[str]:
        return [name for name in self.column_names if name not in self.key]

    @property
    def polars_schema(self) -> dict[str, pl.DataType]:
        """The frame schema a writer builds for this table."""
        return {name: _POLARS_TYPES[sql_type.split()[0]] for name, sql_type in self.columns}

    def partition_rows(self, frame: pl.DataFrame, profile: str, as_of) -> pl.DataFrame:
        """`frame` as rows of the (profile, as_of) slice: the partition columns set, columns in table order."""
        tagged = frame.with_columns(pl.lit(profile).alias("profile"), pl.lit(as_of).alias("as_of"))
        missing = [c for c in self.column_names if c not in tagged.columns]
        if missing:
            raise ValueError(f"{self.name}: the frame lacks columns {missing}")
        return tagged.select(self.column_names)

    @property
    def row_schema(self) -> dict[str, pl.DataType]:
        """The schema of a partition's rows before they are tagged with it (the partition columns left out)."""
        return {name: dtype for name, dtype in self.polars_schema.items() if name not in self.partition}

    def ddl(self) -> str:
        cols = ",\n  ".join(f"{name} {sql_type}" for name, sql_type in self.columns)
        return f"CREATE TABLE IF NOT EXISTS {self.name} (\n  {cols},\n  PRIMARY KEY ({', '.join(self.key)})\n)"


SYMBOLS = Table(
    "symbols",
    (
        ("symbol", "VARCHAR NOT NULL"),
        ("exchange", "VARCHAR NOT NULL"),
        ("ticker", "VARCHAR NOT NULL"),
        ("base", "VARCHAR"),
        ("quote", "VARCHAR"),
        ("asset_class", "VARCHAR NOT NULL"),
        ("sector", "VARCHAR"),
        ("industry", "VARCHAR"),
        ("currency", "VARCHAR"),
        ("calendar", "VARCHAR NOT NULL"),
        ("tick_size", "DOUBLE"),
        ("lot_size", "DOUBLE"),
        ("is_stablecoin", "BOOLEAN NOT NULL"),
        ("is_synthetic", "BOOLEAN NOT NULL"),
        ("source", "VARCHAR NOT NULL"),
        ("description", "VARCHAR"),
    ),
    key=("symbol",),
)

OHLCV = Table(
    "ohlcv",
    (
        ("symbol", "VARCHAR NOT NULL"),
        ("date", "DATE NOT NULL"),
        ("open", "DOUBLE"),
        ("high", "DOUBLE"),
        ("low", "DOUBLE"),
        ("close", "DOUBLE NOT NULL"),
        ("volume", "DOUBLE"),
        ("source", "VARCHAR NOT NULL"),
        ("ingested_at", "TIMESTAMP NOT NULL"),
    ),
    key=("symbol", "date"),
)

SCAN_RESULTS = Table(
    "scan_results",
    (
        ("profile", "VARCHAR NOT NULL"),
        ("as_of", "DATE NOT NULL"),
        ("scanner", "VARCHAR NOT NULL"),
        ("symbol", "VARCHAR NOT NULL"),
        ("direction", "VARCHAR NOT NULL"),
        ("logic", "VARCHAR NOT NULL"),
        ("run_id", "VARCHAR NOT NULL"),
        ("generated_at", "TIMESTAMP NOT NULL"),
        ("source", "VARCHAR NOT NULL"),
        ("exchange", "VARCHAR"),
        ("sector", "VARCHAR"),
        ("close", "DOUBLE"),
        ("change", "DOUBLE"),
        ("perf_w", "DOUBLE"),
        ("perf_1m", "DOUBLE"),
        ("perf_3m", "DOUBLE"),
        ("volatility_d", "DOUBLE"),
        ("volume", "DOUBLE"),
        ("value_traded", "DOUBLE"),
        ("adx", "DOUBLE"),
        ("recommend_all", "DOUBLE"),
        ("recommend_ma", "DOUBLE"),
        ("recommend_other", "DOUBLE"),
        ("rank", "INTEGER NOT NULL"),
    ),
    key=("profile", "as_of", "scanner", "symbol"),
    partition=("profile", "as_of"),
)

RAW_POOL = Table(
    "raw_pool",
    (
        ("profile", "VARCHAR NOT NULL"),
        ("as_of", "DATE NOT NULL"),
        ("symbol", "VARCHAR NOT NULL"),
        ("logic", "VARCHAR NOT NULL"),
        ("direction", "VARCHAR NOT NULL"),
        ("identity", "VARCHAR NOT NULL"),
        ("base", "VARCHAR"),
        ("quote", "VARCHAR"),
        ("asset_class", "VARCHAR"),
        ("sector", "VARCHAR"),
        ("scanners", "VARCHAR NOT NULL"),
        ("value_traded", "DOUBLE"),
        ("alternatives", "VARCHAR NOT NULL"),
        ("rank", "INTEGER NOT NULL"),
    ),
    key=("profile", "as_of", "symbol", "logic", "direction"),
    partition=("profile", "as_of"),
)

RETURNS_MATRIX = Table(
    "returns_matrix",
    (
        ("profile", "VARCHAR NOT NULL"),
        ("as_of", "DATE NOT NULL"),
        ("symbol", "VARCHAR NOT NULL"),
        ("date", "DATE NOT NULL"),
        ("ret", "DOUBLE"),
    ),
    key=("profile", "as_of", "symbol", "date"),
    partition=("profile", "as_of"),
)

RETURNS_EXCLUSIONS = Table(
    "returns_exclusions",
    (
        ("profile", "VARCHAR NOT NULL"),
        ("as_of", "DATE NOT NULL"),
        ("symbol", "VARCHAR NOT NULL"),
        ("reason", "VARCHAR NOT NULL"),
        ("detail", "VARCHAR NOT NULL"),
    ),
    key=("profile", "as_of", "symbol"),
    partition=("profile", "as_of"),
)

HEALTH_RESULTS = Table(
    "health_results",
    (
        ("profile", "VARCHAR NOT NULL"),
        ("as_of", "DATE NOT NULL"),
        ("gate", "VARCHAR NOT NULL"),
        ("symbol", "VARCHAR NOT NULL"),
        ("passed", "BOOLEAN NOT NULL"),
        ("value", "DOUBLE"),
        ("detail", "VARCHAR NOT NULL"),
    ),
    key=("profile", "as_of", "gate", "symbol"),
    partition=("profile", "as_of"),
)

PARTITION_COLUMNS = (("profile", "VARCHAR NOT NULL"), ("as_of", "DATE NOT NULL"))


def partitioned(name: str, columns: tuple[tuple[str, str], ...], key: tuple[str, ...]) -> Table:
    """A table sliced by (profile, as_of): those two columns lead the columns and the key."""
    return Table(name, PARTITION_COLUMNS + columns, key=("profile", "as_of", *key), partition=("profile", "as_of"))


DISCOVERY_RUNS = partitioned(
    "discovery_runs",
    (("scanner", "VARCHAR NOT NULL"), ("universe", "INTEGER NOT NULL"), ("admitted", "INTEGER NOT NULL")),
    key=("scanner",),
)

# -- selection ----------------------------------------------------------------------------------------------

FEATURES = partitioned(
    "features",
    (
        ("atom_id", "VARCHAR NOT NULL"),
        ("symbol", "VARCHAR NOT NULL"),
        ("logic", "VARCHAR NOT NULL"),
        ("direction", "VARCHAR NOT NULL"),
        ("feature", "VARCHAR NOT NULL"),
        ("value", "DOUBLE"),
    ),
    key=("atom_id", "feature"),
)

FEATURE_PROBABILITIES = partitioned(
    "feature_probabilities",
    (("atom_id", "VARCHAR NOT NULL"), ("feature", "VARCHAR NOT NULL"), ("probability", "DOUBLE NOT NULL")),
    key=("atom_id", "feature"),
)

SELECTION_SCORES = partitioned(
    "selection_scores",
    (
        ("scorer", "VARCHAR NOT NULL"),
        ("atom_id", "VARCHAR NOT NULL"),
        ("score", "DOUBLE NOT NULL"),
        ("rank", "INTEGER NOT NULL"),
        ("is_champion", "BOOLEAN NOT NULL"),
    ),
    key=("scorer", "atom_id"),
)

CLUSTERS = partitioned(
    "clusters",
    (("symbol", "VARCHAR NOT NULL"), ("cluster", "INTEGER NOT NULL"), ("method", "VARCHAR NOT NULL")),
    key=("symbol",),
)

SELECTION_VETOES = partitioned(
    "selection_vetoes",
    (
        ("atom_id", "VARCHAR NOT NULL"),
        ("veto", "VARCHAR NOT NULL"),
        ("vetoed", "BOOLEAN NOT NULL"),
        ("value", "DOUBLE"),
        ("threshold", "DOUBLE"),
    ),
    key=("atom_id", "veto"),
)

SELECTION_WINNERS = partitioned(
    "selection_winners",
    (
        ("scorer", "VARCHAR NOT NULL"),
        ("atom_id", "VARCHAR NOT NULL"),
        ("symbol", "VARCHAR NOT NULL"),
        ("logic", "VARCHAR NOT NULL"),
        ("direction", "VARCHAR NOT NULL"),
        ("identity", "VARCHAR NOT NULL"),
        ("sector", "VARCHAR"),
        ("cluster", "INTEGER NOT NULL"),
        ("score", "DOUBLE NOT NULL"),
        ("htr_stage", "INTEGER NOT NULL"),
        ("rank", "INTEGER NOT NULL"),
        ("is_champion", "BOOLEAN NOT NULL"),
    ),
    key=("scorer", "atom_id"),
)

SELECTION_RUNS = partitioned(
    "selection_runs",
    (
        ("scorer", "VARCHAR NOT NULL"),
        ("is_champion", "BOOLEAN NOT NULL"),
        ("final_stage", "INTEGER NOT NULL"),
        ("hardened", "BOOLEAN NOT NULL"),
        ("winners", "INTEGER NOT NULL"),
        ("stage_counts", "VARCHAR NOT NULL"),
        ("shortfall", "VARCHAR"),
    ),
    key=("scorer",),
)

# -- allocation ---------------------------------------------------------------------------------------------

REGIMES = partitioned(
    "regimes",
    (
        ("regime", "VARCHAR NOT NULL"),
        ("basis", "VARCHAR NOT NULL"),
        ("vol_ratio", "DOUBLE"),
        ("entropy", "DOUBLE"),
        ("turbulence", "DOUBLE"),
        ("score", "DOUBLE"),
        ("cluster_cap", "DOUBLE NOT NULL"),
        ("aggressor_sleeve", "DOUBLE NOT NULL"),
        ("reason", "VARCHAR NOT NULL"),
    ),
    key=(),
)

PORTFOLIO_WEIGHTS = partitioned(
    "portfolio_weights",
    (
        ("engine", "VARCHAR NOT NULL"),
        ("risk_profile", "VARCHAR NOT NULL"),
        ("level", "VARCHAR NOT NULL"),  # atom | physical
        ("name", "VARCHAR NOT NULL"),  # atom id or symbol
        ("cluster", "INTEGER"),
        ("weight", "DOUBLE NOT NULL"),
    ),
    key=("engine", "risk_profile", "level", "name"),
)

ALLOCATION_RUNS = partitioned(
    "allocation_runs",
    (
        ("engine", "VARCHAR NOT NULL"),
        ("risk_profile", "VARCHAR NOT NULL"),
        ("status", "VARCHAR NOT NULL"),  # ok | fallback | not_supported | failed
        ("fallback_used", "VARCHAR"),
        ("solve_ms", "DOUBLE NOT NULL"),
        ("assets", "INTEGER NOT NULL"),
        ("net", "DOUBLE"),
        ("gross", "DOUBLE"),
        ("beta", "DOUBLE"),
        ("message", "VARCHAR NOT NULL"),
    ),
    key=("engine", "risk_profile"),
)

# -- tournament ---------------------------------------------------------------------------------------------

_CELL = (
    ("scorer", "VARCHAR NOT NULL"),  # a selection scorer, or the baseline's name
    ("risk_profile", "VARCHAR NOT NULL"),
    ("engine", "VARCHAR NOT NULL"),  # an allocation engine, or "baseline"
)
_CELL_KEY = ("scorer", "risk_profile", "engine")
_METRICS = tuple(
    (name, "DOUBLE")
    for name in (
        "total_return", "cagr", "volatility", "sharpe", "sortino", "max_drawdown", "calmar", "avg_turnover",
        "costs_paid", "ideal_sharpe", "friction_decay", "sharpe_dispersion", "selection_overlap",
    )
)

TOURNAMENT_CELLS = partitioned(
    "tournament_cells",
    (
        *_CELL,
        ("simulator", "VARCHAR NOT NULL"),
        ("is_baseline", "BOOLEAN NOT NULL"),
        ("status", "VARCHAR NOT NULL"),  # ok | partial | not_supported | failed
        ("message", "VARCHAR NOT NULL"),
        ("windows", "INTEGER NOT NULL"),
        ("first_date", "DATE"),
        ("last_date", "DATE"),
        ("liquidated_on", "DATE"),
        *_METRICS,
        ("seconds", "DOUBLE"),
        ("run_id", "VARCHAR NOT NULL"),
    ),
    key=(*_CELL_KEY, "simulator"),
)

TOURNAMENT_RETURNS = partitioned(
    "tournament_returns",
    (*_CELL, ("simulator", "VARCHAR NOT NULL"), ("date", "DATE NOT NULL"), ("ret", "DOUBLE NOT NULL"),
     ("equity", "DOUBLE NOT NULL")),
    key=(*_CELL_KEY, "simulator", "date"),
)

TOURNAMENT_WEIGHTS = partitioned(
    "tournament_weights",  # target weights at each rebalance: the same for every simulator of a cell
    (*_CELL, ("window_index", "INTEGER NOT NULL"), ("date", "DATE NOT NULL"), ("symbol", "VARCHAR NOT NULL"),
     ("weight", "DOUBLE NOT NULL")),
    key=(*_CELL_KEY, "window_index", "symbol"),
)

TOURNAMENT_WINDOWS = partitioned(
    "tournament_windows",
    (
        *_CELL,
        ("simulator", "VARCHAR NOT NULL"),
        ("window_index", "INTEGER NOT NULL"),
        ("rebalance_date", "DATE NOT NULL"),
        ("pool_date", "DATE"),  # the pool the window chose from (null for baselines that need none)
        ("test_start", "DATE NOT NULL"),
        ("test_end", "DATE NOT NULL"),
        ("status", "VARCHAR NOT NULL"),
        ("regime", "VARCHAR"),
        ("fallback", "VARCHAR"),
        ("selected", "INTEGER NOT NULL"),
        ("selected_ids", "VARCHAR NOT NULL"),
        ("gross", "DOUBLE NOT NULL"),
        ("turnover", "DOUBLE NOT NULL"),
        ("cost", "DOUBLE NOT NULL"),
        ("sharpe", "DOUBLE"),
        ("message", "VARCHAR NOT NULL"),
    ),
    key=(*_CELL_KEY, "simulator", "window_index"),
)

TOURNAMENT_SCOREBOARD = partitioned(
    "tournament_scoreboard",
    (
        *_CELL,
        ("simulator", "VARCHAR NOT NULL"),
        ("is_baseline", "BOOLEAN NOT NULL"),
        ("status", "VARCHAR NOT NULL"),
        *_METRICS,
        ("tail_risk_ratio", "DOUBLE"),
        ("parity_gap", "DOUBLE"),
        ("failed_gates", "VARCHAR NOT NULL"),  # comma-separated, in gate order; empty = passed every gate
        ("strict", "BOOLEAN NOT NULL"),
        ("strict_rank", "INTEGER"),
        ("gates_id", "VARCHAR NOT NULL"),  # config id of the thresholds the row was judged by
    ),
    key=(*_CELL_KEY, "simulator"),
)

# -- orders ---------------------------------------------------------------------------------------------------

REBALANCE_ORDERS = partitioned(
    "rebalance_orders",
    (
        ("symbol", "VARCHAR NOT NULL"),
        ("side", "VARCHAR NOT NULL"),  # buy | sell
        ("quantity", "DOUBLE NOT NULL"),  # a whole number of lots
        ("price", "DOUBLE NOT NULL"),
        ("notional", "DOUBLE NOT NULL"),
        ("estimated_cost", "DOUBLE NOT NULL"),
        ("target_quantity", "DOUBLE NOT NULL"),
        ("current_quantity", "DOUBLE NOT NULL"),
        ("engine", "VARCHAR NOT NULL"),
        ("risk_profile", "VARCHAR NOT NULL"),
    ),
    key=("symbol",),
)

# -- meta-portfolio (the "profile" column holds the meta profile's name) ----------------------------------------

META_SLEEVE_WEIGHTS = partitioned(
    "meta_sleeve_weights",
    (
        ("sleeve", "VARCHAR NOT NULL"),
        ("scorer", "VARCHAR NOT NULL"),
        ("weight", "DOUBLE NOT NULL"),
        ("raw_weight", "DOUBLE NOT NULL"),  # before the min / max sleeve-weight projection
        ("cagr", "DOUBLE"),
        ("sharpe", "DOUBLE"),
        ("volatility", "DOUBLE"),
        ("common_days", "INTEGER NOT NULL"),
    ),
    key=("sleeve",),
)

META_PHYSICAL_WEIGHTS = partitioned(
    "meta_physical_weights",
    (("symbol", "VARCHAR NOT NULL"), ("weight", "DOUBLE NOT NULL"), ("sleeves", "VARCHAR NOT NULL")),
    key=("symbol",),
)

# -- audit ----------------------------------------------------------------------------------------------------

AUDIT_LEDGER = Table(
    "audit_ledger",
    (
        ("seq", "INTEGER NOT NULL"),  # 0, 1, 2, … in append order
        ("kind", "VARCHAR NOT NULL"),  # genesis | intent | outcome
        ("run_id", "VARCHAR NOT NULL"),
        ("step", "VARCHAR"),
        ("partition_key", "VARCHAR"),
        ("prev_hash", "VARCHAR NOT NULL"),
        ("hash", "VARCHAR NOT NULL"),
        ("record", "VARCHAR NOT NULL"),  # the canonical JSON that was hashed, with its hash: verified as stored
    ),
    key=("seq",),
)

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        SYMBOLS, OHLCV, SCAN_RESULTS, RAW_POOL, RETURNS_MATRIX, RETURNS_EXCLUSIONS, HEALTH_RESULTS,
        DISCOVERY_RUNS, FEATURES, FEATURE_PROBABILITIES, SELECTION_SCORES, CLUSTERS, SELECTION_VETOES, SELECTION_WINNERS, SELECTION_RUNS,
        REGIMES, PORTFOLIO_WEIGHTS, ALLOCATION_RUNS,
        TOURNAMENT_CELLS, TOURNAMENT_RETURNS, TOURNAMENT_WEIGHTS, TOURNAMENT_WINDOWS, TOURNAMENT_SCOREBOARD,
        REBALANCE_ORDERS, META_SLEEVE_WEIGHTS, META_PHYSICAL_WEIGHTS, AUDIT_LEDGER,
    )
}
