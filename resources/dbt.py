"""The `dbt` resource: dbt_checks/ pointed at one lakehouse file (see assets/dbt_checks.py for the assets)."""

import os
import shutil
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dagster_dbt import DbtCliResource

DBT_PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt_checks"
DBT_SCHEMA = "dbt_checks"  # profiles.yml `schema`: where the dbt models land inside the lakehouse file
LAKEHOUSE_ENV = "TSP_LAKEHOUSE"


def dbt_executable() -> str:
    """`dbt` on PATH, else the one installed next to this interpreter (a venv not on PATH, e.g. under pytest)."""
    found = shutil.which("dbt")
    if found:
        return found
    local = Path(sys.executable).with_name("dbt")
    if local.exists():
        return str(local)
    raise FileNotFoundError("dbt executable not found: install dbt-core/dbt-duckdb in this environment")


def normalized_path(path: str | os.PathLike) -> str:
    return os.fspath(Path(path).expanduser().resolve())


_ENV_LOCK = threading.Lock()


@contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    with _ENV_LOCK:
        previous = os.environ.get(name)
        os.environ[name] = value
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = previous


class LakehouseDbtCliResource(DbtCliResource):
    """A DbtCliResource bound to one lakehouse file: every dbt subprocess gets TSP_LAKEHOUSE=<that file>.

    dagster-dbt builds the subprocess environment from os.environ inside `cli()` (and loads the profile
    in-process there too), so the variable is set around that call only, under a lock, then restored.
    """

    lakehouse_path: str

    def cli(self, args, **kwargs):  # type: ignore[override]
        with _env(LAKEHOUSE_ENV, self.lakehouse_path):
            return super().cli(args, **kwargs)


def dbt_resource(lakehouse_path: str | os.PathLike) -> LakehouseDbtCliResource:
    """The `dbt` resource for `@dbt_assets`, pointing dbt_checks/ at the DuckDB file `lakehouse_path`."""
    path = Path(normalized_path(lakehouse_path))
    if path.stem == DBT_SCHEMA:
        raise ValueError(
            f"lakehouse file {path.name!r}: DuckDB names the catalog after the file stem, which would collide with "
            f"the dbt schema {DBT_SCHEMA!r} (ambiguous references); rename the file"
        )
    return LakehouseDbtCliResource(
        project_dir=os.fspath(DBT_PROJECT_DIR),
        profiles_dir=os.fspath(DBT_PROJECT_DIR),
        dbt_executable=dbt_executable(),
        lakehouse_path=os.fspath(path),
    )
