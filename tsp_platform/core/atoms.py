"""Strategy atoms: (asset, logic, direction). SHORT atoms carry negated returns so that every downstream stage
ranks and allocates "higher is better"; weights flatten back to net physical weights.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import polars as pl

from tsp_platform.core.panel import ReturnsPanel
from tsp_platform.core.vocabulary import Direction

ATOM_SEPARATOR = "_"


def atom_id(symbol: str, logic: str, direction: str | Direction) -> str:
    """`asset_logic_direction`, e.g. `NYSE:KO_trend_long`."""
    return ATOM_SEPARATOR.join((symbol, logic, Direction(direction).value))


def atoms_frame(pool: pl.DataFrame) -> pl.DataFrame:
    """Atoms from raw-pool rows (symbol, logic, direction, …) with their ids, one row per atom."""
    return pool.with_columns(
        pl.concat_str(["symbol", "logic", "direction"], separator=ATOM_SEPARATOR).alias("atom_id")
    ).unique("atom_id", keep="first", maintain_order=True)


def short_returns(returns: np.ndarray) -> np.ndarray:
    """A short position's daily return is −r, floored at −100 % (bankruptcy guard: the asset more than
    doubling in a day cannot cost more than the whole stake). NaN stays NaN."""
    return np.maximum(-returns, -1.0)


def atom_returns(panel: ReturnsPanel, atoms: pl.DataFrame) -> ReturnsPanel:
    """A returns panel whose columns are atoms; SHORT columns are guarded negations of the asset."""
    index = {s: i for i, s in enumerate(panel.symbols)}
    missing = sorted(set(atoms["symbol"]) - set(index))
    if missing:
        raise KeyError(f"atoms reference symbols absent from the returns panel: {missing[:5]}")
    columns = np.array([index[s] for s in atoms["symbol"]], dtype=np.int64)
    values = panel.values[:, columns].copy()
    is_short = (atoms["direction"] == Direction.SHORT.value).to_numpy()
    values[:, is_short] = short_returns(values[:, is_short])
    return ReturnsPanel(values, panel.dates, tuple(atoms["atom_id"].to_list()))


def flatten_weights(atom_weights: Mapping[str, float], atoms: pl.DataFrame) -> dict[str, float]:
    """Net physical weight per symbol: Σ over its atoms of (+1 long / −1 short) × atom weight."""
    by_id = {row["atom_id"]: row for row in atoms.select("atom_id", "symbol", "direction").iter_rows(named=True)}
    unknown = sorted(set(atom_weights) - set(by_id))
    if unknown:
        raise KeyError(f"weights for unknown atoms: {unknown[:5]}")
    physical: dict[str, float] = {}
    for atom, weight in atom_weights.items():
        row = by_id[atom]
        sign = -1.0 if row["direction"] == Direction.SHORT.value else 1.0
        physical[row["symbol"]] = physical.get(row["symbol"], 0.0) + sign * weight
    return dict(sorted(physical.items()))
