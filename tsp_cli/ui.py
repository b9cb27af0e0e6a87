"""The Dagster UI driven from code: start the webserver, ask its GraphQL API, take headless Chromium screenshots.

`python -m tsp_cli.ui screenshots --out DIR` starts a webserver on the project's instance (DAGSTER_HOME, else
.dagster_home/) bound to 127.0.0.1 and writes DIR/asset-graph.png and DIR/checks.png. tests/test_ui.py uses the
same helpers against a temporary instance.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from tsp_cli.home import ensure_dagster_home

PROJECT_ROOT = Path(__file__).resolve().parents[1]
WORKSPACE = PROJECT_ROOT / "workspace.yaml"
HOST = "127.0.0.1"

# Dagster 1.13 UI pages: `/asset-groups` is "Global asset lineage" (the whole graph, one box per group);
# an asset's checks tab lists its checks with their blocking flag and latest evaluation.
ASSET_GRAPH_PAGE = "/asset-groups"
CHECKS_PAGE = "/assets/ohlcv_history?view=checks"
SCREENSHOTS = {"asset-graph.png": ASSET_GRAPH_PAGE, "checks.png": CHECKS_PAGE}

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/snap/bin/chromium")


class UIError(RuntimeError):
    """The webserver, its GraphQL API or Chromium did not do what was asked."""


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _venv_executable(name: str) -> str:
    """`name` from the running interpreter's venv, else the project's .venv, else PATH."""
    for candidate in (Path(sys.executable).parent / name, PROJECT_ROOT / ".venv" / "bin" / name):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if not found:
        raise UIError(f"{name} not found: run `make install` first")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((HOST, port)) == 0


def kill_group(proc: subprocess.Popen, timeout: float) -> None:
    """SIGTERM a process group (e.g. the webserver and its code-server child), SIGKILL it if it lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=timeout)
            return
        except subprocess.TimeoutExpired:
            continue


@contextlib.contextmanager
def start_webserver(dagster_home: str | Path, port: int, env_overrides: dict[str, str] | None = None,
                    timeout: float = 90.0) -> Iterator[subprocess.Popen]:
    """Run `dagster-webserver -h 127.0.0.1 -p PORT -w workspace.yaml` until the block ends; yields the process."""
    if _port_in_use(port):
        raise UIError(f"port {port} on {HOST} is already in use: pick another port")
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), **(env_overrides or {})}
    cmd = [_venv_executable("dagster-webserver"), "-h", HOST, "-p", str(port), "-w", str(WORKSPACE)]
    log_dir = Path(tempfile.mkdtemp(prefix="dagster-webserver-"))
    log = log_dir / "webserver.log"
    with open(log, "wb") as log_file:
        proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log_file,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_until_up(proc, port, timeout, log)  # on failure the log stays behind for the error message's reader
    except BaseException:
        kill_group(proc, timeout=20)
        raise
    try:
        yield proc
    finally:
        kill_group(proc, timeout=20)
        shutil.rmtree(log_dir, ignore_errors=True)


def _wait_until_up(proc: subprocess.Popen, port: int, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise UIError(f"dagster-webserver on {HOST}:{port} exited with code {proc.returncode} before answering "
                          f"/server_info; last log lines ({log}):\n{_tail(log)}")
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/server_info", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise UIError(f"dagster-webserver on {HOST}:{port} did not answer /server_info within {timeout:.0f} s; "
                  f"last log lines ({log}):\n{_tail(log)}")


def graphql(port: int, query: str, variables: dict | None = None, timeout: float = 60.0) -> dict:
    """POST a query to the webserver's /graphql and return its `data`; GraphQL errors raise UIError."""
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(f"http://{HOST}:{port}/graphql", data=body,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            payload = json.load(response)
    except urllib.error.HTTPError as exc:  # a malformed query answers 400 with the errors in the body
        try:
            payload = json.load(exc)
        except ValueError:
            raise UIError(f"GraphQL request to port {port} failed: HTTP {exc.code}") from exc
    if payload.get("errors"):
        messages = "; ".join(error.get("message", str(error)) for error in payload["errors"])
        raise UIError(f"GraphQL errors: {messages}")
    return payload["data"]


def dismiss_nux(port: int) -> None:
    """Mark the "Join the Dagster community" modal as seen; a fresh instance overlays it on every page."""
    graphql(port, "mutation { setNuxSeen }")


def find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        if found := shutil.which(name):
            return found
    return next((path for path in CHROMIUM_PATHS if os.access(path, os.X_OK)), None)


def _run_chromium(args: list[str], timeout: float, chromium: str | None = None) -> subprocess.CompletedProcess:
    """Headless Chromium with a throw-away profile, killed (with its children) after `timeout` seconds."""
    binary = chromium or find_chromium()
    if not binary:
        raise UIError("chromium not found (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="tsp-chromium-") as profile:
        cmd = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
               "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", f"--user-data-dir={profile}", *args]
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, start_new_session=True)
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc, timeout=5)
            raise UIError(f"chromium did not finish within {timeout:.0f} s: {' '.join(args)}") from None
    if proc.returncode != 0:
        tail = "\n".join(stderr.splitlines()[-10:])
        raise UIError(f"chromium exited with code {proc.returncode}: {' '.join(args)}\n{tail}")
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def screenshot(url: str, out_path: str | Path, width: int = 1600, height: int = 1000, budget_ms: int = 15000,
               chromium: str | None = None) -> str:
    """Save a PNG of `url` after `budget_ms` of virtual time (the UI's queries settle); returns the page's DOM."""
    out = Path(out_path).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    result = _run_chromium([f"--window-size={width},{height}", f"--virtual-time-budget={budget_ms}",
                            f"--screenshot={out}", "--dump-dom", url], timeout=budget_ms / 1000 + 60, chromium=chromium)
    if not out.is_file():
        raise UIError(f"chromium wrote no screenshot of {url} to {out}")
    return result.stdout


def take_screenshots(port: int, out_dir: str | Path, width: int = 1600, height: int = 1000) -> list[Path]:
    """The asset graph and ohlcv_history's checks page of a running webserver, as PNGs in `out_dir`."""
    dismiss_nux(port)
    written = []
    for name, page in SCREENSHOTS.items():
        path = Path(out_dir) / name
        screenshot(f"http://{HOST}:{port}{page}", path, width=width, height=height)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tsp_cli.ui", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    shots = commands.add_parser("screenshots", help="start a webserver on the project's instance and screenshot it")
    shots.add_argument("--out", required=True, help="folder for asset-graph.png and checks.png")
    shots.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    shots.add_argument("--width", type=int, default=1600)
    shots.add_argument("--height", type=int, default=1000)
    args = parser.parse_args(argv)

    if not find_chromium():
        print("chromium not found: install it (Debian: apt-get install chromium)", file=sys.stderr)
        return 2
    port = args.port or free_port()
    try:
        with start_webserver(ensure_dagster_home(), port):
            written = take_screenshots(port, args.out, args.width, args.height)
    except UIError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
