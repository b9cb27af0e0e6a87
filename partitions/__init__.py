"""Partitions, defined once: profile (static, from the manifest) × as-of date (daily), and the tournament's cells.

Dagster orders multi-partition dimensions alphabetically and joins them as "date|profile"; never write
that string by hand: build keys with `partition_key` and read them with `partition_of`.

Tournament cells are a dynamic partition set (`tournament_cells`): a profile × date already uses both
dimensions, so a cell key extends the profile × date key with its cell group, "date|profile|group" (one
allocation engine's cells, or the baselines). Build them with `cell_key` / `cell_keys`, read them with `cell_of`.
"""

from __future__ import annotations

import os
import re
from datetime import date

import dagster as dg

from tsp_platform.config import load_manifest
from tsp_platform.config.models import Profile
from tsp_platform.core.identifiers import path_segment

PROFILE_DIM = "profile"
DATE_DIM = "date"

MANIFEST = load_manifest(os.environ.get("TSP_MANIFEST") or None)

profile_partitions = dg.StaticPartitionsDefinition(MANIFEST.profile_names)
as_of_partitions = dg.DailyPartitionsDefinition(start_date=MANIFEST.file.partitions_start.isoformat(), end_offset=0)
profile_date_partitions = dg.MultiPartitionsDefinition({PROFILE_DIM: profile_partitions, DATE_DIM: as_of_partitions})


def partition_key(profile: str, as_of: date | str) -> dg.MultiPartitionKey:
    """The partition key for one profile and as-of date (aliases resolve to the profile name)."""
    return dg.MultiPartitionKey({PROFILE_DIM: MANIFEST.canonical_name(profile), DATE_DIM: _day(as_of)})


def _day(as_of: date | str) -> str:
    """The as-of date as YYYY-MM-DD; anything else is an error naming it."""
    day = as_of if isinstance(as_of, str) else as_of.isoformat()
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", day):
            raise ValueError
        date.fromisoformat(day)
    except ValueError:
        raise ValueError(f"as-of date {as_of!r} is not a YYYY-MM-DD date") from None
    return day


def partition_of(context) -> tuple[str, date]:
    """(profile, as-of date) of the partition an asset or check is computing."""
    keys = context.partition_key.keys_by_dimension
    return keys[PROFILE_DIM], date.fromisoformat(keys[DATE_DIM])


def parse_partition_key(key: str) -> tuple[str, date]:
    """(profile, as-of date) of a profile × date partition key string (as the event log stores it)."""
    dims = profile_date_partitions.get_partition_key_from_str(key).keys_by_dimension
    return dims[PROFILE_DIM], date.fromisoformat(dims[DATE_DIM])


def partition_tags(profile: str, as_of: date | str) -> dict[str, str]:
    """Run tags naming one partition, for jobs Dagster cannot infer partitions for (checks-only jobs)."""
    key = partition_key(profile, as_of)
    return {"dagster/partition": str(key), **{f"dagster/partition/{dim}": k for dim, k in key.keys_by_dimension.items()}}


META_DIM = "meta"
meta_partitions = dg.MultiPartitionsDefinition(
    {META_DIM: dg.StaticPartitionsDefinition(sorted(MANIFEST.file.meta_profiles) or ["none"]), DATE_DIM: as_of_partitions}
)


def sleeve_mapping() -> dg.MultiPartitionMapping:
    """A meta × date partition depends on each of its sleeves' profile × date partitions (same date)."""
    by_sleeve: dict[str, set[str]] = {}
    for name, meta in MANIFEST.file.meta_profiles.items():
        for sleeve in meta.sleeves:
            by_sleeve.setdefault(sleeve, set()).add(name)
    return dg.MultiPartitionMapping({
        PROFILE_DIM: dg.DimensionPartitionMapping(META_DIM, dg.StaticPartitionMapping(by_sleeve)),
        DATE_DIM: dg.DimensionPartitionMapping(DATE_DIM, dg.IdentityPartitionMapping()),
    })


def meta_key(meta: str, as_of: date | str) -> dg.MultiPartitionKey:
    day = _day(as_of)
    if meta not in MANIFEST.file.meta_profiles:
        raise ValueError(f"unknown meta profile {meta!r} (known: {sorted(MANIFEST.file.meta_profiles)})")
    return dg.MultiPartitionKey({META_DIM: meta, DATE_DIM: day})


tournament_cell_partitions = dg.DynamicPartitionsDefinition(name="tournament_cells")
KEY_SEPARATOR = "|"


def cell_key(profile: str, as_of: date | str, group: str) -> str:
    """The tournament cell partition of one profile × date × cell group."""
    base = partition_key(profile, as_of)
    if not group or KEY_SEPARATOR in group:
        raise ValueError(f"cell group {group!r} must be non-empty and free of {KEY_SEPARATOR!r}")
    path_segment(group, "cell group")  # it names the directory the cells' results wait in
    return f"{base}{KEY_SEPARATOR}{group}"


def cell_keys(profile: Profile, as_of: date | str) -> list[str]:
    """Every cell partition of a profile × date (one per cell group of its tournament configuration)."""
    return [cell_key(profile.name, as_of, group) for group in profile.tournament.cell_groups()]


def cell_of(key: str) -> tuple[str, date, str]:
    """(profile, as-of date, cell group) of a tournament cell partition key."""
    base, _, group = key.rpartition(KEY_SEPARATOR)
    try:
        profile, as_of = parse_partition_key(base)
    except Exception as error:
        raise ValueError(f"tournament cell key {key!r} is not 'date{KEY_SEPARATOR}profile{KEY_SEPARATOR}group'") from error
    if not group or profile not in MANIFEST.profile_names:
        raise ValueError(f"tournament cell key {key!r}: unknown profile or empty group")
    path_segment(group, f"tournament cell key {key!r}: cell group")
    return profile, as_of, group
