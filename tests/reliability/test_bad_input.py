"""Bad input, end to end: every case ends with a clear error naming the input or the fault, and a lakehouse that
already held data is byte-for-byte unchanged afterwards.

Price files go through `tsp import-prices` (tsp_cli.main.main) into a stocked lakehouse; manifests through
`tsp seed` / `tsp materialize` and the loader on real files; a scanner escaping its folder through a real
Dagster run of `discovery_scan`; profile names, cell groups and run ids through every path builder that uses
them (report, orders, snapshot and cell directories) and through a real run of `tournament_cells`.

Decisions: unsorted dates are refused (not sorted silently: a file out of order is more likely a concatenation
or a column mix-up than a harmless ordering); dates must be YYYY-MM-DD (an inferred format reads 01/02/2024 as
1 February); weekend bars are refused on the weekdays calendar (the weekend-padding gate would block them).
"""

from __future__ import annotations

import copy
import re
from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
import yaml

from partitions import cell_key, cell_of, partition_key, partition_tags, tournament_cell_partitions
from resources import resources_for
from tests.reliability.lakestate import (
    GOOD_DATES,
    assert_unchanged,
    lake_state,
    stock_lakehouse,
    write_long_csv,
    write_wide_csv,
)
from tsp_cli.main import main
from tsp_platform.config import ConfigError, load_manifest
from tsp_platform.config.manifest import DEFAULT_MANIFEST
from tsp_platform.config.scanners import load_scanner
from tsp_platform.context import StageContext
from tsp_platform.core.identifiers import path_segment, validate_run_id
from tsp_platform.lakehouse import TABLES, Lakehouse
from tsp_platform.orders.stage import orders_csv_path
from tsp_platform.reports.stage import report_directory
from tsp_platform.tournament.stage import cells_directory, snapshot_directory

SQL_SYMBOL = "X'); DROP TABLE ohlcv; --"
CLOSES = [100.0 + i for i in range(30)]
UNSAFE_NAMES = ["../escape", "..", "a/b", "a\\b", "..\\..\\x", "/abs", "a\nb", ""]


@pytest.fixture(scope="module")
def stocked_template(tmp_path_factory) -> Path:
    return stock_lakehouse(tmp_path_factory.mktemp("template"))


@pytest.fixture
def lake(tmp_path, stocked_template) -> Path:
    """A lakehouse holding data (a byte copy of one stocked through `tsp import-prices`)."""
    return stock_lakehouse(tmp_path, stocked_template)


def step_errors(result: dg.ExecuteInProcessResult) -> list[str]:
    """Each failed step's error with its causes (Dagster wraps the asset's exception)."""
    texts = []
    for event in result.all_events:
        if event.is_step_failure:
            error, parts = event.event_specific_data.error, []
            while error is not None:
                parts.append(error.message.strip())
                error = error.cause
            texts.append(" <- ".join(parts))
    return texts


def import_prices(lake: Path, path: Path, *extra: str) -> int:
    return main(["--lakehouse", str(lake), "import-prices", str(path), *extra])


def refused_import(lake: Path, path: Path, capsys, *extra: str) -> str:
    """Import `path` into the stocked lakehouse: exit 2, nothing changed; returns stderr."""
    before = lake_state(lake)
    capsys.readouterr()
    assert import_prices(lake, path, *extra) == 2
    err = capsys.readouterr().err
    assert err.startswith("import refused: ") and str(path) in err
    assert_unchanged(lake, before)
    return err


# ============================================================================================ price files


