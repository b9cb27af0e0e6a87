"""Noise calibration of the selection vetoes: each veto's false-positive rate on iid returns.

`python -m tsp_platform.reference.selection_calibration` simulates iid daily returns (fixed seed), runs the production
`compute_features` on them, and measures, for every veto of `VetoConfig` at its current default, the fraction of
noise series it vetoes. It prints the table and writes docs/selection-calibration.md, together with the null
distribution of the predictability features, the thresholds those quantiles suggest, and the two estimator
studies behind the feature choices (Hurst estimator, permutation-entropy order).

Veto semantics (the same as the policy's): entropy > entropy_max; efficiency < efficiency_min;
hurst_band[0] ≤ hurst ≤ hurst_band[1]; kurtosis > kurtosis_max; volatility > volatility_max;
roc > roc_max or roc < roc_min. A null feature vetoes nothing.

Why the predictability thresholds sit where they do: on noise the entropy ceiling, the efficiency floor and the
Hurst band are meant to fire, yet none of the three statistics separates weakly structured series from noise
well at these sample sizes (see the studies in the doc). Set at the centre of the null distribution they would
veto most noise and most genuinely structured series with it. Set in the most noise-like tail of the null
(5 % for entropy and efficiency, a central 10 % band around the null median for Hurst), each vetoes a known,
small share of noise and only the series that look the most like noise, and the stated false-positive rate is
the price paid on every real candidate too.
"""

from __future__ import annotations

import argparse
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
from scipy.linalg import cholesky, toeplitz

from tsp_platform.config.selection import FeatureConfig, PolicyConfig, VetoConfig
from tsp_platform.core.panel import ReturnsPanel
from tsp_platform.selection.features import (
    compute_features,
    dfa_scales,
    hurst_dfa,
    hurst_rs,
    permutation_entropy,
    rs_scales,
)

SEED = 20_240_521
N_SERIES = 4000
ANNUALISATION = 252
DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "selection-calibration.md"

VETOES = ("entropy", "efficiency", "hurst", "kurtosis", "volatility", "roc", "friction")
PREDICTABILITY = ("entropy", "efficiency", "hurst")
NULL_FEATURES = ("entropy", "efficiency", "hurst", "kurtosis", "volatility", "roc", "momentum")
VETO_FEATURE = {"friction": "momentum"}  # the feature whose null distribution a veto reads, when not its name
TARGET_FPR = {"entropy": 0.05, "efficiency": 0.05, "hurst": 0.10}


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    distribution: str  # "gaussian" | "t3"
    daily_vol: float
    seed_offset: int


SCENARIOS = (
    Scenario("gauss_2", "Gaussian, 2 % daily", "gaussian", 0.02, 0),
    Scenario("gauss_5", "Gaussian, 5 % daily", "gaussian", 0.05, 1),
    Scenario("t3_2", "Student-t(3), 2 % daily", "t3", 0.02, 2),
)
NULL_SCENARIO = "gauss_2"


def simulate_noise(n_series: int, n_obs: int, daily_vol: float, distribution: str, seed: int) -> ReturnsPanel:
    """iid zero-mean daily simple returns with standard deviation `daily_vol` (t(3) rescaled by 1/√3)."""
    rng = np.random.default_rng(seed)
    if distribution == "gaussian":
        values = rng.standard_normal((n_obs, n_series)) * daily_vol
    elif distribution == "t3":
        values = rng.standard_t(3, (n_obs, n_series)) * (daily_vol / math.sqrt(3.0))
    else:
        raise ValueError(f"unknown distribution {distribution!r}")
    dates = np.datetime64("2000-01-03") + np.arange(n_obs).astype("timedelta64[D]")
    return ReturnsPanel(values, dates, tuple(f"NOISE:{i:05d}" for i in range(n_series)))


def veto_masks(features: pl.DataFrame, vetoes: VetoConfig) -> dict[str, np.ndarray]:
    """Which rows each veto rejects (null features never veto)."""
    lo, hi = vetoes.hurst_band
    exprs = {
        "entropy": pl.col("entropy") > vetoes.entropy_max,
        "efficiency": pl.col("efficiency") < vetoes.efficiency_min,
        "hurst": pl.col("hurst").is_between(lo, hi, closed="both"),
        "kurtosis": pl.col("kurtosis") > vetoes.kurtosis_max,
        "volatility": pl.col("volatility") > vetoes.volatility_max,
        "roc": (pl.col("roc") > vetoes.roc_max) | (pl.col("roc") < vetoes.roc_min),
        # Noise here is a liquid asset (execution-cost impact ≈ 0): the hurdle meets the trailing momentum alone.
        "friction": pl.col("momentum") < vetoes.eci_hurdle,
    }
    frame = features.select(**{k: e.fill_null(False) for k, e in exprs.items()})
    return {k: frame[k].to_numpy() for k in VETOES}


