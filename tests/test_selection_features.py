"""Selection features against known values, a per-asset reference, NaN handling, and the noise calibration."""

from __future__ import annotations

import math
import time
from collections import Counter
from datetime import date

import numpy as np
import polars as pl
import pytest
import scipy.stats as st

from tsp_platform.config.selection import FeatureConfig, VetoConfig
from tsp_platform.core.panel import ReturnsPanel
from tsp_platform.reference import selection_calibration as calibration
from tsp_platform.selection.features import (
    FEATURE_COLUMNS,
    anis_lloyd_expected_rs,
    compute_features,
    hurst_dfa,
    minimum_observations,
    rs_scales,
)

ANN = 252
CFG = FeatureConfig()


def panel_of(columns: dict[str, np.ndarray], rows: int | None = None) -> ReturnsPanel:
    """Columns of possibly different lengths, right-aligned on a shared calendar (NaN on top)."""
    rows = rows or max(len(v) for v in columns.values())
    values = np.full((rows, len(columns)), np.nan)
    for j, v in enumerate(columns.values()):
        values[rows - len(v) :, j] = v
    dates = np.datetime64("2021-01-04") + np.arange(rows).astype("timedelta64[D]")
    return ReturnsPanel(values, dates, tuple(columns))


def row(frame: pl.DataFrame, symbol: str) -> dict:
    return frame.filter(pl.col("symbol") == symbol).to_dicts()[0]


# --------------------------------------------------------------------------------------------------------------
# A straightforward per-asset reference (loops everywhere, one series at a time)


def ref_entropy(x: np.ndarray, order: int) -> float:
    patterns = Counter(tuple(np.argsort(x[i : i + order], kind="stable")) for i in range(len(x) - order + 1))
    total = sum(patterns.values())
    h = -sum(c / total * math.log(c / total) for c in patterns.values())
    return h / math.log(math.factorial(order))


