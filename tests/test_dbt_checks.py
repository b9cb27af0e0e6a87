"""dbt_checks/ through Dagster: source tests land as asset checks on ohlcv_history / returns_matrix.

Every test builds a real DuckDB lakehouse in tmp_path with `Lakehouse.upsert` / `replace_partitions`, points dbt at
it with `dbt_resource(path)` and runs `dbt build` through `dagster.materialize` (offline, no `dbt deps`).
"""

from datetime import date, datetime, timedelta

import dagster as dg
import polars as pl
import pytest

from assets.dbt_checks import DBT_PROJECT_DIR, dbt_check_assets, dbt_resource, prepare_dbt_manifest
from tsp_platform.lakehouse import Lakehouse

pytestmark = pytest.mark.slow

OHLCV_HISTORY = dg.AssetKey("ohlcv_history")
RETURNS_MATRIX = dg.AssetKey("returns_matrix")

# (asset, check) -> dbt severity
EXPECTED_CHECKS = {
    (OHLCV_HISTORY, "ohlcv_close_not_null"): "error",
    (OHLCV_HISTORY, "ohlcv_close_positive"): "error",
    (OHLCV_HISTORY, "ohlcv_symbol_date_unique"): "error",
    (OHLCV_HISTORY, "ohlcv_ohlc_consistent"): "warn",
    (OHLCV_HISTORY, "ohlcv_close_move_not_toxic"): "warn",
    (RETURNS_MATRIX, "returns_matrix_ret_not_null"): "error",
    (RETURNS_MATRIX, "returns_matrix_ret_not_toxic"): "error",
    (RETURNS_MATRIX, "returns_matrix_key_unique"): "error",
    (RETURNS_MATRIX, "returns_matrix_no_weekend_for_weekday_symbols"): "error",
    (RETURNS_MATRIX, "returns_matrix_no_excluded_symbols"): "error",
}
MODELS = {dg.AssetKey("health_summary"), dg.AssetKey("ohlcv_coverage"), dg.AssetKey("returns_coverage")}

PROFILE = "test_profile"
AS_OF = date(2025, 1, 14)  # a Tuesday
DAYS = [date(2025, 1, 1) + timedelta(days=i) for i in range(14)]
WEEKDAY_SYMBOL, CRYPTO_SYMBOL, EXCLUDED_SYMBOL = "NYSE:AAA", "SYNTH:BBBUSDT", "NYSE:CCC"
CALENDARS = {WEEKDAY_SYMBOL: "weekdays", CRYPTO_SYMBOL: "24/7", EXCLUDED_SYMBOL: "weekdays"}


# -- a small, clean lakehouse --------------------------------------------------------------------------------


def _symbols() -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "symbol": s, "exchange": s.split(":")[0], "ticker": s.split(":")[1], "base": None, "quote": None,
                "asset_class": "crypto" if cal == "24/7" else "equity", "sector": None, "industry": None,
                "currency": "USD", "calendar": cal, "tick_size": 0.01, "lot_size": 1.0, "is_stablecoin": False,
                "is_synthetic": True, "source": "test", "description": "test fixture",
            }
            for s, cal in CALENDARS.items()
        ]
    )


def _on_calendar(symbol: str) -> list[date]:
    return [d for d in DAYS if CALENDARS[symbol] == "24/7" or d.isoweekday() <= 5]


def _bars() -> pl.DataFrame:
    rows = []
    for symbol in CALENDARS:
        for i, day in enumerate(_on_calendar(symbol)):
            close = 100.0 + i
            rows.append(
                {
                    "symbol": symbol, "date": day, "open": close - 0.5, "high": close + 1.0, "low": close - 1.0,
                    "close": close, "volume": 1_000.0, "source": "test", "ingested_at": datetime(2025, 1, 15),
                }
            )
    return pl.DataFrame(rows)


def _returns(extra: list[dict] | None = None) -> pl.DataFrame:
    rows = [
        {"profile": PROFILE, "as_of": AS_OF, "symbol": s, "date": d, "ret": 0.01}
        for s in (WEEKDAY_SYMBOL, CRYPTO_SYMBOL)
        for d in _on_calendar(s)[1:]
    ]
    rows += [{"profile": PROFILE, "as_of": AS_OF, "ret": 0.01, **row} for row in extra or []]
    return pl.DataFrame(rows, schema_overrides={"ret": pl.Float64})


def _partition_frames(extra_returns: list[dict] | None = None) -> dict[str, pl.DataFrame]:
    health = [
        {"profile": PROFILE, "as_of": AS_OF, "gate": gate, "symbol": s, "passed": s != EXCLUDED_SYMBOL,
         "value": 0.0, "detail": "test"}
        for gate in ("toxic_return", "weekend_padding")
        for s in CALENDARS
    ]
    exclusions = [{"profile": PROFILE, "as_of": AS_OF, "symbol": EXCLUDED_SYMBOL, "reason": "quarantined",
                   "detail": "failed toxic_return"}]
    return {
        "returns_matrix": _returns(extra_returns),
        "returns_exclusions": pl.DataFrame(exclusions),
        "health_results": pl.DataFrame(health),
    }


