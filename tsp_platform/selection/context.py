"""The state a selection run carries from stage to stage (ingestion → features → inference → partitioning →
policy → synthesis). Each stage returns a new, enriched context; nothing is mutated in place."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import polars as pl

from tsp_platform.config.selection import SelectionConfig
from tsp_platform.core.panel import ReturnsPanel
from tsp_platform.selection.clustering import ClusterResult
from tsp_platform.selection.policy import PolicyResult


@dataclass(frozen=True, eq=False)
class SelectionContext:
    config: SelectionConfig
    annualisation: int
    allow_short: bool
    benchmark: str | None
    # ingestion
    atoms: pl.DataFrame | None = None  # atom_id, symbol, logic, direction, identity, sector, asset_class
    panel: ReturnsPanel | None = None  # physical returns, up to the as-of date
    execution: pl.DataFrame | None = None  # symbol, has_execution_metadata, adv, adx, recommend_all, recommend_ma
    # features
    features: pl.DataFrame | None = None  # wide: atom_id + one column per raw feature
    # inference
    probabilities: pl.DataFrame | None = None  # wide: atom_id + one probability column per scored feature
    missing_features: tuple[str, ...] = ()
    scores: pl.DataFrame | None = None  # long: scorer, atom_id, score, rank, is_champion
    # partitioning
    clusters: ClusterResult | None = None
    # policy (one result per scorer)
    policies: dict[str, PolicyResult] = field(default_factory=dict)

    def evolve(self, **changes) -> "SelectionContext":
        return replace(self, **changes)
