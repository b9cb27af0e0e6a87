"""The DuckDB lakehouse: idempotent upserts, atomic multi-table writes, a crash mid-write loses nothing."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import date, datetime, timedelta

import polars as pl
import pytest

from tsp_platform.lakehouse import Lakehouse, LakehouseError

FLOATS = {c: pl.Float64 for c in ("open", "high", "low", "volume")}


def bars(symbol: str, days: int, start: date = date(2022, 1, 3), scale: float = 1.0) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "symbol": [symbol] * days,
            "date": [start + timedelta(days=i) for i in range(days)],
            "open": [None] * days, "high": [None] * days, "low": [None] * days,
            "close": [scale * (100 + i) for i in range(days)],
            "volume": [None] * days,
            "source": ["test"] * days,
            "ingested_at": [datetime(2026, 1, 1)] * days,
        },
        schema_overrides=FLOATS,
    )


def pool_rows(profile: str, as_of: date, symbols: list[str]) -> pl.DataFrame:
    n = len(symbols)
    return pl.DataFrame(
        {
            "profile": [profile] * n, "as_of": [as_of] * n, "symbol": symbols, "logic": ["trend"] * n,
            "direction": ["long"] * n, "identity": symbols, "base": symbols, "quote": [None] * n,
            "asset_class": ["equity"] * n, "sector": [None] * n, "scanners": ["[]"] * n, "value_traded": [None] * n,
            "alternatives": ["[]"] * n, "rank": list(range(1, n + 1)),
        },
        schema_overrides={"quote": pl.String, "sector": pl.String, "value_traded": pl.Float64, "rank": pl.Int32},
    )


def test_upsert_is_idempotent_and_keeps_write_times_of_unchanged_rows(lakehouse):
    first = lakehouse.upsert("ohlcv", bars("NYSE:A", 10))
    assert first == {"inserted": 10, "updated": 0, "unchanged": 0}
    content = lakehouse.content_hash("ohlcv")
    again = lakehouse.upsert("ohlcv", bars("NYSE:A", 10).with_columns(pl.lit(datetime(2026, 2, 2)).alias("ingested_at")))
    assert again == {"inserted": 0, "updated": 0, "unchanged": 10}
    stored = lakehouse.read_table("ohlcv")
    assert stored.height == 10 and stored["ingested_at"].unique().to_list() == [datetime(2026, 1, 1)]
    assert lakehouse.content_hash("ohlcv") == content


def test_upsert_updates_changed_rows_and_inserts_new_ones(lakehouse):
    lakehouse.upsert("ohlcv", bars("NYSE:A", 10))
    counts = lakehouse.upsert("ohlcv", bars("NYSE:A", 12, scale=2.0))
    assert counts == {"inserted": 2, "updated": 10, "unchanged": 0}
    assert lakehouse.read_table("ohlcv")["close"].to_list()[:2] == [200.0, 202.0]


def test_a_failing_multi_table_write_leaves_every_table_as_it_was(lakehouse):
    lakehouse.upsert("ohlcv", bars("NYSE:A", 5))
    before = lakehouse.content_hash("ohlcv")
    broken_symbols = pl.DataFrame({"symbol": ["NYSE:B"]})  # wrong shape: refused before any write
    with pytest.raises(LakehouseError):
        lakehouse.upsert_many({"ohlcv": bars("NYSE:B", 5), "symbols": broken_symbols})
    null_close = bars("NYSE:C", 3).with_columns(pl.lit(None, pl.Float64).alias("close"))  # NOT NULL fails inside the transaction
    with pytest.raises(Exception, match="(?i)not null|constraint"):
        lakehouse.upsert_many({"ohlcv": pl.concat([bars("NYSE:B", 5), null_close])})
    assert lakehouse.content_hash("ohlcv") == before


def test_replace_partitions_is_all_or_nothing(lakehouse):
    as_of = date(2022, 12, 28)
    lakehouse.replace_partition("raw_pool", "p", as_of, pool_rows("p", as_of, ["NYSE:A", "NYSE:B"]))
    before = lakehouse.content_hash("raw_pool")
    bad_matrix = pl.DataFrame(
        {"profile": ["p"], "as_of": [as_of], "symbol": ["NYSE:A"], "date": [None], "ret": [0.1]},
        schema_overrides={"date": pl.Date},
    )
    with pytest.raises(Exception):
        lakehouse.replace_partitions("p", as_of, {"raw_pool": pool_rows("p", as_of, ["NYSE:Z"]), "returns_matrix": bad_matrix})
    assert lakehouse.content_hash("raw_pool") == before


def test_frames_are_checked_before_writing(lakehouse):
    as_of = date(2022, 12, 28)
    with pytest.raises(LakehouseError, match="duplicate keys"):
        lakehouse.upsert("ohlcv", pl.concat([bars("NYSE:A", 2), bars("NYSE:A", 1)]))
    with pytest.raises(LakehouseError, match="another partition"):
        lakehouse.replace_partition("raw_pool", "p", as_of, pool_rows("q", as_of, ["NYSE:A"]))
    with pytest.raises(LakehouseError, match="missing"):
        lakehouse.upsert("ohlcv", bars("NYSE:A", 2).drop("source"))


def test_reading_a_lakehouse_that_does_not_exist_is_a_clear_error(tmp_path):
    with pytest.raises(LakehouseError, match="does not exist"):
        Lakehouse(tmp_path / "nope.duckdb").read_table("ohlcv")


def test_a_process_killed_mid_write_leaves_the_previous_state(lakehouse_path):
    """A writer killed inside its transaction: reopening shows exactly the state before it started."""
    lake = Lakehouse(lakehouse_path)
    lake.upsert("ohlcv", bars("NYSE:A", 20))
    before = lake.content_hash("ohlcv")
    script = textwrap.dedent(
        f"""
        import os, duckdb
        conn = duckdb.connect({str(lakehouse_path)!r})
        conn.execute("BEGIN TRANSACTION")
        conn.execute("DELETE FROM ohlcv")
        conn.execute("INSERT INTO ohlcv SELECT 'NYSE:X', DATE '2020-01-01' + i::INTEGER, NULL, NULL, NULL, 1.0 + i, NULL, 'x', now()::TIMESTAMP FROM range(50000) t(i)")
        os.kill(os.getpid(), 9)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -9
    assert lake.content_hash("ohlcv") == before
    assert lake.read_table("ohlcv")["symbol"].unique().to_list() == ["NYSE:A"]