def ref_hurst(x: np.ndarray, window: int) -> float:
    xs, ys = [], []
    for size in rs_scales(window):
        size = int(size)
        if len(x) // size < 2:
            continue
        values = []
        for j in range(len(x) // size):
            seg = x[len(x) - (j + 1) * size : len(x) - j * size]
            dev = seg - seg.mean()
            z = np.cumsum(dev)
            values.append((z.max() - z.min()) / seg.std(ddof=1))
        xs.append(math.log(size))
        ys.append(math.log(np.mean(values)) - math.log(anis_lloyd_expected_rs(size)))
    if len(xs) < 3:
        return float("nan")
    return 0.5 + float(np.polyfit(xs, ys, 1)[0])


def ref_tail(x: np.ndarray, level: float, upper: bool) -> float:
    q = np.quantile(x, level)
    return float(x[x >= q].mean() if upper else x[x <= q].mean())


def ref_features(series: np.ndarray, cfg: FeatureConfig, ann: int) -> dict:
    x_all = series[~np.isnan(series)]
    x = x_all[-cfg.window :]
    s = x_all[-cfg.short_window :]
    n = len(x)
    minimum = minimum_observations(cfg)
    out: dict = {"n_obs": n}
    vol = x.std(ddof=1) * math.sqrt(ann)
    out["momentum"] = x.mean() * ann
    out["volatility"] = vol
    out["stability"] = 1 / (vol + 1e-9)
    out["entropy"] = ref_entropy(s, cfg.entropy_order) if len(s) >= cfg.short_window else None
    out["efficiency"] = abs(s.sum()) / np.abs(s).sum() if len(s) >= cfg.short_window else None
    out["hurst"] = ref_hurst(x, cfg.window) if n >= minimum["hurst"] else None
    out["skew"] = st.skew(x, bias=False)
    out["kurtosis"] = st.kurtosis(x, bias=False)
    out["cvar"] = ref_tail(x, cfg.cvar_level, upper=False)
    gain = ref_tail(x, cfg.tail_quantile, upper=True)
    loss = ref_tail(x, 1 - cfg.tail_quantile, upper=False)
    ok = n >= minimum["antifragility"] and gain > 0 > loss
    out["antifragility"] = out["skew"] + math.log(gain / abs(loss)) if ok else None
    out["roc"] = float(np.prod(1 + x_all[-cfg.roc_days :]) - 1) if len(x_all) >= cfg.roc_days else None
    return out


def test_vectorised_equals_per_asset_reference():
    rng = np.random.default_rng(11)
    columns = {
        "LONG": rng.standard_normal(400) * 0.02,  # longer than the window
        "FULL": rng.standard_t(4, 252) * 0.01,
        "GAPPY": rng.standard_normal(330) * 0.03,
        "SHORT": rng.standard_normal(140) * 0.015 + 0.001,  # < window: fewer Hurst scales
        "TIES": np.round(rng.standard_normal(300) * 0.02, 2),  # many ties for the ordinal patterns
    }
    columns["GAPPY"][rng.random(330) < 0.2] = np.nan
    columns["GAPPY"][-5:-2] = np.nan
    frame = compute_features(panel_of(columns), CFG, ANN)
    assert frame["symbol"].to_list() == list(columns)
    assert frame.columns == ["symbol", "n_obs", *FEATURE_COLUMNS]
    for symbol, series in columns.items():
        got, want = row(frame, symbol), ref_features(series, CFG, ANN)
        for name, value in want.items():
            if value is None:
                assert got[name] is None, (symbol, name)
            else:
                assert got[name] == pytest.approx(value, rel=1e-9, abs=1e-12), (symbol, name)


# --------------------------------------------------------------------------------------------------------------
# Known values on crafted inputs


def test_constant_growth_series():
    f = row(compute_features(panel_of({"C": np.full(252, 0.01)}), CFG, ANN), "C")
    assert f["n_obs"] == 252
    assert f["momentum"] == pytest.approx(2.52)
    assert f["volatility"] == 0.0
    assert f["stability"] == pytest.approx(1e9)
    assert f["efficiency"] == pytest.approx(1.0)
    assert f["entropy"] == 0.0  # every window is a tie; ties break by time order → one pattern
    assert f["roc"] == pytest.approx(1.01**63 - 1)
    assert f["cvar"] == pytest.approx(0.01)
    # no dispersion: skew, kurtosis and Hurst are undefined; no loss tail → antifragility undefined
    assert f["skew"] is None and f["kurtosis"] is None and f["hurst"] is None and f["antifragility"] is None


def test_alternating_series():
    x = np.tile([0.02, -0.02], 126)
    f = row(compute_features(panel_of({"A": x}), CFG, ANN), "A")
    assert f["efficiency"] == pytest.approx(0.0, abs=1e-12)
    assert f["momentum"] == pytest.approx(0.0, abs=1e-12)
    # only two ordinal patterns (up-down-up, down-up-down), equally often
    assert f["entropy"] == pytest.approx(math.log(2) / math.log(math.factorial(CFG.entropy_order)), rel=1e-3)
    assert f["hurst"] < 0.2  # maximally anti-persistent


@pytest.mark.parametrize("order", [2, 3, 4, 5])
def test_monotone_series_has_zero_entropy_and_unit_efficiency(order):
    cfg = FeatureConfig(entropy_order=order)
    up = np.linspace(0.001, 0.03, 252)
    frame = compute_features(panel_of({"UP": up, "DOWN": up[::-1]}), cfg, ANN)
    assert frame["entropy"].to_list() == [0.0, 0.0]
    assert frame["efficiency"].to_list() == pytest.approx([1.0, 1.0])


def test_entropy_of_all_patterns_equally_often_is_one():
    # order 2 over a series whose up/down steps alternate in pairs: equal counts of the two patterns
    x = np.array([0, 1, 2, 1, 0] * 30, dtype=float)[:120] * 0.01
    cfg = FeatureConfig(entropy_order=2, short_window=120, window=120)
    f = row(compute_features(panel_of({"X": x}), cfg, ANN), "X")
    ups = sum(x[i + 1] >= x[i] for i in range(119))  # ties count as "up" (earlier ranks lower)
    p = ups / 119
    assert f["entropy"] == pytest.approx(-(p * math.log(p) + (1 - p) * math.log(1 - p)) / math.log(2))


def test_moments_tails_and_roc_on_a_small_known_array():
    x = np.array(
        [0.012, -0.034, 0.005, 0.021, -0.008, 0.047, -0.015, 0.002, -0.061, 0.018,
         0.009, -0.003, 0.031, -0.022, 0.004, 0.015, -0.011, 0.083, -0.027, 0.006,
         0.013, -0.041, 0.019, 0.001, -0.005, 0.024, -0.017, 0.008, 0.036, -0.009,
         0.011, -0.052, 0.027, 0.003, -0.013, 0.058, -0.006, 0.014, -0.019, 0.007]
    )  # fmt: skip
    cfg = FeatureConfig(window=40, short_window=20, roc_days=5, cvar_level=0.1, tail_quantile=0.9)
    f = row(compute_features(panel_of({"K": x}), cfg, ANN), "K")
    assert f["n_obs"] == 40
    assert f["skew"] == pytest.approx(st.skew(x, bias=False), rel=1e-12)
    assert f["kurtosis"] == pytest.approx(st.kurtosis(x, bias=False), rel=1e-12)
    assert f["volatility"] == pytest.approx(np.std(x, ddof=1) * math.sqrt(252))
    assert f["momentum"] == pytest.approx(np.mean(x) * 252)
    # by hand: sorted x; 10 % quantile at position 0.1 × 39 = 3.9 → the four lowest are at or below it
    s = np.sort(x)
    assert s[:4].tolist() == [-0.061, -0.052, -0.041, -0.034]
    assert f["cvar"] == pytest.approx((-0.061 - 0.052 - 0.041 - 0.034) / 4)
    # 90 % quantile at 35.1 → the four highest are at or above it
    assert s[-4:].tolist() == [0.036, 0.047, 0.058, 0.083]
    gain, loss = (0.036 + 0.047 + 0.058 + 0.083) / 4, (-0.061 - 0.052 - 0.041 - 0.034) / 4
    assert f["antifragility"] == pytest.approx(st.skew(x, bias=False) + math.log(gain / abs(loss)))
    assert f["roc"] == pytest.approx(1.058 * 0.994 * 1.014 * 0.981 * 1.007 - 1)  # the last 5 sessions
    assert f["efficiency"] == pytest.approx(abs(x[-20:].sum()) / np.abs(x[-20:]).sum())


def test_skew_is_signed():
    rng = np.random.default_rng(3)
    right = rng.exponential(0.01, 252) - 0.01
    frame = compute_features(panel_of({"R": right, "L": -right}), CFG, ANN)
    assert row(frame, "R")["skew"] > 1.0
    assert row(frame, "L")["skew"] == pytest.approx(-row(frame, "R")["skew"])


# --------------------------------------------------------------------------------------------------------------
# Hurst


def test_hurst_is_half_on_iid_noise_and_tracks_persistence():
    rng = np.random.default_rng(2024)
    n, k = CFG.window, 400
    noise = rng.standard_normal((n, k)) * 0.02
    persistent = calibration.fractional_gaussian_noise(n, 0.75, 200, rng) * 0.02
    anti = calibration.fractional_gaussian_noise(n, 0.25, 200, rng) * 0.02
    momentum = calibration.ar1(n, 0.3, 200, rng) * 0.02  # positively autocorrelated returns

    def h(x: np.ndarray) -> pl.Series:
        return compute_features(panel_of({f"S{i}": x[:, i] for i in range(x.shape[1])}), CFG, ANN)["hurst"]

    assert abs(h(noise).mean() - 0.5) < 0.03
    assert h(persistent).mean() > 0.6
    assert h(anti).mean() < 0.4
    assert h(momentum).mean() > 0.55
    # DFA-1, kept for the comparison, is also ≈ 0.5 on noise
    assert abs(np.nanmean(hurst_dfa(noise)) - 0.5) < 0.03


# --------------------------------------------------------------------------------------------------------------
# NaN handling, minimums, point in time


def test_gaps_give_the_features_of_the_series_without_them():
    rng = np.random.default_rng(5)
    x = rng.standard_normal(320) * 0.02
    gappy = x.copy()
    gappy[rng.random(320) < 0.25] = np.nan
    dense = gappy[~np.isnan(gappy)]
    a = compute_features(panel_of({"G": gappy, "D": dense}), CFG, ANN)  # same panel
    b = compute_features(panel_of({"D": dense}), CFG, ANN)  # its own, shorter panel
    ga, da, db = (f.drop("symbol") for f in (a.filter(pl.col("symbol") == "G"), a.filter(pl.col("symbol") == "D"), b))
    assert ga.equals(da)  # bit for bit within a panel
    # across panels of different widths numpy may sum in another order: equal to the last few ulps
    for name in FEATURE_COLUMNS:
        assert ga[name][0] == pytest.approx(db[name][0], rel=1e-12, abs=1e-15), name
    assert ga["n_obs"][0] == min(len(dense), CFG.window)


def test_too_short_series_get_nulls():
    rng = np.random.default_rng(6)
    frame = compute_features(
        panel_of(
            {"TINY": rng.standard_normal(15) * 0.01, "SMALL": rng.standard_normal(70) * 0.01, "EMPTY": np.array([])},
            300,
        ),
        CFG,
        ANN,
    )
    tiny, small, empty = row(frame, "TINY"), row(frame, "SMALL"), row(frame, "EMPTY")
    assert tiny["n_obs"] == 15 and empty["n_obs"] == 0
    assert all(tiny[c] is None and empty[c] is None for c in FEATURE_COLUMNS)
    # 70 observations: moments, tails and roc (≥ 63) are there; entropy and efficiency (< short_window),
    # hurst and antifragility (< 100) are not
    for c in ("momentum", "volatility", "stability", "skew", "kurtosis", "cvar", "roc"):
        assert small[c] is not None, c
    for c in ("entropy", "efficiency", "hurst", "antifragility"):
        assert small[c] is None, c


def test_empty_panel_and_inf():
    empty = ReturnsPanel(np.empty((0, 0)), np.empty(0, dtype="datetime64[D]"), ())
    frame = compute_features(empty, CFG, ANN)
    assert frame.height == 0 and frame.columns == ["symbol", "n_obs", *FEATURE_COLUMNS]
    with pytest.raises(ValueError, match="inf"):
        compute_features(panel_of({"X": np.array([0.01, np.inf] * 20)}), CFG, ANN)


def test_features_read_only_rows_up_to_the_as_of_date():
    rng = np.random.default_rng(8)
    full = panel_of({"A": rng.standard_normal(400) * 0.02, "B": rng.standard_normal(380) * 0.02})
    as_of = full.dates[299].astype(date)
    cut = full.until(as_of)
    tampered = full.values.copy()
    tampered[300:] = 0.5  # anything after the as-of date
    later = ReturnsPanel(tampered, full.dates, full.symbols).until(as_of)
    assert compute_features(cut, CFG, ANN).equals(compute_features(later, CFG, ANN))


def test_500_by_500_is_fast():
    rng = np.random.default_rng(9)
    values = rng.standard_normal((500, 500)) * 0.02
    values[rng.random((500, 500)) < 0.05] = np.nan
    dates = np.datetime64("2020-01-01") + np.arange(500).astype("timedelta64[D]")
    panel = ReturnsPanel(values, dates, tuple(f"S{i}" for i in range(500)))
    best = math.inf
    for _ in range(3):
        t0 = time.perf_counter()
        compute_features(panel, CFG, ANN)
        best = min(best, time.perf_counter() - t0)
    assert best < 1.0


# --------------------------------------------------------------------------------------------------------------
# The noise calibration


@pytest.fixture(scope="module")
def fresh_calibration():
    return calibration.run_calibration(seed=987_654, n_series=4000)


def test_documented_thresholds_are_the_config_defaults():
    documented = calibration.read_documented()
    assert set(documented) == set(calibration.VETOES)
    for veto, entry in documented.items():
        assert entry["threshold"] == calibration.threshold_text(veto, VetoConfig()), veto


def test_noise_false_positive_rates_match_the_documented_table(fresh_calibration):
    documented = calibration.read_documented()
    for veto in calibration.VETOES:
        for scenario, rate in documented[veto]["rates"].items():
            fresh = fresh_calibration.rates[veto][scenario]
            assert abs(fresh - rate) <= 0.03, (veto, scenario, fresh, rate)


def test_predictability_vetoes_hit_their_target_rates_on_fresh_noise(fresh_calibration):
    for veto, target in calibration.TARGET_FPR.items():
        assert abs(fresh_calibration.rates[veto]["gauss_2"] - target) <= 0.015, veto
    for veto in ("kurtosis", "volatility", "roc"):
        assert fresh_calibration.rates[veto]["gauss_2"] <= 0.005, veto
    assert fresh_calibration.rates["volatility"]["gauss_5"] == 0.0


# the null of the predictability statistics moves when the estimator does (e.g. a lost small-sample correction)
NULL_TOLERANCE = {"entropy": 0.002, "efficiency": 0.005, "hurst": 0.01}


def test_null_distributions_match_the_documented_table(fresh_calibration):
    documented = calibration.read_documented()
    for name, tol in NULL_TOLERANCE.items():
        for stat in ("mean", "q50"):
            fresh, doc = fresh_calibration.null[name][stat], documented[name]["null"][stat]
            assert abs(fresh - doc) <= tol, (name, stat, fresh, doc)
