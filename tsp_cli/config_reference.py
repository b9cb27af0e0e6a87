"""Generate the configuration reference (docs/configuration-reference.md) from the pydantic config models.

The generator walks `ManifestFile` and the scanner model (`ScannerConfig`) through their fields' annotations,
recursing into every nested model (also inside `X | None`, tuples and `dict[str, Model]`), and renders one Markdown
table per model: key, type, default, constraints (Field metadata), description (Field description). Nothing lists
fields by hand, so a new field or sub-model appears as soon as a model declares it.

    python -m tsp_cli.config_reference            # (re)write docs/configuration-reference.md
    python -m tsp_cli.config_reference --check    # exit 1 when the committed file differs from the models
"""

from __future__ import annotations

import argparse
import difflib
import inspect
import sys
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from tsp_platform.config import manifest as manifest_module
from tsp_platform.config import scanners as scanners_module
from tsp_platform.config.models import ManifestFile, Profile, ProfileSettings
from tsp_platform.config.scanners import ScannerConfig

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DOC_PATH = PROJECT_ROOT / "docs" / "configuration-reference.md"
COMMAND = "python -m tsp_cli.config_reference"

# A settings model whose keys are all optional, paired with the model it resolves into: its table shows the
# resolved model's types and defaults (what a key that nobody sets ends up as).
RESOLVED_AS: dict[type[BaseModel], type[BaseModel]] = {ProfileSettings: Profile}

NONE_TYPE = type(None)
UNION_TYPES = (typing.Union, types.UnionType)
SCALAR_NAMES = {int: "int", float: "float", str: "str", bool: "bool", date: "date (YYYY-MM-DD)", datetime: "datetime"}
# (attribute of a Field metadata object, how to phrase it), in the order they are rendered.
CONSTRAINTS: tuple[tuple[str, Callable[[Any], str | None]], ...] = (
    ("gt", lambda v: f"> {_scalar(v)}"),
    ("ge", lambda v: f"≥ {_scalar(v)}"),
    ("lt", lambda v: f"< {_scalar(v)}"),
    ("le", lambda v: f"≤ {_scalar(v)}"),
    ("multiple_of", lambda v: f"multiple of {_scalar(v)}"),
    ("min_length", lambda v: f"min length {v}"),
    ("max_length", lambda v: f"max length {v}"),
    ("pattern", lambda v: f"matches `{v}`"),
    ("allow_inf_nan", lambda v: None if v else "finite"),
    ("strict", lambda v: "strict type" if v else None),
)


@dataclass(frozen=True)
class Root:
    """One configuration file family: a title, where its files live, and its top-level model."""

    title: str
    files: str
    model: type[BaseModel]
    top_label: str


ROOTS = (
    Root("Manifest", "configs/manifest.yaml", ManifestFile, "Top level of `configs/manifest.yaml`"),
    Root("Scanner files", "configs/scanners/**/*.yaml", ScannerConfig, "Top level of a scanner file"),
)


@dataclass
class ModelEntry:
    model: type[BaseModel]
    root: Root
    paths: list[str] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return self.model.__name__.lower()

    @property
    def primary_path(self) -> str:
        """The per-entry path first (`profiles.<name>.friction` rather than `defaults.friction`), then discovery order."""
        return sorted(self.paths, key=lambda p: (-p.count("<"), self.paths.index(p)))[0]


# --------------------------------------------------------------------------------------------- walking the models


def _unwrap(tp: Any) -> Any:
    return typing.get_args(tp)[0] if typing.get_origin(tp) is typing.Annotated else tp


def _is_model(tp: Any) -> bool:
    return inspect.isclass(tp) and issubclass(tp, BaseModel)


def _is_enum(tp: Any) -> bool:
    return inspect.isclass(tp) and issubclass(tp, Enum)


