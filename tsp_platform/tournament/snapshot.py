"""The tournament's inputs for one (profile, as-of) partition, frozen into Parquet files.

Fan-out cells read this snapshot, never the DuckDB file: the database has one writer at a time, and dozens
of cells opening it would queue behind (or break) that writer. The snapshot is written once per partition by
the `tournament_inputs` stage, atomically (`lakehouse.frame_files`: a temporary directory renamed into place,
a manifest naming each file's SHA-256), so a cell refuses a truncated or edited snapshot instead of scoring it.

Everything in it is as of the partition's date: returns and bars stop there (`build_returns` and the screener
refuse later rows), and each walk-forward window's execution snapshot is computed from the bars up to that
window's own as-of date.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from tsp_platform.config.models import Profile
from tsp_platform.core.frame_files import FrameFilesError, content_id, read_frames, write_frames
from tsp_platform.core.panel import ReturnsPanel
from tsp_platform.selection.execution import execution_snapshot
from tsp_platform.tournament.cell import TournamentInputs

FRAMES = ("returns", "atoms", "pools", "bars", "meta")


class SnapshotError(RuntimeError):
    """A snapshot is missing, incomplete, or does not match its manifest."""


def _unusable(error: FrameFilesError) -> SnapshotError:
    return SnapshotError(f"tournament snapshot unusable ({error}): materialise tournament_inputs for this partition")


@dataclass(frozen=True, eq=False)
class TournamentSnapshot:
    profile: str
    as_of: date
    returns: pl.DataFrame  # symbol, date, ret: physical daily returns over the tournament span (+ benchmark)
    atoms: pl.DataFrame  # atom_id, symbol, logic, direction, identity, sector, asset_class (every window's pool)
    pools: pl.DataFrame  # pool_date, atom_id: the atoms each window's pool admitted then (null atom: empty pool)
    bars: pl.DataFrame  # symbol, date, open, high, low, close, volume (for each window's execution snapshot)
    meta: pl.DataFrame  # symbol, has_execution_metadata

    def __post_init__(self):
        for name in ("returns", "bars"):
            frame = getattr(self, name)
            if frame.height and frame["date"].max() > self.as_of:
                raise SnapshotError(f"{name} has rows after the as-of date {self.as_of}: point-in-time violated")

    @property
    def panel(self) -> ReturnsPanel:
        return ReturnsPanel.from_long(self.returns.select("symbol", "date", "ret"))

    def inputs(self, profile: Profile) -> TournamentInputs:
        """The walk-forward inputs of `profile` (which must be the snapshot's)."""
        if profile.name != self.profile:
            raise SnapshotError(f"snapshot of {self.profile} cannot run profile {profile.name}")
        bars, meta = self.bars, self.meta

        def snapshot(as_of: date) -> pl.DataFrame:
            return execution_snapshot(bars, meta, sorted(set(self.atoms["symbol"])), as_of)

        return TournamentInputs(
            panel=self.panel, atoms=self.atoms, snapshot=snapshot, selection=profile.selection,
            allocation=profile.allocation, windows=profile.tournament.windows, annualisation=profile.annualisation,
            allow_short=profile.features.feat_short_direction, benchmark=profile.benchmark,
            friction_rate=profile.friction.total_rate, pools=self.pool_map(),
        )

    def pool_map(self) -> dict[date, frozenset[str]]:
        """Pool date → admitted atom ids (an empty pool is a date whose only row has a null atom)."""
        return {day: frozenset(frame["atom_id"].drop_nulls()) for (day,), frame in self.pools.group_by("pool_date")}

    # -- files -------------------------------------------------------------------------------------------

    def write(self, directory: Path) -> str:
        """Write the snapshot to `directory` atomically (replacing an older one); returns its content id."""
        frames = {name: getattr(self, name) for name in FRAMES}
        return write_frames(directory, frames, {"profile": self.profile, "as_of": self.as_of.isoformat()})

    @staticmethod
    def content_id(directory: Path) -> str:
        """The written snapshot's content id, without reading (or verifying) its files."""
        try:
            return content_id(directory)
        except FrameFilesError as error:
            raise _unusable(error) from error

    @classmethod
    def read(cls, directory: Path) -> tuple["TournamentSnapshot", str]:
        """(snapshot, content id) of a written snapshot; a missing or damaged one raises `SnapshotError`."""
        try:
            frames, info, content_id = read_frames(directory, FRAMES)
        except FrameFilesError as error:
            raise _unusable(error) from error
        return cls(profile=info["profile"], as_of=date.fromisoformat(info["as_of"]), **frames), content_id
