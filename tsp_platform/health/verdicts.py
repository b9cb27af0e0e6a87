"""What a partition's stored gate verdicts mean downstream: the quarantine list, and a strict profile's refusal.

Pure (polars): callers pass the `health_results` rows of the partition they judge.
"""

from __future__ import annotations

from datetime import date

import polars as pl


class DataHealthFailed(RuntimeError):
    """A strict profile's data-health gates failed for this partition: the alpha cycle does not run on it."""


def quarantine_list(health: pl.DataFrame) -> pl.DataFrame:
    """Symbols failing any gate, with the gates and details that failed them."""
    failed = health.filter(~pl.col("passed"))
    return failed.group_by("symbol").agg(
        pl.format("{}: {}", "gate", "detail").sort().str.join("; ").alias("detail")
    ).sort("symbol")


def require_healthy(health: pl.DataFrame, profile: str, as_of: date) -> None:
    """Refuse a strict profile's partition whose gates failed. Gates block within a run; this carries their
    verdict across runs (the alpha cycle and the tournament are their own jobs)."""
    failed = health.filter(~pl.col("passed"))
    if failed.height:
        named = "; ".join(f"{g} {s}: {d}" for g, s, d in failed.select("gate", "symbol", "detail").head(5).iter_rows())
        raise DataHealthFailed(
            f"{profile} as of {as_of}: {failed.height} data-health gate failures (strict profile), "
            f"the alpha cycle does not run: {named}"
        )
