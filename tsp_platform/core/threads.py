"""Pin BLAS/OpenMP to one thread: we parallelise across cells, not inside linear algebra."""

import os

_BLAS_VARS = (
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "POLARS_MAX_THREADS",
)


def pin_blas_threads() -> None:
    """Set the thread variables before numpy/scipy load their BLAS; an explicit user value wins."""
    for var in _BLAS_VARS:
        os.environ.setdefault(var, "1" if var != "POLARS_MAX_THREADS" else "2")
