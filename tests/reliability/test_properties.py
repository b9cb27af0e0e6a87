"""Property-based tests (hypothesis) over the price-file importer and the manifest loader.

* Price files: generated wide and long files, CSV and Parquet, with arbitrary floats (NaN, ±inf, negative, zero,
  huge, subnormal), non-numeric and missing cells, arbitrary symbol strings (quotes, semicolons, unicode, path
  separators, SQL) and duplicate, unsorted, weekend, monthly or malformed dates. An independent model of the
  rules predicts the outcome: `validate_price_file` either accepts and returns exactly the file's bars (every
  one finite, positive, unique per symbol and date, on the declared calendar), or refuses naming exactly the
  offending symbols, or raises PriceFileError (naming the file) for a file-level fault; nothing else is ever
  raised. An accepted file imported twice through `tsp import-prices` changes nothing the second time.
* Manifests: the shipped manifest with one generated fault (an unknown key at any depth, a wrong type, a number
  just outside its bounds), written to a real file: `load_manifest` either returns a valid Manifest or raises
  ConfigError whose message names the file and the offending dotted key; never another exception.
"""

from __future__ import annotations

import copy
import math
import re
import statistics
import tempfile
import types
import typing
from datetime import date, timedelta
from pathlib import Path

import annotated_types
import polars as pl
import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from tests.reliability.lakestate import lake_state
from tsp_cli.main import main
from tsp_platform.config import ConfigError, load_manifest
from tsp_platform.config.manifest import DEFAULT_MANIFEST
from tsp_platform.config.models import ManifestFile
from tsp_platform.core.vocabulary import Calendar
from tsp_platform.sources.price_file import PriceFileError, validate_price_file

PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EXCHANGE = "NYSE"
SYMBOL_PATTERN = re.compile(r"[A-Z0-9][A-Z0-9._\-]{0,31}:[A-Z0-9][A-Z0-9._\-]{0,31}")
RESERVED = {"date", "symbol", "open", "high", "low", "close", "volume"}
NON_NUMERIC = ["abc", "1,5", "--1", "0x10", "1.2.3", "$5"]
BAD_DATES = ["2024-13-01", "01/02/2024", "20240102", "x", "2024-02-30"]

# ============================================================================================ price files

# Symbols: mostly plausible tickers (so that files are often accepted), otherwise any text. '\r' and NUL are left
# out: a CSV reader may legitimately normalise line endings inside a quoted field, which the model cannot know.
tickers = st.from_regex(r"[A-Z][A-Z0-9]{0,4}", fullmatch=True)
wild = st.text(
    st.one_of(st.sampled_from(list("abcXYZ09 '\";:/\\.-_|,()=*%ßé€.\t")),
              st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\r\x00")),
    max_size=12,
)
sql = st.sampled_from(["X'); DROP TABLE ohlcv; --", "A;B", "../etc", "a\\b", "NYSE:A'B"])
symbols = st.integers(0, 9).flatmap(lambda i: tickers if i < 7 else wild if i < 9 else sql)  # ~70 % tickers

clean_price = st.floats(min_value=50, max_value=150)
any_float = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, -1.0, math.nan, math.inf, -math.inf, 5e-324, 1e308]),
)


