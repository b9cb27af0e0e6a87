"""Correlation clustering: blocks, identical series, short windows, missing data, the maxclust cap."""

from __future__ import annotations

import numpy as np
import pytest

from tsp_platform.config.selection import ClusterConfig
from tsp_platform.core.panel import ReturnsPanel
from tsp_platform.selection.clustering import (
    cluster_assets,
    correlation_distance,
    lookback_distances,
    pairwise_correlation,
)


def make_panel(values: np.ndarray, symbols=None) -> ReturnsPanel:
    t, n = values.shape
    dates = np.datetime64("2023-01-02", "D") + np.arange(t)
    return ReturnsPanel(values, dates, tuple(symbols or (f"S{i:02d}" for i in range(n))))


def blocks(sizes, t=250, seed=0, noise=0.5) -> np.ndarray:
    """Columns in blocks: each block shares one factor (within-block ρ ≈ 1/(1+noise²))."""
    rng = np.random.default_rng(seed)
    cols = []
    for size in sizes:
        factor = rng.normal(0, 0.01, t)
        cols += [factor + rng.normal(0, 0.01 * noise, t) for _ in range(size)]
    return np.column_stack(cols)


def partition(result) -> set[frozenset[str]]:
    return {frozenset(v) for v in result.members().values()}


def test_two_blocks_two_clusters():
    panel = make_panel(blocks([4, 5]))
    r = cluster_assets(panel, ClusterConfig())
    assert r.n_clusters == 2 and r.method == "distance"
    assert partition(r) == {frozenset(panel.symbols[:4]), frozenset(panel.symbols[4:])}
    assert r.lookbacks_used == (60, 120, 200)
    assert r.isolated == () and r.n_imputed_pairs == 0
    assert r.labels.tolist() == [1] * 4 + [2] * 5  # numbered by first appearance
    assert np.all(np.isfinite(r.distance)) and np.allclose(r.distance, r.distance.T)
    assert np.all((r.distance >= 0) & (r.distance <= 1))
    frame = r.to_frame()
    assert frame.columns == ["symbol", "cluster", "isolated"] and frame.height == 9


def test_identical_series_same_cluster_finite():
    base = blocks([3, 3], seed=1)
    values = np.column_stack([base, base[:, 0], base[:, 0]])  # S06, S07 identical to S00
    r = cluster_assets(make_panel(values), ClusterConfig())
    assert r.labels[0] == r.labels[6] == r.labels[7]
    assert r.distance[0, 6] == pytest.approx(0.0, abs=1e-7) and r.distance[6, 7] == pytest.approx(0.0, abs=1e-7)
    assert np.all(np.isfinite(r.distance)) and np.all(np.isfinite(r.linkage))
    assert r.n_clusters == 2


def test_all_identical_series_one_cluster():
    col = np.random.default_rng(3).normal(0, 0.01, 100)
    r = cluster_assets(make_panel(np.column_stack([col] * 5)), ClusterConfig())
    assert r.n_clusters == 1 and np.all(np.isfinite(r.linkage))


def test_short_window_isolates_every_asset_explicitly():
    """Original defect: 15 rows < min_overlap, NaN correlations filled with 0 → silent singletons."""
    rng = np.random.default_rng(4)
    common = rng.normal(0, 0.01, 15)
    values = np.column_stack([common + rng.normal(0, 1e-4, 15) for _ in range(5)])  # near-identical
    r = cluster_assets(make_panel(values), ClusterConfig(lookbacks=(5, 60, 120), min_overlap=20))
    assert r.lookbacks_used == ()
    assert r.isolated == make_panel(values).symbols
    assert r.n_clusters == 5 and sorted(r.labels.tolist()) == [1, 2, 3, 4, 5]
    assert r.method == "none" and r.linkage.shape == (0, 4)
    off = r.distance[~np.eye(5, dtype=bool)]
    assert np.all(np.isnan(off))  # no evidence, not sqrt(0.5) from ρ = 0
    assert any("no usable lookback" in note for note in r.notes)
    assert any("lookback 5 unused" in note and "shorter than min_overlap" in note for note in r.notes)
    assert r.pair_lookbacks.sum() == 0


def test_short_panel_uses_whole_panel_when_long_enough():
    """A 30-row panel (e.g. a 20-day crypto train window plus) still clusters: lookbacks read all 30 rows."""
    r = cluster_assets(make_panel(blocks([3, 3], t=30, seed=5, noise=0.3)), ClusterConfig())
    assert r.lookbacks_used == (30,)
    assert r.n_clusters == 2 and r.isolated == ()
    assert any("exceeds the 30-row panel" in note for note in r.notes)


def test_missing_data_asset_still_joins_its_block():
    values = blocks([5, 5], t=250, seed=6)
    values[60:200, 2] = np.nan  # big hole: 140 of the last 200 sessions missing
    values[245:, 2] = np.nan
    r = cluster_assets(make_panel(values), ClusterConfig())
    assert r.n_clusters == 2
    assert r.labels[2] == r.labels[0] and r.labels[2] != r.labels[5]
    # S02's sessions: 45 in the 60 and 120 windows, 55 in the 200 window → ≥ 20 everywhere, all three valid
    assert r.pair_lookbacks[2, 0] == 3
    assert np.all(np.isfinite(r.distance))


