"""Content hashes of frames: the same rows in the same order always hash alike, and any change of a value does
not.

Scheme `frame-hash/2`: SHA-256 over the scheme's name, the column names and types, then the rows as CSV with
every float written in its shortest round-trip form (polars' default), so two floats hash alike only when they
are the same double (the exact bits; -0.0 and 0.0 differ, every NaN is alike). Scheme 1 wrote floats at 17
decimal places, which lost the last bits of values below 1 and so could miss a change there; records hashed
with it say so in their run's genesis (`audit.store.environment_body`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import polars as pl

HASH_SCHEME = "frame-hash/2"


def frame_hash(frame: pl.DataFrame, order_by: Sequence[str] | None = None) -> str:
    """A stable content hash of a frame (sorted by `order_by` when given)."""
    ordered = frame.sort(list(order_by)) if order_by else frame
    digest = hashlib.sha256(HASH_SCHEME.encode() + b"\n")
    digest.update(",".join(f"{n}:{t}" for n, t in ordered.schema.items()).encode())
    digest.update(ordered.write_csv().encode() if ordered.height else b"")
    return digest.hexdigest()
