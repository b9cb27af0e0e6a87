"""The `tsp` console script: domain commands plus the Dagster runs `make demo` uses."""

from tsp_cli.main import main

__all__ = ["main"]