@pytest.mark.parametrize(
    "cell, expected",
    [
        ("NaN", "NYSE:BAD: NaN close on 2024-01-09 (not a finite number)"),
        ("nan", "NYSE:BAD: nan close on 2024-01-09 (not a finite number)"),
        ("inf", "NYSE:BAD: inf close on 2024-01-09 (not a finite number)"),
        ("-5", "NYSE:BAD: non-positive close -5.0 on 2024-01-09"),
        ("0", "NYSE:BAD: non-positive close 0.0 on 2024-01-09"),
        ("-0.0", "NYSE:BAD: non-positive close -0.0 on 2024-01-09"),
        ("abc", "NYSE:BAD: non-numeric close 'abc' on 2024-01-09"),
        ("1.2.3", "NYSE:BAD: non-numeric close '1.2.3' on 2024-01-09"),
    ],
    ids=["NaN", "nan", "inf", "negative", "zero", "negative-zero", "non-numeric", "two-points"],
)
def test_a_bad_price_cell_refuses_the_whole_csv_naming_symbol_date_and_reason(lake, tmp_path, capsys, cell, expected):
    bad = [str(c) for c in CLOSES]
    bad[5] = cell
    path = write_wide_csv(tmp_path / "bad.csv", {"GOOD": CLOSES, "BAD": bad}, GOOD_DATES)
    err = refused_import(lake, path, capsys, "--exchange", "NYSE")
    assert "1 problems, nothing written" in err and expected in err
    assert "NYSE:GOOD" not in err


@pytest.mark.parametrize(
    "value, expected",
    [(float("nan"), "NaN close on 2024-01-09"), (float("inf"), "inf close on 2024-01-09"),
     (-5.0, "non-positive close -5.0 on 2024-01-09"), (0.0, "non-positive close 0.0 on 2024-01-09")],
    ids=["NaN", "inf", "negative", "zero"],
)
def test_a_bad_price_in_a_parquet_file_is_refused_the_same_way(lake, tmp_path, capsys, value, expected):
    rows = [("NYSE:BAD", d.isoformat(), c) for d, c in zip(GOOD_DATES, CLOSES)]
    rows[5] = (rows[5][0], rows[5][1], value)
    path = tmp_path / "bad.parquet"
    pl.DataFrame(rows, schema=["symbol", "date", "close"], orient="row").write_parquet(path)
    err = refused_import(lake, path, capsys)
    assert f"NYSE:BAD: {expected}" in err


def test_duplicate_dates_are_refused_naming_the_symbol_and_date(lake, tmp_path, capsys):
    dates = GOOD_DATES[:10] + [GOOD_DATES[9]] + GOOD_DATES[11:20]
    path = write_long_csv(tmp_path / "dup.csv", [("NYSE:DUP", d, c) for d, c in zip(dates, CLOSES)])
    err = refused_import(lake, path, capsys)
    assert "NYSE:DUP: duplicate dates, e.g. 2024-01-15" in err


def test_unsorted_dates_are_refused_not_silently_sorted(lake, tmp_path, capsys):
    """Decision: refused. A file out of order is more often a concatenation or a column mix-up than a harmless
    ordering; the message names the first date out of order."""
    dates = list(GOOD_DATES[:10])
    dates[3], dates[4] = dates[4], dates[3]
    long = write_long_csv(tmp_path / "unsorted.csv", [("NYSE:UNS", d, c) for d, c in zip(dates, CLOSES)])
    err = refused_import(lake, long, capsys)
    assert f"NYSE:UNS: dates not in ascending order (first out of order: {dates[4]})" in err
    wide = write_wide_csv(tmp_path / "unsorted_wide.csv", {"AAA": CLOSES[:10], "BBB": CLOSES[:10]}, dates)
    err = refused_import(lake, wide, capsys, "--exchange", "NYSE")
    assert "NYSE:AAA: dates not in ascending order" in err and "NYSE:BBB: dates not in ascending order" in err


def test_monthly_bars_are_refused_for_a_daily_import(lake, tmp_path, capsys):
    months = [date(2023, m, 1) for m in range(1, 13)]
    path = write_long_csv(tmp_path / "monthly.csv", [("NYSE:MON", d, c) for d, c in zip(months, CLOSES)])
    err = refused_import(lake, path, capsys, "--calendar", "24/7")
    assert "NYSE:MON: not daily bars: median spacing 31 days" in err


