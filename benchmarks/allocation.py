"""Per-fit time of every engine × risk profile at 50 and 200 assets, with skfolio's own fit beside ours.

Synthetic 5-factor returns (1000 days, fat tails), default allocation config (Ledoit–Wolf covariance, caps on).
For HRP and min-variance the same problem is also given to plain skfolio estimators configured like ours
(Ledoit–Wolf prior, single linkage, no optimal leaf ordering; MeanRisk minimum variance) and timed on `fit`
alone, caps off on both sides. One core, BLAS pinned to one thread. Prints tables, then one JSON line:
{"hrp_speedup_200": …, "minvar_speedup_200": …}.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import tsp_platform  # noqa: E402,F401  (pins BLAS threads)
from tsp_platform.allocation.base import AllocationProblem, NotSupported, SolverFailed  # noqa: E402
from tsp_platform.allocation.stage import engines  # noqa: E402
from tsp_platform.config.allocation import AllocationConfig, Regime, RiskProfile  # noqa: E402

DAYS, REPEATS, SIZES = 1000, 7, (50, 200)
PROFILES = [p for p in RiskProfile if p is not RiskProfile.MARKET]
warnings.filterwarnings("ignore")


def factor_returns(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    loadings = rng.normal(0, 1, (5, n))
    factors = rng.standard_t(5, (DAYS, 5)) * 0.006
    returns = 0.0003 + factors @ loadings * 0.5 + rng.standard_t(5, (DAYS, n)) * 0.01
    clusters = np.argmax(np.abs(loadings), axis=0) + 1
    benchmark = returns @ np.full(n, 1.0 / n) * 0.8 + rng.normal(0, 0.003, DAYS)
    return returns, clusters, benchmark


def problem(n: int, caps: bool) -> AllocationProblem:
    returns, clusters, benchmark = factor_returns(n)
    config = AllocationConfig() if caps else AllocationConfig(
        max_weight=1.0, cluster_caps={r: 1.0 for r in Regime}
    )
    return AllocationProblem(
        returns=returns, assets=tuple(f"S{i}" for i in range(n)), clusters=clusters, config=config,
        benchmark=benchmark, antifragility=np.random.default_rng(1).normal(size=n), allow_short=True,
    )


def median_ms(fn) -> float:
    fn()  # warm-up (imports, caches)
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def skfolio_fits(n: int) -> dict[str, float]:
    from skfolio.cluster import HierarchicalClustering, LinkageMethod
    from skfolio.measures import RiskMeasure
    from skfolio.moments import LedoitWolf
    from skfolio.optimization import HierarchicalRiskParity, MeanRisk, ObjectiveFunction
    from skfolio.prior import EmpiricalPrior
    from skfolio.seriation import HierarchicalSeriation

    returns, _, _ = factor_returns(n)
    frame = pd.DataFrame(returns, index=pd.bdate_range("2020-01-01", periods=DAYS), columns=[f"S{i}" for i in range(n)])
    prior = EmpiricalPrior(covariance_estimator=LedoitWolf())
    seriation = HierarchicalSeriation(
        hierarchical_clustering_estimator=HierarchicalClustering(linkage_method=LinkageMethod.SINGLE), optimal_ordering=False
    )
    hrp = HierarchicalRiskParity(risk_measure=RiskMeasure.VARIANCE, prior_estimator=prior, seriation_estimator=seriation)
    minvar = MeanRisk(objective_function=ObjectiveFunction.MINIMIZE_RISK, risk_measure=RiskMeasure.VARIANCE, prior_estimator=prior)
    return {"hrp": median_ms(lambda: hrp.fit(frame)), "min_variance": median_ms(lambda: minvar.fit(frame))}


def main() -> None:
    table: dict[tuple[int, str, str], float | str] = {}
    all_engines = engines()
    for n in SIZES:
        capped = problem(n, caps=True)
        for name, engine in all_engines.items():
            for profile in PROFILES:
                if not engine.supports(profile):
                    table[(n, name.value, profile.value)] = "n/a"
                    continue
                try:
                    table[(n, name.value, profile.value)] = median_ms(lambda: engine.allocate(capped, profile))
                except (SolverFailed, NotSupported) as exc:
                    table[(n, name.value, profile.value)] = f"failed: {exc}"[:30]
    names = [e.value for e in all_engines]
    for n in SIZES:
        print(f"\nper-fit time, {n} assets x {DAYS} days, caps on (median of {REPEATS}, ms)")
        print(f"{'profile':<16}" + "".join(f"{e:>14}" for e in names))
        for profile in PROFILES:
            cells = [table[(n, e, profile.value)] for e in names]
            print(f"{profile.value:<16}" + "".join(f"{c:>14.1f}" if isinstance(c, float) else f"{c:>14}" for c in cells))

    custom = all_engines[next(iter(all_engines))]
    speedups = {}
    print(f"\nsame problem, caps off: ours vs skfolio's own fit (median of {REPEATS}, ms)")
    print(f"{'assets':<8}{'profile':<16}{'custom':>10}{'skfolio':>10}{'speedup':>10}")
    for n in SIZES:
        uncapped = problem(n, caps=False)
        theirs = skfolio_fits(n)
        for profile in (RiskProfile.HRP, RiskProfile.MIN_VARIANCE):
            ours = median_ms(lambda: custom.allocate(uncapped, profile))
            ratio = theirs[profile.value] / ours
            speedups[(n, profile.value)] = ratio
            print(f"{n:<8}{profile.value:<16}{ours:>10.2f}{theirs[profile.value]:>10.1f}{ratio:>9.1f}x")
    print(json.dumps({
        "hrp_speedup_200": round(speedups[(200, "hrp")], 1),
        "minvar_speedup_200": round(speedups[(200, "min_variance")], 1),
        "hrp_speedup_50": round(speedups[(50, "hrp")], 1),
        "minvar_speedup_50": round(speedups[(50, "min_variance")], 1),
    }))


if __name__ == "__main__":
    main()
