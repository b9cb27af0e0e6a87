"""Walk-forward refits: our custom-engine walk-forward vs skfolio `cross_val_predict`, HRP and min-variance.

Data: skfolio's embedded S&P 500 prices (20 assets, 1990-01-02 … 2022-12-28) → simple returns
(`prices_to_returns`, 8312 rows). Windows: train 252, test 21, step 21 → 383 folds, the same folds on both
sides (`walkforward.windows` = skfolio `WalkForward(train_size=252, test_size=21)`, checked here).

Ours: `hrp_walkforward` / `min_variance_walkforward` (per window `estimate_covariance` Ledoit–Wolf, then
prefix-sum HRP or the exact active-set QP; caps off, long-only). skfolio: `cross_val_predict` with the
estimators configured as `SkfolioEngine` configures them (prior covariance = our Ledoit–Wolf,
`CovarianceDistance("precomputed")`, single linkage, `HierarchicalSeriation(optimal_ordering=False)`;
`MeanRisk` minimum variance, CLARABEL tol 1e-12, objective in units of the fold's mean variance).

Timing: one process, one core (BLAS pinned to one thread); a warm-up run of each side on the first 5 folds
(imports, caches) is excluded; each side is then timed on the full walk-forward `REPEATS` times, the
runs interleaved (ours, skfolio, ours, …) so that load on the shared machine hits both, and the fastest
run of each side is reported. max |Δw| is over every fold and asset.

Prints a table, then the JSON last line {"ours_s", "skfolio_s", "speedup", "max_weight_diff"}: the times
and speedup of the estimator with the smaller speedup, and the largest |Δw| of the two estimators (so both
targets read off the worst case). Targets: speedup ≥ 20, max |Δw| ≤ 1e-6.

Min-variance parity floor: skfolio poses the variance through a second-order cone and CLARABEL stops at
"AlmostSolved" around a relative gap of 1e-12; on this data the worst fold then sits at ≈ 9e-7 (our exact
solution has the lower objective). Tighter tolerances (1e-13, 1e-14, tol_ktratio, iterative refinement,
regularisation, the faer solver) leave that fold unchanged or move the worst case to another fold; what
matters is posing the objective in units of the fold's mean variance (`SkfolioEngine`'s
`scale_objective`): without it the gap is ≈ 8e-6.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import tsp_platform  # noqa: E402,F401  (pins BLAS threads)
from tsp_platform.config.allocation import RiskProfile  # noqa: E402
from tsp_platform.config.tournament import WalkForwardConfig
from tsp_platform.reference.walkforward import (
    MinVarianceAllocator,
    allocate_windows,
    hrp_walkforward,
    min_variance_walkforward,
    skfolio_estimator,
    skfolio_walkforward,
)
from tsp_platform.tournament.walkforward import windows

CONFIG = WalkForwardConfig(train=252, test=21, step=21)
REPEATS = 3
WARMUP_FOLDS = 5
TARGET_SPEEDUP, TARGET_DIFF = 20.0, 1e-6
OURS = {RiskProfile.HRP: hrp_walkforward, RiskProfile.MIN_VARIANCE: min_variance_walkforward}
warnings.filterwarnings("ignore")


def load_returns():
    from skfolio.datasets import load_sp500_dataset
    from skfolio.preprocessing import prices_to_returns

    return prices_to_returns(load_sp500_dataset())


def interleaved(ours, theirs, repeats: int = REPEATS):
    """Run ours, theirs, ours, theirs, … (so load spikes on the shared machine hit both sides alike);
    return the fastest wall time of each and their last results."""
    best, results = [float("inf"), float("inf")], [None, None]
    for _ in range(repeats):
        for k, fn in enumerate((ours, theirs)):
            start = time.perf_counter()
            results[k] = fn()
            best[k] = min(best[k], time.perf_counter() - start)
    return best[0], results[0], best[1], results[1]


def check_folds(frame) -> int:
    from skfolio.model_selection import WalkForward

    ours = windows(len(frame), CONFIG)
    theirs = list(WalkForward(train_size=CONFIG.train, test_size=CONFIG.test).split(frame))
    assert len(ours) == len(theirs), (len(ours), len(theirs))
    for window, (train, test) in zip(ours, theirs, strict=True):
        assert np.array_equal(np.arange(len(frame))[window.train], train)
        assert np.array_equal(np.arange(len(frame))[window.test], test)
    return len(ours)


def main() -> None:
    frame = load_returns()
    returns = frame.to_numpy(dtype=float)
    folds = check_folds(frame)
    warm_rows = CONFIG.train + WARMUP_FOLDS * CONFIG.test
    rows = {}
    for profile, ours_fn in OURS.items():
        estimator = skfolio_estimator(profile)
        ours_fn(returns[:warm_rows], windows(warm_rows, CONFIG))  # warm-up, not timed
        skfolio_walkforward(frame.iloc[:warm_rows], CONFIG, estimator)
        ours_s, ours_w, skfolio_s, skfolio_w = interleaved(
            lambda: ours_fn(returns, windows(len(returns), CONFIG)),
            lambda: skfolio_walkforward(frame, CONFIG, estimator),
        )
        assert ours_w.shape == skfolio_w.shape == (folds, returns.shape[1])
        rows[profile] = {
            "ours_s": ours_s,
            "skfolio_s": skfolio_s,
            "speedup": skfolio_s / ours_s,
            "max_weight_diff": float(np.max(np.abs(ours_w - skfolio_w))),
        }

    print(f"walk-forward refits: {returns.shape[1]} assets x {returns.shape[0]} days "
          f"({frame.index[0]:%Y-%m-%d} .. {frame.index[-1]:%Y-%m-%d}), train {CONFIG.train}, test {CONFIG.test}, "
          f"step {CONFIG.step} -> {folds} folds")
    print(f"one process, one BLAS thread; warm-up excluded; fastest of {REPEATS} interleaved runs per side\n")
    print(f"{'estimator':<14}{'ours_s':>10}{'skfolio_s':>11}{'speedup':>10}{'ms/fold ours':>14}"
          f"{'ms/fold skf':>13}{'max |dw|':>11}  targets")
    for profile, row in rows.items():
        ok = row["speedup"] >= TARGET_SPEEDUP and row["max_weight_diff"] <= TARGET_DIFF
        print(f"{profile.value:<14}{row['ours_s']:>10.3f}{row['skfolio_s']:>11.3f}{row['speedup']:>9.1f}x"
              f"{row['ours_s'] / folds * 1e3:>14.3f}{row['skfolio_s'] / folds * 1e3:>13.2f}"
              f"{row['max_weight_diff']:>11.1e}  {'met' if ok else 'MISSED'}")
    routes = MinVarianceAllocator()
    allocate_windows(returns, windows(len(returns), CONFIG), routes)
    print(f"\nmin-variance routes: {routes.warm_rounds} windows by warm active-set rounds (KKT-verified), "
          f"{routes.qp_solves} by qp.solve_qp")
    slower = min(rows.values(), key=lambda row: row["speedup"])
    largest_diff = max(row["max_weight_diff"] for row in rows.values())
    print(json.dumps({
        "ours_s": round(slower["ours_s"], 4),
        "skfolio_s": round(slower["skfolio_s"], 3),
        "speedup": round(slower["speedup"], 1),
        "max_weight_diff": float(f"{largest_diff:.3e}"),
    }))


if __name__ == "__main__":
    main()
