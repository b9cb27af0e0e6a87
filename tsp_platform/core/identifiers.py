"""Names that become keys or paths: run ids and single path segments, checked before they are used."""

from __future__ import annotations

import re

RUN_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")


def validate_run_id(run_id: str) -> str:
    if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id):  # fullmatch: `$` would let a trailing newline in
        raise ValueError(f"run id {run_id!r} must match {RUN_ID.pattern} (no path separators or '..')")
    return run_id


def path_segment(value: str, what: str) -> str:
    """`value` as one file or directory name under a root: refuses empty names, '.', '..', path separators and
    control characters, so a path built from a profile, cell group or run id cannot leave its root."""
    unsafe = not isinstance(value, str) or value in ("", ".", "..") or any(c in "/\\" or ord(c) < 32 for c in value)
    if unsafe:
        raise ValueError(f"{what} {value!r} cannot name a file or directory (no path separators, '..' or "
                         "control characters)")
    return value
