"""Return-based selection features, vectorised across assets, from each symbol's own observations.

`compute_features(panel, config, annualisation)` gives one row per symbol (panel order). The panel must already
be cut at the as-of date (`panel.until(as_of)`): every feature reads only the rows it is given, so nothing after
the as-of date can leak in.

Observations. A NaN in the panel means "no session" and is dropped, never read as a zero return. Each symbol's
observations are first compacted (its non-NaN returns, in time order, right-aligned), so a symbol with gaps gets
exactly the features of the same series with the NaNs removed. The windows count the symbol's own sessions:
"the last `window` returns" are its last `window` observations, whatever its calendar. ±inf is a data error
(the health gates exclude it upstream) and raises.

| column | definition | needs at least |
|---|---|---|
| n_obs | observations in the `window` (≤ `config.window`) | |
| momentum | mean of the last `window` returns × annualisation | 20 |
| volatility | std (ddof = 1) of the same returns × √annualisation; exactly 0 for a constant series | 20 |
| stability | 1 / (volatility + 1e-9) | 20 |
| entropy | normalised permutation entropy, order `entropy_order`, delay 1, last `short_window` returns; ordinal patterns with ties broken by time order (the earlier value ranks lower); −Σ p ln p / ln(order!) | `short_window` |
| efficiency | Kaufman efficiency ratio on the last `short_window` returns: \\|Σ r\\| / Σ \\|r\\| (null when every return is 0) | `short_window` |
| hurst | Anis–Lloyd–Peters corrected rescaled range, on the window (see below) | min(100, `window`) |
| skew | bias-corrected sample skewness G1 (signed) | 20 |
| kurtosis | bias-corrected sample excess kurtosis G2 | 20 |
| cvar | mean of the returns at or below the `cvar_level` quantile (linear interpolation) | 20 |
| antifragility | skew + ln(tail_gain / \\|tail_loss\\|): means of the returns at or above the `tail_quantile` quantile and at or below the (1 − `tail_quantile`) quantile; null unless tail_gain > 0 > tail_loss | min(100, `window`) |
| roc | compounded return over the last `roc_days` sessions: Π(1 + r) − 1 | `roc_days` |

Below its minimum a feature is null. Entropy and efficiency need the full `short_window`, because their null
distributions depend strongly on the sample size (the permutation-entropy bias is ≈ (order! − 1) / (2 P ln order!)
for P patterns; the efficiency ratio of noise scales as 1/√n), so values from shorter samples are not comparable
across assets and the calibrated thresholds do not apply to them. Skew, kurtosis and Hurst are null for a
series with zero variance (std ≤ 1e-12 × max |r|).

Hurst estimator. H = 0.5 + slope of (log E_obs[R/S](n) − log E_AL[R/S](n)) on log n, where E_obs is the mean
R/S over the non-overlapping segments of length n (anchored at the latest observation) and E_AL is the
Anis–Lloyd expectation for iid data with Peters' (n − ½)/n factor. Scales: ≈ √2 geometric grid from 8 to
`window` // 2 (8, 11, 16, 22, 32, 45, 63, 89, 126 for 252); a symbol uses the scales with at least two whole
segments and needs three of them. The segment std uses ddof = 1: the AL expectation matches R/S with that
convention (with the population std, small scales are inflated by √(n/(n−1)) and the estimate is biased down to
≈ 0.47 on noise at n = 252). Why this and not DFA-1 (both are here, `hurst_dfa` too): on iid Gaussian noise at
n = 252 both are unbiased to within 0.005, and the corrected R/S has the smaller spread (sd ≈ 0.058 vs ≈ 0.068
for DFA-1 on 6..126), which is what the Hurst-band veto is calibrated on. Its known cost: it is attenuated away
from 0.5 (fGn with H = 0.7 reads ≈ 0.63, H = 0.3 reads ≈ 0.35), so it ranks correctly but under-states the size
of the departure; DFA-1 is nearly unbiased there. docs/selection-calibration.md carries the comparison.

Vectorisation: the compaction is one stable argsort per panel; moments are masked sums; quantiles come from one
column sort; permutation patterns from `sliding_window_view` and a bincount; R/S loops over the few scales
only. There is no loop over assets.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
from numpy.lib.stride_tricks import sliding_window_view
from scipy.special import gammaln

from tsp_platform.config.selection import FeatureConfig
from tsp_platform.core.panel import ReturnsPanel

FEATURE_COLUMNS = (
    "momentum",
    "volatility",
    "stability",
    "entropy",
    "efficiency",
    "hurst",
    "skew",
    "kurtosis",
    "cvar",
    "antifragility",
    "roc",
)
MIN_MOMENTS = 20  # momentum, volatility, stability, skew, kurtosis, cvar
MIN_LONG = 100  # hurst and antifragility (capped at the window)
RS_MIN_SCALE = 8
DFA_MIN_SCALE = 6
STABILITY_EPS = 1e-9
DEGENERATE_RTOL = 1e-12  # std ≤ this × max|r| counts as zero variance


def minimum_observations(config: FeatureConfig) -> dict[str, int]:
    """Fewest observations each feature needs; below it the feature is null."""
    long = min(MIN_LONG, config.window)
    return {
        "momentum": MIN_MOMENTS,
        "volatility": MIN_MOMENTS,
        "stability": MIN_MOMENTS,
        "entropy": config.short_window,
        "efficiency": config.short_window,
        "hurst": long,
        "skew": MIN_MOMENTS,
        "kurtosis": MIN_MOMENTS,
        "cvar": MIN_MOMENTS,
        "antifragility": long,
        "roc": config.roc_days,
    }


# --------------------------------------------------------------------------------------------------------------
# Alignment


def align_observations(values: np.ndarray, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Each column's last `rows` non-NaN values in time order, right-aligned (NaN padding on top), and counts.

    Stable argsort of the validity mask moves every column's NaNs to the top and keeps the observations in time
    order beneath them; the last `rows` rows are then each symbol's most recent observations.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"expected a (T, N) array, got shape {values.shape}")
    if np.isinf(values).any():
        raise ValueError("returns contain ±inf; NaN is the only missing-value marker")
    t, n = values.shape
    valid = ~np.isnan(values)
    order = np.argsort(valid, axis=0, kind="stable")
    compact = np.take_along_axis(values, order, axis=0)
    if t >= rows:
        block = compact[t - rows :]
    else:
        block = np.vstack([np.full((rows - t, n), np.nan), compact])
    counts = np.minimum(valid.sum(axis=0), rows)
    return np.ascontiguousarray(block), counts


def _counts(block: np.ndarray) -> np.ndarray:
    return (~np.isnan(block)).sum(axis=0)


# --------------------------------------------------------------------------------------------------------------
# Moments and tails


def _moments(block: np.ndarray, counts: np.ndarray):
    """Mean, central moments m2..m4 (population), and a zero-variance flag, per column, over the valid rows."""
    mask = ~np.isnan(block)
    n = np.maximum(counts, 1)
    x = np.where(mask, block, 0.0)
    mean = x.sum(axis=0) / n
    d = np.where(mask, block - mean, 0.0)
    d2 = d * d
    m2 = d2.sum(axis=0) / n
    m3 = (d2 * d).sum(axis=0) / n
    m4 = (d2 * d2).sum(axis=0) / n
    maxabs = np.abs(x).max(axis=0) if x.shape[0] else np.zeros(x.shape[1])
    degenerate = np.sqrt(m2) <= DEGENERATE_RTOL * maxabs
    return mean, m2, m3, m4, degenerate


def _quantile_sorted(sorted_block: np.ndarray, counts: np.ndarray, level: float) -> np.ndarray:
    """Linear-interpolation quantile (numpy's default) per column of an ascending sort with NaN last."""
    pos = level * (np.maximum(counts, 1) - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, np.maximum(counts - 1, 0))
    frac = pos - lo
    a = np.take_along_axis(sorted_block, lo[None, :], axis=0)[0]
    b = np.take_along_axis(sorted_block, hi[None, :], axis=0)[0]
    return a + (b - a) * frac


def _tail_means(sorted_block: np.ndarray, counts: np.ndarray, level: float, upper: bool) -> np.ndarray:
    """Mean of the values at or below (upper=False) / at or above (upper=True) the `level` quantile."""
    q = _quantile_sorted(sorted_block, counts, level)
    rows = np.arange(sorted_block.shape[0])[:, None]
    inside = rows < counts[None, :]
    sel = inside & ((sorted_block >= q) if upper else (sorted_block <= q))
    total = np.where(sel, sorted_block, 0.0).sum(axis=0)
    k = sel.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / k


# --------------------------------------------------------------------------------------------------------------
# Permutation entropy


def permutation_entropy(block: np.ndarray, order: int) -> np.ndarray:
    """Normalised permutation entropy (delay 1) per column of a right-aligned block, over its valid windows.

    Pattern of a window x_0..x_{m-1}: its Lehmer code Σ_j c_j (m−1−j)!, c_j = #{k > j : x_k < x_j}, i.e. the
    ordinal pattern with ties broken by time order (an earlier value ranks lower). NaN where a column has no
    complete window.
    """
    rows, n = block.shape
    k_patterns = math.factorial(order)
    if rows < order or n == 0:
        return np.full(n, np.nan)
    windows = sliding_window_view(block, order, axis=0)  # (P, N, order)
    code = np.zeros(windows.shape[:2], dtype=np.int64)
    for j in range(order - 1):
        c = np.zeros(windows.shape[:2], dtype=np.int64)
        for k in range(j + 1, order):
            c += windows[..., k] < windows[..., j]
        code += c * math.factorial(order - 1 - j)
    counts = _counts(block)
    first_valid = rows - counts  # right-aligned: window i is complete iff it starts at or after this row
    complete = np.arange(windows.shape[0])[:, None] >= first_valid[None, :]
    flat = (code + k_patterns * np.arange(n)[None, :])[complete]
    hist = np.bincount(flat, minlength=k_patterns * n).reshape(n, k_patterns).astype(np.float64)
    total = hist.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = hist / total
        h = -np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0).sum(axis=1)
    h = h / math.log(k_patterns)
    h[total[:, 0] == 0] = np.nan
    return np.clip(h, 0.0, 1.0)