@st.composite
def series(draw, calendar: Calendar, text_cells: bool):
    """(dates, cells) of one symbol: clean (weekday or daily dates, prices in [50, 150]) or dirty."""
    n = draw(st.integers(1, 8))
    start = date(2024, 1, 1) + timedelta(days=draw(st.integers(0, 30)))
    step = timedelta(days=1)
    days, day = [], start
    while len(days) < n:
        if calendar is Calendar.ALWAYS or day.weekday() < 5:
            days.append(day)
        day += step
    dates: list = [d.isoformat() for d in days]
    if draw(st.integers(0, 9)) < 6:  # clean
        return dates, [draw(clean_price) for _ in dates]
    fault = draw(st.sampled_from(["cells", "duplicate", "swap", "weekend", "monthly", "bad-date", "spike", "none"]))
    cells: list = [draw(clean_price) for _ in dates]
    if fault == "cells":
        options = [any_float, st.none()] + ([st.sampled_from(NON_NUMERIC)] if text_cells else [])
        cells = [draw(st.one_of(clean_price, *options)) for _ in dates]
    elif fault == "duplicate":
        i = draw(st.integers(0, n - 1))
        dates.insert(i, dates[i])
        cells.insert(i, draw(clean_price))
    elif fault == "swap" and n > 1:
        i = draw(st.integers(0, n - 2))
        dates[i], dates[i + 1] = dates[i + 1], dates[i]
    elif fault == "weekend":  # Thursday, Friday, Saturday, Monday: daily spacing, one weekend bar
        friday = start + timedelta(days=(4 - start.weekday()) % 7)
        dates = [(friday + timedelta(days=k)).isoformat() for k in (-1, 0, 1, 3)]
        cells = [draw(clean_price) for _ in dates]
    elif fault == "monthly":
        dates = [date(2023, m, 1 + draw(st.integers(0, 2))).isoformat() for m in range(1, n + 2)]
        cells = [draw(clean_price) for _ in dates]
    elif fault == "bad-date":
        dates[draw(st.integers(0, n - 1))] = draw(st.sampled_from(BAD_DATES))
    elif fault == "spike":
        cells[draw(st.integers(0, n - 1))] *= draw(st.sampled_from([1000.0, 0.001, 7.0]))
    return dates, cells


@st.composite
def price_files(draw):
    """A model of a price file: format, calendar, and [(raw symbol, dates, cells)]."""
    kind = draw(st.sampled_from(["csv", "parquet"]))
    layout = draw(st.sampled_from(["wide", "long"]))
    calendar = draw(st.sampled_from([Calendar.WEEKDAYS, Calendar.ALWAYS]))
    count = draw(st.integers(1, 3))
    if layout == "wide":  # one date column for all: the first symbol's dates, the others' cells aligned to them
        names = draw(st.lists(symbols.filter(lambda s: s.strip().lower() not in RESERVED and s.strip() != ""),
                              min_size=count, max_size=count, unique=True))
        dates, first = draw(series(calendar, kind == "csv"))
        entries = [(names[0], dates, first)]
        for name in names[1:]:
            cell = clean_price if draw(st.integers(0, 9)) < 6 else st.one_of(clean_price, any_float, st.none())
            cells = draw(st.lists(cell, min_size=len(dates), max_size=len(dates)))
            entries.append((name, dates, cells))
    else:
        entries = []
        for _ in range(count):
            name = draw(symbols) if draw(st.integers(0, 9)) < 9 else draw(st.sampled_from([None, "", "  "]))
            dates, cells = draw(series(calendar, kind == "csv"))
            entries.append((name, dates, cells))
    file_fault = draw(st.sampled_from(["none"] * 8 + ["no-prices", "case-repeated-name"]))
    if file_fault == "no-prices":  # every cell missing
        entries = [(name, dates, [None] * len(cells)) for name, dates, cells in entries]
    elif file_fault == "case-repeated-name" and layout == "wide":  # the same column name in other letters
        name, dates, cells = entries[0]
        other = name.swapcase() if name.swapcase() != name else f" {name}"
        if other.strip().lower() == name.strip().lower():
            entries.append((other, dates, list(cells)))
    return types.SimpleNamespace(kind=kind, layout=layout, calendar=calendar, entries=entries,
                                 interleave=draw(st.booleans()))


def _cell_text(cell) -> str | None:
    return None if cell is None else cell if isinstance(cell, str) else repr(float(cell))


