"""Configuration errors always name the file and the key at fault."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError


class ConfigError(ValueError):
    """A configuration file is malformed; the message names the file and the dotted key."""

    def __init__(self, path: Path | str, key: str, message: str):
        self.path = str(path)
        self.key = key
        self.reason = message
        super().__init__(f"{self.path}: {key or '<root>'}: {message}")


def _dotted(loc: tuple) -> str:
    return ".".join(str(part) for part in loc)


def config_error_from_validation(path: Path | str, exc: ValidationError, prefix: str = "") -> ConfigError:
    """Turn the first pydantic error into a ConfigError that names file and key (all errors listed)."""
    errors = exc.errors()
    first = errors[0]
    key = ".".join(p for p in (prefix, _dotted(first["loc"])) if p)
    detail = "; ".join(
        f"{'.'.join(p for p in (prefix, _dotted(e['loc'])) if p) or '<root>'}: {e['msg']}" for e in errors
    )
    return ConfigError(path, key, detail if len(errors) > 1 else first["msg"])
