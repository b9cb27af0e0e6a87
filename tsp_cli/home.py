"""The project's local Dagster instance: runs are recorded inside the project, so `make ui` shows them afterwards."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def ensure_dagster_home() -> Path:
    """DAGSTER_HOME, else the project's .dagster_home/, created with configs/dagster.yaml when it has none."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(PROJECT_ROOT / ".dagster_home")))
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copy(PROJECT_ROOT / "configs" / "dagster.yaml", home / "dagster.yaml")
    return home