def test_an_older_file_gains_new_nullable_columns_and_refuses_other_differences(tmp_path):
    import duckdb

    from tsp_platform.lakehouse.schema import TOURNAMENT_WINDOWS

    path = tmp_path / "old.duckdb"
    old_columns = [(n, t) for n, t in TOURNAMENT_WINDOWS.columns if n != "pool_date"]
    with duckdb.connect(str(path)) as conn:
        cols = ", ".join(f"{n} {t}" for n, t in old_columns)
        conn.execute(f"CREATE TABLE tournament_windows ({cols}, PRIMARY KEY ({', '.join(TOURNAMENT_WINDOWS.key)}))")
    lake = Lakehouse(path)
    with lake.connect():
        pass
    assert "pool_date" in lake.read_partition("tournament_windows", "p", date(2022, 1, 3)).columns

    broken = tmp_path / "broken.duckdb"
    with duckdb.connect(str(broken)) as conn:
        conn.execute("CREATE TABLE regimes (profile VARCHAR, as_of DATE, surprise DOUBLE)")
    with pytest.raises(LakehouseError, match="regimes: columns \\['surprise'\\] are no longer declared"):
        with Lakehouse(broken).connect():
            pass


def test_the_lakehouse_resource_is_dagster_duckdb_resource_with_our_lock_wait_and_schema(tmp_path):
    from dagster_duckdb import DuckDBResource

    from resources import LakehouseResource

    resource = LakehouseResource(database=str(tmp_path / "lake.duckdb"), connection_config={"threads": 1})
    assert isinstance(resource, DuckDBResource)
    with resource.get_connection() as conn:  # DuckDBResource's API; the schema comes up to date first
        tables = {row[0] for row in conn.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        assert {"ohlcv", "symbols", "audit_ledger"} <= tables
        assert conn.execute("SELECT current_setting('threads')").fetchall()[0][0] == 1
    with resource.get_connection(read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM ohlcv").fetchall()[0][0] == 0
    assert resource.lakehouse().read_table("symbols").is_empty()
