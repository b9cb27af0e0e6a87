"""tsp-platform domain: plain Python, numpy and polars. No Dagster import lives here."""

from tsp_platform.core.threads import pin_blas_threads

pin_blas_threads()

__version__ = "0.1.0"
