"""The Dagster layer: assets and checks over the tsp_platform domain. `assets.definitions` assembles them."""

import warnings

import dagster as dg

# Partitioned asset checks and pools are preview/beta in Dagster 1.13; we rely on them knowingly.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)