def _nested(tp: Any, path: str) -> Iterator[tuple[Any, str]]:
    """Every (model or enum, dotted path) an annotation reaches: through unions, tuples/lists (`[]`) and dicts (`.<name>`)."""
    tp = _unwrap(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if _is_model(tp) or _is_enum(tp):
        yield tp, path
    elif origin in UNION_TYPES:
        for arg in args:
            yield from _nested(arg, path)
    elif origin in (tuple, list, set, frozenset, Sequence):
        for arg in args:
            if arg is not Ellipsis:
                yield from _nested(arg, f"{path}[]")
    elif origin in (dict, Mapping):
        key, value = args if len(args) == 2 else (str, Any)
        yield from _nested(key, path)
        placeholder = "<name>" if key is str else f"<{getattr(key, '__name__', 'key')}>"
        yield from _nested(value, f"{path}.{placeholder}" if path else placeholder)


def _fields(model: type[BaseModel]) -> list[tuple[str, FieldInfo]]:
    return list(model.model_fields.items())


def collect() -> tuple[list[ModelEntry], list[type[Enum]]]:
    """The models reachable from each root in depth-first field order (each once, with all its paths), and the enums."""
    entries: dict[type[BaseModel], ModelEntry] = {}
    enums: dict[type[Enum], None] = {}

    def visit(model: type[BaseModel], path: str, root: Root, chain: tuple[type[BaseModel], ...]) -> None:
        if model in chain:
            return
        entry = entries.setdefault(model, ModelEntry(model, root))
        if path not in entry.paths:
            entry.paths.append(path)
        for name, info in _fields(model):
            annotations = [info.annotation]
            resolved = RESOLVED_AS.get(model)
            if resolved is not None and name in resolved.model_fields:
                annotations.append(resolved.model_fields[name].annotation)
            for annotation in annotations:
                for tp, sub in _nested(annotation, f"{path}.{name}" if path else name):
                    if _is_enum(tp):
                        enums.setdefault(tp, None)
                    else:
                        visit(tp, sub, root, chain + (model,))

    for root in ROOTS:
        visit(root.model, "", root, ())
    return list(entries.values()), list(enums)


# ------------------------------------------------------------------------------------------------------ rendering


def _escape(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _scalar(value: Any) -> str:
    if isinstance(value, Enum):
        return str(value.value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return value if value else '""'
    return str(value)


def _value(value: Any) -> str:
    if isinstance(value, BaseModel):
        changed = value.model_dump(exclude_defaults=True)
        return _value(changed) if changed else ""
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_value(k)}: {_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return _scalar(value)


def _enum_link(enum: type[Enum]) -> str:
    return f"[{enum.__name__}](#enum-{enum.__name__.lower()})"


def _type(tp: Any) -> str:
    tp = _unwrap(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is NONE_TYPE:
        return "null"
    if tp is Any:
        return "any"
    if origin in UNION_TYPES:
        parts = [_type(a) for a in args if a is not NONE_TYPE]
        return " or ".join(parts) + (" or null" if NONE_TYPE in args else "")
    if origin is typing.Literal:
        return " or ".join(f"`{_scalar(a)}`" for a in args)
    if origin in (tuple, list, set, frozenset, Sequence):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return "[" + ", ".join(_type(a) for a in args) + "]"
        return f"list of {_grouped(args[0])}" if args else "list"
    if origin in (dict, Mapping):
        return f"map {_grouped(args[0])} → {_grouped(args[1])}" if args else "map"
    if _is_model(tp):
        return f"[{tp.__name__}](#{tp.__name__.lower()})"
    if _is_enum(tp):
        return _enum_link(tp)
    return SCALAR_NAMES.get(tp, getattr(tp, "__name__", str(tp)))


def _grouped(tp: Any) -> str:
    text = _type(tp)
    return f"({text})" if " or " in text else text


def _type_cell(tp: Any) -> str:
    """The type, with the values of a (possibly optional) enum spelled out."""
    text = _type(tp)
    bare = [a for a in typing.get_args(_unwrap(tp)) if a is not NONE_TYPE] or [_unwrap(tp)]
    if len(bare) == 1 and _is_enum(bare[0]):
        text += ": " + ", ".join(f"`{m.value}`" for m in bare[0])
    return text


def _default_cell(info: FieldInfo) -> str:
    if info.is_required():
        return "*required*"
    # Not `info.get_default()`: it deep-copies, and a FrozenDict inside a frozen model refuses to be rebuilt.
    value = info.default_factory() if info.default_factory is not None else info.default  # type: ignore[call-arg]
    if isinstance(value, BaseModel):
        changed = value.model_dump(exclude_defaults=True)
        return f"`{_escape(_value(changed))}`" if changed else f"see [{type(value).__name__}](#{type(value).__name__.lower()})"
    if isinstance(value, tuple) and value and all(isinstance(v, Enum) for v in value):
        enum = type(value[0])
        if value == tuple(enum):
            return f"every {_enum_link(enum)} value"
    return f"`{_escape(_value(value))}`"


def _constraints(*infos: FieldInfo) -> list[str]:
    phrases: list[str] = []
    for info in infos:
        for item in info.metadata:
            for attr, phrase in CONSTRAINTS:
                value = getattr(item, attr, None)
                text = phrase(value) if value is not None else None
                if text and text not in phrases:
                    phrases.append(text)
    return phrases


def _first_line(doc: str | None) -> str:
    return inspect.cleandoc(doc).split("\n\n")[0].replace("\n", " ") if doc else ""


def _description(annotation: Any, *infos: FieldInfo) -> str:
    for info in infos:
        if info.description:
            return info.description
    # Fall back to the docstring of the model or enum the field holds (e.g. `health` → HealthThresholds).
    bare = [a for a in typing.get_args(_unwrap(annotation)) if a is not NONE_TYPE] or [_unwrap(annotation)]
    if len(bare) == 1 and (_is_model(bare[0]) or _is_enum(bare[0])):
        return _first_line(bare[0].__doc__)
    return ""


def _also(text: str, more: str) -> str:
    return f"{text.rstrip('.')}; {more}" if text and more else text or more


def _scanner_file_keys() -> tuple[set[str], list[str]]:
    """Keys a scanner layer file may write (per the loader), and those that are not ScannerConfig fields."""
    allowed = set(getattr(scanners_module, "_ALLOWED", ScannerConfig.model_fields))
    return allowed, sorted(allowed - set(ScannerConfig.model_fields))


def _loader_checks(model: type[BaseModel], name: str) -> list[str]:
    """Checks the loaders apply on top of the models (read from the loaders' own constants)."""
    if model is ManifestFile and name in ("profiles", "aliases") and hasattr(manifest_module, "PROFILE_NAME"):
        return [f"names match `{manifest_module.PROFILE_NAME.pattern}`"]
    return []


def _rows(entry: ModelEntry) -> list[str]:
    model = entry.model
    resolved = RESOLVED_AS.get(model)
    scanner_keys = _scanner_file_keys()[0] if model is ScannerConfig else None
    rows = ["| key | type | default | constraints | description |", "|---|---|---|---|---|"]
    for name, info in _fields(model):
        infos = [info]
        annotation = info.annotation
        shown = info
        if resolved is not None and name in resolved.model_fields:
            shown = resolved.model_fields[name]
            annotation = shown.annotation
            infos.append(shown)
        elif resolved is not None:  # a settings-only key (e.g. an additive `*_add` list): drop the "unset" None
            args = [a for a in typing.get_args(annotation) if a is not NONE_TYPE]
            annotation = args[0] if len(args) == 1 else annotation
        constraints = _constraints(*infos) + _loader_checks(model, name)
        description = _description(annotation, *infos)
        if any(name in getattr(m, "identity_exclude", ()) for m in (model, resolved) if m is not None):
            description = _also(description, "excluded from the content id (`config_id`)")
        if scanner_keys is not None and name not in scanner_keys:
            description = _also("set by the loader, not written in files", description)
        cells = [f"`{name}`", _type_cell(annotation), _default_cell(shown), _escape(", ".join(constraints)), _escape(description)]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def _section(entry: ModelEntry) -> list[str]:
    model = entry.model
    primary = entry.primary_path
    heading = f"`{primary}`" if primary else entry.root.top_label
    lines = [f'<a id="{entry.anchor}"></a>', "", f"### {heading}", ""]
    where = f"Model `{model.__module__}.{model.__qualname__}`."
    others = [p for p in entry.paths if p != primary]
    if others:
        where += " Also at " + ", ".join(f"`{p}`" for p in others) + "."
    lines.append(where)
    if model.__doc__:
        lines += ["", inspect.cleandoc(model.__doc__)]
    resolved = RESOLVED_AS.get(model)
    if resolved is not None:
        lines += [
            "",
            f"Every key is optional here. A profile's keys override `defaults` (nested blocks merge key by key, lists "
            f"replace); a key set in neither takes the default shown, which is that of the resolved model "
            f"`{resolved.__module__}.{resolved.__qualname__}`. *required* means `defaults` or the profile must set it.",
        ]
    if model is ScannerConfig:
        _, extra = _scanner_file_keys()
        if extra:
            lines += ["", "Layer files may also write " + ", ".join(f"`{k}`" for k in extra) + "."]
    return lines + [""] + _rows(entry) + [""]


def _enum_section(enum: type[Enum]) -> list[str]:
    lines = [f'<a id="enum-{enum.__name__.lower()}"></a>', "", f"### {enum.__name__}", ""]
    if enum.__doc__:
        lines += [inspect.cleandoc(enum.__doc__), ""]
    lines += [f"Module `{enum.__module__}`. Values: " + ", ".join(f"`{m.value}`" for m in enum) + ".", ""]
    return lines


def render() -> str:
    """The whole reference as Markdown (deterministic: model, field and enum declaration order only)."""
    entries, enums = collect()
    out = [
        "# Configuration reference",
        "",
        f"> Generated from the pydantic models by `{COMMAND}`. Do not edit by hand: change the models, then rerun it.",
        "",
        "Every model is frozen and rejects unknown keys. Each table lists a model's keys in declaration order: the type, "
        "the default (*required* when there is none), the constraints pydantic enforces, and the field's description. "
        "`<name>` in a path stands for a mapping key you choose. `docs/configuration.md` explains how the files "
        "combine.",
        "",
        "## Contents",
        "",
    ]
    for root in ROOTS:
        out.append(f"- {root.title} (`{root.files}`)")
        for entry in entries:
            if entry.root is root:
                label = f"`{entry.primary_path}`" if entry.primary_path else "top level"
                out.append(f"  - [{label}](#{entry.anchor}) — {entry.model.__name__}")
    out += ["- [Enumerations](#enumerations)", ""]
    for root in ROOTS:
        out += [f"## {root.title}: `{root.files}`", ""]
        for entry in entries:
            if entry.root is root:
                out += _section(entry)
    out += ["## Enumerations", ""]
    for enum in enums:
        out += _enum_section(enum)
    return "\n".join(out).rstrip("\n") + "\n"


# ------------------------------------------------------------------------------------------------------------ CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DOC_PATH, help=f"the Markdown file (default: {DOC_PATH})")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if the file differs from the models")
    args = parser.parse_args(argv)
    text = render()
    out: Path = args.out
    if args.check:
        current = out.read_text(encoding="utf-8") if out.exists() else None
        if current == text:
            print(f"{out} is up to date with the configuration models.")
            return 0
        state = "does not exist" if current is None else "is out of date with the configuration models"
        print(f"{out} {state}. Regenerate it with: {COMMAND} --out {out}", file=sys.stderr)
        if current is not None:
            diff = difflib.unified_diff(current.splitlines(), text.splitlines(), "committed", "generated", lineterm="", n=1)
            print("\n".join(list(diff)[:40]), file=sys.stderr)
        return 1
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8", newline="\n")
    print(f"written: {out} ({len(text.splitlines())} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
