"""Small helpers that turn domain frames into Dagster metadata (tables in markdown, counts)."""

from __future__ import annotations

import dagster as dg
import polars as pl


def markdown_table(frame: pl.DataFrame, limit: int = 25) -> dg.MetadataValue:
    """A markdown preview of a frame (the UI renders it in the asset's metadata panel)."""
    shown = frame.head(limit)
    if shown.is_empty():
        return dg.MetadataValue.md("_(no rows)_")
    header = "| " + " | ".join(shown.columns) + " |"
    rule = "|" + "---|" * len(shown.columns)
    rows = ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in shown.iter_rows()]
    more = [f"\n_… {frame.height - limit} more rows_"] if frame.height > limit else []
    return dg.MetadataValue.md("\n".join([header, rule, *rows, *more]))