def threshold_text(veto: str, vetoes: VetoConfig) -> str:
    """How a veto's threshold reads in the doc (the test compares it with the config)."""
    g = lambda x: f"{x:g}"  # noqa: E731
    return {
        "entropy": f"entropy > {g(vetoes.entropy_max)}",
        "efficiency": f"efficiency < {g(vetoes.efficiency_min)}",
        "hurst": f"{g(vetoes.hurst_band[0])} ≤ hurst ≤ {g(vetoes.hurst_band[1])}",
        "kurtosis": f"kurtosis > {g(vetoes.kurtosis_max)}",
        "volatility": f"volatility > {g(vetoes.volatility_max)}",
        "roc": f"roc > {g(vetoes.roc_max)} or roc < {g(vetoes.roc_min)}",
        "friction": f"momentum − ECI < {g(vetoes.eci_hurdle)} (ECI ≈ 0)",
    }[veto]


@dataclass
class CalibrationResult:
    seed: int
    n_series: int
    n_obs: int
    annualisation: int
    features: FeatureConfig
    vetoes: VetoConfig
    rates: dict[str, dict[str, float]] = field(default_factory=dict)  # veto -> scenario -> FPR
    any_predictability: dict[str, float] = field(default_factory=dict)
    null: dict[str, dict[str, float]] = field(default_factory=dict)  # feature -> mean/q05/q50/q95
    suggested: dict[str, object] = field(default_factory=dict)
    entropy_null: np.ndarray | None = None


def summarise(values: np.ndarray) -> dict[str, float]:
    v = values[~np.isnan(values)]
    q05, q45, q50, q55, q95 = np.quantile(v, [0.05, 0.45, 0.50, 0.55, 0.95])
    return {"mean": float(v.mean()), "q05": q05, "q45": q45, "q50": q50, "q55": q55, "q95": q95}


def suggest_thresholds(null: dict[str, dict[str, float]]) -> dict[str, object]:
    """Null quantiles at the target rates, rounded to 3 decimals."""
    return {
        "entropy_max": round(null["entropy"]["q95"], 3),
        "efficiency_min": round(null["efficiency"]["q05"], 3),
        "hurst_band": (round(null["hurst"]["q45"], 3), round(null["hurst"]["q55"], 3)),
    }


def run_calibration(
    seed: int = SEED,
    n_series: int = N_SERIES,
    features: FeatureConfig | None = None,
    vetoes: VetoConfig | None = None,
    annualisation: int = ANNUALISATION,
) -> CalibrationResult:
    """FPR of every veto on every noise scenario, plus the null summary, at the given (default) configs."""
    features = features or FeatureConfig()
    vetoes = vetoes or VetoConfig()
    result = CalibrationResult(seed, n_series, features.window, annualisation, features, vetoes)
    for sc in SCENARIOS:
        panel = simulate_noise(n_series, features.window, sc.daily_vol, sc.distribution, seed + sc.seed_offset)
        frame = compute_features(panel, features, annualisation)
        masks = veto_masks(frame, vetoes)
        for veto in VETOES:
            result.rates.setdefault(veto, {})[sc.key] = float(masks[veto].mean())
        result.any_predictability[sc.key] = float(np.logical_or.reduce([masks[v] for v in PREDICTABILITY]).mean())
        if sc.key == NULL_SCENARIO:
            for name in NULL_FEATURES:
                result.null[name] = summarise(frame[name].to_numpy().astype(np.float64))
            result.entropy_null = frame["entropy"].to_numpy().astype(np.float64)
    result.suggested = suggest_thresholds(result.null)
    return result


# --------------------------------------------------------------------------------------------------------------
# Estimator studies (behind the feature choices; run by main, not by the tests)


def fractional_gaussian_noise(n: int, hurst: float, n_series: int, rng: np.random.Generator) -> np.ndarray:
    """Exact fGn (n, n_series) by Cholesky of its autocovariance."""
    k = np.arange(n, dtype=np.float64)
    two_h = 2 * hurst
    gamma = 0.5 * (np.abs(k + 1) ** two_h - 2 * np.abs(k) ** two_h + np.abs(k - 1) ** two_h)
    return cholesky(toeplitz(gamma), lower=True) @ rng.standard_normal((n, n_series))