def file_rows(model) -> list[tuple[str | None, str, object]]:
    """(raw symbol, date text, cell) in the order the importer sees them: a wide file column by column, a long
    file row by row (symbol after symbol, or interleaved by position)."""
    rows = [(name, d, c, i) for name, dates, cells in model.entries for i, (d, c) in enumerate(zip(dates, cells))]
    if model.layout == "long" and model.interleave:
        rows.sort(key=lambda r: r[3])
    return [r[:3] for r in rows]


def write_price_file(model, directory: Path) -> Path:
    path = directory / f"prices.{model.kind}"
    text = model.kind == "csv" or any(isinstance(c, str) for _, _, cells in model.entries for c in cells)
    value_type = pl.String if text else pl.Float64
    convert = _cell_text if text else (lambda c: None if c is None else float(c))
    if model.layout == "wide":
        dates = model.entries[0][1]
        frame = pl.DataFrame(
            {"date": dates, **{name: pl.Series([convert(c) for c in cells], dtype=value_type)
                               for name, _, cells in model.entries}},
        )
    else:
        rows = file_rows(model)
        frame = pl.DataFrame(
            {"symbol": pl.Series([r[0] for r in rows], dtype=pl.String), "date": [r[1] for r in rows],
             "close": pl.Series([convert(r[2]) for r in rows], dtype=value_type)},
        )
    if model.kind == "csv":
        frame.write_csv(path)
    else:
        frame.write_parquet(path)
    return path


def qualify(raw: str | None) -> str:
    text = (raw or "").strip()
    text = text.upper() if text.isascii() else text
    if not text:
        return "<missing>"
    return text if ":" in text else f"{EXCHANGE}:{text}"


def parse_cell(cell):
    """(is a bar, value, fault) of one cell as the file holds it."""
    if cell is None or (isinstance(cell, str) and cell.strip() == ""):
        return False, None, None
    if isinstance(cell, str) and cell in NON_NUMERIC:
        return True, None, "non-numeric"
    value = float(cell)
    if not math.isfinite(value):
        return True, value, "not finite"
    if value <= 0:
        return True, value, "non-positive"
    return True, value, None


def parse_date(text: str | None) -> date | None:
    if text is None or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()):
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        return None


def expected_outcome(model) -> tuple[str, object]:
    """("file-error", reason) | ("refused", offending symbols) | ("accepted", sorted bars), by the rules alone."""
    if model.layout == "wide":
        names = ["date", *(name for name, _, _ in model.entries)]
        keys = [n.strip().lower() for n in names]
        if len(set(keys)) < len(keys):
            return "file-error", "repeated column names"
    cells_present = [c for _, _, cells in model.entries for c in cells if parse_cell(c)[0]]
    if not cells_present:
        return "file-error", "no prices"
    offending: set[str] = set()
    bars: dict[str, list[tuple[date, float]]] = {}
    for raw, day_text, cell in file_rows(model):
        present, value, fault = parse_cell(cell)
        if not present and model.layout == "wide":
            continue  # a missing wide cell is not a row at all
        symbol = qualify(raw)
        day = parse_date(day_text)
        if symbol == "<missing>" or not SYMBOL_PATTERN.fullmatch(symbol) or day is None or fault:
            offending.add(symbol)
        if present and not fault and day is not None:
            bars.setdefault(symbol, []).append((day, value))
    for symbol, series_ in bars.items():
        if symbol in offending:
            continue
        days = [d for d, _ in series_]
        closes = [c for _, c in series_]
        steps = [(b - a).days for a, b in zip(days, days[1:])]
        off_calendar = model.calendar is Calendar.WEEKDAYS and any(d.weekday() >= 5 for d in days)
        duplicate = len(set(days)) < len(days)
        unsorted = any(s < 0 for s in steps)
        sparse = bool(steps) and statistics.median(steps) > 4
        spike = len(closes) > 1 and max(abs(b / a - 1) for a, b in zip(closes, closes[1:])) > 5.0
        if off_calendar or duplicate or unsorted or sparse or spike:
            offending.add(symbol)
    if offending:
        return "refused", offending
    return "accepted", sorted((s, d, c) for s, rows in bars.items() for d, c in rows)