def build_lakehouse(path, extra_returns: list[dict] | None = None) -> Lakehouse:
    lakehouse = Lakehouse(path)
    lakehouse.upsert("symbols", _symbols())
    lakehouse.upsert("ohlcv", _bars())
    lakehouse.replace_partitions(PROFILE, AS_OF, _partition_frames(extra_returns))
    return lakehouse


def run_dbt_checks(path) -> tuple[dg.ExecuteInProcessResult, dict[tuple[dg.AssetKey, str], dg.AssetCheckEvaluation]]:
    from resources import resources_for

    result = dg.materialize([dbt_check_assets], resources=resources_for(path), raise_on_error=False)
    evaluations = {(e.asset_key, e.check_name): e for e in result.get_asset_check_evaluations()}
    return result, evaluations


def failed_rows(evaluation: dg.AssetCheckEvaluation) -> int:
    return evaluation.metadata["dagster_dbt/failed_row_count"].value


def materialized(result: dg.ExecuteInProcessResult) -> set[dg.AssetKey]:
    return {e.asset_key for e in result.get_asset_materialization_events()}


def step_failure_class(result: dg.ExecuteInProcessResult) -> str | None:
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    return failures[0].event_specific_data.error.cls_name if failures else None


# -- definitions (no dbt run) --------------------------------------------------------------------------------


def test_project_is_package_free_and_manifest_prepared():
    assert prepare_dbt_manifest().exists()
    assert not (DBT_PROJECT_DIR / "packages.yml").exists() and not (DBT_PROJECT_DIR / "dependencies.yml").exists()


def test_source_tests_are_checks_on_the_python_assets():
    specs = {(spec.asset_key, spec.name): spec for spec in dbt_check_assets.check_specs}
    assert set(specs) == set(EXPECTED_CHECKS)
    for key, severity in EXPECTED_CHECKS.items():
        assert specs[key].blocking is (severity == "error"), key  # dagster-dbt: ERROR tests block, WARN never
    assert set(dbt_check_assets.keys) == MODELS
    upstream = {dep.asset_key for spec in dbt_check_assets.specs for dep in spec.deps}
    assert {OHLCV_HISTORY, RETURNS_MATRIX, dg.AssetKey("embedded_market_data")} <= upstream


def test_checks_attach_to_the_data_cycle_graph(tmp_path):
    """Against the real data-cycle assets: keys resolve, no key clash, and a job over everything still plans.

    The ERROR checks are blocking, so in one job Dagster splits the dbt step around the partitioned assets:
    (ohlcv tests) after ohlcv_history and before returns_matrix, (returns tests) after returns_matrix.
    """
    from assets.data_cycle import DATA_CYCLE_ASSETS, embedded_market_data
    from resources import build_resources

    path = tmp_path / "lake.duckdb"
    defs = dg.Definitions(
        assets=[embedded_market_data, *DATA_CYCLE_ASSETS, dbt_check_assets],
        resources={**build_resources("ci"), "dbt": dbt_resource(path)},
    )
    graph = defs.resolve_asset_graph()
    for asset_key, check_name in EXPECTED_CHECKS:
        assert graph.has(asset_key) and graph.get(asset_key).is_materializable
        assert dg.AssetCheckKey(asset_key, check_name) in graph.asset_check_keys
    job = defs.resolve_implicit_global_asset_job_def()  # fails on a dependency cycle
    assert {"dbt_checks", "dbt_checks_2"} <= {node.name for node in job.graph.nodes}


def test_dbt_resource_refuses_a_file_named_like_the_dbt_schema(tmp_path):
    with pytest.raises(ValueError, match="collide"):
        dbt_resource(tmp_path / "dbt_checks.duckdb")


# -- dbt build through Dagster -------------------------------------------------------------------------------


def test_clean_lakehouse_passes_every_check(tmp_path):
    path = tmp_path / "clean_lake.duckdb"  # any stem: dbt re-parses when the profile's path differs
    build_lakehouse(path)

    result, evaluations = run_dbt_checks(path)

    assert result.success
    assert set(evaluations) == set(EXPECTED_CHECKS)
    assert {k for k, e in evaluations.items() if not e.passed} == set()
    assert materialized(result) == MODELS
    summary = Lakehouse(path).query("SELECT * FROM dbt_checks.returns_coverage")
    assert summary.to_dicts() == [
        {"profile": PROFILE, "as_of": AS_OF, "symbols": 2, "return_rows": len(_returns()),
         "first_date": date(2025, 1, 2), "last_date": AS_OF, "excluded": 1,
         "excluded_symbols": f"{EXCLUDED_SYMBOL} (quarantined)"}
    ]


