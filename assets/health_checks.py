"""Blocking, partition-aware health gates, beside the assets they guard.

`ohlcv_history` gates read the partition's `health_results` (written by the asset from the same bars) and fail
naming each symbol and reason. Strict profiles fail with ERROR and stop the alpha cycle for the partition;
a profile with `feat_strict_health: false` reports WARN and relies on the returns matrix's quarantine.
`returns_matrix` checks re-verify the stored matrix itself and always fail with ERROR.
"""


from datetime import timedelta

import dagster as dg
import polars as pl

from assets._checks import check_results, check_specs
from assets._metadata import markdown_table
from assets.data_cycle import ohlcv_history, returns_matrix, stage_context
from resources import DUCKDB_POOL, LakehouseResource, ManifestResource
from tsp_platform.core.vocabulary import Calendar
from tsp_platform.health import GATE_DESCRIPTIONS, Gate

GATE_SPECS = check_specs(ohlcv_history, {gate.value: GATE_DESCRIPTIONS[gate] for gate in Gate})


@dg.multi_asset_check(specs=GATE_SPECS, pool=DUCKDB_POOL, can_subset=True)
def ohlcv_health_gates(context: dg.AssetCheckExecutionContext, lakehouse: LakehouseResource, manifest: ManifestResource):
    ctx = stage_context(context, lakehouse, manifest)
    health = ctx.read("health_results")
    severity = dg.AssetCheckSeverity.ERROR if ctx.profile.features.feat_strict_health else dg.AssetCheckSeverity.WARN
    for check_key in context.selected_asset_check_keys:
        rows = health.filter(pl.col("gate") == check_key.name)
        failed = rows.filter(~pl.col("passed"))
        if rows.is_empty():
            description = "no health results stored for this partition: materialise ohlcv_history"
        elif failed.height:
            description = "; ".join(f"{s}: {d}" for s, d in failed.select("symbol", "detail").iter_rows())
        else:
            description = f"all {rows.height} symbols pass"
        yield dg.AssetCheckResult(
            check_name=check_key.name,
            asset_key=ohlcv_history.key,
            passed=bool(rows.height) and failed.is_empty(),
            severity=severity,
            description=description[:2000],
            metadata={
                "symbols_checked": rows.height,
                "symbols_failed": failed.height,
                "worst_value": float(rows["value"].max()) if rows.height and rows["value"].max() is not None else 0.0,
                "failing_symbols": ", ".join(failed["symbol"].to_list()) or "none",
                "failures": markdown_table(failed.select("symbol", "value", "detail")),
            },
        )


RETURNS_SPECS = {
    "quarantine_respected": "No symbol that failed a health gate or was excluded appears in the matrix",
    "point_in_time": "Every return date lies inside [lookback start, as-of date]",
    "no_weekend_padding": "No weekend return for a weekday (TradFi) symbol",
    "history_floor_held": "Every symbol has at least the profile's history floor of returns",
    "enough_symbols": "At least two symbols survive (an allocation needs a choice)",
}


@dg.multi_asset_check(specs=check_specs(returns_matrix, RETURNS_SPECS), pool=DUCKDB_POOL, can_subset=True)
def returns_matrix_checks(context: dg.AssetCheckExecutionContext, lakehouse: LakehouseResource, manifest: ManifestResource):
    ctx = stage_context(context, lakehouse, manifest)
    as_of = ctx.as_of
    rets = ctx.read("returns_matrix")
    excluded = ctx.read("returns_exclusions")["symbol"]
    failing = ctx.read("health_results").filter(~pl.col("passed"))["symbol"]
    calendars = ctx.read("symbols").select("symbol", "calendar")
    per_symbol = rets.group_by("symbol").agg(pl.len().alias("n"))
    weekday_syms = calendars.filter(pl.col("calendar") == Calendar.WEEKDAYS.value)["symbol"]
    offenders = {
        "quarantine_respected": rets.filter(pl.col("symbol").is_in(excluded.append(failing).implode()))["symbol"].unique(),
        "point_in_time": rets.filter(
            (pl.col("date") > as_of) | (pl.col("date") < ctx.lookback_start - timedelta(days=0))
        )["symbol"].unique(),
        "no_weekend_padding": rets.filter(
            pl.col("symbol").is_in(weekday_syms.implode()), pl.col("date").dt.weekday() > 5
        )["symbol"].unique(),
        "history_floor_held": per_symbol.filter(pl.col("n") < ctx.profile.history_floor_days)["symbol"],
        "enough_symbols": pl.Series([f"{per_symbol.height} symbols"]) if per_symbol.height < 2 else pl.Series([], dtype=pl.String),
    }
    problems = {name: [f"offender: {s}" for s in series.sort().to_list()] for name, series in offenders.items()}
    yield from check_results(context, returns_matrix, RETURNS_SPECS, problems, {"symbols": per_symbol.height, "rows": rets.height})


HEALTH_CHECKS = [ohlcv_health_gates, returns_matrix_checks]
