"""The typed context every data-cycle stage receives: where the lakehouse is, which profile, which as-of."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from tsp_platform.config.models import Profile
from tsp_platform.lakehouse import Lakehouse

PRICING_BUFFER_DAYS = 7
RUN_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")


def utc_now() -> datetime:
    """Naive UTC timestamp (the lakehouse stores TIMESTAMP in UTC)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def validate_run_id(run_id: str) -> str:
    if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id):  # fullmatch: `$` would let a trailing newline in
        raise ValueError(f"run id {run_id!r} must match {RUN_ID.pattern} (no path separators or '..')")
    return run_id


def path_segment(value: str, what: str) -> str:
    """`value` as one file or directory name under a root: refuses empty names, '.', '..', path separators and
    control characters, so a path built from a profile, cell group or run id cannot leave its root."""
    unsafe = not isinstance(value, str) or value in ("", ".", "..") or any(c in "/\\" or ord(c) < 32 for c in value)
    if unsafe:
        raise ValueError(f"{what} {value!r} cannot name a file or directory (no path separators, '..' or "
                         "control characters)")
    return value


@dataclass(frozen=True)
class StageContext:
    lakehouse: Lakehouse
    profile: Profile
    as_of: date
    run_id: str = field(default_factory=lambda: utc_now().strftime("%Y%m%d-%H%M%S"))

    def __post_init__(self):
        validate_run_id(self.run_id)

    @property
    def lookback_start(self) -> date:
        """First date inside the profile's lookback window ending at the as-of date."""
        return self.as_of - timedelta(days=self.profile.lookback_days - 1)

    @property
    def history_start(self) -> date:
        """First bar the stages need: a week before the lookback prices its first return."""
        return self.lookback_start - timedelta(days=PRICING_BUFFER_DAYS)
