"""Directories of Parquet frames, swapped in atomically, with a manifest naming each file's SHA-256.

Fan-out work exchanges data through these instead of the DuckDB file (one writer at a time).

* Writing: the files and the manifest go to a fresh version directory beside the target, then a symlink
  named like the target is switched to it in one `os.replace`. A reader therefore sees the old version or the
  new one, never a mix and never a moment with no directory; the old version is removed afterwards.
* Reading: the symlink is resolved once, and every file is read as bytes, hashed, checked against the
  manifest (whose own bytes give the content id) and parsed from those same bytes, so the frames returned are
  exactly the ones the id names. A version removed while it is being read is an error, not a silent mix.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
from pathlib import Path

import polars as pl

MANIFEST_FILE = "manifest.json"


class FrameFilesError(RuntimeError):
    """A frame directory is missing, incomplete, or does not match its manifest."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_frames(directory: Path, frames: dict[str, pl.DataFrame], info: dict) -> str:
    """Write `frames` (name → frame) and `info` (JSON-able) as the current version of `directory`.

    Returns the manifest's SHA-256: an id of exactly this content."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    version = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        files = {}
        for name, frame in frames.items():
            buffer = io.BytesIO()
            frame.write_parquet(buffer)
            data = buffer.getvalue()
            (version / f"{name}.parquet").write_bytes(data)
            files[name] = {"rows": frame.height, "sha256": _sha256(data)}
        manifest = json.dumps({"info": info, "files": files}, indent=2, sort_keys=True, default=str).encode()
        (version / MANIFEST_FILE).write_bytes(manifest)
        previous = directory.resolve() if directory.is_symlink() else None
        if directory.exists() and not directory.is_symlink():  # a plain directory from an older layout
            shutil.rmtree(directory)
        link = directory.with_name(f".{directory.name}.link-{os.getpid()}")
        link.unlink(missing_ok=True)
        link.symlink_to(version.name)
        os.replace(link, directory)
        if previous is not None and previous != version:
            shutil.rmtree(previous, ignore_errors=True)
        return _sha256(manifest)
    except BaseException:
        shutil.rmtree(version, ignore_errors=True)
        raise


def _manifest_bytes(directory: Path, version: Path) -> bytes:
    try:
        return (version / MANIFEST_FILE).read_bytes()
    except FileNotFoundError:
        raise FrameFilesError(f"{directory}: no {MANIFEST_FILE} (never written, or written by something else)") from None


def content_id(directory: Path) -> str:
    """The current version's content id (its manifest's SHA-256) without reading its frames."""
    directory = Path(directory)
    return _sha256(_manifest_bytes(directory, directory.resolve()))


def read_frames(directory: Path, names: tuple[str, ...]) -> tuple[dict[str, pl.DataFrame], dict, str]:
    """(frames, info, content id) of the current version of a directory `write_frames` wrote."""
    directory = Path(directory)
    version = directory.resolve()
    manifest_bytes = _manifest_bytes(directory, version)
    manifest = json.loads(manifest_bytes)
    frames = {}
    for name in names:
        entry = manifest["files"].get(name)
        path = version / f"{name}.parquet"
        try:
            data = path.read_bytes() if entry is not None else None
        except FileNotFoundError:
            data = None
        if data is None:
            raise FrameFilesError(f"{directory}: {name}.parquet is missing")
        if _sha256(data) != entry["sha256"]:
            raise FrameFilesError(f"{directory / path.name}: content does not match {MANIFEST_FILE} (truncated or edited)")
        frames[name] = pl.read_parquet(io.BytesIO(data))
    return frames, manifest["info"], _sha256(manifest_bytes)
