"""Import daily prices from a CSV or Parquet file, wide or long; validate everything before writing anything.

Long files have `symbol`, `date`, `close` (optionally `open`, `high`, `low`, `volume`); wide files have a
`date` column and one close column per symbol. Every problem is collected (symbol, reason) and the import
is refused as a whole when there is any: a partial import would leave a half-written history.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from tsp_platform.core.calendars import is_session
from tsp_platform.core.vocabulary import AssetClass, Calendar
from tsp_platform.lakehouse.schema import SYMBOLS
from tsp_platform.sources.base import OHLCV_SCHEMA

SYMBOL_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9._\-]{0,31}:[A-Z0-9][A-Z0-9._\-]{0,31}$")
PRICE_COLUMNS = ("open", "high", "low", "close", "volume")
MAX_MEDIAN_SPACING_DAYS = 4  # daily bars, with weekends and holidays; monthly files have ~30
TOXIC_MOVE = 5.0  # same invariant as the toxic-return health gate
DATE_FORMAT = "%Y-%m-%d"  # ISO only: an inferred format can read 01/02/2024 as 1 February
MISSING_SYMBOL = "<missing>"


class PriceFileError(ValueError):
    """The file cannot be read at all."""


@dataclass
class ImportReport:
    path: str
    bars: pl.DataFrame | None = None
    symbols: pl.DataFrame | None = None
    rejections: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.rejections and self.bars is not None

    def reject(self, symbol: str, reason: str) -> None:
        self.rejections.append((symbol, reason))


def _read(path: Path) -> pl.DataFrame:
    if not path.exists():
        raise PriceFileError(f"{path}: file not found")
    try:
        if path.suffix.lower() == ".parquet":
            raw = pl.read_parquet(path)
        elif path.suffix.lower() == ".csv":
            # The header as written: polars renames a repeated name to `<name>_duplicated_<n>` (a valid ticker)
            # and keeps a quoted name's doubled quotes.
            header = tuple(name or "" for name in pl.read_csv(path, has_header=False, n_rows=1, infer_schema=False).row(0))
            raw = pl.read_csv(path, infer_schema=False)
        else:
            raise PriceFileError(f"{path}: expected a .csv or .parquet file")
    except PriceFileError:
        raise
    except Exception as exc:  # a corrupt file: name it and the reader's reason
        raise PriceFileError(f"{path}: unreadable ({exc.__class__.__name__}: {exc})") from None
    names = [str(name).strip().lower() for name in (header if path.suffix.lower() == ".csv" else raw.columns)]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise PriceFileError(f"{path}: repeated column names {repeated} (names are compared ignoring case and spaces)")
    if path.suffix.lower() == ".csv" and len(header) == raw.width:
        raw.columns = list(header)
    nested = [name for name, dtype in raw.schema.items() if dtype.is_nested() or dtype in (pl.Object, pl.Binary)]
    if nested:
        raise PriceFileError(f"{path}: columns {nested} hold nested or binary values, not dates or prices")
    return raw


def _to_long(raw: pl.DataFrame, path: Path) -> pl.DataFrame:
    columns = {c.lower(): c for c in raw.columns}
    if "date" not in columns:
        raise PriceFileError(f"{path}: no 'date' column (columns: {raw.columns})")
    raw = raw.rename({columns["date"]: "date"})
    if "symbol" in columns and "close" not in columns:
        raise PriceFileError(f"{path}: a long file (with a 'symbol' column) needs a 'close' column (columns: {raw.columns})")
    if "symbol" in columns:
        renamed = raw.rename({columns[c]: c for c in ("symbol", *PRICE_COLUMNS) if c in columns})
        for missing in PRICE_COLUMNS:
            if missing not in renamed.columns:
                renamed = renamed.with_columns(pl.lit(None, pl.String).alias(missing))
        return renamed.select("symbol", "date", *PRICE_COLUMNS).cast({c: pl.String for c in ("date", *PRICE_COLUMNS)})
    value_columns = [c for c in raw.columns if c != "date"]
    if not value_columns:
        raise PriceFileError(f"{path}: a wide file needs one close column per symbol")
    wide = raw.cast({c: pl.String for c in raw.columns})
    long = wide.unpivot(index="date", variable_name="symbol", value_name="close").filter(pl.col("close").is_not_null())
    return long.with_columns(*(pl.lit(None, pl.String).alias(c) for c in ("open", "high", "low", "volume"))).select(
        "symbol", "date", *PRICE_COLUMNS
    )


def _first_per_symbol(frame: pl.DataFrame):
    return frame.unique("symbol", keep="first", maintain_order=True).iter_rows(named=True)


def _qualify(symbol: str, exchange: str | None) -> str:
    # ASCII only is upper-cased: str.upper() maps some letters to ASCII ('ß' -> 'SS'), a silent rename.
    symbol = symbol.strip()
    symbol = symbol.upper() if symbol.isascii() else symbol
    if not symbol:
        return symbol
    return f"{exchange.upper()}:{symbol}" if exchange and ":" not in symbol else symbol


def validate_price_file(
    path: str | Path,
    exchange: str | None = None,
    asset_class: AssetClass = AssetClass.EQUITY,
    calendar: Calendar = Calendar.WEEKDAYS,
) -> ImportReport:
    """Read and validate; on success the report carries the bars and symbol rows to write."""
    path = Path(path)
    report = ImportReport(path=str(path))
    long = _to_long(_read(path), path)
    if long.filter(pl.col("close").is_not_null()).is_empty():
        raise PriceFileError(f"{path}: no prices (nothing to import)")
    long = long.with_columns(
        pl.col("symbol").fill_null("").map_elements(lambda s: _qualify(s, exchange), return_dtype=pl.String)
    ).with_columns(pl.when(pl.col("symbol") == "").then(pl.lit(MISSING_SYMBOL)).otherwise(pl.col("symbol")).alias("symbol"))
    for symbol in long["symbol"].unique().sort().to_list():
        if symbol == MISSING_SYMBOL:
            dates = long.filter(pl.col("symbol") == MISSING_SYMBOL)["date"].head(3).to_list()
            report.reject(symbol, f"rows without a symbol, e.g. dated {dates}")
        elif not SYMBOL_PATTERN.fullmatch(symbol):
            report.reject(symbol, "invalid symbol: expected EXCHANGE:TICKER of [A-Z0-9._-] (use --exchange for bare tickers)")
    parsed = long.with_columns(
        pl.col("date").str.strip_chars().str.to_date(DATE_FORMAT, strict=False).alias("parsed_date"),
        *(pl.col(c).str.strip_chars().cast(pl.Float64, strict=False).alias(f"{c}_num") for c in PRICE_COLUMNS),
    )
    # Each check names every offending symbol, with its first offending row.
    for row in _first_per_symbol(parsed.filter(pl.col("parsed_date").is_null())):
        report.reject(row["symbol"], f"unparseable date {row['date']!r} (expected YYYY-MM-DD)")
    for column in PRICE_COLUMNS:
        bad = parsed.filter(pl.col(column).is_not_null() & pl.col(f"{column}_num").is_null())
        for row in _first_per_symbol(bad):
            report.reject(row["symbol"], f"non-numeric {column} {row[column]!r} on {row['date']}")
        nan = parsed.filter(pl.col(f"{column}_num").is_nan() | pl.col(f"{column}_num").is_infinite())
        for row in _first_per_symbol(nan):
            report.reject(row["symbol"], f"{row[column].strip()} {column} on {row['date']} (not a finite number)")
    prices = parsed.filter(pl.col("close_num").is_not_null())
    for row in _first_per_symbol(prices.filter(pl.col("close_num") <= 0)):
        report.reject(row["symbol"], f"non-positive close {row['close_num']} on {row['date']}")
    for column in ("open", "high", "low"):
        for row in _first_per_symbol(prices.filter(pl.col(f"{column}_num") <= 0)):
            report.reject(row["symbol"], f"non-positive {column} on {row['date']}")
    for row in _first_per_symbol(prices.filter(pl.col("volume_num") < 0)):
        report.reject(row["symbol"], f"negative volume on {row['date']}")
    # The series checks run on every symbol whose cells are all valid, so one bad cell does not hide them.
    rejected = sorted({symbol for symbol, _ in report.rejections})
    bars = prices.filter(~pl.col("symbol").is_in(rejected)).select(
        "symbol", pl.col("parsed_date").alias("date"),
        *(pl.col(f"{c}_num").alias(c) for c in PRICE_COLUMNS),
    )
    _check_series(bars, report, calendar)
    if report.rejections:
        return report
    report.bars = bars.with_columns(pl.lit(f"import:{path.name}").alias("source")).select(list(OHLCV_SCHEMA)).sort("symbol", "date")
    report.symbols = _symbol_rows(report.bars, asset_class, calendar, f"import:{path.name}")
    return report


def _check_series(bars: pl.DataFrame, report: ImportReport, calendar: Calendar) -> None:
    """Per-symbol checks on the series: duplicates, order, sessions, daily spacing, spikes, OHLC ranges."""
    for (symbol,), series in bars.partition_by("symbol", as_dict=True, maintain_order=True).items():
        dates = series["date"]
        off = series.filter(~is_session(pl.col("date"), calendar))["date"]
        if off.len():
            report.reject(symbol, f"{off.len()} bar{'' if off.len() == 1 else 's'} outside the {calendar.value} calendar, first {off.min()} "
                          "(a weekend: pass --calendar 24/7 for markets that trade every day)")
        if dates.is_duplicated().any():
            report.reject(symbol, f"duplicate dates, e.g. {dates.filter(dates.is_duplicated()).first()}")
            continue
        steps = dates.diff().dt.total_days().drop_nulls()
        if (steps < 0).any():
            first = dates.filter(dates.diff().dt.total_days() < 0).first()
            report.reject(symbol, f"dates not in ascending order (first out of order: {first})")
            continue
        if steps.len() and steps.median() > MAX_MEDIAN_SPACING_DAYS:
            report.reject(symbol, f"not daily bars: median spacing {steps.median():.0f} days")
        closes = series["close"]
        moves = (closes / closes.shift(1) - 1).abs()
        if moves.len() > 1 and moves.max() is not None and moves.max() > TOXIC_MOVE:
            at = dates.filter(moves == moves.max()).first()
            report.reject(symbol, f"price spike: a {moves.max():.0%} daily move on {at} (toxic above {TOXIC_MOVE:.0%})")
        ranged = series.filter(pl.col("high").is_not_null() & pl.col("low").is_not_null())
        bad = ranged.filter(
            (pl.col("high") < pl.max_horizontal("open", "close", "low")) | (pl.col("low") > pl.min_horizontal("open", "close"))
        )
        if bad.height:
            report.reject(symbol, f"inconsistent OHLC on {bad['date'].first()} (and {bad.height - 1} more)")


def _symbol_rows(bars: pl.DataFrame, asset_class: AssetClass, calendar: Calendar, source: str) -> pl.DataFrame:
    names = bars["symbol"].unique().sort()
    exchange = names.str.split(":").list.first()
    ticker = names.str.split(":").list.last()
    return pl.DataFrame(
        {
            "symbol": names, "exchange": exchange, "ticker": ticker, "base": ticker, "quote": None,
            "asset_class": asset_class.value, "sector": None, "industry": None, "currency": None,
            "calendar": calendar.value, "tick_size": None, "lot_size": None, "is_stablecoin": False,
            "is_synthetic": False, "source": source, "description": None,
        },
        schema_overrides={c: pl.String for c in ("quote", "sector", "industry", "currency", "description")}
        | {"tick_size": pl.Float64, "lot_size": pl.Float64},
    ).select(SYMBOLS.column_names)
