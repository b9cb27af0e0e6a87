"""Rebalance orders: final weights + capital + current positions -> a deterministic, lot-rounded order list.

Pure domain, nothing is sent anywhere. Decisions:

- Target quantity = weight x capital / price, rounded toward zero to a whole number of lots, so the book
  never overshoots the target exposure (longs and shorts alike). The order is target - current, itself
  rounded toward zero to whole lots: a holding off the lot grid leaves its sub-lot residue untouched.
- Lot counts are floor(|q| / lot + eps), eps = 1e-9 lot plus 1e-12 relative: 2.9999999999 lots are 3
  lots, not 2. Quantities are lots x lot rounded to 12 decimals (0.001 x 2999 is 2.999, not 2.9990000000000001).
- A held symbol absent from the weights is closed out (target 0). Every symbol that needs a price (in the
  weights, or held with a non-zero quantity) must have a finite positive one; the missing ones are named.
- A lot size that is unknown or null falls back to `OrderConfig.default_lot_size`.
- An order below one lot or below `min_notional` is dropped and reported in `OrderList.skipped`.
- Order: sells first (they free cash), then buys; by symbol within a side. Same inputs, same frame, same bytes.
- `capital` is the portfolio's value at these prices, so cash before trades = capital - value of current
  holdings, and cash after = cash before - signed notional (buys +, sells -) - estimated costs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from tsp_platform.config.orders import OrderConfig
from tsp_platform.core.files import atomic_path

ORDER_COLUMNS = (
    "symbol", "side", "quantity", "price", "notional", "estimated_cost", "target_quantity", "current_quantity",
)
ORDER_SCHEMA = {
    "symbol": pl.String, "side": pl.String, "quantity": pl.Float64, "price": pl.Float64, "notional": pl.Float64,
    "estimated_cost": pl.Float64, "target_quantity": pl.Float64, "current_quantity": pl.Float64,
}
SKIPPED_SCHEMA = {"symbol": pl.String, "reason": pl.String}
POSITIONS_SCHEMA = {"symbol": pl.String, "quantity": pl.Float64}
LOT_EPS_ABS = 1e-9  # in lots: absorbs float artefacts such as 2.9999999999 lots
LOT_EPS_REL = 1e-12  # ...and their growth with large lot counts (1e8 lots of 1e-8)
DECIMALS = 12
MAX_LISTED = 10  # problems listed in one error message


class OrderInputError(ValueError):
    """An input (positions file, weights, prices, lot sizes) cannot be used; the message names where."""


@dataclass(frozen=True, eq=False)  # eq=False: DataFrame equality is not a bool
class OrderList:
    orders: pl.DataFrame  # ORDER_COLUMNS, sells then buys, by symbol
    skipped: pl.DataFrame  # symbol, reason
    capital: float
    holdings_value: float  # sum of current quantity x price, shorts negative

    @property
    def gross_notional(self) -> float:
        return float(self.orders["notional"].sum())

    @property
    def net_notional(self) -> float:
        """Buys minus sells: the cash the trades consume before costs."""
        signed = pl.when(pl.col("side") == "buy").then(pl.col("notional")).otherwise(-pl.col("notional"))
        return float(self.orders.select(signed.sum()).item() or 0.0)

    @property
    def total_estimated_cost(self) -> float:
        return float(self.orders["estimated_cost"].sum())

    @property
    def cash_before_trades(self) -> float:
        return self.capital - self.holdings_value

    @property
    def cash_after_trades(self) -> float:
        return self.cash_before_trades - self.net_notional - self.total_estimated_cost


# ---------------------------------------------------------------- positions file


def read_positions(path: str | Path) -> pl.DataFrame:
    """Read `symbol`, `quantity` (signed, short negative) from CSV or Parquet; other columns are ignored.

    Every problem is collected and reported at once with the file, the row (data rows from 1, header
    excluded) and the column. A header-only file is no positions. Returns (symbol, quantity) by symbol.
    """
    path = Path(path)
    raw = _read_table(path)
    columns = {c.strip().lower(): c for c in raw.columns}
    missing = [c for c in ("symbol", "quantity") if c not in columns]
    if missing:
        raise OrderInputError(f"{path}: missing column(s) {missing} (columns: {raw.columns})")
    frame = raw.select(
        pl.col(columns["symbol"]).cast(pl.String).str.strip_chars().alias("symbol"),
        pl.col(columns["quantity"]).alias("quantity_raw"),
    )
    quantity = frame["quantity_raw"]
    if quantity.dtype == pl.String:
        quantity = quantity.str.strip_chars().cast(pl.Float64, strict=False)
    else:
        quantity = quantity.cast(pl.Float64, strict=False)
    problems: list[str] = []
    first_row: dict[str, int] = {}
    for row, (symbol, text, value) in enumerate(zip(frame["symbol"], frame["quantity_raw"], quantity), start=1):
        if not symbol:
            problems.append(f"row {row}, column 'symbol': empty symbol")
        elif symbol in first_row:
            problems.append(f"row {row}, column 'symbol': duplicate symbol {symbol!r} (first on row {first_row[symbol]})")
        else:
            first_row[symbol] = row
        if text is None:
            problems.append(f"row {row}, column 'quantity': empty quantity")
        elif value is None:
            problems.append(f"row {row}, column 'quantity': not a number ({text!r})")
        elif not math.isfinite(value):
            problems.append(f"row {row}, column 'quantity': not a finite number ({text!r})")
    if problems:
        raise OrderInputError(_problem_message(str(path), problems))
    return pl.DataFrame({"symbol": frame["symbol"], "quantity": quantity}, schema=POSITIONS_SCHEMA).sort("symbol")


def _read_table(path: Path) -> pl.DataFrame:
    if not path.is_file():
        raise OrderInputError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise OrderInputError(f"{path}: expected a .csv or .parquet file")
    try:
        # CSV read as text so a bad cell is reported by row, not as a reader's type error
        return pl.read_parquet(path) if suffix == ".parquet" else pl.read_csv(path, infer_schema=False)
    except Exception as exc:  # unreadable or corrupt: name the file and the reader's reason
        raise OrderInputError(f"{path}: unreadable ({exc.__class__.__name__}: {exc})") from None


def _problem_message(where: str, problems: list[str]) -> str:
    listed = "\n".join(f"  {p}" for p in problems[:MAX_LISTED])
    more = f"\n  ... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
    return f"{where}: {len(problems)} problem(s)\n{listed}{more}"


# ---------------------------------------------------------------- orders


def build_orders(
    weights: Mapping[str, float] | pl.DataFrame,
    positions: pl.DataFrame,
    prices: pl.DataFrame,
    lot_sizes: pl.DataFrame | None,
    config: OrderConfig,
) -> OrderList:
    """Orders that move `positions` to `weights` x `config.capital`, rounded to lots (see the module docstring)."""
    weight = _as_mapping(weights, "weights", "weight")
    current = _as_mapping(positions, "positions", "quantity")
    price = _as_mapping(prices, "prices", "price", allow_null=True)
    lot = _as_mapping(lot_sizes, "lot_sizes", "lot_size", allow_null=True) if lot_sizes is not None else {}
    # a held symbol absent from the weights is closed out; a zero holding needs no order and no price
    symbols = sorted(set(weight) | {s for s, q in current.items() if q != 0})
    _check_prices(symbols, price)
    lots = _lot_sizes(symbols, lot, config.default_lot_size)

    w = np.array([weight.get(s, 0.0) for s in symbols], dtype=float)
    p = np.array([price[s] for s in symbols], dtype=float)
    cur = np.array([current.get(s, 0.0) for s in symbols], dtype=float)
    target = _round_to_lots(w * config.capital / p, lots)
    delta = np.round(target - cur, DECIMALS)
    signed_qty = _round_to_lots(delta, lots)  # toward zero again: never trade past the target
    quantity = np.abs(signed_qty)
    notional = quantity * p

    orders, skipped = [], []
    for i, symbol in enumerate(symbols):
        if delta[i] == 0:
            continue  # already at target: nothing to trade, nothing to report
        if quantity[i] == 0:
            skipped.append((symbol, f"below one lot: change {delta[i]:g} < lot size {lots[i]:g}"))
        elif notional[i] < config.min_notional:
            skipped.append((symbol, f"notional {notional[i]:.2f} below min_notional {config.min_notional:g}"))
        else:
            side = "buy" if signed_qty[i] > 0 else "sell"
            cost = notional[i] * config.friction_rate
            orders.append((symbol, side, quantity[i], p[i], notional[i], cost, target[i], cur[i]))

    frame = pl.DataFrame(orders, schema=ORDER_SCHEMA, orient="row")
    # sells first, they free the cash the buys need; ties by symbol for a stable order
    frame = frame.sort(pl.col("side") != "sell", "symbol")
    held = [s for s in current if current[s] != 0]
    holdings_value = float(sum(current[s] * price[s] for s in sorted(held)))
    return OrderList(
        orders=frame,
        skipped=pl.DataFrame(skipped, schema=SKIPPED_SCHEMA, orient="row"),
        capital=config.capital,
        holdings_value=holdings_value,
    )


def _as_mapping(data, name: str, column: str, allow_null: bool = False) -> dict[str, float | None]:
    """symbol -> value from a mapping or a (symbol, column) frame; symbols unique, values finite."""
    if isinstance(data, pl.DataFrame):
        missing = [c for c in ("symbol", column) if c not in data.columns]
        if missing:
            raise OrderInputError(f"{name}: missing column(s) {missing} (columns: {data.columns})")
        pairs = list(zip(data["symbol"].to_list(), data[column].to_list()))
    else:
        pairs = list(data.items())
    problems, out = [], {}
    for symbol, value in pairs:
        if not isinstance(symbol, str) or not symbol.strip():
            problems.append(f"empty symbol (value {value!r})")
        elif symbol in out:
            problems.append(f"duplicate symbol {symbol!r}")
        elif value is None and not allow_null:
            problems.append(f"{symbol}: null {column}")
        elif value is not None and not math.isfinite(float(value)):
            problems.append(f"{symbol}: {column} {value!r} is not a finite number")
        out[symbol] = None if value is None else float(value)
    if problems:
        raise OrderInputError(_problem_message(name, problems))
    return out


def _check_prices(symbols: list[str], price: dict[str, float | None]) -> None:
    missing = [s for s in symbols if price.get(s) is None]
    if missing:
        raise OrderInputError(f"prices: no price for {len(missing)} symbol(s): {', '.join(missing)}")
    bad = [f"{s} ({price[s]!r})" for s in symbols if not price[s] > 0]
    if bad:
        raise OrderInputError(f"prices: price must be positive: {', '.join(bad)}")


def _lot_sizes(symbols: list[str], lot: dict[str, float | None], default: float) -> np.ndarray:
    bad = [f"{s} ({lot[s]!r})" for s in symbols if lot.get(s) is not None and not lot[s] > 0]
    if bad:
        raise OrderInputError(f"lot_sizes: lot size must be positive: {', '.join(bad)}")
    return np.array([default if lot.get(s) is None else lot[s] for s in symbols], dtype=float)


def _round_to_lots(quantity: np.ndarray, lot: np.ndarray) -> np.ndarray:
    """Round toward zero to whole lots, tolerating float artefacts just below a lot boundary."""
    count = np.abs(quantity) / lot
    whole = np.floor(count + LOT_EPS_ABS + LOT_EPS_REL * count)
    return np.round(np.sign(quantity) * whole * lot, DECIMALS) + 0.0  # + 0.0: no -0.0 in the output


# ---------------------------------------------------------------- output


def write_orders(orders: OrderList | pl.DataFrame, path: str | Path) -> Path:
    """Write the orders as CSV: fixed columns, floats in shortest round-trip positional form, '\\n' lines."""
    frame = orders.orders if isinstance(orders, OrderList) else orders
    frame = frame.select(ORDER_COLUMNS)
    # formatted here rather than by the CSV writer, so the bytes do not depend on its float settings
    text = frame.with_columns(
        pl.Series(c, [_format_float(v) for v in frame[c]], dtype=pl.String)
        for c in ORDER_COLUMNS
        if ORDER_SCHEMA[c] == pl.Float64
    )
    path = Path(path)
    with atomic_path(path) as staging:
        staging.write_bytes(text.write_csv(line_terminator="\n").encode())
    return path


def _format_float(value: float) -> str:
    return np.format_float_positional(value, trim="-")
