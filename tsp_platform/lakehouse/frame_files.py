"""Directories of Parquet frames written atomically, with a manifest naming each file's SHA-256.

Fan-out work exchanges data through these instead of the DuckDB file (one writer at a time). A writer stages
the files in a temporary sibling directory and renames it into place, so a reader sees the old set or the new
set, never half of one; a reader checks every file against the manifest and refuses a truncated or edited one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import polars as pl

MANIFEST_FILE = "manifest.json"


class FrameFilesError(RuntimeError):
    """A frame directory is missing, incomplete, or does not match its manifest."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_frames(directory: Path, frames: dict[str, pl.DataFrame], info: dict) -> str:
    """Write `frames` (name → frame) and `info` (JSON-able) to `directory`, replacing it atomically.

    Returns the manifest's SHA-256: an id of exactly this content."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        files = {}
        for name, frame in frames.items():
            path = staging / f"{name}.parquet"
            frame.write_parquet(path)
            files[name] = {"rows": frame.height, "sha256": file_sha256(path)}
        manifest = staging / MANIFEST_FILE
        manifest.write_text(json.dumps({"info": info, "files": files}, indent=2, sort_keys=True, default=str))
        digest = file_sha256(manifest)
        retired = None
        if directory.exists():
            retired = directory.with_name(f".{directory.name}.retired-{os.getpid()}")
            os.replace(directory, retired)
        os.replace(staging, directory)
        if retired is not None:
            shutil.rmtree(retired, ignore_errors=True)
        return digest
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def read_frames(directory: Path, names: tuple[str, ...]) -> tuple[dict[str, pl.DataFrame], dict, str]:
    """(frames, info, manifest SHA-256) of a directory `write_frames` wrote; every name in `names` must be there."""
    directory = Path(directory)
    manifest_path = directory / MANIFEST_FILE
    if not manifest_path.exists():
        raise FrameFilesError(f"{directory}: no {MANIFEST_FILE} (never written, or written by something else)")
    manifest = json.loads(manifest_path.read_text())
    frames = {}
    for name in names:
        entry = manifest["files"].get(name)
        path = directory / f"{name}.parquet"
        if entry is None or not path.exists():
            raise FrameFilesError(f"{directory}: {name}.parquet is missing")
        if file_sha256(path) != entry["sha256"]:
            raise FrameFilesError(f"{path}: content does not match {MANIFEST_FILE} (truncated or edited)")
        frames[name] = pl.read_parquet(path)
    return frames, manifest["info"], file_sha256(manifest_path)
