"""The selection funnel of a partition: universe → discovery → pool → with returns → winners."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl


@dataclass(frozen=True)
class Funnel:
    universe: int  # symbols the screener saw (largest scanner universe)
    discovered: int  # distinct symbols some scanner admitted
    pool_atoms: int
    with_returns: int  # atoms whose asset survived the returns matrix
    winners: int  # champion winners

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def build_funnel(
    discovery_runs: pl.DataFrame, scan_results: pl.DataFrame, raw_pool: pl.DataFrame, with_returns: int, winners: int
) -> Funnel:
    """The funnel from a partition's stored discovery tables, with the selection side given."""
    return Funnel(
        universe=int(discovery_runs["universe"].max() or 0) if discovery_runs.height else 0,
        discovered=scan_results["symbol"].n_unique() if scan_results.height else 0,
        pool_atoms=raw_pool.height,
        with_returns=with_returns,
        winners=winners,
    )
