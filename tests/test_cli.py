"""`tsp import-prices` on good and bad files: bad input names the problem and writes nothing."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from tsp_cli.main import main
from tsp_platform.lakehouse import Lakehouse


def write_wide_csv(path, rows: int = 30, spike_at: int | None = None) -> None:
    days = [date(2022, 1, 3) + timedelta(days=i) for i in range(rows * 2)]
    weekdays = [d for d in days if d.weekday() < 5][:rows]
    closes = [100.0 + i for i in range(rows)]
    if spike_at is not None:
        closes[spike_at] *= 1000
    pl.DataFrame({"date": [d.isoformat() for d in weekdays], "AAA": closes, "BBB": [50.0 + i / 2 for i in range(rows)]}).write_csv(path)


def test_import_good_file_then_reimport_changes_nothing(tmp_path, capsys):
    lake_path, csv = tmp_path / "lake.duckdb", tmp_path / "prices.csv"
    write_wide_csv(csv)
    assert main(["--lakehouse", str(lake_path), "import-prices", str(csv), "--exchange", "NYSE"]) == 0
    assert "2 symbols, 60 bars (60 new" in capsys.readouterr().out
    lake = Lakehouse(lake_path)
    symbols = lake.read_table("symbols")
    assert symbols["symbol"].to_list() == ["NYSE:AAA", "NYSE:BBB"] and set(symbols["calendar"]) == {"weekdays"}
    content = lake.content_hash("ohlcv")
    assert main(["--lakehouse", str(lake_path), "import-prices", str(csv), "--exchange", "NYSE"]) == 0
    assert "0 new, 0 updated, 60 unchanged" in capsys.readouterr().out
    assert lake.content_hash("ohlcv") == content


def test_bad_file_is_refused_whole_and_nothing_stored_changes(tmp_path, capsys):
    lake_path, good, bad = tmp_path / "lake.duckdb", tmp_path / "good.csv", tmp_path / "bad.csv"
    write_wide_csv(good)
    assert main(["--lakehouse", str(lake_path), "import-prices", str(good), "--exchange", "NYSE"]) == 0
    lake = Lakehouse(lake_path)
    before = (lake.content_hash("ohlcv"), lake.content_hash("symbols"))
    write_wide_csv(bad, spike_at=10)
    assert main(["--lakehouse", str(lake_path), "import-prices", str(bad), "--exchange", "NYSE"]) == 2
    err = capsys.readouterr().err
    assert "nothing written" in err and "NYSE:AAA" in err and "spike" in err
    assert (lake.content_hash("ohlcv"), lake.content_hash("symbols")) == before


def test_unreadable_and_missing_files_are_named(tmp_path, capsys):
    assert main(["--lakehouse", str(tmp_path / "l.duckdb"), "import-prices", str(tmp_path / "missing.csv")]) == 2
    assert "missing.csv: file not found" in capsys.readouterr().err
    (tmp_path / "prices.txt").write_text("x")
    assert main(["--lakehouse", str(tmp_path / "l.duckdb"), "import-prices", str(tmp_path / "prices.txt")]) == 2
    assert "expected a .csv or .parquet" in capsys.readouterr().err
    assert not (tmp_path / "l.duckdb").exists()
