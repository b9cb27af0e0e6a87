"""The floors of the code base hold: the import contracts (`.importlinter`), and configuration that loads light.

`make test` runs `lint-imports` before pytest; this module runs it too, so `pytest tests` alone cannot pass
with a broken layer.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Nothing here may load with the manifest: no solver, no scipy.optimize, no stage, no lakehouse, no Dagster.
HEAVY = ("scipy", "cvxpy", "clarabel", "skfolio", "riskfolio", "cvxportfolio", "nautilus_trader", "quantstats",
         "dagster", "duckdb", "tsp_platform.allocation", "tsp_platform.selection", "tsp_platform.tournament",
         "tsp_platform.lakehouse", "tsp_platform.discovery", "tsp_platform.market_data", "tsp_platform.orders",
         "tsp_platform.meta", "tsp_platform.reports", "tsp_platform.audit", "tsp_platform.health",
         "tsp_platform.sources")


def test_the_import_contracts_hold():
    result = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"], cwd=ROOT, capture_output=True, text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_loading_the_manifest_imports_no_solver_no_stage_and_no_dagster():
    code = (
        "import sys\n"
        "from tsp_platform.config import load_manifest\n"
        "manifest = load_manifest()\n"
        "assert [p.config_id() for p in manifest.profiles()]\n"
        "print('\\n'.join(sorted(sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = result.stdout.split()
    assert "tsp_platform.config.models" in loaded  # the import really happened
    offenders = sorted(m for m in loaded if any(m == h or m.startswith(h + ".") for h in HEAVY))
    assert not offenders, offenders
