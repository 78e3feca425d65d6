"""One session's live state in a worker: what was fed of each sensor onto the session's grid, where the session's
own samples start, and the instants its estimates are made at (`live_windows` feeds and steps it).

Times: UTC microseconds (``_us``) unless named otherwise; grid instants are counted from ``t0_us``.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field

import numpy as np

from analytics.pipeline.live import LiveGait
from analytics.pipeline.live_grid import RawOnGrid
from analytics.stores.model import Point
from analytics.worker.segments import Segment


@dataclass
class LiveWindowCounters:
    """What the live windows of this worker cost (beyond `LiveGait`'s own counters, summed in ``gait``)."""

    windows: int = 0
    """Window markers fed to a live session."""
    windows_waiting: int = 0
    """Windows that added nothing: the placement the common grid waits for had no new sample."""
    cold_starts: int = 0
    samples_fed: int = 0
    """Raw samples put on a grid (each one once, unless a cold start reads it again)."""
    samples_interpolated: int = 0
    """Raw samples the grid's interpolations read (each fed one once, plus the two around each window's new grid
    instants: `RawOnGrid`)."""
    samples_from_store: int = 0
    """Raw samples read from the store for live windows (those another worker stored, and cold starts')."""
    store_reads: int = 0
    strides: int = 0


@dataclass
class Feed:
    """One placement's samples fed so far: the sensor boot, the last sequence, and the raw samples still needed to
    interpolate the next grid instants (at least the last one at or before the newest grid instant)."""

    serial: str
    boot_epoch: int
    seq: int
    raw: RawOnGrid
    first: tuple[int, int, int]
    """(seq, t_sensor_us, time_us) of the first sample fed."""
    last: tuple[int, int, int]
    own_from_us: int | None = None
    """Time of the first sample of the live session's own session fed (None: none yet)."""


@dataclass
class LiveSession:
    """One session's live state in this worker (module docstring)."""

    subject: str
    session: str
    gait: LiveGait
    t0_us: int
    period_us: float
    feeds: dict[str, Feed]
    next_k: int = 0
    """Next grid instant to produce (index from ``t0_us``)."""
    session_from_k: int = 1 << 62
    """First grid instant every placement has samples of this session (earlier strides are not given out)."""
    gap_spans: list[tuple[int, int]] = field(default_factory=list)
    unwritten: list[Point] = field(default_factory=list)
    """Points given out whose write has not succeeded yet (written with the session's next window)."""
    counted: dict[str, int] = field(default_factory=dict)
    """The analysis's counters as last added to the worker's totals."""

    def matches(self, segment: Segment) -> bool:
        """The marker names the same sensor boots, none of them behind what was fed."""
        if set(segment.positions) != set(self.feeds):
            return False
        for placement, pos in segment.positions.items():
            f = self.feeds[placement]
            if (f.serial, f.boot_epoch) != (pos.serial, pos.boot_epoch):
                return False
        return True


def estimate_phase_s(subject: str, session: str, refresh_every_s: float) -> int:
    """Whole seconds a session's estimate instants lie after the whole multiples of ``refresh_every_s`` since 1970:
    a stable hash of the session, so every worker picks the same instants for it, while a clinic's sessions
    refresh at instants spread over the period. On one instant for all, every session's estimates (~14 ms each)
    were made at once and every live stride of that second waited for them (bench/RESULTS.md, "Worker: real
    time")."""
    period = max(1, round(refresh_every_s))
    return zlib.crc32(f"{subject}\n{session}".encode("utf-8", errors="replace")) % period


def session_from(live: LiveSession) -> None:
    """The first grid instant every placement has samples of the session (unknown while one has none yet)."""
    own = [f.own_from_us for f in live.feeds.values()]
    if all(t is not None for t in own):
        latest = max(t for t in own if t is not None)
        live.session_from_k = max(0, math.ceil((latest - live.t0_us) / live.period_us))


def holes(seq: np.ndarray, time_us: np.ndarray) -> list[tuple[int, int]]:
    """Time spans (µs) between consecutive samples whose sequences jump (samples known missing in between)."""
    jumps = np.flatnonzero(np.diff(seq) > 1)
    return [(int(time_us[i]), int(time_us[i + 1])) for i in jumps.tolist()]


__all__ = ["Feed", "LiveSession", "LiveWindowCounters", "estimate_phase_s", "holes", "session_from"]