@pytest.mark.parametrize(
    "at, factor, day",
    [(12, 1000, GOOD_DATES[12]), (29, 1000, GOOD_DATES[29]), (12, 1 / 1000, GOOD_DATES[13])],
    ids=["up-mid-series", "up-on-the-last-bar", "down-then-back"],
)
def test_a_1000x_spike_is_refused_naming_symbol_and_day(lake, tmp_path, capsys, at, factor, day):
    spiked = list(CLOSES)
    spiked[at] *= factor
    path = write_wide_csv(tmp_path / "spike.csv", {"SPK": spiked, "OK": CLOSES}, GOOD_DATES)
    err = refused_import(lake, path, capsys, "--exchange", "NYSE")
    assert "NYSE:SPK: price spike: a " in err and f"daily move on {day} (toxic above 500%)" in err
    assert "NYSE:OK" not in err


def test_a_symbol_carrying_sql_is_refused_as_invalid_and_the_tables_survive(lake, tmp_path, capsys):
    long = write_long_csv(tmp_path / "sql.csv", [(SQL_SYMBOL, d, c) for d, c in zip(GOOD_DATES, CLOSES)])
    err = refused_import(lake, long, capsys, "--exchange", "NYSE")
    assert f"NYSE:{SQL_SYMBOL.upper()}: invalid symbol" in err
    wide = tmp_path / "sql_wide.parquet"
    pl.DataFrame({"date": [d.isoformat() for d in GOOD_DATES], SQL_SYMBOL: CLOSES}).write_parquet(wide)
    assert "invalid symbol" in refused_import(lake, wide, capsys, "--exchange", "NYSE")
    bare = write_wide_csv(tmp_path / "bare.csv", {"AAA": CLOSES}, GOOD_DATES)
    err = refused_import(lake, bare, capsys, "--exchange", "NYSE'; DROP TABLE ohlcv; --")
    assert "NYSE'; DROP TABLE OHLCV; --:AAA: invalid symbol" in err
    assert Lakehouse(lake).read_table("ohlcv").height == 60  # the table is there, with its rows


def test_one_bad_symbol_refuses_the_file_and_every_offending_symbol_is_named(lake, tmp_path, capsys):
    """No partial import: the good symbols are not written either. A bad cell in one symbol does not hide the
    series checks of the others (they used to run only once every cell was valid)."""
    bad, dup_dates = list(map(str, CLOSES)), GOOD_DATES[:5] + [GOOD_DATES[4]] + GOOD_DATES[6:]
    rows = ([("NYSE:NEW", d, c) for d, c in zip(GOOD_DATES, CLOSES)]
            + [("NYSE:NAN", d, "NaN" if i == 3 else c) for i, (d, c) in enumerate(zip(GOOD_DATES, bad))]
            + [("NYSE:DUP", d, c) for d, c in zip(dup_dates, CLOSES)])
    err = refused_import(lake, write_long_csv(tmp_path / "mixed.csv", rows), capsys)
    assert "2 problems, nothing written" in err
    assert "NYSE:NAN: NaN close on 2024-01-05" in err and "NYSE:DUP: duplicate dates, e.g. 2024-01-08" in err
    assert "NEW" not in set(Lakehouse(lake).read_table("symbols")["ticker"])


def test_more_than_five_bad_symbols_are_all_named(lake, tmp_path, capsys):
    columns = {f"S{i}": ["NaN", *CLOSES[1:]] for i in range(8)}
    err = refused_import(lake, write_wide_csv(tmp_path / "many.csv", columns, GOOD_DATES), capsys, "--exchange", "NYSE")
    assert all(f"NYSE:S{i}: NaN close on 2024-01-02" in err for i in range(8)), err


