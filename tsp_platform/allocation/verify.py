"""Re-verify stored allocations from the lakehouse alone (what the `portfolio_weights` checks run), with the
same constraint check and tolerance every solve was accepted with (`allocation.constraints`)."""

from __future__ import annotations

import numpy as np
import polars as pl

from tsp_platform.allocation.constraints import PortfolioConstraints
from tsp_platform.config.allocation import AllocationConfig, RiskProfile

BUDGET_KINDS = ("net weight", "gross", "|beta|")  # which problems `budget_held` reports; the rest are caps


def verify_allocations(weights: pl.DataFrame, runs: pl.DataFrame, cluster_cap: float, config: AllocationConfig) -> dict[str, list[str]]:
    """Problems per check: `weights_finite`, `budget_held` (net 1; neutral also gross and beta), `caps_held`."""
    found: dict[str, list[str]] = {"weights_finite": [], "budget_held": [], "caps_held": []}
    atoms = weights.filter(pl.col("level") == "atom")
    for (engine, profile), rows in atoms.group_by("engine", "risk_profile", maintain_order=True):
        label = f"{engine}/{profile}"
        w = rows["weight"].to_numpy()
        if not np.isfinite(w).all():
            found["weights_finite"].append(label)
            continue
        n = len(w)
        constraints = PortfolioConstraints.for_profile(
            RiskProfile(profile), rows["cluster"].to_numpy(), np.full(n, max(config.max_weight, 1.0 / n)), cluster_cap,
            config,
        )
        beta = runs.filter((pl.col("engine") == engine) & (pl.col("risk_profile") == profile))["beta"]
        for problem in constraints.problems(w, beta[0] if beta.len() else None):
            check = "budget_held" if problem.startswith(BUDGET_KINDS) else "caps_held"
            found[check].append(f"{label}: {problem}")
    physical = weights.filter(pl.col("level") == "physical")
    if not physical["weight"].is_finite().all():
        found["weights_finite"].append("physical weights")
    return found
