"""Frozen configuration base: immutable (mappings included), unknown keys rejected, a stable content id."""

from __future__ import annotations

import hashlib
import json
from typing import ClassVar

from pydantic import BaseModel, ConfigDict


class FrozenDict(dict):
    """A dict that refuses mutation, so a frozen config cannot be changed through a mapping inside it."""

    def _refuse(self, *args, **kwargs):
        raise TypeError("configuration mappings are read-only")

    __setitem__ = __delitem__ = update = pop = popitem = clear = setdefault = _refuse
    __ior__ = _refuse

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items())))


class FrozenConfig(BaseModel):
    """Base for every config object: immutable (mappings included), unknown keys rejected, stable content id."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)
    identity_exclude: ClassVar[frozenset[str]] = frozenset()  # operational fields that do not change results

    def model_post_init(self, context) -> None:
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, dict) and not isinstance(value, FrozenDict):
                object.__setattr__(self, name, FrozenDict(value))

    def config_id(self) -> str:
        payload = json.dumps(self.model_dump(mode="json", exclude=set(self.identity_exclude)), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()[:16]
