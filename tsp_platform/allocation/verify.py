"""Re-verify stored allocations from the lakehouse alone (what the `portfolio_weights` checks run)."""

from __future__ import annotations

import numpy as np
import polars as pl

from tsp_platform.allocation.config import AllocationConfig, RiskProfile
from tsp_platform.allocation.projection import capped_set

TOLERANCE = 1e-6
NEUTRAL = RiskProfile.MARKET_NEUTRAL.value
UNCAPPED = {RiskProfile.BENCHMARK.value, RiskProfile.MARKET.value, NEUTRAL}


def verify_allocations(weights: pl.DataFrame, runs: pl.DataFrame, cluster_cap: float, config: AllocationConfig) -> dict[str, list[str]]:
    """Problems per check: `weights_finite`, `budget_held` (net 1; neutral also gross and beta), `caps_held`."""
    found: dict[str, list[str]] = {"weights_finite": [], "budget_held": [], "caps_held": []}
    atoms = weights.filter(pl.col("level") == "atom")
    for (engine, profile), rows in atoms.group_by("engine", "risk_profile", maintain_order=True):
        label = f"{engine}/{profile}"
        w = rows["weight"]
        if not w.is_finite().all():
            found["weights_finite"].append(label)
            continue
        net, gross = float(w.sum()), float(w.abs().sum())
        if abs(net - 1) > TOLERANCE:
            found["budget_held"].append(f"{label}: net {net:.6f}")
        if profile == NEUTRAL:
            if gross > config.neutral_gross_max + TOLERANCE:
                found["budget_held"].append(f"{label}: gross {gross:.4f}")
            beta = runs.filter((pl.col("engine") == engine) & (pl.col("risk_profile") == profile))["beta"]
            if beta.len() and beta[0] is not None and abs(beta[0]) > config.neutral_beta_band + TOLERANCE:
                found["budget_held"].append(f"{label}: beta {beta[0]:.4f} outside ±{config.neutral_beta_band}")
            continue
        if (w < -TOLERANCE).any():
            found["caps_held"].append(f"{label}: negative weight in a long-only profile")
        if profile in UNCAPPED:
            continue
        n = rows.height
        upper = max(config.max_weight, 1.0 / n)
        if float(w.max()) > upper + TOLERANCE:
            found["caps_held"].append(f"{label}: asset weight {float(w.max()):.4f} > {upper:.4f}")
        caps = capped_set(rows["cluster"].to_numpy(), np.zeros(n), np.full(n, upper), cluster_cap)
        sums = np.bincount(caps.cluster, weights=w.to_numpy(), minlength=len(caps.caps))
        for k in np.flatnonzero(sums > caps.caps + TOLERANCE):
            found["caps_held"].append(f"{label}: a cluster holds {sums[k]:.4f} > its cap {caps.caps[k]:.4f}")
    physical = weights.filter(pl.col("level") == "physical")
    if not physical["weight"].is_finite().all():
        found["weights_finite"].append("physical weights")
    return found
