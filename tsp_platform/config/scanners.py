"""Layered scanner configs: L0 universe → L1 hygiene → L2 template → L3 strategy → L4 scanner.

Each file may name a `base_preset` (relative to itself) of a strictly lower layer. Merge rules:
dicts merge deeply, scalars and lists *replace*, and a `<key>_add` list appends to the inherited `<key>`.
(The older system concatenated lists silently, so an inherited filter could never be removed.)
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, model_validator

from tsp_platform.config.errors import ConfigError, config_error_from_validation
from tsp_platform.config.manifest import CONFIG_DIR, read_yaml
from tsp_platform.core.frozen import FrozenConfig
from tsp_platform.core.vocabulary import Direction

SCANNER_DIR = CONFIG_DIR / "scanners"
ADDITIVE_SUFFIX = "_add"


class Layer(StrEnum):
    L0 = "L0"
    L1 = "L1"
    L2 = "L2"
    L3 = "L3"
    L4 = "L4"


class FilterOp(StrEnum):
    """The TradingView screener operations we support, offline and live alike."""

    GREATER = "greater"
    LESS = "less"
    EGREATER = "egreater"
    ELESS = "eless"
    EQUAL = "equal"
    NEQUAL = "nequal"
    IN_RANGE = "in_range"
    NOT_IN_RANGE = "not_in_range"


class SortOrder(StrEnum):
    ASC = "asc"
    DESC = "desc"


class ScreenFilter(FrozenConfig):
    """One screener condition, `{left, operation, right}` as TradingView writes it."""

    left: str
    operation: FilterOp
    right: float | str | tuple[float | str, ...]

    @model_validator(mode="after")
    def _range_needs_pair(self) -> "ScreenFilter":
        if self.operation in (FilterOp.IN_RANGE, FilterOp.NOT_IN_RANGE):
            if not isinstance(self.right, tuple) or len(self.right) != 2:
                raise ValueError(f"{self.operation} needs right: [low, high]")
        return self


class TrendGate(FrozenConfig):
    """Direction-aware trend gate. For a short scan, the recommendation and momentum tests flip sign."""

    recommendation_min: float | None = Field(None, ge=-1, le=1)
    adx_min: float | None = Field(None, ge=0)
    momentum: dict[str, float] = {}


class ScannerConfig(FrozenConfig):
    """A fully merged L4 scanner."""

    name: str
    layer: Layer
    direction: Direction
    logic: str = "trend"
    description: str = ""
    markets: tuple[str, ...] = ("america",)
    exchanges: tuple[str, ...] = ()
    symbols: tuple[str, ...] = ()
    exclude_symbols: tuple[str, ...] = ()
    filters: tuple[ScreenFilter, ...] = ()
    trend: TrendGate | None = None
    value_traded_min: float | None = Field(None, ge=0)
    columns: tuple[str, ...] = ()
    sort_by: str = "Value.Traded"
    sort_order: SortOrder = SortOrder.DESC
    limit: int = Field(50, ge=1, le=5000)
    source_files: tuple[str, ...] = ()


_LAYER_KEYS = set(ScannerConfig.model_fields) - {"source_files", "name"} | {"base_preset"}
_LISTS = {k for k, f in ScannerConfig.model_fields.items() if "tuple" in str(f.annotation)} - {"source_files"}
_ALLOWED = _LAYER_KEYS | {f"{k}{ADDITIVE_SUFFIX}" for k in _LISTS}


def merge_layer(base: dict[str, Any], layer: dict[str, Any]) -> dict[str, Any]:
    """Apply one layer over its merged base (dicts deep-merge, lists replace, `*_add` appends)."""
    merged = dict(base)
    for key, value in layer.items():
        if key.endswith(ADDITIVE_SUFFIX):
            continue
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_layer(merged[key], value)
        else:
            merged[key] = value
    for key, value in layer.items():
        if key.endswith(ADDITIVE_SUFFIX):
            target = key[: -len(ADDITIVE_SUFFIX)]
            merged[target] = list(merged.get(target) or []) + [v for v in value if v not in (merged.get(target) or [])]
    return merged


def _load_layer(path: Path, chain: tuple[Path, ...], root: Path) -> tuple[dict[str, Any], Layer, tuple[Path, ...]]:
    if path in chain:
        names = " -> ".join(str(p) for p in chain + (path,))
        raise ConfigError(chain[-1], "base_preset", f"inheritance cycle: {names}")
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(path, "", "a scanner layer must be a mapping")
    for key in raw:
        if key not in _ALLOWED:
            raise ConfigError(path, key, "unknown key")
        if key.endswith(ADDITIVE_SUFFIX) and not isinstance(raw[key], list):
            raise ConfigError(path, key, "an additive key takes a list")
    try:
        layer = Layer(raw.get("layer"))
    except ValueError:
        raise ConfigError(path, "layer", f"must be one of {[item.value for item in Layer]}") from None
    own = {k: v for k, v in raw.items() if k not in ("base_preset", "layer")}
    base_name = raw.get("base_preset")
    if base_name is None:
        return merge_layer({}, own), layer, (path,)
    base_path = (path.parent / str(base_name)).resolve()
    if not base_path.is_relative_to(root):
        raise ConfigError(path, "base_preset", f"bad preset: {base_name!r} resolves outside the scanner folder")
    if not base_path.exists():
        raise ConfigError(path, "base_preset", f"bad preset: {base_name!r} not found (looked at {base_path})")
    base, base_layer, files = _load_layer(base_path, chain + (path,), root)
    if list(Layer).index(base_layer) >= list(Layer).index(layer):
        raise ConfigError(path, "base_preset", f"a {layer} layer cannot inherit from {base_layer} ({base_name})")
    return merge_layer(base, own), layer, files + (path,)


def load_scanner(ref: str | Path, root: Path = SCANNER_DIR) -> ScannerConfig:
    """Resolve an L4 scanner by path (relative to `configs/scanners/`, `.yaml` optional)."""
    path = Path(ref)
    if not path.is_absolute():
        path = root / path
    if path.suffix != ".yaml":
        path = path.with_suffix(".yaml")
    path = path.resolve()
    if not path.is_relative_to(root.resolve()):
        raise ConfigError(path, "", f"scanner {ref!r} resolves outside {root}")
    merged, layer, files = _load_layer(path, (), root.resolve())
    if layer is not Layer.L4:
        raise ConfigError(path, "layer", f"only an L4 file is a runnable scanner (this is {layer})")
    if "direction" not in read_yaml(path):
        raise ConfigError(path, "direction", "every scanner declares its own direction (long or short)")
    name = path.relative_to(root.resolve()).with_suffix("").as_posix()
    try:
        return ScannerConfig(name=name, layer=layer, source_files=tuple(f.relative_to(root.resolve()).as_posix() for f in files), **merged)
    except ValidationError as exc:
        raise config_error_from_validation(path, exc) from None
