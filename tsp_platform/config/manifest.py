"""Load the profile manifest: defaults + per-profile overrides + aliases, validated, errors naming file and key."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from tsp_platform.config.errors import ConfigError, config_error_from_validation
from tsp_platform.config.models import ManifestFile, Profile

PROFILE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
DEFAULT_MANIFEST = CONFIG_DIR / "manifest.yaml"


class _UniqueKeyLoader(yaml.SafeLoader):
    """The safe loader, refusing a key repeated in one mapping (PyYAML would keep the last one silently)."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.setdefault(key, key_node.start_mark.line)
            except TypeError:  # an unhashable key: the base constructor reports it
                continue
            if first != key_node.start_mark.line:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    f"duplicate key {key!r} (first on line {first + 1})", key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path) -> Any:
    """Parse a YAML file; a syntax error or a repeated key names the file and the line."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(path, "", "file not found") from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506  (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "<parse>"
        raise ConfigError(path, where, f"invalid YAML: {getattr(exc, 'problem', exc)}") from None


def deep_merge(base: dict, override: dict) -> dict:
    """Dicts merge recursively; any other value in `override` replaces the base value."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


@dataclass(frozen=True)
class Manifest:
    """A validated manifest with profile resolution."""

    path: Path
    file: ManifestFile

    @property
    def profile_names(self) -> list[str]:
        return sorted(self.file.profiles)

    @property
    def default_profile(self) -> str:
        return self.file.default_profile

    def canonical_name(self, name: str) -> str:
        """Follow aliases to a profile name; cycles and unknown names are errors naming the key."""
        seen: list[str] = []
        current = name
        while current in self.file.aliases:
            if current in seen:
                raise ConfigError(self.path, f"aliases.{name}", f"alias cycle: {' -> '.join(seen + [current])}")
            seen.append(current)
            current = self.file.aliases[current]
        if current not in self.file.profiles:
            known = ", ".join(self.profile_names)
            raise ConfigError(self.path, f"profiles.{name}", f"unknown profile {name!r} (known: {known})")
        return current

    def profile(self, name: str) -> Profile:
        canonical = self.canonical_name(name)
        # Only keys written in the file: a nested block in a profile overrides just the keys it names.
        defaults = self.file.defaults.model_dump(mode="json", exclude_none=True, exclude_unset=True)
        override = self.file.profiles[canonical].model_dump(mode="json", exclude_none=True, exclude_unset=True)
        merged = deep_merge(defaults, override)
        scanners = list(merged.pop("scanners", []))
        scanners += [s for s in merged.pop("scanners_add", []) if s not in scanners]
        try:
            return Profile(name=canonical, scanners=tuple(scanners), **merged)
        except ValidationError as exc:
            raise config_error_from_validation(self.path, exc, prefix=f"profiles.{canonical}") from None

    def profiles(self) -> list[Profile]:
        return [self.profile(name) for name in self.profile_names]


def load_manifest(path: Path | str | None = None) -> Manifest:
    """Read and validate the manifest; every profile is resolved eagerly so errors surface at load."""
    manifest_path = Path(path) if path else DEFAULT_MANIFEST
    raw = read_yaml(manifest_path)
    if not isinstance(raw, dict):
        raise ConfigError(manifest_path, "", "the manifest must be a mapping")
    try:
        parsed = ManifestFile.model_validate(raw)
    except ValidationError as exc:
        raise config_error_from_validation(manifest_path, exc) from None
    # Profile names become directory names (reports, orders, snapshots) and partition keys: fullmatch, so that
    # neither a path separator, '..' nor a trailing newline gets through.
    sections = {"profiles": parsed.profiles, "aliases": parsed.aliases, "meta_profiles": parsed.meta_profiles}
    for section, names in sections.items():
        for name in names:
            if not PROFILE_NAME.fullmatch(name):
                raise ConfigError(manifest_path, f"{section}.{name}",
                                  "profile names are lower-case [a-z0-9_], at most 64 characters")
    manifest = Manifest(path=manifest_path, file=parsed)
    # An unknown name is blamed on the key that holds it (not on `profiles.<name>`, which is not in the file).
    for key, name in [("default_profile", parsed.default_profile), *((f"aliases.{a}", a) for a in parsed.aliases)]:
        try:
            manifest.canonical_name(name)
        except ConfigError as error:
            raise ConfigError(manifest_path, key, error.reason) from None
    manifest.profiles()
    return manifest
