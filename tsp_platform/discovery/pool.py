"""Aggregate scan results into the raw pool: dedup, one quote per base, stablecoin exclusion, floors, cap.

Crypto groups by base and keeps one quote by `quote_priority`, unless that quote is illiquid next to the
group's deepest book (a better-ranked quote needs > `liquidity_tie_ratio` × the best liquidity). Forex
groups by the canonical pair. Everything else groups by symbol. Each dropped venue is kept in
`alternatives`; each rejected symbol is returned with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from tsp_platform.config.models import PoolConfig
from tsp_platform.lakehouse.schema import RAW_POOL
from tsp_platform.sources.symbols import STABLECOINS, split_ticker


@dataclass(frozen=True)
class PoolResult:
    pool: pl.DataFrame
    rejected: pl.DataFrame  # symbol, logic, direction, reason


def _json_list(column: str) -> pl.Expr:
    """A list of plain identifiers as a JSON array string (symbols and scanner names carry no quotes)."""
    items = pl.col(column)
    return (
        pl.when(items.list.len() == 0)
        .then(pl.lit("[]"))
        .otherwise(pl.concat_str(pl.lit('["'), items.list.join('", "'), pl.lit('"]')))
        .alias(column)
    )


def _identity(asset_class: pl.Expr) -> pl.Expr:
    return (
        pl.when(asset_class == "crypto")
        .then(pl.col("base"))
        .when(asset_class == "forex")
        .then(pl.concat_str(pl.col("base"), pl.col("quote")))
        .otherwise(pl.col("symbol"))
    )


def build_raw_pool(scans: pl.DataFrame, symbols: pl.DataFrame, config: PoolConfig) -> PoolResult:
    """`scans` are one partition's scan_results rows; `symbols` the lakehouse symbols table."""
    keys = ["symbol", "logic", "direction"]
    atoms = scans.group_by(keys).agg(
        pl.col("scanner").sort().alias("scanners"),
        pl.col("rank").min().alias("scan_rank"),
        pl.col("value_traded").max(),
        pl.col("sector").drop_nulls().first().alias("scan_sector"),
        pl.col("profile").first(),
        pl.col("as_of").first(),
    )
    meta = symbols.select("symbol", "base", "quote", "asset_class", "sector", "is_stablecoin")
    atoms = atoms.join(meta, on="symbol", how="left")
    parsed = [split_ticker(s.split(":")[-1]) for s in atoms["symbol"]]
    atoms = atoms.with_columns(
        pl.col("base").fill_null(pl.Series([b for b, _ in parsed], dtype=pl.String)),
        pl.col("quote").fill_null(pl.Series([q for _, q in parsed], dtype=pl.String)),
        pl.col("sector").fill_null(pl.col("scan_sector")),
        pl.col("is_stablecoin").fill_null(False),
    )
    reasons = pl.when(pl.lit(config.exclude_stablecoins) & (pl.col("is_stablecoin") | pl.col("base").is_in(list(STABLECOINS))))
    reasons = reasons.then(pl.lit("stablecoin"))
    if config.min_value_traded is not None:
        reasons = reasons.when(~(pl.col("value_traded") >= config.min_value_traded).fill_null(False)).then(
            pl.lit(f"value_traded below {config.min_value_traded:,.0f} or missing")
        )
    atoms = atoms.with_columns(reasons.otherwise(None).alias("reason"))
    rejected = atoms.filter(pl.col("reason").is_not_null()).select(*keys, "reason")
    atoms = atoms.filter(pl.col("reason").is_null()).with_columns(_identity(pl.col("asset_class")).alias("identity"))

    quote_rank = {q: i for i, q in enumerate(config.quote_priority)}
    group = ["identity", "logic", "direction"]
    atoms = atoms.with_columns(
        pl.col("quote").replace_strict(quote_rank, default=len(quote_rank), return_dtype=pl.Int32).alias("quote_rank"),
        pl.col("value_traded").max().over(group).alias("group_best"),
    ).with_columns(
        (pl.col("group_best").is_null() | (pl.col("value_traded") > config.liquidity_tie_ratio * pl.col("group_best")))
        .fill_null(False)
        .alias("eligible")
    )
    atoms = atoms.sort(
        [pl.col("eligible"), "quote_rank", "value_traded", "symbol", "logic", "direction"],
        descending=[True, False, True, False, False, False],
        nulls_last=True,
    )
    chosen = atoms.group_by(group, maintain_order=True).agg(
        pl.all().first(), pl.col("symbol").slice(1).alias("alternatives_list")
    )
    chosen = chosen.sort(
        ["value_traded", "scan_rank", "symbol", "logic", "direction"],
        descending=[True, False, False, False, False],
        nulls_last=True,
    )
    capped = chosen.head(config.cap)
    over_cap = chosen.slice(config.cap).select(*keys).with_columns(pl.lit(f"beyond the pool cap of {config.cap}").alias("reason"))
    pool = capped.with_row_index("rank", offset=1).with_columns(
        pl.col("rank").cast(pl.Int32),
        _json_list("scanners"),
        _json_list("alternatives_list").alias("alternatives"),
    )
    return PoolResult(pool=pool.select(RAW_POOL.column_names), rejected=pl.concat([rejected, over_cap]))
