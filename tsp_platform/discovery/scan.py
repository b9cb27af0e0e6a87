"""Run an L4 scanner over screener rows: filters, direction-aware trend gate, liquidity floor, sort, limit.

The same rules serve the live screener (whose server already applied `filters`) and the offline lakehouse
screener (where we apply everything). A row missing a value a rule needs fails that rule, as on the
TradingView server. Short scans flip the recommendation and momentum tests: they keep bearish names.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import polars as pl

from tsp_platform.config.scanners import FilterOp, ScannerConfig, ScreenFilter, SortOrder
from tsp_platform.core.vocabulary import Direction
from tsp_platform.lakehouse.schema import SCAN_RESULTS
from tsp_platform.sources.base import SCREENER_FIELDS


class ScanError(ValueError):
    """A scanner asks for something the screener rows cannot answer."""


def _column(scanner: ScannerConfig, field: str, frame: pl.DataFrame) -> str:
    column = SCREENER_FIELDS.get(field, field)
    if column not in frame.columns:
        raise ScanError(f"scanner {scanner.name!r}: unknown screener field {field!r} for this source")
    return column


def filter_expr(scanner: ScannerConfig, rule: ScreenFilter, frame: pl.DataFrame) -> pl.Expr:
    col = pl.col(_column(scanner, rule.left, frame))
    right = rule.right
    match rule.operation:
        case FilterOp.GREATER:
            expr = col > right
        case FilterOp.LESS:
            expr = col < right
        case FilterOp.EGREATER:
            expr = col >= right
        case FilterOp.ELESS:
            expr = col <= right
        case FilterOp.EQUAL:
            expr = col == right
        case FilterOp.NEQUAL:
            expr = col != right
        case FilterOp.IN_RANGE:
            expr = col.is_between(right[0], right[1])
        case FilterOp.NOT_IN_RANGE:
            expr = ~col.is_between(right[0], right[1])
    return expr.fill_null(False)


def trend_exprs(scanner: ScannerConfig, frame: pl.DataFrame) -> list[pl.Expr]:
    """The trend gate; for SHORT the recommendation and momentum inequalities flip."""
    gate = scanner.trend
    if gate is None:
        return []
    short = scanner.direction is Direction.SHORT
    exprs = []
    if gate.recommendation_min is not None:
        rec = pl.col(_column(scanner, "Recommend.All", frame))
        exprs.append(rec <= -gate.recommendation_min if short else rec >= gate.recommendation_min)
    if gate.adx_min is not None:
        exprs.append(pl.col(_column(scanner, "ADX", frame)) >= gate.adx_min)
    for field, threshold in gate.momentum.items():
        value = pl.col(_column(scanner, field, frame))
        exprs.append(value < -threshold if short else value > threshold)
    return [e.fill_null(False) for e in exprs]


def apply_scanner(scanner: ScannerConfig, rows: pl.DataFrame, server_filtered: bool = False) -> pl.DataFrame:
    """Keep the rows the scanner admits, sorted and limited; the rank column records the order."""
    conditions: list[pl.Expr] = []
    if scanner.exchanges:
        conditions.append(pl.col("exchange").is_in(list(scanner.exchanges)))
    if scanner.symbols:
        conditions.append(pl.col("symbol").is_in(list(scanner.symbols)))
    if scanner.exclude_symbols:
        conditions.append(~pl.col("symbol").is_in(list(scanner.exclude_symbols)))
    if not server_filtered:
        conditions += [filter_expr(scanner, rule, rows) for rule in scanner.filters]
    if scanner.value_traded_min is not None:
        conditions.append((pl.col("value_traded") >= scanner.value_traded_min).fill_null(False))
    conditions += trend_exprs(scanner, rows)
    kept = rows.filter(*conditions) if conditions else rows
    sort_column = _column(scanner, scanner.sort_by, rows)
    kept = kept.sort(
        [sort_column, "symbol"], descending=[scanner.sort_order is SortOrder.DESC, False], nulls_last=True
    ).head(scanner.limit)
    return kept.with_row_index("rank", offset=1).with_columns(pl.col("rank").cast(pl.Int32))


@dataclass(frozen=True)
class ScanEnvelope:
    """The export envelope's meta, kept on every row."""

    profile: str
    as_of: date
    run_id: str
    generated_at: datetime
    source: str


def to_scan_results(scanner: ScannerConfig, kept: pl.DataFrame, meta: ScanEnvelope) -> pl.DataFrame:
    """Shape admitted rows as `scan_results` rows carrying the envelope's meta."""
    return kept.with_columns(
        pl.lit(meta.profile).alias("profile"),
        pl.lit(meta.as_of).alias("as_of"),
        pl.lit(scanner.name).alias("scanner"),
        pl.lit(scanner.direction.value).alias("direction"),
        pl.lit(scanner.logic).alias("logic"),
        pl.lit(meta.run_id).alias("run_id"),
        pl.lit(meta.generated_at).alias("generated_at"),
        pl.lit(meta.source).alias("source"),
    ).select(SCAN_RESULTS.column_names)
