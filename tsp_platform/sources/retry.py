"""Exponential backoff shared by the live clients (one policy object, the sleep injectable for tests)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Backoff:
    max_attempts: int = 5
    base_s: float = 1.0
    cap_s: float = 30.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def __post_init__(self):
        if self.max_attempts < 1 or self.base_s < 0 or self.cap_s < 0:
            raise ValueError("max_attempts >= 1 and non-negative delays required")

    def attempts(self) -> range:
        return range(1, self.max_attempts + 1)

    def delay(self, attempt: int, server_hint_s: float | None = None) -> float:
        """base × 2^(attempt-1), at least what the server asked for (Retry-After), at most the cap."""
        delay = self.base_s * 2 ** (attempt - 1)
        if server_hint_s is not None:
            delay = max(delay, server_hint_s)
        return min(self.cap_s, delay)

    def pause(self, attempt: int, server_hint_s: float | None = None) -> None:
        """Sleep before the next attempt; nothing after the last one."""
        if attempt < self.max_attempts:
            self.sleep(self.delay(attempt, server_hint_s))
