"""Price-file import validation: good files load completely, every bad file is refused with a reason per symbol."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from tsp_platform.core.vocabulary import AssetClass, Calendar
from tsp_platform.lakehouse.schema import SYMBOLS
from tsp_platform.sources.base import OHLCV_SCHEMA
from tsp_platform.sources.price_file import PriceFileError, validate_price_file

# Weekday sessions, Tue 2 .. Thu 11 January (the default weekdays calendar refuses weekend bars)
DATES = [d for d in (date(2024, 1, 2) + timedelta(days=i) for i in range(10)) if d.weekday() < 5]


def write_wide(path: Path, columns: dict[str, list]) -> Path:
    lines = ["date," + ",".join(columns)]
    for i, d in enumerate(DATES[: len(next(iter(columns.values())))]):
        lines.append(",".join([d.isoformat(), *(str(v[i]) for v in columns.values())]))
    path.write_text("\n".join(lines) + "\n")
    return path


def long_rows(symbol: str, closes: list[float], dates=None) -> list[dict]:
    dates = dates or DATES[: len(closes)]
    return [
        {"symbol": symbol, "date": d.isoformat(), "open": c * 0.99, "high": c * 1.02, "low": c * 0.97, "close": c, "volume": 1000.0}
        for d, c in zip(dates, closes)
    ]


def write_long(path: Path, rows: list[dict]) -> Path:
    header = ["symbol", "date", "open", "high", "low", "close", "volume"]
    lines = [",".join(header)] + [",".join(str(r[h]) for h in header) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def rejected(report, symbol_fragment: str) -> list[str]:
    return [reason for symbol, reason in report.rejections if symbol_fragment in symbol]


GOOD = [100.0, 101.0, 99.5, 102.0, 103.5, 103.0, 104.0, 105.0]


# ---------------------------------------------------------------------------------------------- good files


def test_good_wide_csv(tmp_path):
    path = write_wide(tmp_path / "wide.csv", {"AAA": GOOD, "BBB": [v * 2 for v in GOOD]})
    report = validate_price_file(path, exchange="nyse")
    assert report.ok, report.rejections
    assert report.bars.schema == pl.Schema(OHLCV_SCHEMA)
    assert report.bars.height == 16
    assert sorted(report.bars["symbol"].unique()) == ["NYSE:AAA", "NYSE:BBB"]
    aaa = report.bars.filter(pl.col("symbol") == "NYSE:AAA")
    assert aaa["close"].to_list() == GOOD and aaa["date"].to_list() == DATES
    assert aaa["high"].null_count() == aaa.height  # close-only: no invented OHLC
    assert set(report.bars["source"]) == {"import:wide.csv"}
    assert report.symbols.columns == SYMBOLS.column_names
    assert report.symbols["calendar"].to_list() == [Calendar.WEEKDAYS.value] * 2
    assert report.symbols["exchange"].to_list() == ["NYSE", "NYSE"]


def test_wide_csv_with_qualified_columns_needs_no_exchange(tmp_path):
    path = write_wide(tmp_path / "wide.csv", {"NASDAQ:AAA": GOOD})
    report = validate_price_file(path, asset_class=AssetClass.ETF)
    assert report.ok
    assert report.symbols.row(0, named=True)["asset_class"] == "etf"


def test_bare_ticker_without_exchange_is_rejected(tmp_path):
    report = validate_price_file(write_wide(tmp_path / "wide.csv", {"AAA": GOOD}))
    assert not report.ok and report.bars is None
    assert report.rejections[0][0] == "AAA" and "invalid symbol" in report.rejections[0][1]


def test_good_long_csv_with_ohlcv(tmp_path):
    path = write_long(tmp_path / "long.csv", long_rows("BINANCE:BTCUSDT", GOOD) + long_rows("BINANCE:ETHUSDT", GOOD[:5]))
    report = validate_price_file(path, asset_class=AssetClass.CRYPTO, calendar=Calendar.ALWAYS)
    assert report.ok, report.rejections
    btc = report.bars.filter(pl.col("symbol") == "BINANCE:BTCUSDT")
    assert btc.height == 8
    assert btc["volume"].to_list() == [1000.0] * 8
    assert btc["high"].to_list() == pytest.approx([c * 1.02 for c in GOOD])
    assert report.bars.filter(pl.col("symbol") == "BINANCE:ETHUSDT").height == 5
    assert set(report.symbols["calendar"]) == {"24/7"} and set(report.symbols["asset_class"]) == {"crypto"}


def test_good_parquet(tmp_path):
    path = tmp_path / "prices.parquet"
    frame = pl.DataFrame(long_rows("NYSE:AAA", GOOD)).with_columns(pl.col("date").str.to_date())
    frame.write_parquet(path)
    report = validate_price_file(path)
    assert report.ok, report.rejections
    assert report.bars["close"].to_list() == GOOD
    assert report.bars["date"].to_list() == DATES


def test_wide_csv_missing_cells_are_not_bars(tmp_path):
    path = tmp_path / "wide.csv"
    rows = [f"{d.isoformat()},{GOOD[i]},{'' if i < 3 else GOOD[i]}" for i, d in enumerate(DATES)]
    path.write_text("date,NYSE:OLD,NYSE:NEW\n" + "\n".join(rows) + "\n")
    report = validate_price_file(path)
    assert report.ok, report.rejections
    assert report.bars.filter(pl.col("symbol") == "NYSE:NEW").height == 5  # listed later: no bars before


# ----------------------------------------------------------------------------------------------- bad files


@pytest.mark.parametrize(
    "value, fragment",
    [("NaN", "NaN close"), ("-5", "non-positive close"), ("0", "non-positive close"), ("abc", "non-numeric close 'abc'")],
    ids=["nan", "negative", "zero", "non-numeric"],
)
def test_bad_price_cell_is_rejected_naming_the_symbol(tmp_path, value, fragment):
    bad = [str(v) for v in GOOD]
    bad[3] = value
    report = validate_price_file(write_wide(tmp_path / "wide.csv", {"NYSE:GOOD": GOOD, "NYSE:BAD": bad}))
    assert not report.ok and report.bars is None
    reasons = rejected(report, "NYSE:BAD")
    assert any(fragment in r for r in reasons), report.rejections
    assert not rejected(report, "NYSE:GOOD")


def test_infinite_price_is_rejected(tmp_path):
    bad = ["inf", *(str(v) for v in GOOD[1:])]
    report = validate_price_file(write_wide(tmp_path / "wide.csv", {"NYSE:INF": bad}))
    assert not report.ok, f"an infinite close was accepted: {report.bars['close'].to_list()[:2]}"
    assert rejected(report, "NYSE:INF")


def test_negative_volume_and_non_positive_low_are_rejected(tmp_path):
    rows = long_rows("NYSE:AAA", GOOD)
    rows[2]["volume"] = -1.0
    rows[4]["low"] = 0.0
    report = validate_price_file(write_long(tmp_path / "long.csv", rows))
    reasons = rejected(report, "NYSE:AAA")
    assert any("negative volume" in r for r in reasons) and any("non-positive low" in r for r in reasons)


def test_duplicate_dates_are_rejected(tmp_path):
    dates = DATES[:4] + [DATES[3]] + DATES[5:8]
    report = validate_price_file(write_long(tmp_path / "long.csv", long_rows("NYSE:DUP", GOOD, dates)))
    assert not report.ok
    assert any("duplicate dates" in r and DATES[3].isoformat() in r for r in rejected(report, "NYSE:DUP"))


def test_unsorted_dates_are_rejected(tmp_path):
    dates = [DATES[0], DATES[2], DATES[1], *DATES[3:8]]
    report = validate_price_file(write_long(tmp_path / "long.csv", long_rows("NYSE:UNS", GOOD, dates)))
    assert any("not in ascending order" in r for r in rejected(report, "NYSE:UNS"))


def test_monthly_bars_are_rejected(tmp_path):
    months = [date(2023, m, 1) for m in range(1, 9)]
    report = validate_price_file(write_long(tmp_path / "long.csv", long_rows("NYSE:MON", GOOD, months)))
    assert any("not daily bars" in r for r in rejected(report, "NYSE:MON"))


def test_a_1000x_spike_is_rejected(tmp_path):
    spiked = list(GOOD)
    spiked[4] = GOOD[3] * 1000
    report = validate_price_file(write_wide(tmp_path / "wide.csv", {"NYSE:SPK": spiked, "NYSE:OK": GOOD}))
    reasons = rejected(report, "NYSE:SPK")
    assert any("price spike" in r and DATES[4].isoformat() in r for r in reasons), report.rejections
    assert not rejected(report, "NYSE:OK")


def test_inconsistent_ohlc_is_rejected(tmp_path):
    rows = long_rows("NYSE:OHL", GOOD)
    rows[5]["high"] = rows[5]["close"] * 0.9  # high below close
    report = validate_price_file(write_long(tmp_path / "long.csv", rows))
    assert any("inconsistent OHLC" in r and DATES[5].isoformat() in r for r in rejected(report, "NYSE:OHL"))


def test_symbol_carrying_sql_is_rejected_as_invalid(tmp_path):
    rows = long_rows("X'; DROP TABLE ohlcv;--", GOOD) + long_rows("NYSE:OK", GOOD)
    path = tmp_path / "long.parquet"
    pl.DataFrame(rows).write_parquet(path)
    report = validate_price_file(path, exchange="NYSE")
    assert not report.ok and report.bars is None
    bad = [(s, r) for s, r in report.rejections if "DROP TABLE" in s]
    assert len(bad) == 1 and "invalid symbol" in bad[0][1]
    assert not rejected(report, "NYSE:OK")


def test_unparseable_date_is_rejected(tmp_path):
    rows = long_rows("NYSE:AAA", GOOD)
    rows[1]["date"] = "2024-13-45"
    report = validate_price_file(write_long(tmp_path / "long.csv", rows))
    assert any("unparseable date '2024-13-45'" in r for r in rejected(report, "NYSE:AAA"))


def test_missing_date_column_is_an_error(tmp_path):
    path = tmp_path / "nodate.csv"
    path.write_text("day,NYSE:AAA\n2024-01-02,1\n")
    with pytest.raises(PriceFileError, match="no 'date' column"):
        validate_price_file(path)


def test_unknown_extension_is_an_error(tmp_path):
    path = tmp_path / "prices.xlsx"
    path.write_text("date,NYSE:AAA\n2024-01-02,1\n")
    with pytest.raises(PriceFileError, match=r"\.csv or \.parquet"):
        validate_price_file(path)


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(PriceFileError, match="file not found"):
        validate_price_file(tmp_path / "absent.csv")


def test_corrupt_parquet_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "corrupt.parquet"
    path.write_bytes(b"not a parquet file")
    with pytest.raises(PriceFileError, match="unreadable") as info:
        validate_price_file(path)
    assert str(path) in str(info.value)
