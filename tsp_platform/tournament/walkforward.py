"""Walk-forward windows: which rows each window trains on and which it is tested on.

Windows (the original system's definition, original-system.md §6; `WalkForwardConfig`, default 252/20/20):

    test starts  i ∈ range(train, n − test + 1, step)
    train slice  [i − train, i)      ([0, i) when `expanding`)
    test slice   [i, i + test)       (= [i, min(i + test, n)): a start never exceeds n − test)

so there are no windows when n < train + test, and the last test slice always has `test` rows. With
step == test these are exactly skfolio's `WalkForward(train_size=train, test_size=test,
expand_train=expanding)` folds (purged_size 0, reduce_test False). A window's as-of row is its last train
row: weights computed there trade at that row's close and earn the test rows.

No look-ahead, by construction (the original leaked test-window returns into the fit): `train_panel` hands
a window's selection a *copy* of its train rows and nothing else. The fast walk-forward allocators and the
skfolio parity reference live in `tsp_platform.reference.walkforward` (tests and benchmarks only).
"""

from __future__ import annotations

from dataclasses import dataclass

from tsp_platform.config.tournament import WalkForwardConfig
from tsp_platform.core.panel import ReturnsPanel


@dataclass(frozen=True)
class Window:
    index: int
    train: slice  # rows the allocation may see
    test: slice  # rows the resulting weights are held over

    @property
    def as_of(self) -> int:
        """The last train row: the decision is taken at its close."""
        return self.train.stop - 1


def windows(n_rows: int, config: WalkForwardConfig = WalkForwardConfig()) -> list[Window]:
    """The walk-forward windows over `n_rows` rows (empty when n_rows < train + test)."""
    starts = range(config.train, n_rows - config.test + 1, config.step)
    return [
        Window(k, slice(0 if config.expanding else i - config.train, i), slice(i, min(i + config.test, n_rows)))
        for k, i in enumerate(starts)
    ]


def train_panel(panel: ReturnsPanel, window: Window) -> ReturnsPanel:
    """The panel rows a window's selection may see (its train slice), copied."""
    return ReturnsPanel(panel.values[window.train].copy(), panel.dates[window.train].copy(), panel.symbols)
