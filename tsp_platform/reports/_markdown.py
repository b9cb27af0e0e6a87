"""Markdown building blocks: consistent number formatting and a tiny pipe-table writer (no tabulate needed)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path

MISSING = "n/a"


def _is_missing(x: object) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def _no_negative_zero(text: str) -> str:
    # "-0.00%" after rounding a tiny loss reads like a real loss; show it as zero.
    stripped = text.lstrip("-")
    return stripped if stripped.strip("0.%") == "" else text


def fmt_pct(x: float | None, decimals: int = 2) -> str:
    """A fraction as a percentage: 0.1234 → "12.34%"; None/NaN → "n/a"."""
    if _is_missing(x):
        return MISSING
    return _no_negative_zero(f"{float(x) * 100:.{decimals}f}%")


def fmt_num(x: float | None, digits: int = 4) -> str:
    """A ratio to `digits` significant digits, trailing zeros kept so columns line up: 1.23456 → "1.235",
    0.7 → "0.7000"; magnitudes from 10^digits up as whole numbers ("12,346"); None/NaN → "n/a"."""
    if _is_missing(x):
        return MISSING
    text = f"{float(x):#.{digits}g}"
    if "e+" in text:
        return f"{float(x):,.0f}"  # "1.235e+04" would hide the magnitude in a table
    return _no_negative_zero(text.rstrip("."))


def fmt_int(x: int | None) -> str:
    return MISSING if _is_missing(x) else f"{int(x):,}"


def _cell(value: object) -> str:
    # A pipe or a newline inside a cell would break the table's row structure.
    return str(value).replace("|", r"\|").replace("\r", " ").replace("\n", " ")


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], right: Iterable[int] = ()) -> str:
    """A GitHub pipe table; columns whose index is in `right` are right-aligned (numbers)."""
    right = set(right)
    lines = [
        "| " + " | ".join(_cell(h) for h in headers) + " |",
        "|" + "|".join("---:" if i in right else "---" for i in range(len(headers))) + "|",
    ]
    for row in rows:
        if len(row) != len(headers):
            raise ValueError(f"row {row!r} has {len(row)} cells for {len(headers)} headers")
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return "\n".join(lines)


def link_target(path: str | Path) -> str:
    """A relative link target; angle brackets keep spaces and parentheses from ending the link early."""
    text = Path(path).as_posix() if isinstance(path, Path) else str(path)
    return f"<{text}>" if any(c in text for c in " ()") else text