# --------------------------------------------------------------------------------------------------------------
# Hurst


def _geometric_scales(smallest: int, window: int) -> np.ndarray:
    largest = window // 2
    if largest < smallest:
        return np.array([], dtype=np.int64)
    num = max(3, int(round(2 * math.log2(largest / smallest))) + 1)
    return np.unique(np.round(np.geomspace(smallest, largest, num)).astype(np.int64))


def rs_scales(window: int) -> np.ndarray:
    """R/S segment lengths for a window: ≈ √2 geometric from 8 to window // 2."""
    return _geometric_scales(RS_MIN_SCALE, window)


def dfa_scales(window: int) -> np.ndarray:
    return _geometric_scales(DFA_MIN_SCALE, window)


def anis_lloyd_expected_rs(n: int) -> float:
    """E[R/S] of n iid observations (Anis & Lloyd 1976) with Peters' (n − ½)/n small-sample factor."""
    i = np.arange(1, n)
    tail = float(np.sum(np.sqrt((n - i) / i)))
    return (n - 0.5) / n * math.exp(gammaln((n - 1) / 2) - gammaln(n / 2)) / math.sqrt(math.pi) * tail


def _segments(block: np.ndarray, counts: np.ndarray, size: int):
    """Non-overlapping segments of `size` anchored at the last row: (k, size, N) and which lie in the data."""
    rows = block.shape[0]
    k = rows // size
    seg = block[rows - k * size :].reshape(k, size, block.shape[1])
    starts = rows - k * size + size * np.arange(k)
    inside = starts[:, None] >= (rows - counts)[None, :]
    return seg, inside


