"""A meta-portfolio's arithmetic, pure (numpy, polars): sleeve weights over the sleeves' common out-of-sample
days, and the result a meta stage stores. `meta.stage` reads the sleeves from the lakehouse and stores it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from tsp_platform.allocation.covariance import estimate_covariance
from tsp_platform.allocation.hrp import hrp_weights
from tsp_platform.allocation.projection import capped_set, project_breakpoint
from tsp_platform.config.allocation import CovarianceConfig
from tsp_platform.config.meta import MetaMethod, MetaProfile


@dataclass(frozen=True, eq=False)
class MetaResult:
    sleeves: pl.DataFrame  # sleeve, weight, raw_weight, cagr, sharpe, volatility (on the common days)
    physical: pl.DataFrame  # symbol, weight (net across sleeves), sleeves (which contributed)
    common_days: int
    first_day: date
    last_day: date
    inputs: dict[str, str]  # content ids of each sleeve's stream and final weights (for the audit ledger)

def sleeve_weights(returns: np.ndarray, meta: MetaProfile) -> tuple[np.ndarray, np.ndarray]:
    """(bounded weights, raw weights) of the sleeves."""
    n = returns.shape[1]
    if meta.method is MetaMethod.EQUAL_WEIGHT:
        raw = np.full(n, 1.0 / n)
    else:
        raw = hrp_weights(estimate_covariance(returns, CovarianceConfig()).matrix)
    bounds = capped_set(np.arange(n), np.full(n, meta.min_weight), np.full(n, meta.max_weight), cluster_cap=1.0)
    return project_breakpoint(raw, bounds), raw