@pytest.mark.parametrize(
    "name, text, expected",
    [
        ("dup_header.csv", "date,AAA,AAA\n2024-01-02,1,2\n", "repeated column names ['aaa']"),
        ("case_header.csv", "date,Date,AAA\n2024-01-02,2024-01-02,1\n", "repeated column names ['date']"),
        ("header_only.csv", "date,AAA\n", "no prices (nothing to import)"),
        ("empty.csv", "", "unreadable (NoDataError"),
        ("no_close.csv", "symbol,date,price\nNYSE:A,2024-01-02,1\n", "a long file (with a 'symbol' column) needs a 'close' column"),
        ("no_date.csv", "day,NYSE:A\n2024-01-02,1\n", "no 'date' column"),
        ("ragged.csv", 'date,AAA\n2024-01-02,"1\n', "unreadable"),
    ],
    ids=["repeated-header", "case-repeated-header", "header-only", "empty", "long-without-close", "no-date", "ragged"],
)
def test_a_malformed_file_is_refused_naming_the_file_and_the_problem(lake, tmp_path, capsys, name, text, expected):
    """A repeated header used to import a bogus `AAA_DUPLICATED_0` symbol; `date,Date` and a long file without
    `close` raised polars' DuplicateError; a header-only file imported nothing and said it succeeded."""
    path = tmp_path / name
    path.write_text(text)
    assert expected in refused_import(lake, path, capsys, "--exchange", "NYSE")


def test_a_nested_parquet_column_is_refused_naming_it(lake, tmp_path, capsys):
    """It used to raise polars' InvalidOperationError from a cast."""
    path = tmp_path / "nested.parquet"
    pl.DataFrame({"date": ["2024-01-02"], "AAA": [[1.0, 2.0]]}).write_parquet(path)
    assert "columns ['AAA'] hold nested or binary values" in refused_import(lake, path, capsys, "--exchange", "NYSE")


def test_rows_without_a_symbol_are_refused(lake, tmp_path, capsys):
    """A null symbol in a long file used to raise TypeError from the symbol pattern."""
    path = tmp_path / "nosymbol.csv"
    path.write_text("symbol,date,close\n,2024-01-02,1\nNYSE:A,2024-01-02,1\n")
    assert "<missing>: rows without a symbol, e.g. dated ['2024-01-02']" in refused_import(lake, path, capsys)


def test_a_non_ascii_ticker_is_refused_not_renamed(lake, tmp_path, capsys):
    """'ß'.upper() is 'SS': the ticker used to be imported as NYSE:SS."""
    path = write_wide_csv(tmp_path / "unicode.csv", {"ß": CLOSES}, GOOD_DATES)
    assert "NYSE:ß: invalid symbol" in refused_import(lake, path, capsys, "--exchange", "NYSE")


def test_an_ambiguous_date_format_is_refused(lake, tmp_path, capsys):
    """01/02/2024 was read as 1 February (format inferred); only YYYY-MM-DD is accepted."""
    path = write_wide_csv(tmp_path / "us_dates.csv", {"AAA": CLOSES[:3]}, ["01/02/2024", "01/03/2024", "01/04/2024"])
    assert "NYSE:AAA: unparseable date '01/02/2024' (expected YYYY-MM-DD)" in refused_import(
        lake, path, capsys, "--exchange", "NYSE")


def test_weekend_bars_are_refused_on_the_weekdays_calendar_and_accepted_on_24_7(lake, tmp_path, capsys):
    """The weekend-padding health gate blocks weekend bars on a weekday calendar: the importer refuses them first."""
    days = [date(2024, 1, 2 + i) for i in range(10)]  # Tue 2 .. Thu 11, a weekend inside
    path = write_wide_csv(tmp_path / "weekend.csv", {"AAA": CLOSES[:10]}, days)
    err = refused_import(lake, path, capsys, "--exchange", "NYSE")
    assert "NYSE:AAA: 2 bars outside the weekdays calendar, first 2024-01-06" in err
    assert import_prices(lake, path, "--exchange", "CRYPTO", "--calendar", "24/7") == 0


