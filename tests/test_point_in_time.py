"""Point-in-time: nothing computed for as-of date D reads data after D.

Two lakehouses get the same seed; in one, every price after D is perturbed. Both run the data cycle and the
alpha cycle for D through real Dagster runs, and every table of the partition must hash identically.
"""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from assets.definitions import build_definitions
from resources import resources_for
from tests.test_alpha_cycle import ALPHA_TABLES, run_alpha
from tests.test_data_cycle import PARTITION_TABLES, run_cycle, seed
from tsp_platform.lakehouse import Lakehouse


def perturb_after(lake: Lakehouse, cut: date) -> int:
    """Scale every close (and high) after `cut` by a deterministic ±30 % pattern; returns the rows touched."""
    later = lake.query("SELECT * FROM ohlcv WHERE date > ?", [cut])
    step = pl.Series(range(later.height), dtype=pl.Float64)
    noise = 1.0 + ((step * 7919) % 13 - 6) / 20
    lake.upsert("ohlcv", later.with_columns(pl.col("close") * noise, pl.col("high") * noise * 1.1))
    return later.height


@pytest.mark.parametrize("profile, cut", [("us_equities_sample", date(2021, 6, 30)), ("crypto_synthetic", date(2022, 6, 30))])
def test_perturbing_prices_after_the_as_of_date_changes_nothing_computed_for_it(tmp_path, instance, profile, cut):
    hashes = []
    for variant in ("clean", "perturbed"):
        path = tmp_path / f"{variant}.duckdb"
        defs = build_definitions(resources_for(path))
        seed(defs, instance)
        lake = Lakehouse(path)
        if variant == "perturbed":
            assert perturb_after(lake, cut) > 1000
        run_cycle(defs, instance, profile, cut.isoformat(), raise_on_error=False)
        assert run_alpha(defs, instance, profile, cut.isoformat()).success
        hashes.append({t: lake.content_hash(t, profile, cut) for t in PARTITION_TABLES + ALPHA_TABLES})
    assert all(lake.read_partition(t, profile, cut).height for t in ("raw_pool", "selection_winners", "portfolio_weights"))
    assert hashes[0] == hashes[1]