def _masked_slope(x: np.ndarray, y: np.ndarray, use: np.ndarray, min_points: int = 3) -> np.ndarray:
    """OLS slope of y (S, N) on x (S,) per column over the rows flagged in `use`; NaN with fewer points."""
    w = use.astype(np.float64)
    m = w.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        xbar = (w * x[:, None]).sum(axis=0) / m
        yv = np.where(use, y, 0.0)
        ybar = (w * yv).sum(axis=0) / m
        xc = x[:, None] - xbar
        slope = (w * xc * (yv - ybar)).sum(axis=0) / (w * xc * xc).sum(axis=0)
    slope[m < min_points] = np.nan
    return slope


def hurst_rs(block: np.ndarray, scales: np.ndarray | None = None) -> np.ndarray:
    """Anis–Lloyd–Peters corrected R/S Hurst exponent per column of a right-aligned block (NaN on top).

    Per scale n: R/S of every whole segment in the data (R = range of the cumulative demeaned sum, S = std with
    ddof = 1; segments with S = 0 are skipped), averaged; y_n = log mean R/S − log E_AL(n). A scale counts when
    it has ≥ 2 segments; H = 0.5 + slope of y on log n over ≥ 3 scales, else NaN.
    """
    rows, n_assets = block.shape
    scales = rs_scales(rows) if scales is None else np.asarray(scales, dtype=np.int64)
    counts = _counts(block)
    ys, uses = [], []
    for size in scales:
        seg, inside = _segments(block, counts, int(size))
        with np.errstate(invalid="ignore", divide="ignore"):
            dev = seg - seg.mean(axis=1, keepdims=True)
            z = np.cumsum(dev, axis=1)
            r = z.max(axis=1) - z.min(axis=1)
            s = np.sqrt((dev * dev).sum(axis=1) / (size - 1))
            ok = inside & (s > DEGENERATE_RTOL * np.abs(seg).max(axis=1))
            rs = np.where(ok, r / np.where(ok, s, 1.0), 0.0)
            k = ok.sum(axis=0)
            mean_rs = rs.sum(axis=0) / k
            ys.append(np.log(mean_rs) - math.log(anis_lloyd_expected_rs(int(size))))
        uses.append((k >= 2) & (mean_rs > 0))
    if not ys:
        return np.full(n_assets, np.nan)
    return 0.5 + _masked_slope(np.log(scales.astype(np.float64)), np.array(ys), np.array(uses))