@pytest.fixture(scope="module")
def import_lake(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("imports") / "lake.duckdb"


@PROPERTY
@given(model=price_files())
def test_the_importer_accepts_exactly_clean_files_and_names_every_offending_symbol(model, import_lake):
    with tempfile.TemporaryDirectory() as tmp:
        path = write_price_file(model, Path(tmp))
        outcome, detail = expected_outcome(model)
        event(f"{model.layout} {model.kind}: {outcome}")
        try:
            report = validate_price_file(path, exchange=EXCHANGE, calendar=model.calendar)
        except PriceFileError as error:
            assert outcome == "file-error", f"unexpected file error {error} (expected {outcome}: {detail})"
            assert str(path) in str(error)
            return
        assert outcome != "file-error", f"expected a file error ({detail}); got {report.rejections}"
        named = {symbol for symbol, _ in report.rejections}
        if outcome == "refused":
            assert not report.ok and report.bars is None
            assert named == detail, f"named {sorted(named)}, offending {sorted(detail)}: {report.rejections}"
            return
        assert report.ok, report.rejections
        bars = report.bars
        assert bars["close"].is_finite().all() and (bars["close"] > 0).all()
        assert not bars.select("symbol", "date").is_duplicated().any()
        if model.calendar is Calendar.WEEKDAYS:
            assert (bars["date"].dt.weekday() <= 5).all()
        assert sorted(bars.select("symbol", "date", "close").iter_rows()) == detail
        assert set(report.symbols["calendar"]) == {model.calendar.value}

        # An accepted file imported twice: the second import changes nothing.
        args = ["--lakehouse", str(import_lake), "import-prices", str(path), "--exchange", EXCHANGE,
                "--calendar", model.calendar.value]
        assert main(args) == 0
        state = lake_state(import_lake)
        assert main(args) == 0
        assert lake_state(import_lake) == state


# ============================================================================================== manifests

SHIPPED = yaml.safe_load(DEFAULT_MANIFEST.read_text())


def _options(annotation) -> tuple:
    """The annotation, or its members when it is a union (`X | None`)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def _model_of(annotation):
    """The pydantic model an annotation holds (through Optional), or None."""
    for candidate in _options(annotation):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _dict_value_model(annotation):
    """For dict[str, Model] (optionally Optional), the Model."""
    for candidate in _options(annotation):
        if typing.get_origin(candidate) is dict:
            return _model_of(typing.get_args(candidate)[1])
    return None


def model_paths(data: dict, model: type[BaseModel], prefix: tuple = ()) -> list[tuple[tuple, type[BaseModel]]]:
    """Every mapping of the manifest that a model validates (present or not yet written), by key path."""
    found = [(prefix, model)]
    if not isinstance(data, dict):
        return found
    for name, field in model.model_fields.items():
        sub = _model_of(field.annotation)
        if sub is not None:
            found += model_paths(data.get(name) or {}, sub, prefix + (name,))
        values = _dict_value_model(field.annotation)
        if values is not None and isinstance(data.get(name), dict):
            for key, value in data[name].items():
                found += model_paths(value, values, prefix + (name, key))
    return found


def scalar_fields(paths) -> list[tuple[tuple, object]]:
    """(key path, pydantic FieldInfo) of every non-model field of every model mapping."""
    fields = []
    for prefix, model in paths:
        for name, field in model.model_fields.items():
            if _model_of(field.annotation) is None and _dict_value_model(field.annotation) is None:
                fields.append((prefix + (name,), field))
    return fields


PATHS = model_paths(SHIPPED, ManifestFile)
FIELDS = scalar_fields(PATHS)
BOUNDED = [(path, field) for path, field in FIELDS
           if any(isinstance(m, (annotated_types.Ge, annotated_types.Gt, annotated_types.Le, annotated_types.Lt))
                  for m in field.metadata)]


def out_of_range(field, draw) -> object:
    """A number just beyond one of the field's bounds (an int field gets an int)."""
    integer = "int" in str(field.annotation) and "float" not in str(field.annotation)
    bounds = [m for m in field.metadata if isinstance(m, (annotated_types.Ge, annotated_types.Gt,
                                                          annotated_types.Le, annotated_types.Lt))]
    bound = draw(st.sampled_from(bounds))
    limit = next(getattr(bound, a) for a in ("ge", "gt", "le", "lt") if hasattr(bound, a))
    below = isinstance(bound, (annotated_types.Ge, annotated_types.Gt))
    distance = draw(st.sampled_from([1, 10, 10**6]))
    if integer:
        return int(limit) - distance if below else int(limit) + distance
    if isinstance(bound, (annotated_types.Gt, annotated_types.Lt)):
        return float(limit) - (distance - 1) * (1 if below else -1) if distance > 1 else float(limit)
    return math.nextafter(float(limit), -math.inf if below else math.inf) if distance == 1 else (
        float(limit) - distance if below else float(limit) + distance)


def _put(data: dict, path: tuple, value) -> None:
    node = data
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[path[-1]] = value


@st.composite
def faulty_manifests(draw):
    """(manifest data, dotted key of the fault, kind) with exactly one fault."""
    data = copy.deepcopy(SHIPPED)
    kind = draw(st.sampled_from(["unknown-key", "wrong-type", "out-of-range"]))
    if kind == "unknown-key":
        prefix, model = draw(st.sampled_from(PATHS))
        key = draw(st.text(st.characters(codec="ascii", categories=("Ll", "Lu", "Nd", "Pc")), min_size=1, max_size=12)
                   .filter(lambda k: k not in model.model_fields))
        path = prefix + (key,)
        value = draw(st.one_of(st.integers(), st.text(max_size=5), st.booleans(), st.none(), st.just({"x": 1})))
    elif kind == "wrong-type":
        path, field = draw(st.sampled_from(FIELDS))
        value = draw(st.sampled_from([[], {}, {"a": 1}, [[1]], "text", None, True, 3.5, -7, "2020-02-30"]))
    else:
        path, field = draw(st.sampled_from(BOUNDED))
        value = out_of_range(field, draw)
    _put(data, path, value)
    return data, ".".join(map(str, path)), kind


def names_the_key(error: ConfigError, dotted: str) -> bool:
    """The message names the dotted key; a profile-level rule over merged values (defaults + the profile's own,
    such as history_floor_days <= lookback_days) names the profile and the field."""
    text = str(error)
    if dotted in text:
        return True
    leaf = dotted.rsplit(".", 1)[-1]
    return leaf in text and error.key.startswith("profiles.")


@PROPERTY
@given(case=faulty_manifests())
def test_the_loader_returns_a_valid_manifest_or_a_config_error_naming_file_and_key(case):
    data, dotted, kind = case
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "manifest.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
        try:
            manifest = load_manifest(path)
        except ConfigError as error:
            event(f"{kind}: ConfigError")
            assert str(error).startswith(f"{path}: ") and error.path == str(path)
            assert names_the_key(error, dotted), f"{kind} at {dotted}: {error}"
            return
        event(f"{kind}: accepted")
        assert kind != "unknown-key" and kind != "out-of-range", f"{kind} at {dotted} was accepted"
        assert [p.name for p in manifest.profiles()] == manifest.profile_names


def test_the_manifest_generator_reaches_deep_keys():
    """The fault generator covers nested models (friction, tournament.windows, meta stream, ...)."""
    dotted = {".".join(p) for p, _ in PATHS}
    assert {"defaults.friction", "profiles.crypto_synthetic.tournament.windows", "meta_profiles.meta_sample.stream"} <= dotted
    assert len(BOUNDED) > 20
