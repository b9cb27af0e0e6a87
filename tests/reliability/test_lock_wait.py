"""A second process's lock on the DuckDB file is waited out for a bounded time, then named in the error.

The `duckdb` pool should keep writers apart, but Dagster 1.13 can grant a limit-1 pool twice when two steps
claim it at the same instant (docs/deployment.md §4); this wait is what keeps that race from failing a run.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tsp_platform.lakehouse import Lakehouse, LakehouseError

HOLDER = """
import sys, time, duckdb
conn = duckdb.connect(sys.argv[1])
conn.execute("CREATE TABLE IF NOT EXISTS held (x INTEGER)")
open(sys.argv[2], "w").close()
time.sleep(float(sys.argv[3]))
conn.close()
"""


def hold(path, marker, seconds: float) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), str(marker), str(seconds)])
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert holder.poll() is None and time.monotonic() < deadline, "the holder never took the lock"
        time.sleep(0.05)
    return holder


def test_a_writer_waits_for_another_process_to_release_the_file(lakehouse, tmp_path):
    with lakehouse.connect() as conn:  # create the file and its tables first
        conn.execute("SELECT 1")
    holder = hold(lakehouse.path, tmp_path / "held", 3.0)
    started = time.monotonic()
    try:
        with lakehouse.connect() as conn:
            assert conn.execute("SELECT count(*) FROM held").fetchone() == (0,)
    finally:
        holder.wait(timeout=60)
    assert time.monotonic() - started > 1.0  # it really waited for the holder


def test_a_lock_held_past_the_wait_is_an_error_naming_the_file(lakehouse_path, tmp_path):
    holder = hold(lakehouse_path, tmp_path / "held", 10.0)
    try:
        with pytest.raises(LakehouseError, match=f"lakehouse {lakehouse_path} is locked by another process"):
            with Lakehouse(lakehouse_path, lock_wait_s=0.5).connect():
                pass
    finally:
        holder.kill()
        holder.wait(timeout=60)
