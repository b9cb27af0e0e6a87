"""The `meta_portfolio` stage: allocate across sleeves' out-of-sample streams, flatten to net positions, store.

For a meta profile M as of D:

1. Each sleeve's stream is its configured tournament cell's stitched out-of-sample daily returns, as stored by
   the sleeve's `tournament_scoreboard` for (sleeve, D). The scorer `None` means the sleeve's champion.
2. The streams are put on their common calendar, never zero-filled: the common days are the days every sleeve
   has (a crypto sleeve trades weekends and an equity sleeve does not, so they are the weekdays both have), and
   each sleeve's return on a common day compounds all its own returns since the previous common day (a crypto
   sleeve's weekend is folded into its Monday, not dropped).
3. Sleeve weights: HRP (Ledoit–Wolf covariance, each sleeve its own cluster) or equal weight, then the exact
   Euclidean projection onto {Σw = 1, min_weight ≤ w ≤ max_weight}.
4. Flattening: each sleeve's final physical weights as of D (the same engine × risk profile, from
   `portfolio_weights`) scaled by its sleeve weight and summed by symbol, net across sleeves.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from tsp_platform.config.meta import MetaProfile
from tsp_platform.core.hashing import frame_hash
from tsp_platform.core.panel import compound_onto
from tsp_platform.lakehouse import TABLES, Lakehouse
from tsp_platform.meta.sleeves import MetaResult, sleeve_weights
from tsp_platform.tournament.metrics import performance


def _champion(lake: Lakehouse, sleeve: str, as_of: date) -> str:
    runs = lake.read_partition("selection_runs", sleeve, as_of).filter(pl.col("is_champion"))
    if runs.is_empty():
        raise LookupError(f"sleeve {sleeve} as of {as_of}: no selection run stored (run its alpha cycle first)")
    return str(runs["scorer"][0])


def sleeve_streams(lake: Lakehouse, meta: MetaProfile, as_of: date) -> tuple[pl.DataFrame, dict[str, str], dict]:
    """date × sleeve returns on the sleeves' common days, each sleeve's scorer, and each stream's content id."""
    stream, frames, scorers, ids = meta.stream, [], {}, {}
    for sleeve in meta.sleeves:
        scorer = stream.scorer or _champion(lake, sleeve, as_of)
        scorers[sleeve] = scorer
        returns = lake.read_partition("tournament_returns", sleeve, as_of).filter(
            (pl.col("scorer") == scorer) & (pl.col("risk_profile") == stream.risk_profile.value)
            & (pl.col("engine") == stream.engine.value) & (pl.col("simulator") == stream.simulator.value)
        )
        if returns.is_empty():
            raise LookupError(
                f"sleeve {sleeve} as of {as_of}: no stored tournament stream for {scorer} × "
                f"{stream.risk_profile.value} × {stream.engine.value} × {stream.simulator.value}; run its tournament"
            )
        frames.append(returns.select("date", pl.col("ret").alias(sleeve)))
        ids[f"stream_{sleeve}_id"] = frame_hash(returns.select("date", "ret").sort("date"))
    common = sorted(set.intersection(*(set(f["date"]) for f in frames)))
    columns = {"date": common}
    for sleeve, frame in zip(meta.sleeves, frames):
        columns[sleeve] = compound_onto(frame.sort("date"), sleeve, common)
    return pl.DataFrame(columns, schema={"date": pl.Date, **{s: pl.Float64 for s in meta.sleeves}}), scorers, ids


def run_meta(lake: Lakehouse, name: str, meta: MetaProfile, as_of: date, annualisation: int = 252) -> MetaResult:
    streams, scorers, inputs = sleeve_streams(lake, meta, as_of)
    if streams.height < meta.min_common_days:
        raise LookupError(
            f"meta {name} as of {as_of}: the sleeves share {streams.height} out-of-sample days, fewer than "
            f"min_common_days = {meta.min_common_days}"
        )
    values = streams.select(meta.sleeves).to_numpy()
    weights, raw = sleeve_weights(values, meta)
    stats = [performance(values[:, i], annualisation) for i in range(values.shape[1])]
    sleeves = pl.DataFrame({
        "sleeve": list(meta.sleeves), "scorer": [scorers[s] for s in meta.sleeves], "weight": weights,
        "raw_weight": raw, "cagr": [m.cagr for m in stats], "sharpe": [m.sharpe for m in stats],
        "volatility": [m.volatility for m in stats],
    })
    physical = []
    for sleeve, weight in zip(meta.sleeves, weights):
        book = lake.read_partition("portfolio_weights", sleeve, as_of).filter(
            (pl.col("engine") == meta.stream.engine.value) & (pl.col("risk_profile") == meta.stream.risk_profile.value)
            & (pl.col("level") == "physical")
        )
        if book.is_empty():
            raise LookupError(f"sleeve {sleeve} as of {as_of}: no final physical weights for "
                              f"{meta.stream.engine.value} × {meta.stream.risk_profile.value}")
        inputs[f"weights_{sleeve}_id"] = frame_hash(book.select("name", "weight").sort("name"))
        physical.append(book.select(pl.col("name").alias("symbol"), (pl.col("weight") * weight).alias("weight"),
                                    pl.lit(sleeve).alias("sleeve")))
    net = (
        pl.concat(physical).group_by("symbol")
        .agg(pl.col("weight").sum(), pl.col("sleeve").unique().sort().str.join(",").alias("sleeves"))
        .sort("symbol")
    )
    days = streams["date"]
    return MetaResult(sleeves, net, streams.height, days.min(), days.max(), inputs)


def store_meta(lake: Lakehouse, name: str, as_of: date, result: MetaResult) -> None:
    sleeves = result.sleeves.with_columns(pl.lit(result.common_days, dtype=pl.Int32).alias("common_days"))
    lake.replace_partitions(name, as_of, {
        "meta_sleeve_weights": TABLES["meta_sleeve_weights"].partition_rows(sleeves, name, as_of),
        "meta_physical_weights": TABLES["meta_physical_weights"].partition_rows(result.physical, name, as_of),
    })
