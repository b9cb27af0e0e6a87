"""Reference implementations and research scripts: runnable, tested, and never imported by a stage.

* `walkforward`: the fast walk-forward allocators and the skfolio parity reference (tests, benchmarks);
* `selection_calibration`: the noise calibration of the selection vetoes; `python -m
  tsp_platform.reference.selection_calibration` regenerates docs/selection-calibration.md.
"""
