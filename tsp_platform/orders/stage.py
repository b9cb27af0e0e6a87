"""The `rebalance_orders` stage: a profile's final physical weights as of D → a lot-rounded order list.

Decisions: the "final" weights are those of the profile's configured engine × risk profile
(`orders.engine`, `orders.risk_profile`) in `portfolio_weights`; prices are each symbol's last close on or
before D (point-in-time); lot sizes come from the symbols table (unknown: `orders.default_lot_size`); the
current positions come from `orders.positions_file` (none: the book starts flat); costs use the profile's
friction. Orders are stored in the lakehouse and written as CSV; nothing is sent anywhere.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl

from tsp_platform.config.orders import OrderConfig
from tsp_platform.context import StageContext
from tsp_platform.core.hashing import frame_hash
from tsp_platform.core.identifiers import path_segment
from tsp_platform.orders.rebalance import ORDER_COLUMNS, OrderList, build_orders, read_positions

ORDER_TABLE = "rebalance_orders"


def orders_csv_path(root: Path, profile: str, as_of) -> Path:
    """Where a partition's order list is written as CSV (always inside `root`)."""
    return Path(root) / path_segment(profile, "profile") / f"{as_of.isoformat()}.csv"


def final_weights(ctx: StageContext) -> pl.DataFrame:
    """symbol, weight: the configured engine × risk profile's physical weights as of D."""
    settings = ctx.profile.orders
    weights = ctx.read("portfolio_weights")
    if weights.is_empty():
        raise LookupError(f"no portfolio weights for {ctx.profile.name} as of {ctx.as_of}: run the alpha cycle first")
    chosen = weights.filter(
        (pl.col("engine") == settings.engine.value) & (pl.col("risk_profile") == settings.risk_profile.value)
        & (pl.col("level") == "physical")
    )
    if chosen.is_empty():
        raise LookupError(
            f"{ctx.profile.name} as of {ctx.as_of}: {settings.engine.value} × {settings.risk_profile.value} has no "
            "weights (see allocation_runs for why); set orders.engine / orders.risk_profile"
        )
    return chosen.select(pl.col("name").alias("symbol"), "weight")


def run_orders(ctx: StageContext, project_root: Path) -> tuple[OrderList, dict[str, str]]:
    """(the order list, content ids of its inputs: the positions file's bytes and the prices used)."""
    settings = ctx.profile.orders
    inputs = {"positions_id": "none"}
    weights = final_weights(ctx)
    if settings.positions_file:
        path = Path(settings.positions_file)
        path = path if path.is_absolute() else project_root / path
        positions = read_positions(path)
        inputs["positions_id"] = hashlib.sha256(path.read_bytes()).hexdigest()
    else:
        positions = pl.DataFrame(schema={"symbol": pl.String, "quantity": pl.Float64})
    symbols = sorted(set(weights["symbol"]) | set(positions["symbol"]))
    bars = ctx.bars(symbols)
    prices = bars.sort("date").group_by("symbol").agg(pl.col("close").drop_nulls().last().alias("price"))
    lots = ctx.read("symbols").select("symbol", "lot_size")
    config = OrderConfig(capital=settings.capital, friction_rate=ctx.profile.friction.total_rate,
                         min_notional=settings.min_notional, default_lot_size=settings.default_lot_size)
    inputs["prices_id"] = frame_hash(prices.sort("symbol"))
    return build_orders(weights, positions, prices, lots, config), inputs


def store_orders(ctx: StageContext, orders: OrderList) -> pl.DataFrame:
    settings = ctx.profile.orders
    rows = orders.orders.select(ORDER_COLUMNS).with_columns(
        pl.lit(settings.engine.value).alias("engine"), pl.lit(settings.risk_profile.value).alias("risk_profile"),
    )
    ctx.write(**{ORDER_TABLE: rows})
    return ctx.tag(ORDER_TABLE, rows)