def test_bad_rows_fail_their_checks_on_returns_matrix(tmp_path):
    path = tmp_path / "bad_lake.duckdb"
    build_lakehouse(
        path,
        extra_returns=[
            {"symbol": CRYPTO_SYMBOL, "date": date(2024, 12, 31), "ret": 6.0},  # toxic (> 500 %)
            {"symbol": WEEKDAY_SYMBOL, "date": date(2025, 1, 11), "ret": 0.01},  # a Saturday, weekday calendar
            {"symbol": EXCLUDED_SYMBOL, "date": date(2025, 1, 13), "ret": 0.01},  # listed in returns_exclusions
        ],
    )

    result, evaluations = run_dbt_checks(path)

    expected_failures = {
        (RETURNS_MATRIX, "returns_matrix_ret_not_toxic"),
        (RETURNS_MATRIX, "returns_matrix_no_weekend_for_weekday_symbols"),
        (RETURNS_MATRIX, "returns_matrix_no_excluded_symbols"),
    }
    assert set(evaluations) == set(EXPECTED_CHECKS)
    assert {k for k, e in evaluations.items() if not e.passed} == expected_failures
    for key in expected_failures:
        assert failed_rows(evaluations[key]) == 1, key
        assert evaluations[key].severity == dg.AssetCheckSeverity.ERROR and evaluations[key].blocking
    # The step fails because blocking ERROR checks failed (the gate), not because dbt exited non-zero:
    # raise_on_error=False, and only dbt errors (not test findings) raise from the asset body.
    assert not result.success
    assert step_failure_class(result) == "DagsterAssetCheckFailedError"
    # dbt build skips the model downstream of a failed ERROR test; the others still materialise.
    assert materialized(result) == MODELS - {dg.AssetKey("returns_coverage")}


def test_embedded_seed_only_warns_on_the_injected_faults(tmp_path):
    """The real embedded data: the synthetic market's OHLC-inconsistent bar and +600 % spike are WARN, not a stop."""
    from tsp_platform.config import load_manifest
    from tsp_platform.sources.seed import seed_embedded

    path = tmp_path / "seeded_lake.duckdb"
    lakehouse = Lakehouse(path)
    seed_embedded(lakehouse, load_manifest(None))

    result, evaluations = run_dbt_checks(path)

    warned = {(OHLCV_HISTORY, "ohlcv_ohlc_consistent"), (OHLCV_HISTORY, "ohlcv_close_move_not_toxic")}
    assert result.success  # WARN never blocks
    assert {k for k, e in evaluations.items() if not e.passed} == warned
    for key in warned:
        assert evaluations[key].severity == dg.AssetCheckSeverity.WARN and not evaluations[key].blocking
        assert failed_rows(evaluations[key]) == 1, key  # exactly the one injected bar each
    coverage = lakehouse.query("SELECT count(*) AS n FROM dbt_checks.ohlcv_coverage")["n"][0]
    assert coverage == lakehouse.query("SELECT count(DISTINCT symbol) AS n FROM ohlcv")["n"][0]


class _FakeInvocation:
    """The slice of DbtCliInvocation that _raise_on_dbt_error reads (a real dbt error run costs ~10 s)."""

    dbt_command = "dbt build"

    def __init__(self, results: list[dict] | None, successful: bool):
        self._results, self._successful = results, successful

    def get_artifact(self, name):
        if self._results is None:
            raise FileNotFoundError(name)
        return {"results": self._results}

    def is_successful(self):
        return self._successful

    def get_error(self):
        return None if self._successful else RuntimeError("dbt exited 2")


def test_only_dbt_errors_fail_the_step_never_test_findings():
    from assets.dbt_checks import _raise_on_dbt_error

    context = dg.build_asset_context()
    findings = [
        {"unique_id": "test.p.returns_matrix_ret_not_toxic", "status": "fail", "message": "Got 1 result"},
        {"unique_id": "test.p.ohlcv_ohlc_consistent", "status": "warn", "message": "Got 1 result"},
        {"unique_id": "model.p.returns_coverage", "status": "skipped", "message": None},
        {"unique_id": "model.p.health_summary", "status": "success", "message": "OK"},
    ]
    _raise_on_dbt_error(_FakeInvocation(findings, successful=False), context)  # exit 1 from findings: no raise

    broken_test = [{"unique_id": "test.p.x", "status": "error", "message": "Catalog Error: Table does not exist"}]
    broken_model = [{"unique_id": "model.p.y", "status": "error", "message": "Binder Error"}]
    for results in (broken_test, broken_model):
        with pytest.raises(dg.Failure, match="Error"):
            _raise_on_dbt_error(_FakeInvocation(results, successful=False), context)
    with pytest.raises(dg.Failure, match="dbt exited 2"):  # died before run_results.json
        _raise_on_dbt_error(_FakeInvocation(None, successful=False), context)
