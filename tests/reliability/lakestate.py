"""Helpers shared by the bad-input and property suites: a stocked lakehouse, price files, and "nothing changed".

`lake_state` captures a lakehouse as bytes (the DuckDB file and any WAL beside it) and as content (every table's
`Lakehouse.content_hash`); `assert_unchanged` compares two captures, naming the tables that differ.
"""

from __future__ import annotations

import hashlib
import shutil
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from tsp_cli.main import main
from tsp_platform.core.hashing import frame_hash
from tsp_platform.lakehouse import TABLES, Lakehouse
from tsp_platform.lakehouse.lineage import VOLATILE_COLUMNS


def weekdays(start: date, count: int) -> list[date]:
    """`count` consecutive Monday-to-Friday dates from `start` (inclusive, when it is a weekday)."""
    days, day = [], start
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def write_wide_csv(path: Path, columns: dict[str, list], dates: list) -> Path:
    """A wide file: `date` and one close column per symbol; cells are written as given (str() of each value)."""
    lines = ["date," + ",".join(columns)]
    for i, day in enumerate(dates):
        lines.append(",".join([str(day), *("" if v[i] is None else str(v[i]) for v in columns.values())]))
    path.write_text("\n".join(lines) + "\n")
    return path


def write_long_csv(path: Path, rows: list[tuple[str, object, object]]) -> Path:
    """A long file of (symbol, date, close) rows, written through polars (quotes and commas are escaped)."""
    pl.DataFrame(
        {"symbol": [r[0] for r in rows], "date": [str(r[1]) for r in rows], "close": [str(r[2]) for r in rows]}
    ).write_csv(path)
    return path


GOOD_DATES = weekdays(date(2024, 1, 2), 30)


def stock_lakehouse(tmp_path: Path, template: Path | None = None) -> Path:
    """A lakehouse that already holds data: two symbols' 30 weekday bars imported through `tsp import-prices`
    (or a byte copy of `template`, such a lakehouse made once)."""
    lake, good = tmp_path / "lake.duckdb", tmp_path / "good.csv"
    if template is not None:
        shutil.copyfile(template, lake)
        return lake
    write_wide_csv(good, {"AAA": [100.0 + i for i in range(30)], "BBB": [50.0 + i / 2 for i in range(30)]}, GOOD_DATES)
    assert main(["--lakehouse", str(lake), "import-prices", str(good), "--exchange", "NYSE"]) == 0
    assert Lakehouse(lake).read_table("ohlcv").height == 60
    return lake


def _file_digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def lake_state(path: Path, exclude: tuple[str, ...] = ()) -> dict[str, str | None]:
    """The lakehouse file's bytes (and its WAL's) and every table's content hash. With `exclude` (tables a
    failed run may legitimately append to, such as the audit ledger), only the other tables' content."""
    path = Path(path)
    state = {} if exclude else {
        "<file>": _file_digest(path), "<wal>": _file_digest(path.with_name(path.name + ".wal")),
    }
    if path.exists():
        state.update(content_hashes(Lakehouse(path), exclude))
    return state


def content_hashes(lake: Lakehouse, exclude: tuple[str, ...] = ()) -> dict[str, str]:
    """`Lakehouse.content_hash` of every table, through one read-only connection (25 connections take ~1 s)."""
    hashes = {}
    with lake.connect(read_only=True) as conn:
        for name, table in TABLES.items():
            if name in exclude:
                continue
            frame = pl.from_arrow(conn.sql(f"SELECT * FROM {name} ORDER BY {', '.join(table.key)}").to_arrow_table())
            hashes[name] = frame_hash(frame.drop([c for c in frame.columns if c in VOLATILE_COLUMNS]), table.key)
    return hashes


def assert_unchanged(path: Path, before: dict[str, str | None], exclude: tuple[str, ...] = ()) -> None:
    """The lakehouse is byte-for-byte what it was, and so is every table's content (but the `exclude`d)."""
    after = lake_state(path, exclude)
    changed = sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))
    assert not changed, f"the lakehouse changed: {changed}"
