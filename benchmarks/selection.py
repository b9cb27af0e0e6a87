"""Features and selection for 500 candidates × 500 days (one core, BLAS pinned to one thread).

A factor-model returns panel (10 sectors, fat tails, some missing sessions) runs through the selection
stages: features → probabilities and both scorers → correlation clustering → HTR policy per scorer.
Prints a table per stage, then one JSON line: {"select_s": …} (features through policy, best of 3).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

import tsp_platform  # noqa: E402,F401  (pins BLAS threads)
from tsp_platform.config.selection import SelectionConfig  # noqa: E402
from tsp_platform.core.panel import ReturnsPanel  # noqa: E402
from tsp_platform.selection.context import SelectionContext  # noqa: E402
from tsp_platform.selection.pipeline import apply_policy, engineer_features, infer, partition  # noqa: E402

ASSETS, DAYS, SECTORS, REPEATS = 500, 500, 10, 3


def synthetic_inputs(seed: int = 0) -> SelectionContext:
    rng = np.random.default_rng(seed)
    sector = rng.integers(0, SECTORS, ASSETS)
    market = rng.standard_t(4, DAYS) * 0.01
    factors = rng.standard_t(4, (DAYS, SECTORS)) * 0.008
    returns = market[:, None] + factors[:, sector] + rng.standard_t(4, (DAYS, ASSETS)) * 0.012
    returns[rng.random((DAYS, ASSETS)) < 0.02] = np.nan  # missing sessions
    dates = np.arange(np.datetime64("2021-01-01"), np.datetime64("2021-01-01") + DAYS)
    symbols = tuple(f"BENCH:S{i:03d}" for i in range(ASSETS))
    direction = np.where(rng.random(ASSETS) < 0.2, "short", "long")
    atoms = pl.DataFrame(
        {
            "symbol": symbols, "logic": "trend", "direction": direction, "identity": symbols,
            "sector": [f"sector {s}" for s in sector], "asset_class": "equity",
        }
    ).with_columns(pl.concat_str(["symbol", "logic", "direction"], separator="_").alias("atom_id"))
    execution = pl.DataFrame(
        {
            "symbol": symbols, "adx": rng.uniform(5, 50, ASSETS), "recommend_all": rng.uniform(-1, 1, ASSETS),
            "recommend_ma": rng.uniform(-1, 1, ASSETS), "recommend_other": rng.uniform(-1, 1, ASSETS),
            "adv": rng.lognormal(18, 1.5, ASSETS),
            "has_execution_metadata": True,
        }
    )
    return SelectionContext(
        config=SelectionConfig(), annualisation=252, allow_short=True, benchmark=None,
        atoms=atoms, panel=ReturnsPanel(returns, dates, symbols), execution=execution,
    )


def timed(fn, ctx):
    start = time.perf_counter()
    out = fn(ctx)
    return out, time.perf_counter() - start


def main() -> None:
    inputs = synthetic_inputs()
    best: dict[str, float] = {}
    for _ in range(REPEATS):
        ctx, t_features = timed(engineer_features, inputs)
        ctx, t_infer = timed(infer, ctx)
        ctx, t_cluster = timed(partition, ctx)
        ctx, t_policy = timed(apply_policy, ctx)
        for name, value in (("features", t_features), ("scoring", t_infer), ("clustering", t_cluster), ("policy", t_policy)):
            best[name] = min(best.get(name, float("inf")), value)
        best["select"] = min(best.get("select", float("inf")), t_features + t_infer + t_cluster + t_policy)
    champion = next(r for r in ctx.policies.values())
    print(f"{'stage (500 candidates x 500 days)':<40}{'best of 3':>12}")
    for name in ("features", "scoring", "clustering", "policy", "select"):
        print(f"{name:<40}{best[name]:>10.3f} s")
    print(f"{'winners (champion)':<40}{champion.winners.height:>12}   clusters {ctx.clusters.n_clusters}, HTR stage {champion.final_stage}")
    print(json.dumps({"select_s": round(best["select"], 4), **{f"{k}_s": round(v, 4) for k, v in best.items() if k != "select"}}))


if __name__ == "__main__":
    main()