def test_pair_distance_is_mean_over_only_the_lookbacks_where_it_exists():
    values = blocks([3], t=200, seed=8)
    values[-20:, 0] = np.nan  # S00 stops 20 sessions before the end
    config = ClusterConfig(lookbacks=(30, 100, 200), min_overlap=20)
    r = cluster_assets(make_panel(values), config)
    # window 30: S00 has 10 sessions < 20 → no correlation there; windows 100 and 200 → correlation exists
    assert r.pair_lookbacks[0, 1] == 2 and r.pair_lookbacks[1, 2] == 3

    def d(a, b, window):
        x, y = values[-window:, a], values[-window:, b]
        keep = np.isfinite(x) & np.isfinite(y)
        return np.sqrt(0.5 * (1 - np.corrcoef(x[keep], y[keep])[0, 1]))

    assert r.distance[0, 1] == pytest.approx((d(0, 1, 100) + d(0, 1, 200)) / 2, abs=1e-10)
    assert r.distance[1, 2] == pytest.approx((d(1, 2, 30) + d(1, 2, 100) + d(1, 2, 200)) / 3, abs=1e-10)


def test_more_natural_clusters_than_max_clusters_uses_maxclust():
    panel = make_panel(blocks([3] * 6, seed=9, noise=0.2))
    natural = cluster_assets(panel, ClusterConfig())
    assert natural.n_clusters == 6 and natural.method == "distance"
    capped = cluster_assets(panel, ClusterConfig(max_clusters=4))
    assert capped.n_clusters == 4 and capped.method == "maxclust"
    # the cut coarsens the natural partition: no natural block is split
    for block in partition(natural):
        assert len({capped.labels[panel.symbols.index(s)] for s in block}) == 1


def test_lookback_shorter_than_min_overlap_is_never_used():
    ld = lookback_distances(make_panel(blocks([2, 2], t=100)), ClusterConfig(lookbacks=(10, 60), min_overlap=20))
    assert ld.lookbacks_used == (60,)
    assert any("lookback 10 unused" in note for note in ld.notes)


def test_constant_series_is_isolated_not_zero_correlated():
    values = blocks([3, 3], seed=10)
    values = np.column_stack([values, np.zeros(250)])  # S06: a stablecoin-like flat series
    r = cluster_assets(make_panel(values), ClusterConfig())
    assert r.isolated == ("S06",)
    assert r.n_clusters == 3 and r.labels[6] == 3
    assert np.all(np.isnan(r.distance[6, :6])) and r.linked == tuple(f"S{i:02d}" for i in range(6))


def test_missing_pair_gets_metric_upper_bound_not_zero_correlation():
    rng = np.random.default_rng(11)
    t = 200
    factor = rng.normal(0, 0.01, t)
    values = np.column_stack([factor + rng.normal(0, 0.004, t) for _ in range(3)])
    values[100:, 0] = np.nan  # S00: only the first half
    values[:100, 1] = np.nan  # S01: only the second half → S00/S01 never overlap
    r = cluster_assets(make_panel(values), ClusterConfig(lookbacks=(200,)))
    assert r.pair_lookbacks[0, 1] == 0 and r.n_imputed_pairs == 1
    expected = min(1.0, r.distance[0, 2] + r.distance[2, 1])  # the only path: through S02
    assert r.distance[0, 1] == pytest.approx(expected)
    assert r.distance[0, 1] != pytest.approx(np.sqrt(0.5))
    assert r.isolated == () and np.all(np.isfinite(r.distance))


def test_disconnected_components_are_maximally_distant():
    values = blocks([2, 2], t=200, seed=12)
    values[100:, :2] = np.nan
    values[:100, 2:] = np.nan
    r = cluster_assets(make_panel(values), ClusterConfig(lookbacks=(200,)))
    assert r.distance[0, 2] == 1.0 and r.distance[1, 3] == 1.0
    assert r.n_clusters == 2 and r.labels[0] == r.labels[1] != r.labels[2]


def test_isolated_assets_count_against_the_cap():
    values = blocks([2] * 4, seed=13, noise=0.2)
    values = np.column_stack([values, np.zeros((250, 2))])  # two flat series → isolated
    r = cluster_assets(make_panel(values), ClusterConfig(max_clusters=4))
    assert len(r.isolated) == 2 and r.n_clusters == 4 and r.method == "maxclust"


def test_zero_and_one_asset():
    empty = ReturnsPanel(np.empty((0, 0)), np.empty(0, dtype="datetime64[D]"), ())
    r0 = cluster_assets(empty, ClusterConfig())
    assert r0.n_clusters == 0 and r0.labels.shape == (0,) and r0.distance.shape == (0, 0)
    r1 = cluster_assets(make_panel(blocks([1])), ClusterConfig())
    assert r1.n_clusters == 1 and r1.labels.tolist() == [1] and r1.isolated == ()


def test_deterministic_and_order_invariant():
    values = blocks([3, 4, 3], seed=14)
    panel = make_panel(values)
    a, b = cluster_assets(panel, ClusterConfig()), cluster_assets(panel, ClusterConfig())
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.linkage, b.linkage)
    perm = np.random.default_rng(0).permutation(values.shape[1])
    shuffled = make_panel(values[:, perm], [panel.symbols[i] for i in perm])
    assert partition(cluster_assets(shuffled, ClusterConfig())) == partition(a)


def test_pairwise_correlation_matches_numpy_on_complete_data():
    x = blocks([3, 2], t=80, seed=15)
    rho, common = pairwise_correlation(x, min_overlap=20)
    assert np.allclose(rho, np.corrcoef(x.T), atol=1e-12)
    assert np.all(common == 80)
    assert correlation_distance(np.array([1.0, 0.0, -1.0, np.nan])).tolist()[:3] == pytest.approx([0, 0.5**0.5, 1])