def hurst_dfa(block: np.ndarray, scales: np.ndarray | None = None) -> np.ndarray:
    """DFA-1 exponent per column of a right-aligned block (kept for the estimator comparison in calibration).

    Profile = cumulative sum of the demeaned returns; per scale s, the rms residual of a linear fit in each
    whole segment (anchored at the last row), F(s) = √(mean F²); α = slope of log F on log s (≥ 3 scales with
    ≥ 2 segments each).
    """
    rows, n_assets = block.shape
    scales = dfa_scales(rows) if scales is None else np.asarray(scales, dtype=np.int64)
    counts = _counts(block)
    mask = ~np.isnan(block)
    mean = np.where(mask, block, 0.0).sum(axis=0) / np.maximum(counts, 1)
    profile = np.cumsum(np.where(mask, block - mean, 0.0), axis=0)
    profile[~mask] = np.nan
    ys, uses = [], []
    for size in scales:
        seg, inside = _segments(profile, counts, int(size))
        t = np.arange(size) - (size - 1) / 2
        with np.errstate(invalid="ignore", divide="ignore"):
            centred = seg - seg.mean(axis=1, keepdims=True)
            slope = (t[None, :, None] * centred).sum(axis=1, keepdims=True) / (t * t).sum()
            resid = centred - slope * t[None, :, None]
            f2 = np.where(inside, (resid * resid).mean(axis=1), 0.0)
            k = inside.sum(axis=0)
            mean_f2 = f2.sum(axis=0) / k
            ys.append(0.5 * np.log(mean_f2))
        uses.append((k >= 2) & (mean_f2 > 0))
    if not ys:
        return np.full(n_assets, np.nan)
    return _masked_slope(np.log(scales.astype(np.float64)), np.array(ys), np.array(uses))


