"""Rebalance orders: lot rounding toward zero, close-outs, shorts, determinism, and refused inputs named precisely."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from pydantic import ValidationError

from tsp_platform.config.orders import OrderConfig
from tsp_platform.orders import ORDER_COLUMNS, OrderInputError, build_orders, read_positions, write_orders

NO_POSITIONS = pl.DataFrame(schema={"symbol": pl.String, "quantity": pl.Float64})
NO_LOTS = pl.DataFrame(schema={"symbol": pl.String, "lot_size": pl.Float64})


def prices(**by_symbol: float) -> pl.DataFrame:
    return pl.DataFrame({"symbol": list(by_symbol), "price": list(by_symbol.values())})


def positions(**by_symbol: float) -> pl.DataFrame:
    return pl.DataFrame({"symbol": list(by_symbol), "quantity": [float(v) for v in by_symbol.values()]}, schema=NO_POSITIONS.schema)


def lots(**by_symbol: float | None) -> pl.DataFrame:
    return pl.DataFrame({"symbol": list(by_symbol), "lot_size": list(by_symbol.values())}, schema=NO_LOTS.schema)


def row(result, symbol: str) -> dict:
    found = result.orders.filter(pl.col("symbol") == symbol)
    assert found.height == 1, f"no single order for {symbol}: {result.orders}"
    return found.row(0, named=True)


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# ---------------------------------------------------------------- hand-computed example


def example():
    weights = {"AAA": 0.5, "BTC": 0.3, "SHRT": -0.1}
    held = positions(AAA=10, SHRT=-3, OLD=2)
    px = prices(AAA=99.0, BTC=30_000.0, SHRT=50.0, OLD=10.0)
    config = OrderConfig(capital=10_000, friction_rate=0.001)
    return weights, held, px, lots(BTC=0.001), config


def test_hand_computed_example():
    result = build_orders(*example())
    # AAA: 5000/99 = 50.5 -> 50, held 10 -> buy 40.  BTC: 3000/30000 = 0.1 lots of 0.001 -> buy 0.1.
    # SHRT: -1000/50 = -20, held -3 -> sell 17.  OLD: held 2, no weight -> close out, sell 2.
    expected = [
        ("SHRT", "sell", 17.0, 50.0, 850.0, 0.85, -20.0, -3.0),
        ("OLD", "sell", 2.0, 10.0, 20.0, 0.02, 0.0, 2.0),
        ("AAA", "buy", 40.0, 99.0, 3960.0, 3.96, 50.0, 10.0),
        ("BTC", "buy", 0.1, 30_000.0, 3000.0, 3.0, 0.1, 0.0),
    ]
    assert result.orders.columns == list(ORDER_COLUMNS)
    assert [r[:2] for r in result.orders.rows()] == [("OLD", "sell"), ("SHRT", "sell"), ("AAA", "buy"), ("BTC", "buy")]
    for want in expected:
        got = row(result, want[0])
        assert got["side"] == want[1]
        assert [got[c] for c in ORDER_COLUMNS[2:]] == pytest.approx(list(want[2:]), rel=1e-12)
    assert result.skipped.is_empty()
    assert result.gross_notional == pytest.approx(850 + 20 + 3960 + 3000)
    assert result.net_notional == pytest.approx(3960 + 3000 - 850 - 20)
    assert result.total_estimated_cost == pytest.approx(7.83)
    # holdings 10*99 - 3*50 + 2*10 = 860; cash 9140 - 6090 - 7.83
    assert result.cash_before_trades == pytest.approx(9140.0)
    assert result.cash_after_trades == pytest.approx(3042.17)
    # cross-check: capital - value of the final book - costs
    final = 50 * 99 + 0.1 * 30_000 - 20 * 50
    assert result.cash_after_trades == pytest.approx(10_000 - final - 7.83)


def test_estimated_cost_is_notional_times_rate():
    weights, held, px, lot, _ = example()
    result = build_orders(weights, held, px, lot, OrderConfig(capital=10_000, friction_rate=0.0006))
    for r in result.orders.iter_rows(named=True):
        assert r["estimated_cost"] == r["notional"] * 0.0006
        assert r["notional"] == r["quantity"] * r["price"]
        assert r["quantity"] > 0 and r["notional"] > 0


# ---------------------------------------------------------------- lot rounding


def test_fractional_lot_rounds_down_to_whole_lots():
    config = OrderConfig(capital=10_000)
    result = build_orders({"BTC": 0.123456}, NO_POSITIONS, prices(BTC=30_000.0), lots(BTC=0.001), config)
    # 1234.56 / 30000 = 0.041152 -> 41 lots of 0.001, written exactly (no 0.041000000000000002)
    assert row(result, "BTC")["quantity"] == 0.041
    assert row(result, "BTC")["target_quantity"] == 0.041


def test_float_artefact_just_below_a_lot_boundary_is_not_lost():
    # 0.7 / 0.1 is 6.999999999999999 in floats: a naive floor would give 6 lots
    result = build_orders({"X": 1.0}, NO_POSITIONS, prices(X=1.0), lots(X=0.1), OrderConfig(capital=0.7))
    assert row(result, "X")["quantity"] == 0.7


def test_default_lot_size_for_unknown_and_null_lots():
    config = OrderConfig(capital=1_000, default_lot_size=0.5)
    px = prices(A=100.0, B=100.0, C=100.0)
    result = build_orders({"A": 0.1234, "B": 0.1234, "C": 0.1234}, NO_POSITIONS, px, lots(A=None, C=1.0), config)
    assert row(result, "A")["quantity"] == 1.0  # 1.234 -> 2 lots of 0.5 (null lot size)
    assert row(result, "B")["quantity"] == 1.0  # unknown symbol: default lot as well
    assert row(result, "C")["quantity"] == 1.0  # its own lot of 1
    assert build_orders({"A": 0.1234}, NO_POSITIONS, prices(A=100.0), None, OrderConfig(capital=1_000)).orders["quantity"].to_list() == [1.0]


def test_rounding_is_toward_zero_for_longs_and_shorts():
    config = OrderConfig(capital=1_299)
    result = build_orders({"L": 0.5, "S": -0.5}, NO_POSITIONS, prices(L=50.0, S=50.0), NO_LOTS, config)
    assert row(result, "L")["target_quantity"] == 12.0  # 12.99 -> 12, never 13
    assert row(result, "S")["target_quantity"] == -12.0  # -12.99 -> -12, never -13
    assert row(result, "S")["quantity"] == 12.0


def test_off_grid_holding_trades_whole_lots_only():
    # held 2.5 with lot 1, target 0: sell 2, never 3 (which would go short)
    result = build_orders({}, positions(X=2.5), prices(X=10.0), NO_LOTS, OrderConfig(capital=100))
    assert (row(result, "X")["side"], row(result, "X")["quantity"]) == ("sell", 2.0)


# ---------------------------------------------------------------- close-out and shorts


def test_held_symbol_absent_from_weights_is_closed_out():
    result = build_orders({"A": 0.5}, positions(A=5, GONE=7, GONE_SHORT=-4), prices(A=100.0, GONE=3.0, GONE_SHORT=2.0), NO_LOTS, OrderConfig(capital=1_000))
    assert row(result, "GONE") == {
        "symbol": "GONE", "side": "sell", "quantity": 7.0, "price": 3.0, "notional": 21.0, "estimated_cost": 0.0,
        "target_quantity": 0.0, "current_quantity": 7.0,
    }
    assert (row(result, "GONE_SHORT")["side"], row(result, "GONE_SHORT")["quantity"]) == ("buy", 4.0)
    assert result.orders.filter(pl.col("symbol") == "A").is_empty()  # already at target: no order, no skip
    assert result.skipped.is_empty()


def test_zero_holding_needs_no_price():
    result = build_orders({"A": 0.5}, positions(A=0, FLAT=0), prices(A=100.0), NO_LOTS, OrderConfig(capital=1_000))
    assert result.orders["symbol"].to_list() == ["A"]


def test_shorts_sell_and_covering_buys():
    config = OrderConfig(capital=1_000)
    px = prices(NEW=10.0, COVER=10.0, DEEPER=10.0)
    held = positions(COVER=-30, DEEPER=-5)
    result = build_orders({"NEW": -0.2, "COVER": -0.1, "DEEPER": -0.1}, held, px, NO_LOTS, config)
    assert (row(result, "NEW")["side"], row(result, "NEW")["quantity"]) == ("sell", 20.0)  # open a short
    assert (row(result, "COVER")["side"], row(result, "COVER")["quantity"]) == ("buy", 20.0)  # -30 -> -10
    assert (row(result, "DEEPER")["side"], row(result, "DEEPER")["quantity"]) == ("sell", 5.0)  # -5 -> -10
    assert result.cash_after_trades == pytest.approx(1_000 + 40 * 10)  # short proceeds are cash


# ---------------------------------------------------------------- skipped orders


def test_min_notional_and_sub_lot_orders_are_skipped_and_reported():
    config = OrderConfig(capital=10_000, min_notional=50)
    px = prices(SMALL=10.0, TINY=1_000.0, BIG=10.0)
    result = build_orders({"SMALL": 0.004, "TINY": 0.05, "BIG": 0.5}, positions(TINY=0.4), px, NO_LOTS, config)
    # SMALL: 40/10 = 4 shares = 40 < 50.  TINY: target 0 (0.5 -> 0 lots), held 0.4 -> below one lot.
    assert result.orders["symbol"].to_list() == ["BIG"]
    reasons = dict(result.skipped.rows())
    assert list(reasons) == ["SMALL", "TINY"]
    assert "min_notional" in reasons["SMALL"]
    assert "below one lot" in reasons["TINY"]


# ---------------------------------------------------------------- determinism


def test_same_inputs_give_identical_frames_and_bytes(tmp_path):
    weights, held, px, lot, config = example()
    first = build_orders(weights, held, px, lot, config)
    shuffled = build_orders(
        dict(reversed(list(weights.items()))),
        held.sample(fraction=1.0, shuffle=True, seed=3),
        px.reverse(),
        lot,
        config,
    )
    as_frame = build_orders(pl.DataFrame({"symbol": list(weights), "weight": list(weights.values())}).reverse(), held, px, lot, config)
    assert first.orders.equals(shuffled.orders) and first.orders.equals(as_frame.orders)
    assert first.skipped.equals(shuffled.skipped)
    a = write_orders(first, tmp_path / "a.csv").read_bytes()
    b = write_orders(shuffled.orders, tmp_path / "b.csv").read_bytes()
    assert a == b
    assert a.decode().splitlines() == [
        ",".join(ORDER_COLUMNS),
        "OLD,sell,2,10,20,0.02,0,2",
        "SHRT,sell,17,50,850,0.85,-20,-3",
        "AAA,buy,40,99,3960,3.96,50,10",
        "BTC,buy,0.1,30000,3000,3,0.1,0",
    ]


def test_no_orders_write_a_header_only_file(tmp_path):
    result = build_orders({}, NO_POSITIONS, prices(), None, OrderConfig(capital=1))
    assert result.orders.is_empty() and result.gross_notional == 0.0 and result.cash_after_trades == 1.0
    assert write_orders(result, tmp_path / "o.csv").read_text() == ",".join(ORDER_COLUMNS) + "\n"


# ---------------------------------------------------------------- positions file


def test_read_positions_csv_and_parquet_ignore_extra_columns(tmp_path):
    path = write_csv(tmp_path / "pos.csv", "symbol,quantity,note\nB, -2.5 ,short\nA,3,\n")
    frame = read_positions(path)
    assert frame.rows() == [("A", 3.0), ("B", -2.5)]
    assert frame.schema == pl.Schema({"symbol": pl.String, "quantity": pl.Float64})
    parquet = tmp_path / "pos.parquet"
    pl.DataFrame({"symbol": ["B", "A"], "quantity": [-2.5, 3], "extra": [1, 2]}).write_parquet(parquet)
    assert read_positions(parquet).equals(frame)


def test_header_only_file_means_no_positions(tmp_path):
    frame = read_positions(write_csv(tmp_path / "pos.csv", "symbol,quantity\n"))
    assert frame.is_empty() and frame.columns == ["symbol", "quantity"]


def test_positions_file_end_to_end(tmp_path):
    weights, _, px, lot, config = example()
    path = write_csv(tmp_path / "pos.csv", "symbol,quantity\nAAA,10\nSHRT,-3\nOLD,2\n")
    assert build_orders(weights, read_positions(path), px, lot, config).orders.equals(build_orders(*example()).orders)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("symbol,qty\nA,1\n", ["missing column", "quantity"]),
        ("ticker,quantity\nA,1\n", ["missing column", "symbol"]),
        ("symbol,quantity\nA,1\nB,2\nA,3\n", ["row 3", "column 'symbol'", "duplicate symbol 'A'", "first on row 1"]),
        ("symbol,quantity\nA,1\nB,nan\n", ["row 2", "column 'quantity'", "not a finite number"]),
        ("symbol,quantity\nA,inf\n", ["row 1", "column 'quantity'", "not a finite number"]),
        ("symbol,quantity\nA,one\n", ["row 1", "column 'quantity'", "not a number"]),
        ("symbol,quantity\nA,\n", ["row 1", "column 'quantity'", "empty quantity"]),
        ("symbol,quantity\nA,1\n ,2\n", ["row 2", "column 'symbol'", "empty symbol"]),
    ],
)
def test_bad_positions_file_names_file_row_and_column(tmp_path, text, expected):
    path = write_csv(tmp_path / "positions.csv", text)
    with pytest.raises(OrderInputError) as error:
        read_positions(path)
    message = str(error.value)
    assert str(path) in message
    for part in expected:
        assert part in message


def test_every_problem_is_reported_at_once(tmp_path):
    path = write_csv(tmp_path / "positions.csv", "symbol,quantity\nA,nan\nA,1\n,2\n")
    with pytest.raises(OrderInputError, match="3 problem") as error:
        read_positions(path)
    assert all(f"row {n}" in str(error.value) for n in (1, 2, 3))


@pytest.mark.parametrize("name", ["missing.csv", "positions.json"])
def test_missing_or_unsupported_file_is_named(tmp_path, name):
    path = tmp_path / name
    if name.endswith(".json"):
        path.write_text("{}")
    with pytest.raises(OrderInputError, match="file not found|expected a .csv") as error:
        read_positions(path)
    assert str(path) in str(error.value)
    assert isinstance(error.value, ValueError)


def test_corrupt_parquet_is_named(tmp_path):
    path = write_csv(tmp_path / "positions.parquet", "not parquet")
    with pytest.raises(OrderInputError, match="unreadable") as error:
        read_positions(path)
    assert str(path) in str(error.value)


# ---------------------------------------------------------------- other inputs and config


def test_missing_prices_are_named():
    with pytest.raises(OrderInputError, match="no price for 2 symbol") as error:
        build_orders({"A": 0.1, "B": 0.1, "C": 0.1}, NO_POSITIONS, prices(B=1.0), None, OrderConfig(capital=100))
    assert "A, C" in str(error.value) and "B" not in str(error.value).split(":")[-1]
    with pytest.raises(OrderInputError, match="HELD"):  # a close-out needs a price too
        build_orders({}, positions(HELD=1), prices(), None, OrderConfig(capital=100))


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_non_positive_or_non_finite_price_is_refused(bad):
    with pytest.raises(OrderInputError, match="prices") as error:
        build_orders({"A": 0.1}, NO_POSITIONS, prices(A=bad), None, OrderConfig(capital=100))
    assert "A" in str(error.value)


def test_bad_weights_and_lot_sizes_are_refused():
    px, config = prices(A=1.0), OrderConfig(capital=100)
    with pytest.raises(OrderInputError, match="(?s)weights.*not a finite"):
        build_orders({"A": float("nan")}, NO_POSITIONS, px, None, config)
    with pytest.raises(OrderInputError, match="(?s)weights.*duplicate symbol 'A'"):
        build_orders(pl.DataFrame({"symbol": ["A", "A"], "weight": [0.1, 0.2]}), NO_POSITIONS, px, None, config)
    with pytest.raises(OrderInputError, match="(?s)lot_sizes.*A"):
        build_orders({"A": 0.1}, NO_POSITIONS, px, lots(A=0.0), config)


@pytest.mark.parametrize(
    "kwargs",
    [{"capital": 0}, {"capital": float("inf")}, {"capital": 1, "friction_rate": -0.1}, {"capital": 1, "friction_rate": 6},
     {"capital": 1, "default_lot_size": 0}, {"capital": 1, "min_notional": -1}, {"capital": 1, "slippage": 0.1}],
)
def test_config_is_validated(kwargs):
    with pytest.raises(ValidationError):
        OrderConfig(**kwargs)


def test_config_is_frozen():
    config = OrderConfig(capital=1)
    with pytest.raises(ValidationError):
        config.capital = 2
