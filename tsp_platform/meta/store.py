"""Storing a meta-portfolio: sleeve weights and net physical weights, one transaction per (meta, as-of)."""

from __future__ import annotations

from datetime import date

import polars as pl

from tsp_platform.lakehouse import Lakehouse
from tsp_platform.lakehouse.schema import TABLES
from tsp_platform.meta.stage import MetaResult


def store_meta(lake: Lakehouse, name: str, as_of: date, result: MetaResult) -> None:
    tag = [pl.lit(name).alias("profile"), pl.lit(as_of).alias("as_of")]
    sleeves = result.sleeves.with_columns(*tag, pl.lit(result.common_days, dtype=pl.Int32).alias("common_days"))
    physical = result.physical.with_columns(*tag)
    lake.replace_partitions(name, as_of, {
        "meta_sleeve_weights": sleeves.select(TABLES["meta_sleeve_weights"].column_names),
        "meta_physical_weights": physical.select(TABLES["meta_physical_weights"].column_names),
    })
