"""Bulk OHLCV upsert into the DuckDB lakehouse and the health gates over it.

500 symbols × 2,520 weekdays (~1.26 M bars) are upserted into a fresh file (insert path), upserted again
unchanged (the idempotent re-run path), then all seven health gates run as of the last date over a
500-day lookback. Prints a table, then one JSON line: {"rows_per_s": …, "health_s": …}.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tsp_platform  # noqa: E402,F401  (pins BLAS threads)
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from tsp_platform.config.models import HealthThresholds  # noqa: E402
from tsp_platform.health import GateInputs, evaluate_gates  # noqa: E402
from tsp_platform.lakehouse import Lakehouse  # noqa: E402

SYMBOLS, DAYS, LOOKBACK = 500, 2520, 500


def synthetic_bars(symbols: int, days: int, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    calendar = pl.date_range(date(2013, 1, 1), date(2013, 1, 1) + timedelta(days=days * 2), eager=True)
    sessions = calendar.filter(calendar.dt.weekday() <= 5).head(days)
    log_returns = rng.normal(0.0003, 0.02, size=(symbols, days))
    close = 100 * np.exp(np.cumsum(log_returns, axis=1))
    spread = np.abs(rng.normal(0, 0.01, size=(symbols, days)))
    open_ = close * np.exp(rng.normal(0, 0.003, size=(symbols, days)))
    high = np.maximum(open_, close) * (1 + spread)
    low = np.minimum(open_, close) * (1 - spread)
    names = [f"BENCH:S{i:04d}" for i in range(symbols)]
    return pl.DataFrame(
        {
            "symbol": np.repeat(names, days),
            "date": np.tile(sessions.to_numpy(), symbols),
            "open": open_.ravel(), "high": high.ravel(), "low": low.ravel(), "close": close.ravel(),
            "volume": rng.lognormal(12, 1, size=symbols * days),
            "source": "benchmark",
            "ingested_at": datetime(2026, 1, 1),
        }
    ).with_columns(pl.col("date").cast(pl.Date))


def main() -> None:
    bars = synthetic_bars(SYMBOLS, DAYS)
    rows = bars.height
    with tempfile.TemporaryDirectory() as tmp:
        lake = Lakehouse(Path(tmp) / "bench.duckdb")
        start = time.perf_counter()
        first = lake.upsert("ohlcv", bars)
        insert_s = time.perf_counter() - start
        start = time.perf_counter()
        second = lake.upsert("ohlcv", bars)
        rerun_s = time.perf_counter() - start
        assert first["inserted"] == rows and second["unchanged"] == rows

        as_of = bars["date"].max()
        start = time.perf_counter()
        window = lake.ohlcv(bars["symbol"].unique().to_list(), as_of, as_of - timedelta(days=LOOKBACK - 1))
        universe = pl.DataFrame({"symbol": window["symbol"].unique(), "calendar": "weekdays"})
        results = evaluate_gates(GateInputs(window, universe, as_of, HealthThresholds(), 90))
        health_s = time.perf_counter() - start
        failures = results.filter(~pl.col("passed")).height

    table = [
        ("bars upserted (insert)", f"{rows:,}", f"{insert_s:.2f} s", f"{rows / insert_s:,.0f} rows/s"),
        ("bars upserted again (unchanged)", f"{rows:,}", f"{rerun_s:.2f} s", f"{rows / rerun_s:,.0f} rows/s"),
        ("health gates (7 gates, 500-day lookback)", f"{window.height:,}", f"{health_s:.2f} s", f"{failures} failures"),
    ]
    print(f"{'step':<44}{'rows':>12}{'time':>10}{'rate':>22}")
    for name, n, t, rate in table:
        print(f"{name:<44}{n:>12}{t:>10}{rate:>22}")
    print(json.dumps({"rows_per_s": round(rows / insert_s), "rerun_rows_per_s": round(rows / rerun_s),
                      "health_s": round(health_s, 3), "rows": rows}))


if __name__ == "__main__":
    main()
