"""The worker's cache of what it stored itself, per sensor boot: the last seconds of samples, batch ranges and gaps
(and, kept apart, of what it is writing: `raw_ingest`, in flight).

It lets live windows be checked and read without a query (`RawIngest.index_for`, `series_for`, `here`); whatever it
lacks (another worker stored it) is read from the store. Correctness never depends on it.

Sequence numbers are the sensor's sample counters; times are UTC microseconds; acc m/s^2, gyr deg/s.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from analytics.stores.model import RawIndex, RawSamples, RawSeries


@dataclass
class _Chunk:
    seq_first: int
    seq_last: int
    n: int
    seq: np.ndarray
    time_us: np.ndarray
    t_sensor_us: np.ndarray
    acc: np.ndarray
    gyr: np.ndarray
    session: str | None


@dataclass(frozen=True)
class RecentSamples:
    """Samples of one sensor boot in sequence order (a live window's new part)."""

    seq: np.ndarray
    time_us: np.ndarray
    t_sensor_us: np.ndarray
    acc: np.ndarray
    gyr: np.ndarray

    def __len__(self) -> int:
        return int(self.seq.shape[0])

    @staticmethod
    def empty() -> RecentSamples:
        z = np.zeros(0, dtype=np.int64)
        return RecentSamples(z, z, z, np.zeros((0, 3)), np.zeros((0, 3)))


@dataclass
class RecentStream:
    """What this worker itself stored of one sensor boot, recently (a cache; never needed for correctness)."""

    chunks: deque[_Chunk] = field(default_factory=deque)
    gaps: list[tuple[int, int]] = field(default_factory=list)
    last_window_seq: int | None = None
    touched_s: float = 0.0
    max_span: int = 0
    """The largest ``seq_last - seq_first`` of any chunk added (an upper bound once chunks are dropped): how far
    back from ``first`` a chunk holding it can start."""

    def add(self, samples: RawSamples, keep: int) -> None:
        seq = samples.seq
        first = int(seq[0])
        if any(c.seq_first == first for c in self.chunks):
            return  # the same batch again (a re-sent copy under another delivery)
        chunk = _Chunk(
            first,
            int(seq[-1]),
            len(seq),
            seq,
            samples.time_us(),
            samples.t_sensor_us,
            samples.acc_mps2,
            samples.gyr_dps,
            samples.session,
        )
        self.chunks.append(chunk)
        self.max_span = max(self.max_span, chunk.seq_last - chunk.seq_first)
        if len(self.chunks) > 1 and chunk.seq_first < self.chunks[-2].seq_first:
            self.chunks = deque(sorted(self.chunks, key=lambda c: c.seq_first))
        newest = self.chunks[-1].seq_last
        while self.chunks and self.chunks[0].seq_last < newest - keep:
            self.chunks.popleft()
        self.gaps = [g for g in self.gaps if g[1] >= newest - keep]

    def joined(self, other: RecentStream) -> RecentStream:
        """This stream with the chunks of ``other`` (the same sensor boot) it lacks, in sequence order; its gaps."""
        mine, theirs = self.chunks, other.chunks
        span = max(self.max_span, other.max_span)
        if not theirs or not mine or theirs[0].seq_first > mine[-1].seq_first:
            # both in sequence order (`add` keeps them so): the batches being written follow those stored, the
            # usual case, where no batch can be in both; joined as they are, without a set or a sort
            return RecentStream(deque([*mine, *theirs]), list(self.gaps), max_span=span)
        have = {c.seq_first for c in mine}
        chunks = [*mine, *(c for c in theirs if c.seq_first not in have)]
        return RecentStream(deque(sorted(chunks, key=lambda c: c.seq_first)), list(self.gaps), max_span=span)

    def drop(self, seq_first: int) -> None:
        """Forget the batch starting at ``seq_first``."""
        self.chunks = deque(c for c in self.chunks if c.seq_first != seq_first)

    def start(self) -> int | None:
        firsts = [a for a, _ in self.gaps]
        if self.chunks:
            firsts.append(self.chunks[0].seq_first)  # the chunks are in sequence order
        return min(firsts) if firsts else None

    def overlapping(self, first: int, last: int) -> list[_Chunk]:
        """The chunks holding any of ``first..last``, in sequence order. Looked for from the newest back: a live
        window wants the last second or so of a cache that holds ``recent_s``."""
        out = []
        span = self.max_span
        for c in reversed(self.chunks):
            if c.seq_first + span < first:
                break  # this chunk and every older one end before ``first``
            if c.seq_last >= first and c.seq_first <= last:
                out.append(c)
        out.reverse()
        return out

    def index(self, first: int, last: int) -> RawIndex | None:
        start = self.start()
        if start is None or start > first:
            return None
        return RawIndex(
            tuple((c.seq_first, c.seq_last, c.n) for c in self.overlapping(first, last)),
            tuple(g for g in self.gaps if g[1] >= first and g[0] <= last),
        )

    def take(self, first: int, last: int, session: str) -> tuple[RecentSamples, int | None] | None:
        """Samples ``first..last`` as arrays (None: the cache starts after ``first``), and the time of the first of
        them stored as ``session``'s (None: none is): what a live window needs, without a `RawSeries`."""
        start = self.start()
        if start is None or start > first:
            return None
        parts = self.overlapping(first, last)
        if not parts:
            return RecentSamples.empty(), None
        # each chunk's seq strictly increases (`samples_from_arrays`): its samples in first..last are one slice
        cuts = []
        for c in parts:
            a = int(c.seq.searchsorted(first)) if c.seq_first < first else 0
            b = int(c.seq.searchsorted(last, side="right")) if c.seq_last > last else c.seq.shape[0]
            cuts.append((c, a, b))
        if len(cuts) == 1:
            c, a, b = cuts[0]
            out = RecentSamples(c.seq[a:b], c.time_us[a:b], c.t_sensor_us[a:b], c.acc[a:b], c.gyr[a:b])
        else:
            out = RecentSamples(
                np.concatenate([c.seq[a:b] for c, a, b in cuts]),
                np.concatenate([c.time_us[a:b] for c, a, b in cuts]),
                np.concatenate([c.t_sensor_us[a:b] for c, a, b in cuts]),
                np.concatenate([c.acc[a:b] for c, a, b in cuts]),
                np.concatenate([c.gyr[a:b] for c, a, b in cuts]),
            )
        own = next((c for c in parts if c.session == session), None)
        if own is None or not len(out):
            return out, None
        at = min(int(np.searchsorted(out.seq, max(own.seq_first, first))), len(out) - 1)
        return out, int(out.time_us[at])

    def series(self, serial: str, boot_epoch: int, first: int, last: int) -> RawSeries | None:
        start = self.start()
        if start is None or start > first:
            return None
        parts = self.overlapping(first, last)
        if not parts:
            return None
        seq = np.concatenate([c.seq for c in parts])
        keep = (seq >= first) & (seq <= last)
        t = np.concatenate([c.time_us for c in parts])[keep]
        order = np.argsort(t, kind="stable")
        n = int(keep.sum())
        return RawSeries(
            time_us=t[order],
            seq=seq[keep][order],
            t_sensor_us=np.concatenate([c.t_sensor_us for c in parts])[keep][order],
            boot_epoch=np.full(n, boot_epoch, dtype=np.int64),
            serial=(serial,) * n,
            session=tuple(c.session for c in parts for _ in range(c.n)),
            acc_mps2=np.concatenate([c.acc for c in parts])[keep][order],
            gyr_dps=np.concatenate([c.gyr for c in parts])[keep][order],
        )


__all__ = ["RecentSamples", "RecentStream"]
