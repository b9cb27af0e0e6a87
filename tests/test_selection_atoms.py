"""Strategy atoms: ids, SHORT inversion with the bankruptcy guard, and flattening back to physical weights."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from tsp_platform.core.atoms import atom_id, atom_returns, atoms_frame, flatten_weights, short_returns
from tsp_platform.core.panel import ReturnsPanel
from tsp_platform.core.vocabulary import Direction

NAN = float("nan")


def panel(columns: dict[str, list[float]]) -> ReturnsPanel:
    symbols = tuple(columns)
    values = np.array([columns[s] for s in symbols], dtype=np.float64).T
    dates = np.arange(np.datetime64("2024-01-01"), np.datetime64("2024-01-01") + values.shape[0], dtype="datetime64[D]")
    return ReturnsPanel(values, dates, symbols)


def atoms(*specs: tuple[str, str, str]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "atom_id": [atom_id(s, logic, d) for s, logic, d in specs],
            "symbol": [s for s, _, _ in specs],
            "logic": [logic for _, logic, _ in specs],
            "direction": [d for _, _, d in specs],
        }
    )


# --- ids ---


def test_atom_id_is_asset_logic_direction():
    assert atom_id("NYSE:KO", "trend", "long") == "NYSE:KO_trend_long"
    assert atom_id("BINANCE:BTCUSDT", "rating_all", Direction.SHORT) == "BINANCE:BTCUSDT_rating_all_short"
    assert atom_id("AAPL", "momentum", Direction.LONG) == atom_id("AAPL", "momentum", "long")


def test_atom_id_rejects_unknown_direction():
    with pytest.raises(ValueError):
        atom_id("AAPL", "trend", "sideways")


def test_atoms_frame_ids_match_atom_id_and_dedupe():
    pool = pl.DataFrame(
        {
            "symbol": ["NYSE:KO", "NYSE:KO", "NYSE:KO", "NASDAQ:AAPL"],
            "logic": ["trend", "trend", "trend", "rating_all"],
            "direction": ["long", "short", "long", "short"],
            "scanner": ["s1", "s1", "s2", "s3"],
        }
    )
    frame = atoms_frame(pool)
    assert frame["atom_id"].to_list() == [
        atom_id("NYSE:KO", "trend", "long"),
        atom_id("NYSE:KO", "trend", "short"),
        atom_id("NASDAQ:AAPL", "rating_all", "short"),
    ]
    assert frame["scanner"].to_list() == ["s1", "s1", "s3"]  # first row of a duplicated atom is kept


# --- returns ---


def test_short_returns_negates_with_bankruptcy_guard():
    got = short_returns(np.array([0.01, -0.02, 0.0, 1.0, 1.5, 9.0, -0.99, NAN]))
    expected = np.array([-0.01, 0.02, 0.0, -1.0, -1.0, -1.0, 0.99, NAN])
    np.testing.assert_array_equal(got, expected)
    assert np.nanmin(got) >= -1.0


def test_atom_returns_negates_short_columns_only_and_keeps_nan():
    src = panel({"A": [0.01, NAN, -0.03], "B": [0.02, 0.04, NAN]})
    frame = atoms(("A", "trend", "long"), ("A", "trend", "short"), ("B", "rating_all", "short"), ("B", "trend", "long"))
    out = atom_returns(src, frame)
    assert out.symbols == ("A_trend_long", "A_trend_short", "B_rating_all_short", "B_trend_long")
    np.testing.assert_array_equal(out.dates, src.dates)
    expected = np.array(
        [
            [0.01, -0.01, -0.02, 0.02],
            [NAN, NAN, -0.04, 0.04],
            [-0.03, 0.03, NAN, NAN],
        ]
    )
    np.testing.assert_array_equal(out.values, expected)
    # the physical panel is not modified in place
    np.testing.assert_array_equal(src.values, np.array([[0.01, 0.02], [NAN, 0.04], [-0.03, NAN]]))


def test_bankruptcy_guard_in_atom_returns():
    src = panel({"X": [1.5, 0.5, -0.5, 3.0]})  # +150 %, +50 %, −50 %, +300 % days
    out = atom_returns(src, atoms(("X", "trend", "short"), ("X", "trend", "long")))
    short = out.values[:, 0]
    assert short[0] == -1.0  # exactly −100 %, not −150 %
    assert short[3] == -1.0
    assert short.min() >= -1.0
    np.testing.assert_array_equal(short, [-1.0, -0.5, 0.5, -1.0])
    np.testing.assert_array_equal(out.values[:, 1], [1.5, 0.5, -0.5, 3.0])  # the long is untouched


def test_atom_returns_rejects_symbols_absent_from_panel():
    src = panel({"A": [0.01, 0.02]})
    with pytest.raises(KeyError, match="ZZZ"):
        atom_returns(src, atoms(("A", "trend", "long"), ("ZZZ", "trend", "short")))


# --- flattening ---


def test_flatten_long_and_short_of_one_symbol_net_out():
    frame = atoms(("KO", "trend", "long"), ("KO", "trend", "short"), ("PEP", "trend", "short"))
    got = flatten_weights({"KO_trend_long": 0.30, "KO_trend_short": 0.10, "PEP_trend_short": 0.20}, frame)
    assert got == pytest.approx({"KO": 0.20, "PEP": -0.20})
    hedged = flatten_weights({"KO_trend_long": 0.25, "KO_trend_short": 0.25}, frame)
    assert hedged == pytest.approx({"KO": 0.0})


def test_flatten_several_logics_of_one_symbol_sum():
    frame = atoms(
        ("KO", "trend", "long"), ("KO", "rating_all", "long"), ("KO", "momentum", "short"), ("AAPL", "trend", "long")
    )
    got = flatten_weights(
        {"KO_trend_long": 0.2, "KO_rating_all_long": 0.3, "KO_momentum_short": 0.1, "AAPL_trend_long": 0.4}, frame
    )
    assert got == pytest.approx({"AAPL": 0.4, "KO": 0.4})
    assert list(got) == ["AAPL", "KO"]  # sorted by symbol


def test_flatten_unknown_atom_raises():
    frame = atoms(("KO", "trend", "long"))
    with pytest.raises(KeyError, match="KO_trend_short"):
        flatten_weights({"KO_trend_long": 0.5, "KO_trend_short": 0.5}, frame)


def test_flatten_is_consistent_with_atom_returns():
    """The portfolio return of the atom weights equals that of the flattened physical weights."""
    src = panel({"A": [0.01, -0.02, 0.03], "B": [-0.01, 0.04, 0.02]})
    frame = atoms(("A", "trend", "long"), ("A", "rating_all", "short"), ("B", "trend", "short"))
    weights = {"A_trend_long": 0.5, "A_rating_all_short": 0.2, "B_trend_short": 0.3}
    by_atom = atom_returns(src, frame).values @ np.array([weights[a] for a in frame["atom_id"]])
    physical = flatten_weights(weights, frame)
    by_symbol = src.values @ np.array([physical[s] for s in src.symbols])
    np.testing.assert_allclose(by_atom, by_symbol)
