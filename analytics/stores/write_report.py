"""What a store write did: points, requests, retries, and what was refused, quarantined or not written again."""

from __future__ import annotations

from dataclasses import dataclass, field

from analytics.stores.raw_model import GapRecord
from analytics.stores.raw_plan import MovedReplay, TimeCollision


@dataclass
class WriteReport:
    """What a write did. ``quarantined`` names what the server refused (kept in the quarantine, not retried)."""

    points_written: int = 0
    requests: int = 0
    retries: int = 0
    splits: int = 0
    quarantined: list[str] = field(default_factory=list)
    superseded: bool = False
    """replace_results only: a newer result_version is already stored; nothing was written."""
    collisions: list[TimeCollision] = field(default_factory=list)
    """Raw writes: samples refused because their point holds another sample (also in ``quarantined``)."""
    gaps: list[GapRecord] = field(default_factory=list)
    """Raw writes: the refused samples as the gaps recorded for them (reason ``time_collision``, or
    ``store_refused`` for a batch the server refused as bad data)."""
    moved: list[MovedReplay] = field(default_factory=list)
    """Raw writes: samples not written again because their identity is stored at another time nearby (a replay
    whose clock mapping moved); `moved_samples` counts them."""

    @property
    def moved_samples(self) -> int:
        return sum(len(m) for m in self.moved)

    def merge(self, other: WriteReport) -> None:
        self.points_written += other.points_written
        self.requests += other.requests
        self.retries += other.retries
        self.splits += other.splits
        self.quarantined.extend(other.quarantined)
        self.collisions.extend(other.collisions)
        self.gaps.extend(other.gaps)
        self.moved.extend(other.moved)
