"""Rebalance orders: turn final weights, a capital and current positions into a deterministic order list.

Pure domain (numpy, polars, pydantic): nothing is sent anywhere. The decisions (rounding toward zero to
whole lots, close-out of unweighted holdings, sells before buys, cash accounting) are documented in
`tsp_platform.orders.rebalance`.
"""

from tsp_platform.orders.rebalance import (
    ORDER_COLUMNS,
    OrderInputError,
    OrderList,
    build_orders,
    read_positions,
    write_orders,
)

__all__ = [
    "ORDER_COLUMNS",
    "OrderInputError",
    "OrderList",
    "build_orders",
    "read_positions",
    "write_orders",
]
