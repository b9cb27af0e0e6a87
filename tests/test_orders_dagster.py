"""`rebalance_orders` through Dagster: the configured weights, the positions file, the CSV and the table agree."""

from __future__ import annotations

from datetime import date

import dagster as dg
import polars as pl
import yaml

from assets.definitions import build_definitions
from resources import resources_for
from tests.test_alpha_cycle import run_alpha
from tests.test_data_cycle import run_cycle, seed
from tsp_platform.config.manifest import DEFAULT_MANIFEST
from tsp_platform.lakehouse import Lakehouse

PROFILE, DAY = "us_equities_sample", "2022-12-28"


def test_orders_move_the_positions_file_to_the_final_weights(tmp_path):
    positions = tmp_path / "positions.csv"
    positions.write_text("symbol,quantity\nNYSE:KO,100\nNASDAQ:AAPL,-5\n")
    raw = yaml.safe_load(DEFAULT_MANIFEST.read_text())
    raw["profiles"][PROFILE]["orders"] = {"engine": "custom", "risk_profile": "min_variance", "capital": 250000,
                                          "positions_file": str(positions)}
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(yaml.safe_dump(raw))
    lake_path = tmp_path / "lake.duckdb"
    defs = build_definitions(resources_for(lake_path, manifest))
    with dg.instance_for_test() as instance:
        seed(defs, instance)
        run_cycle(defs, instance, PROFILE, DAY)
        assert run_alpha(defs, instance, PROFILE, DAY).success
    lake, as_of = Lakehouse(lake_path), date.fromisoformat(DAY)
    orders = lake.read_partition("rebalance_orders", PROFILE, as_of)
    weights = lake.read_partition("portfolio_weights", PROFILE, as_of).filter(
        (pl.col("engine") == "custom") & (pl.col("risk_profile") == "min_variance") & (pl.col("level") == "physical"))
    assert orders.height and set(orders["engine"]) == {"custom"} and set(orders["risk_profile"]) == {"min_variance"}
    # the final book (current + orders) holds each weight's notional to within one share
    book = orders.with_columns(
        (pl.col("current_quantity") + pl.when(pl.col("side") == "buy").then(pl.col("quantity"))
         .otherwise(-pl.col("quantity"))).alias("after"))
    joined = book.join(weights.select(pl.col("name").alias("symbol"), "weight"), on="symbol", how="left")
    for row in joined.iter_rows(named=True):
        target = (row["weight"] or 0.0) * 250000 / row["price"]
        assert abs(row["after"] - target) < 1.0 + 1e-9, row["symbol"]
        assert abs(row["after"] - row["target_quantity"]) < 1e-9
    # every held or weighted symbol away from its target has an order, on the side that closes the gap
    assert {"NYSE:KO", "NASDAQ:AAPL"} <= set(orders["symbol"])
    for row in orders.iter_rows(named=True):
        assert row["side"] == ("buy" if row["target_quantity"] > row["current_quantity"] else "sell"), row
    assert orders.filter(pl.col("symbol") == "NASDAQ:AAPL")["current_quantity"][0] == -5
    targeted = set(weights["name"]) | {"NYSE:KO", "NASDAQ:AAPL"}
    assert set(orders["symbol"]) <= targeted
    csv = tmp_path / "orders" / PROFILE / f"{DAY}.csv"
    assert csv.exists() and pl.read_csv(csv).height == orders.height

    # point-in-time: a bar after D (a tenfold close) changes nothing computed for D
    later = lake.query("SELECT * FROM ohlcv WHERE symbol IN (SELECT unnest(?)) AND date = ?",
                       [orders["symbol"].to_list(), as_of])
    lake.upsert("ohlcv", later.with_columns(pl.lit(date(2022, 12, 30)).alias("date"), pl.col("close") * 10))
    from assets.orders import rebalance_orders
    from partitions import partition_key

    with dg.instance_for_test() as instance:
        assert dg.materialize([rebalance_orders], partition_key=partition_key(PROFILE, DAY), instance=instance,
                              resources=resources_for(lake_path, manifest)).success
    assert lake.read_partition("rebalance_orders", PROFILE, as_of).drop("profile", "as_of").equals(
        orders.drop("profile", "as_of"))