# --------------------------------------------------------------------------------------------------------------
# The feature frame


def feature_arrays(values: np.ndarray, config: FeatureConfig, annualisation: int) -> dict[str, np.ndarray]:
    """Every feature as a float array over the columns of `values` (T, N), NaN where null; plus n_obs."""
    if annualisation < 1:
        raise ValueError(f"annualisation must be ≥ 1, got {annualisation}")
    rows = max(config.window, config.short_window, config.roc_days)
    aligned, total = align_observations(values, rows)
    minimum = minimum_observations(config)

    win = aligned[rows - config.window :]
    n = np.minimum(total, config.window)
    mean, m2, m3, m4, degenerate = _moments(win, n)
    nf = n.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        variance = np.where(degenerate, 0.0, m2 * nf / (nf - 1))
        volatility = np.sqrt(variance * annualisation)
        g1 = m3 / m2**1.5
        skew = np.sqrt(nf * (nf - 1)) / (nf - 2) * g1
        g2 = m4 / m2**2 - 3.0
        kurtosis = (nf - 1) / ((nf - 2) * (nf - 3)) * ((nf + 1) * g2 + 6.0)
    skew[degenerate] = np.nan
    kurtosis[degenerate] = np.nan

    ordered = np.sort(win, axis=0)  # NaN last
    cvar = _tail_means(ordered, n, config.cvar_level, upper=False)
    gain = _tail_means(ordered, n, config.tail_quantile, upper=True)
    loss = _tail_means(ordered, n, 1.0 - config.tail_quantile, upper=False)
    with np.errstate(invalid="ignore", divide="ignore"):
        antifragility = np.where((gain > 0) & (loss < 0), skew + np.log(gain / np.abs(loss)), np.nan)

    short = aligned[rows - config.short_window :]
    n_short = np.minimum(total, config.short_window)
    s_valid = np.where(np.isnan(short), 0.0, short)
    with np.errstate(invalid="ignore", divide="ignore"):
        efficiency = np.abs(s_valid.sum(axis=0)) / np.abs(s_valid).sum(axis=0)
    entropy = permutation_entropy(short, config.entropy_order)

    recent = aligned[rows - config.roc_days :]
    with np.errstate(invalid="ignore"):
        roc = np.prod(1.0 + recent, axis=0) - 1.0

    out = {
        "momentum": mean * annualisation,
        "volatility": volatility,
        "stability": 1.0 / (volatility + STABILITY_EPS),
        "entropy": entropy,
        "efficiency": efficiency,
        "hurst": hurst_rs(win, rs_scales(config.window)),
        "skew": skew,
        "kurtosis": kurtosis,
        "cvar": cvar,
        "antifragility": antifragility,
        "roc": roc,
    }
    available = {
        "entropy": n_short,
        "efficiency": n_short,
        "roc": np.minimum(total, config.roc_days),
    }
    for name, arr in out.items():
        arr = np.asarray(arr, dtype=np.float64)
        arr[available.get(name, n) < minimum[name]] = np.nan
        arr[~np.isfinite(arr)] = np.nan
        out[name] = arr
    out["n_obs"] = n.astype(np.int64)
    return out


def compute_features(panel: ReturnsPanel, config: FeatureConfig, annualisation: int) -> pl.DataFrame:
    """One row per symbol (panel order): symbol, n_obs, then FEATURE_COLUMNS; null where a feature is undefined."""
    arrays = feature_arrays(panel.values.reshape(len(panel.dates), len(panel.symbols)), config, annualisation)
    columns = [
        pl.Series("symbol", list(panel.symbols), dtype=pl.String),
        pl.Series("n_obs", arrays["n_obs"], dtype=pl.Int64),
    ]
    columns += [pl.Series(name, arrays[name], dtype=pl.Float64, nan_to_null=True) for name in FEATURE_COLUMNS]
    return pl.DataFrame(columns)