def ar1(n: int, phi: float, n_series: int, rng: np.random.Generator, burn: int = 100) -> np.ndarray:
    e = rng.standard_normal((n + burn, n_series))
    x = np.empty_like(e)
    x[0] = e[0]
    for t in range(1, n + burn):
        x[t] = phi * x[t - 1] + e[t]
    return x[burn:]


def auc_lower(null: np.ndarray, alternative: np.ndarray) -> float:
    """P(alternative < null) + ½ P(tie): how well a low value separates the alternative from noise."""
    both = np.concatenate([alternative, null])
    ranks = np.empty(both.size)
    order = np.argsort(both, kind="stable")
    ranks[order] = np.arange(1, both.size + 1)
    # average ranks for ties
    _, inverse, counts = np.unique(both, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    ranks = (sums / counts)[inverse]
    r_alt = ranks[: alternative.size].sum()
    u_alt = r_alt - alternative.size * (alternative.size + 1) / 2
    return float(1.0 - u_alt / (alternative.size * null.size))


def hurst_rs_uncorrected(block: np.ndarray) -> np.ndarray:
    """The older system's estimator, for comparison only: classic R/S, lags 8, 16, … ≤ n/2, population std,
    slope of log mean R/S on log lag (no small-sample correction). Complete (T, N) blocks only."""
    rows = block.shape[0]
    lags = [lag for lag in (8, 16, 32, 64, 128, 256, 512) if lag <= rows // 2]
    ys = []
    for lag in lags:
        k = rows // lag
        seg = block[rows - k * lag :].reshape(k, lag, block.shape[1])
        dev = seg - seg.mean(axis=1, keepdims=True)
        z = np.cumsum(dev, axis=1)
        ys.append(np.log(((z.max(axis=1) - z.min(axis=1)) / dev.std(axis=1)).mean(axis=0)))
    x = np.log(np.asarray(lags, dtype=np.float64))
    xc = x - x.mean()
    y = np.array(ys)
    return (xc[:, None] * (y - y.mean(axis=0))).sum(axis=0) / (xc * xc).sum()


def hurst_study(seed: int, n_series: int, n: int) -> list[dict[str, object]]:
    rng = np.random.default_rng(seed + 100)
    samples = {"noise": rng.standard_normal((n, n_series)), "t3": rng.standard_t(3, (n, n_series))}
    for h in (0.3, 0.4, 0.6, 0.7):
        samples[f"fgn{h}"] = fractional_gaussian_noise(n, h, n_series, rng)
    rows = []
    rs, dfa = rs_scales(n), dfa_scales(n)
    estimators = {
        f"Anis–Lloyd–Peters R/S, scales {rs[0]}..{rs[-1]} (chosen)": lambda x: hurst_rs(x, rs),
        f"DFA-1, scales {dfa[0]}..{dfa[-1]}": lambda x: hurst_dfa(x, dfa),
        "uncorrected R/S of the older system (lags 8..64, population std)": hurst_rs_uncorrected,
    }
    for name, fn in estimators.items():
        est = {k: fn(v) for k, v in samples.items()}
        h0 = est["noise"]
        q05, q95 = np.quantile(h0, [0.05, 0.95])
        outside = lambda h: float(((h < q05) | (h > q95)).mean())  # noqa: E731
        rows.append(
            {
                "estimator": name,
                "bias": float(h0.mean() - 0.5),
                "sd": float(h0.std(ddof=1)),
                "rmse": float(np.sqrt(np.mean((h0 - 0.5) ** 2))),
                "t3": float(est["t3"].mean()),
                **{f"fgn{h}": float(est[f"fgn{h}"].mean()) for h in (0.3, 0.4, 0.6, 0.7)},
                "power0.4": outside(est["fgn0.4"]),
                "power0.6": outside(est["fgn0.6"]),
            }
        )
    return rows


def entropy_order_study(seed: int, n_series: int, n: int, orders=(3, 4, 5, 6)) -> list[dict[str, object]]:
    rng = np.random.default_rng(seed + 200)
    null = rng.standard_normal((n, n_series))
    phis = (-0.3, -0.2, 0.2, 0.3)
    alts = {phi: ar1(n, phi, n_series, rng) for phi in phis}
    rows = []
    for m in orders:
        h0 = permutation_entropy(null, m)
        row = {"order": m, "patterns": math.factorial(m), "mean": float(h0.mean()), "q95": float(np.quantile(h0, 0.95))}
        aucs = {phi: auc_lower(h0, permutation_entropy(x, m)) for phi, x in alts.items()}
        row.update({f"auc{phi:+.1f}": a for phi, a in aucs.items()})
        row["auc_mean"] = float(np.mean(list(aucs.values())))
        rows.append(row)
    return rows


# --------------------------------------------------------------------------------------------------------------
# The document


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def _num(x: float) -> str:
    return f"{x:.4f}" if abs(x) < 10 else f"{x:.2f}"


def render_markdown(result: CalibrationResult, hurst_rows=None, entropy_rows=None) -> str:
    f, v = result.features, result.vetoes
    policy = PolicyConfig()
    head = "| veto | default threshold | " + " | ".join(f"FPR {sc.label}" for sc in SCENARIOS)
    head += " | null mean | null 5 % | null 50 % | null 95 % | target |"
    lines = [
        "# Selection veto calibration on iid noise",
        "",
        "Generated by `python -m tsp_platform.reference.selection_calibration` (do not edit by hand; "
        "`tests/test_selection_features.py` regenerates the rates on fresh noise and compares them with this table).",
        "",
        "## Method",
        "",
        f"- {result.n_series} iid series per scenario, n = {result.n_obs} daily returns (`FeatureConfig.window`), "
        f"seed {result.seed} (+0, +1, +2 per scenario, in table order), annualisation {result.annualisation}.",
        "- Returns are zero-mean simple returns with the stated daily standard deviation; the t(3) series are "
        "rescaled by 1/√3 so that they also have a 2 % daily standard deviation.",
        "- Features are the production `compute_features` at the default `FeatureConfig` "
        f"(window {f.window}, short_window {f.short_window}, entropy_order {f.entropy_order}, roc_days {f.roc_days}); "
        "the vetoes are the default `VetoConfig`.",
        "- FPR = the share of noise series the veto rejects (a null feature rejects nothing). With "
        f"{result.n_series} series the Monte-Carlo standard error is "
        f"≈ {_pct(math.sqrt(0.05 * 0.95 / result.n_series))} "
        f"at a 5 % rate and ≈ {_pct(math.sqrt(0.1 * 0.9 / result.n_series))} at 10 %.",
        "- Null columns: the feature's distribution on the Gaussian 2 % scenario.",
        "",
        "## Vetoes at their defaults",
        "",
        head,
        "|" + "---|" * (2 + len(SCENARIOS) + 5),
    ]
    for veto in VETOES:
        cells = [veto, threshold_text(veto, v)]
        cells += [_pct(result.rates[veto][sc.key]) for sc in SCENARIOS]
        nl = result.null[VETO_FEATURE.get(veto, veto)]
        cells += [_num(nl["mean"]), _num(nl["q05"]), _num(nl["q50"]), _num(nl["q95"])]
        cells.append(_pct(TARGET_FPR[veto]) if veto in TARGET_FPR else "≈ 0")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append(
        "| any predictability veto | entropy, efficiency or hurst | "
        + " | ".join(_pct(result.any_predictability[sc.key]) for sc in SCENARIOS)
        + " | | | | | |"
    )
    s = result.suggested
    lines += [
        "",
        "Thresholds the null quantiles suggest (entropy 95 %, efficiency 5 %, Hurst 45–55 % band, each rounded to "
        f"3 decimals): entropy_max {s['entropy_max']:g}, efficiency_min {s['efficiency_min']:g}, "
        f"hurst_band ({s['hurst_band'][0]:g}, {s['hurst_band'][1]:g}).",
        "",
        "## Why the predictability vetoes sit in the noise-like tail",
        "",
        "These three vetoes exist to drop series that look like noise. But on noise each statistic has a wide null "
        "distribution, and structured series overlap it heavily at these sample sizes (studies below: the best "
        "permutation-entropy order separates AR(1) returns with φ = ±0.3 from noise with an AUC of only ≈ 0.7). A "
        "threshold near the centre of the null would veto about half of all noise *and* a large share of the "
        "structured series. (The older system's thresholds were not calibrated at all: `efficiency_min` 0.1 "
        "rejected most noise, and entropy ceilings of 0.9–0.999 on order 5, whose null peaks at 0.91, never "
        "fired.) Each threshold is therefore "
        "put in the most noise-like tail of its null: the entropy ceiling at the null 95 % quantile and the "
        "efficiency floor at the null 5 % quantile (each rejects ≈ 5 % of noise), and the Hurst random-walk band at "
        "the central 10 % of the null around its median (≈ 10 % of noise). A series is vetoed only when it is "
        "more noise-like than 95 % (90 %) of pure noise. The FPR is also the share of genuinely structured series "
        "that happen to land there, so it is kept small. Ranking, not these vetoes, does the selecting.",
        "",
        "- Entropy is distribution-free on iid continuous noise (ordinal patterns), so its rate does not move with "
        "the volatility or the tails. Efficiency and Hurst are scale-invariant: the 2 % and 5 % Gaussian "
        "columns differ only by sampling noise. Neither is distribution-free: with t(3) tails E|r|/σ is smaller "
        "(0.64 against 0.80), so the efficiency ratio of noise runs larger and the floor fires a little less, "
        f"here {_pct(result.rates['efficiency']['t3_2'])} against {_pct(result.rates['efficiency']['gauss_2'])}.",
        "- Risk vetoes are fixed by policy, not by the null. Kurtosis > 20 never fires on Gaussian noise (the null "
        "95 % quantile is below 1). It does fire on "
        f"{_pct(result.rates['kurtosis']['t3_2'])} of t(3) noise, whose population kurtosis is infinite: the sample "
        "kurtosis of such series is erratic and is driven by one or two extreme days. Many assets have daily "
        "tails close to t(3)–t(4), so this rate is roughly what the veto costs on real, otherwise unremarkable "
        "series. `kurtosis_max` is not among the thresholds tuned here; it is flagged for review. "
        "Volatility > 250 % never fires at 2 % or 5 % daily (≈ 32 % and ≈ 79 % "
        "annualised at 252; ≈ 96 % at 365). The ROC band (+100 % / −80 % over "
        f"{f.roc_days} sessions) never fires at 2 % daily. At 5 % daily noise it fires on "
        f"{_pct(result.rates['roc']['gauss_5'])}: a {f.roc_days}-session sd of ≈ {0.05 * math.sqrt(f.roc_days):.0%} "
        "in log terms makes a +100 % move a ≈ 2σ event. This is left as is, because a doubling in a quarter is "
        "the extreme move the veto is meant to catch.",
        "- Series shorter than the windows: entropy and efficiency are null below `short_window` observations, "
        "so they veto nothing. Hurst from fewer observations has a wider null, so the band holds less of it.",
        "",
    ]
    if entropy_rows:
        lines += [
            f"## Permutation-entropy order (n = {f.short_window}, {result.n_series} series)",
            "",
            "AUC = P(entropy of an AR(1) return series < entropy of a noise series): how well the feature separates "
            "serially dependent returns from noise (0.5 = not at all).",
            "",
            "| order | patterns | null mean | null 95 % "
            "| AUC φ=−0.3 | AUC φ=−0.2 | AUC φ=+0.2 | AUC φ=+0.3 | mean AUC |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in entropy_rows:
            lines.append(
                f"| {r['order']} | {r['patterns']} | {r['mean']:.4f} | {r['q95']:.4f} | {r['auc-0.3']:.3f} | "
                f"{r['auc-0.2']:.3f} | {r['auc+0.2']:.3f} | {r['auc+0.3']:.3f} | {r['auc_mean']:.3f} |"
            )
        best = max(entropy_rows, key=lambda r: r["auc_mean"])
        lines += [
            "",
            f"The default order is {f.entropy_order}; order {best['order']} separates best at n = {f.short_window}. "
            "Order 3 has too few patterns to see much structure. Orders 5 and 6 have more patterns than "
            f"observations (5! = 120, 6! = 720 against {f.short_window - 4} windows), so their entropy mostly "
            "measures undersampling: the older system's order-5 null mean of 0.88 is reproduced here.",
            "",
        ]
    if hurst_rows:
        lines += [
            f"## Hurst estimator (n = {f.window}, {result.n_series} series)",
            "",
            "Bias, sd and RMSE are on iid Gaussian noise (true H = 0.5). The fGn columns give the mean estimate on "
            "exact fractional Gaussian noise with that H. Power = the share of fGn(H) outside the estimator's own "
            "null 5–95 % interval.",
            "",
            "| estimator | bias | sd | RMSE | mean on t(3) "
            "| fGn 0.3 | fGn 0.4 | fGn 0.6 | fGn 0.7 | power H=0.4 | power H=0.6 |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in hurst_rows:
            lines.append(
                f"| {r['estimator']} | {r['bias']:+.4f} | {r['sd']:.4f} | {r['rmse']:.4f} | {r['t3']:.3f} | "
                f"{r['fgn0.3']:.3f} | {r['fgn0.4']:.3f} | {r['fgn0.6']:.3f} | {r['fgn0.7']:.3f} | "
                f"{_pct(r['power0.4'])} | {_pct(r['power0.6'])} |"
            )
        lines += [
            "",
            "Choice: the Anis–Lloyd–Peters corrected R/S. On noise both estimators are unbiased to within a few "
            "thousandths, and the corrected R/S has the smaller sd and RMSE, so its null is the tighter one the "
            "Hurst band is calibrated on. Its segment std uses ddof = 1, which is the convention the AL expectation "
            "matches; with the population std the estimate is biased to ≈ 0.47. The cost: it is attenuated away from "
            "0.5 (it under-states |H − 0.5| by roughly a third) and is slightly less powerful against fGn than "
            "DFA-1. It still ranks correctly. The uncorrected R/S of the older system (last row) is biased upwards "
            "by ≈ 0.09 on the same noise, so its 0.48–0.52 band missed most random walks.",
            "",
        ]
    lines += [
        "## Dependent policy thresholds (PolicyConfig, not calibrated here)",
        "",
        "These read the entropy scale, and that scale depends on the entropy order. The null mean entropy is "
        f"{result.null['entropy']['mean']:.4f}.",
        "",
        f"- `hardening_trigger` {policy.hardening_trigger:g}: the ceiling is tightened when the candidates' "
        "mean entropy "
        "exceeds this. A universe of pure noise has a mean of "
        f"{result.null['entropy']['mean']:.3f}, so the trigger "
        + ("fires" if result.null["entropy"]["mean"] > policy.hardening_trigger else "does not fire")
        + " on noise."
        + " Tightened ceiling: "
        f"{v.entropy_max * policy.hardening_factor:.4f}, which vetoes "
        f"{_pct(float(np.nanmean(result.entropy_null > v.entropy_max * policy.hardening_factor)))} of noise.",
        f"- The relaxed entropy ceiling min(1, entropy_max × {policy.relax_entropy:g}) = "
        f"{min(1.0, v.entropy_max * policy.relax_entropy):.4f} vetoes "
        f"{_pct(float(np.nanmean(result.entropy_null > min(1.0, v.entropy_max * policy.relax_entropy))))} of noise.",
        f"- `representative_entropy_max` {policy.representative_entropy_max:g} excludes "
        f"{_pct(float(np.nanmean(result.entropy_null > policy.representative_entropy_max)))} of noise.",
        "",
    ]
    return "\n".join(lines)


_ROW = re.compile(r"^\| (\w+) \| ([^|]+) \| (.+) \|$")


def read_documented(path: Path = DOC_PATH) -> dict[str, dict[str, object]]:
    """The documented veto table: veto -> {"threshold": text, "rates": {scenario key: FPR}, "null": {stat: value}}."""
    table: dict[str, dict[str, object]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        m = _ROW.match(line.strip())
        if not m or m.group(1) not in VETOES:
            continue
        cells = [c.strip() for c in m.group(3).split("|")]
        rates = {sc.key: float(cells[i].rstrip(" %")) / 100 for i, sc in enumerate(SCENARIOS)}
        stats = cells[len(SCENARIOS) : len(SCENARIOS) + 4]
        null = {k: float(c) for k, c in zip(("mean", "q05", "q50", "q95"), stats)}
        table[m.group(1)] = {"threshold": m.group(2).strip(), "rates": rates, "null": null}
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--series", type=int, default=N_SERIES)
    parser.add_argument("--output", type=Path, default=DOC_PATH, help="markdown file to write ('-' for none)")
    args = parser.parse_args(argv)
    result = run_calibration(args.seed, args.series)
    features = result.features
    hurst_rows = hurst_study(args.seed, args.series, features.window)
    entropy_rows = entropy_order_study(args.seed, args.series, features.short_window)
    text = render_markdown(result, hurst_rows, entropy_rows)
    print(text)
    if str(args.output) != "-":
        args.output.write_text(text + "\n", encoding="utf-8")
        print(f"\nwritten: {args.output}")


if __name__ == "__main__":
    main()
