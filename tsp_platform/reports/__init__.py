"""Reports: QuantStats tear-sheets, PNG charts and a markdown dashboard of one profile's run.

Pure domain code (numpy, polars, pandas, matplotlib, scipy, seaborn, QuantStats); no Dagster. Every writer takes the
output path from its caller, so file names are deterministic, and returns it.
"""

import matplotlib

# Reports run headless (workers, CI): pick the non-interactive backend before any submodule imports pyplot.
matplotlib.use("Agg")

from tsp_platform.reports.dashboard import DashboardInputs, render_dashboard  # noqa: E402
from tsp_platform.reports.plots import (  # noqa: E402
    plot_correlation,
    plot_dendrogram,
    plot_drawdowns,
    plot_equity,
    plot_weights,
)
from tsp_platform.reports.streams import Stream, cell_label, streams_from_tournament_returns  # noqa: E402
from tsp_platform.reports.tearsheet import read_tearsheet_metrics, write_tearsheet  # noqa: E402

__all__ = [
    "DashboardInputs",
    "Stream",
    "cell_label",
    "plot_correlation",
    "plot_dendrogram",
    "plot_drawdowns",
    "plot_equity",
    "plot_weights",
    "read_tearsheet_metrics",
    "render_dashboard",
    "streams_from_tournament_returns",
    "write_tearsheet",
]
