"""Partitions, defined once: profile (static, from the manifest) × as-of date (daily).

Dagster orders multi-partition dimensions alphabetically and joins them as "date|profile"; never write
that string by hand: build keys with `partition_key` and read them with `partition_of`.
"""

from __future__ import annotations

import os
from datetime import date

import dagster as dg

from tsp_platform.config import load_manifest

PROFILE_DIM = "profile"
DATE_DIM = "date"

MANIFEST = load_manifest(os.environ.get("TSP_MANIFEST") or None)

profile_partitions = dg.StaticPartitionsDefinition(MANIFEST.profile_names)
as_of_partitions = dg.DailyPartitionsDefinition(start_date=MANIFEST.file.partitions_start.isoformat(), end_offset=0)
profile_date_partitions = dg.MultiPartitionsDefinition({PROFILE_DIM: profile_partitions, DATE_DIM: as_of_partitions})


def partition_key(profile: str, as_of: date | str) -> dg.MultiPartitionKey:
    """The partition key for one profile and as-of date (aliases resolve to the profile name)."""
    day = as_of if isinstance(as_of, str) else as_of.isoformat()
    date.fromisoformat(day)
    return dg.MultiPartitionKey({PROFILE_DIM: MANIFEST.canonical_name(profile), DATE_DIM: day})


def partition_of(context) -> tuple[str, date]:
    """(profile, as-of date) of the partition an asset or check is computing."""
    keys = context.partition_key.keys_by_dimension
    return keys[PROFILE_DIM], date.fromisoformat(keys[DATE_DIM])


def partition_tags(profile: str, as_of: date | str) -> dict[str, str]:
    """Run tags naming one partition, for jobs Dagster cannot infer partitions for (checks-only jobs)."""
    key = partition_key(profile, as_of)
    return {"dagster/partition": str(key), **{f"dagster/partition/{dim}": k for dim, k in key.keys_by_dimension.items()}}