def test_a_good_file_imports_into_the_stocked_lakehouse(lake, tmp_path, capsys):
    path = write_wide_csv(tmp_path / "more.csv", {"CCC": CLOSES}, GOOD_DATES)
    assert import_prices(lake, path, "--exchange", "NYSE") == 0
    assert "1 symbols, 30 bars (30 new, 0 updated, 0 unchanged)" in capsys.readouterr().out
    assert Lakehouse(lake).read_table("ohlcv").height == 90
    state, lakehouse = lake_state(lake), Lakehouse(lake)
    assert all(state[name] == lakehouse.content_hash(name) for name in TABLES)  # the helper hashes as the store does


# ============================================================================================== manifests


def shipped() -> dict:
    return yaml.safe_load(DEFAULT_MANIFEST.read_text())


def write_manifest(tmp_path: Path, data: dict | str) -> Path:
    path = tmp_path / "manifest.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def refused_seed(lake: Path, manifest: Path, capsys, monkeypatch) -> str:
    """`tsp seed` under a broken manifest: exit 2, the lakehouse unchanged; returns stderr."""
    monkeypatch.setenv("TSP_MANIFEST", str(manifest))
    before = lake_state(lake)
    capsys.readouterr()
    assert main(["--lakehouse", str(lake), "seed"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"configuration error: {manifest}: ")
    assert_unchanged(lake, before)
    return err


def test_a_manifest_with_a_yaml_syntax_error_names_file_and_line(lake, tmp_path, capsys, monkeypatch):
    text = DEFAULT_MANIFEST.read_text().replace("lakehouse_path: data/lakehouse.duckdb", "lakehouse_path: data: x")
    line = next(i for i, t in enumerate(text.splitlines(), 1) if t.startswith("lakehouse_path"))
    err = refused_seed(lake, write_manifest(tmp_path, text), capsys, monkeypatch)
    assert f": line {line}: invalid YAML: mapping values are not allowed here" in err


def test_a_repeated_key_in_a_manifest_is_refused_naming_both_lines(lake, tmp_path, capsys, monkeypatch):
    """PyYAML keeps the last of two equal keys: a second `defaults:` silently replaced the first."""
    text = DEFAULT_MANIFEST.read_text() + "\ndefaults: {lookback_days: 600}\n"
    first = next(i for i, t in enumerate(text.splitlines(), 1) if t.startswith("defaults:"))
    last = len(text.splitlines())
    err = refused_seed(lake, write_manifest(tmp_path, text), capsys, monkeypatch)
    assert f"line {last}: invalid YAML: duplicate key 'defaults' (first on line {first})" in err


def _set(data: dict, dotted: str, value) -> dict:
    data = copy.deepcopy(data)
    *parents, leaf = dotted.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
    return data


@pytest.mark.parametrize(
    "dotted, value, key, reason",
    [
        ("defaults.friction.slipage_bps", 5, "defaults.friction.slipage_bps", "Extra inputs are not permitted"),
        ("profiles.us_equities_sample.tournament.windows.trian_days", 5,
         "profiles.us_equities_sample.tournament.windows.trian_days", "Extra inputs are not permitted"),
        ("meta_profiles.meta_sample.stream.surprise", 5, "meta_profiles.meta_sample.stream.surprise",
         "Extra inputs are not permitted"),
        ("surprise", 1, "surprise", "Extra inputs are not permitted"),
        ("defaults.lookback_days", "many", "defaults.lookback_days", "valid integer"),
        ("profiles.crypto_synthetic.scanners", "crypto/one", "profiles.crypto_synthetic.scanners", "valid tuple"),
        ("defaults.friction.slippage_bps", 5000, "defaults.friction.slippage_bps", "less than or equal to 1000"),
        ("defaults.health.toxic_daily_return", float("nan"), "defaults.health.toxic_daily_return", "greater than 0"),
        ("partitions_start", "2019-13-01", "partitions_start", "valid date"),
        ("profiles.us_equities_sample.calendar", "lunar", "profiles.us_equities_sample.calendar", "'weekdays' or '24/7'"),
    ],
    ids=["unknown-nested", "unknown-deep", "unknown-meta", "unknown-root", "wrong-type", "string-for-list", "out-of-range", "nan",
         "bad-date", "bad-enum"],
)
def test_a_wrong_manifest_key_names_file_and_dotted_key(lake, tmp_path, capsys, monkeypatch, dotted, value, key, reason):
    err = refused_seed(lake, write_manifest(tmp_path, _set(shipped(), dotted, value)), capsys, monkeypatch)
    assert f": {key}: " in err and reason in err


@pytest.mark.parametrize("text", ["", "- a list\n", "just a string\n"], ids=["empty", "list", "scalar"])
def test_a_manifest_that_is_not_a_mapping_is_refused(lake, tmp_path, capsys, monkeypatch, text):
    assert "<root>: the manifest must be a mapping" in refused_seed(lake, write_manifest(tmp_path, text), capsys, monkeypatch)


def test_a_missing_manifest_is_refused_naming_it(lake, tmp_path, capsys, monkeypatch):
    assert "file not found" in refused_seed(lake, tmp_path / "absent.yaml", capsys, monkeypatch)


@pytest.mark.parametrize("name", ["../escape", "a/b", "a\\b", "..", "ok\n", "Upper", "x" * 65])
@pytest.mark.parametrize("section", ["profiles", "aliases", "meta_profiles"])
def test_a_profile_alias_or_meta_name_that_could_name_a_path_is_refused(tmp_path, section, name):
    """Names become directories (reports, orders, snapshots) and partition keys. A trailing newline used to pass
    (`re.match` with `$`), and meta-profile names were not checked at all."""
    data = shipped()
    if section == "profiles":
        data["profiles"][name] = data["profiles"]["us_equities_sample"]
    elif section == "aliases":
        data["aliases"][name] = "us_equities_sample"
    else:
        data["meta_profiles"] = {name: {"sleeves": ["us_equities_sample", "crypto_synthetic"]}}
    path = write_manifest(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        load_manifest(path)
    assert info.value.path == str(path) and info.value.key == f"{section}.{name}"
    assert "profile names are lower-case [a-z0-9_]" in str(info.value)


# =============================================================================================== scanners


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "text, key, reason",
    [
        ("layer: L4\ndirection: long\nlimit: [1\n", "line 4", "invalid YAML"),
        ("layer: L4\ndirection: long\nlimit: 5\nlimit: 6\n", "line 4", "duplicate key 'limit' (first on line 3)"),
        ("layer: L4\ndirection: long\nlimt: 5\n", "limt", "unknown key"),
        ("layer: L4\ndirection: long\nlimit: many\n", "limit", "valid integer"),
        ("layer: L4\ndirection: sideways\n", "direction", "'long' or 'short'"),
        ("layer: L4\ndirection: long\nfilters:\n  - {left: close, operation: bigger, right: 1}\n",
         "filters.0.operation", "Input should be"),
        ("- layer: L4\n", "<root>", "a scanner layer must be a mapping"),
        ("layer: L4\nbase_preset: ../../../outside.yaml\ndirection: long\n", "base_preset", "resolves outside"),
    ],
    ids=["syntax", "repeated-key", "unknown-key", "wrong-type", "bad-enum", "bad-filter", "not-a-mapping",
         "preset-escapes"],
)
def test_a_malformed_scanner_names_file_and_key(tmp_path, text, key, reason):
    root = tmp_path / "scanners"
    path = write(root, "s/bad.yaml", text)
    with pytest.raises(ConfigError) as info:
        load_scanner("s/bad", root=root)
    assert info.value.path == str(path.resolve())
    assert str(info.value).startswith(f"{path.resolve()}: {key}: ") and reason in str(info.value)


@pytest.mark.parametrize("ref", ["../../../etc/passwd", "/etc/passwd", "..\\..\\x"])
def test_a_scanner_reference_outside_the_scanner_folder_is_refused(ref):
    with pytest.raises(ConfigError, match="resolves outside|not found"):
        load_scanner(ref)


def test_a_profile_naming_a_scanner_outside_its_folder_fails_its_dagster_run_and_writes_no_data(lake, tmp_path, instance):
    """A real run of `discovery_scan` under a manifest whose profile names `../../outside`: the run fails with the
    ConfigError naming the scanner; no data table changes (the audit ledger records the failed step)."""
    write(tmp_path, "outside.yaml", "layer: L4\ndirection: long\n")
    data = shipped()
    data["profiles"]["us_equities_sample"]["scanners"] = ["../../../outside"]
    manifest = write_manifest(tmp_path, data)
    before = lake_state(lake, exclude=("audit_ledger",))
    from assets.data_cycle import discovery_scan

    result = dg.materialize(
        [discovery_scan], partition_key=partition_key("us_equities_sample", "2022-12-28"), instance=instance,
        resources=resources_for(lake, manifest), raise_on_error=False,
    )
    assert not result.success
    errors = step_errors(result)
    assert errors and "ConfigError" in errors[0] and "../../../outside" in errors[0] and "resolves outside" in errors[0]
    assert_unchanged(lake, before, exclude=("audit_ledger",))
    outcome = Lakehouse(lake).query("SELECT record FROM audit_ledger WHERE kind = 'outcome'")["record"].to_list()
    assert len(outcome) == 1 and '"status":"failure"' in outcome[0] and "resolves outside" in outcome[0]


# ============================================================================================ profiles, CLI


@pytest.fixture
def isolated_instance(tmp_path, monkeypatch):
    """DAGSTER_HOME and the lakehouse in tmp: a refused command must create neither."""
    home, lake = tmp_path / "dagster_home", tmp_path / "cli.duckdb"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("TSP_LAKEHOUSE", str(lake))
    return home, lake


@pytest.mark.parametrize("profile", ["nope", "../us_equities_sample", "us_equities_sample/..", "..\\x", ".."])
def test_materialize_with_an_unknown_profile_exits_2_naming_it_and_the_known_ones(isolated_instance, capsys, profile):
    home, lake = isolated_instance
    assert main(["materialize", "--profile", profile, "--date", "2022-12-28"]) == 2
    err = capsys.readouterr().err
    assert f"profiles.{profile}: unknown profile {profile!r} (known: binance_spot_ratings, crypto_synthetic, " in err
    assert not home.exists() and not lake.exists()


@pytest.mark.parametrize(
    "day, expected",
    [("2022-13-45", "as-of date '2022-13-45' is not a YYYY-MM-DD date"),
     ("../../x", "as-of date '../../x' is not a YYYY-MM-DD date"),
     ("20221228", "as-of date '20221228' is not a YYYY-MM-DD date"),
     ("1990-01-01", "--date 1990-01-01 is outside the daily partitions (2019-01-01 .. ")],
    ids=["impossible", "path", "basic-iso", "before-partitions"],
)
def test_materialize_with_a_bad_date_exits_2_naming_it(isolated_instance, capsys, day, expected):
    """These used to end in a ValueError or DagsterUnknownPartitionError traceback (exit 1)."""
    home, lake = isolated_instance
    assert main(["materialize", "--profile", "us_equities_sample", "--date", day]) == 2
    err = capsys.readouterr().err
    assert err.startswith("materialize refused: ") and expected in err
    assert not home.exists() and not lake.exists()


def test_backfill_with_an_unknown_profile_exits_2(isolated_instance, capsys):
    assert main(["backfill", "--profile", "nope", "--start", "2022-12-01", "--end", "2022-12-02"]) == 2
    assert "unknown profile 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("profile", ["nope", "../x", "a/b", "a\\b"])
def test_the_partition_helpers_refuse_an_unknown_profile(profile):
    for call in (lambda: partition_key(profile, "2022-12-28"), lambda: partition_tags(profile, "2022-12-28"),
                 lambda: cell_key(profile, "2022-12-28", "baselines")):
        with pytest.raises(ConfigError, match=re.escape(f"unknown profile {profile!r}")):
            call()
    assert str(partition_key("equities", "2022-12-28")) == "2022-12-28|us_equities_sample"  # aliases resolve


# ============================================================================== paths built from names


@pytest.mark.parametrize("group", [g for g in UNSAFE_NAMES if g and "|" not in g])
def test_a_cell_group_that_could_name_a_path_is_refused_by_the_partition_helpers(group):
    with pytest.raises(ValueError, match="cell group"):
        cell_key("us_equities_sample", "2022-12-28", group)
    with pytest.raises(ValueError, match="cell group"):
        cell_of(f"2022-12-28|us_equities_sample|{group}")


@pytest.mark.parametrize("name", UNSAFE_NAMES)
def test_every_path_builder_refuses_a_name_that_could_leave_its_root(tmp_path, name):
    day = date(2022, 12, 28)
    builders = {
        "report directory": lambda: report_directory(tmp_path, name, day),
        "orders CSV": lambda: orders_csv_path(tmp_path, name, day),
        "snapshot directory": lambda: snapshot_directory(tmp_path, name, day),
        "cells directory (profile)": lambda: cells_directory(tmp_path, name, day, "baselines"),
        "cells directory (group)": lambda: cells_directory(tmp_path, "us_equities_sample", day, name),
    }
    for what, build in builders.items():
        with pytest.raises(ValueError, match="cannot name a file or directory") as info:
            build()
        assert repr(name) in str(info.value), what


def test_every_shipped_profile_and_cell_group_builds_paths_inside_their_roots(tmp_path):
    manifest, day = load_manifest(), date(2022, 12, 28)
    root = tmp_path.resolve()
    for profile in manifest.profiles():
        paths = [report_directory(root, profile.name, day), orders_csv_path(root, profile.name, day),
                 snapshot_directory(root, profile.name, day)]
        paths += [cells_directory(root, profile.name, day, group) for group in profile.tournament.cell_groups()]
        for path in paths:
            assert path.resolve().is_relative_to(root) and ".." not in path.parts, path


@pytest.mark.parametrize("run_id", ["../x", "a/b", "a\\b", "..", "ok\n", "", "x" * 65, "a b"])
def test_a_run_id_that_could_name_a_path_is_refused(run_id, lakehouse):
    """A trailing newline used to pass (`re.match` with `$`)."""
    with pytest.raises(ValueError, match="run id"):
        validate_run_id(run_id)
    profile = load_manifest().profile("us_equities_sample")
    with pytest.raises(ValueError, match="run id"):
        StageContext(lakehouse, profile, date(2022, 12, 28), run_id=run_id)
    assert validate_run_id("3f0c2a9e-5b1d-4c8e-9a7f-0d2e4b6c8a1f")  # a Dagster run id passes


def test_path_segment_accepts_ordinary_names():
    for name in ("us_equities_sample", "baselines", "hrp", "2022-12-28", "a.b"):
        assert path_segment(name, "name") == name


def test_a_tournament_cell_partition_carrying_a_path_fails_its_run_and_writes_nothing(tmp_path, instance):
    """A real run of `tournament_cells` for a dynamic partition whose cell group is `..`/`../..`-like (anyone can add
    one in the UI): the run fails naming the key before any file is written, inside or outside the roots."""
    lake = tmp_path / "lake" / "lake.duckdb"
    lake.parent.mkdir()
    from assets.tournament import tournament_cells

    keys = ["2022-12-28|us_equities_sample|..", "2022-12-28|us_equities_sample|..\\..\\escape"]
    instance.add_dynamic_partitions(tournament_cell_partitions.name, keys)
    for key in keys:
        result = dg.materialize([tournament_cells], partition_key=key, instance=instance,
                                resources=resources_for(lake), raise_on_error=False)
        assert not result.success
        errors = step_errors(result)
        assert errors and f"tournament cell key {key!r}: cell group" in errors[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lake"] and not any(lake.parent.iterdir())
