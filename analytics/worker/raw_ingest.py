"""Raw ingest: a turn's raw batches and gaps into the store, and this worker's cache of what it stored.

- **raw batches** (`RawIngest.store_batches`): every raw batch of the turn in one `Store.write_raw_many`
  (idempotent and durable on return; one request instead of one per batch); if that fails for another reason
  than the store being unavailable, each batch is written on its own and the one that fails is quarantined, so
  one bad batch never holds back the others. A batch whose (subject, ``msg_id``) this worker already stored is
  not written again (a replay; the store would overwrite the same points anyway: samples are keyed by subject,
  placement and the timestamp computed from the sample's sensor ticks and the batch's own clock mapping, so
  replays and other workers land on the same points). A sample the store refuses because its point holds
  another sample (a gateway's mapping moved back) is quarantined and recorded as a gap by the store; its batch
  is acknowledged and the cache keeps what was stored.
- **remap**: a sensor boot epoch first seen with a synchronised clock gets `Store.remap_raw` (moves any
  sensor-time points stored while the gateway clock was unsynchronised); the segments of its subject waiting
  for UTC are then tried again at once.
- **gaps** are recorded (`RawIngest.store_gap`, `Store.write_gap`).
- **the cache** (`RecentStream`): per sensor boot, the last ``recent_s`` seconds of what *this* worker stored
  (samples, batch ranges, gaps). It lets live windows be checked and read without a query (`index_for`,
  `series_for`, `here`); whatever it lacks (another worker stored it) is read from the store. Correctness never
  depends on it.

Nothing here acknowledges: the consumer (`worker`) acknowledges what `store_batches` returns once it returned.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from analytics.stores import Store
from analytics.stores.errors import StoreUnavailable
from analytics.stores.model import (
    STORE_REFUSED,
    GapRecord,
    RawIndex,
    RawSamples,
    RawSeries,
    WriteReport,
    maps_to_utc,
)
from analytics.worker.budget import WORK_PER_REMAP
from analytics.worker.config import SubjectLog, WorkerConfig, WorkerStats
from analytics.worker.decode import batch_samples
from analytics.worker.errors import MalformedMessage
from analytics.worker.link import Delivery
from analytics.worker.segments import Segment, coverage
from gaitsym_common.uplink import envelope as env

log = logging.getLogger("gaitsym.worker")

StreamKey = tuple[str, str, str, int]
"""subject, placement, serial, boot_epoch"""


def stream_key(item: env.RawBatch | env.Gap | GapRecord | RawSamples) -> StreamKey:
    """The sensor boot a batch, gap or sample set belongs to, as the cache and the remaps key it."""
    if isinstance(item, env.RawBatch):
        return (item.subject, item.placement, item.sensor.serial, item.sensor.boot_epoch)
    return (item.subject, item.placement, item.serial, item.boot_epoch)


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


@dataclass
class RecentStream:
    """What this worker itself stored of one sensor boot, recently (a cache; never needed for correctness)."""

    chunks: deque[_Chunk] = field(default_factory=deque)
    gaps: list[tuple[int, int]] = field(default_factory=list)
    last_window_seq: int | None = None
    touched_s: float = 0.0

    def add(self, samples: RawSamples, keep: int) -> None:
        seq = samples.seq
        if any(c.seq_first == int(seq[0]) for c in self.chunks):
            return  # the same batch again (a re-sent copy under another delivery)
        chunk = _Chunk(
            int(seq[0]),
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
        if len(self.chunks) > 1 and chunk.seq_first < self.chunks[-2].seq_first:
            self.chunks = deque(sorted(self.chunks, key=lambda c: c.seq_first))
        newest = self.chunks[-1].seq_last
        while self.chunks and self.chunks[0].seq_last < newest - keep:
            self.chunks.popleft()
        self.gaps = [g for g in self.gaps if g[1] >= newest - keep]

    def start(self) -> int | None:
        firsts = [c.seq_first for c in self.chunks] + [a for a, _ in self.gaps]
        return min(firsts) if firsts else None

    def index(self, first: int, last: int) -> RawIndex | None:
        start = self.start()
        if start is None or start > first:
            return None
        return RawIndex(
            tuple((c.seq_first, c.seq_last, c.n) for c in self.chunks if c.seq_last >= first and c.seq_first <= last),
            tuple(g for g in self.gaps if g[1] >= first and g[0] <= last),
        )

    def series(self, serial: str, boot_epoch: int, first: int, last: int) -> RawSeries | None:
        start = self.start()
        if start is None or start > first:
            return None
        parts = [c for c in self.chunks if c.seq_last >= first and c.seq_first <= last]
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


def store_unavailable(exc: BaseException) -> bool:
    """The store itself failed (outage, overload, I/O), not one message's data: keep everything, retry later."""
    return isinstance(exc, StoreUnavailable | OSError | TimeoutError)


class RawIngest:
    """Stores raw batches and gaps, moves sensor-time samples to UTC, keeps the cache (module docstring).

    ``quarantine(delivery, exc, subject)`` sets aside a delivery whose data failed on its own (the consumer's);
    ``on_moved_to_utc(subject)`` is told when a subject's sensor-time samples were moved to UTC; ``charge(subject,
    work)`` takes a remap's cost (a store query) from the subject's work budget."""

    def __init__(
        self,
        config: WorkerConfig,
        store: Store,
        stats: WorkerStats,
        clock: Callable[[], float],
        log_limited: SubjectLog,
        quarantine: Callable[[Delivery, BaseException, str], None],
        on_moved_to_utc: Callable[[str], None],
        charge: Callable[[str, int], None] = lambda subject, work: None,
    ) -> None:
        self.config = config
        self.store = store
        self.stats = stats
        self.clock = clock
        self.log_limited = log_limited
        self.quarantine = quarantine
        self.on_moved_to_utc = on_moved_to_utc
        self.charge = charge
        self.streams: dict[StreamKey, RecentStream] = {}
        self._stored: OrderedDict[tuple[str, str], None] = OrderedDict()
        """(subject, msg_id) of the batches this worker stored (replays are skipped)."""
        self._synced: dict[StreamKey, env.ClockMapping] = {}
        """The synchronised mapping of each sensor boot whose samples were moved to UTC (forgotten with its cache:
        a boot seen again costs one more, idempotent, remap)."""
        self._remap_due: dict[StreamKey, env.ClockMapping] = {}
        """Remaps to run (`_run_remaps`); only the turn's batches add to it, so it stays small."""
        self._pruned_s = 0.0

    def stream(self, subject: str, placement: str, pos: env.SensorPosition) -> RecentStream | None:
        """The cache of the sensor boot a marker position names (None: nothing of it stored here recently)."""
        return self.streams.get((subject, placement, pos.serial, pos.boot_epoch))

    def store_batches(self, raw: list[tuple[Delivery, env.RawBatch]]) -> list[tuple[Delivery, env.RawBatch]]:
        """Store the turn's raw batches; returns those to acknowledge (stored now or before: a replay). Raises only
        when the store is unavailable (then nothing of the turn is acknowledged: it is retried); a batch that fails
        on its own is quarantined."""
        todo: list[tuple[Delivery, env.RawBatch, RawSamples]] = []
        for d, batch in raw:
            if (batch.subject, batch.msg_id) in self._stored:
                self.stats.replays_skipped += 1
                continue
            try:
                todo.append((d, batch, batch_samples(batch, d.topic)))
            except MalformedMessage as exc:
                self.quarantine(d, exc, batch.subject)
        todo = self._write_raw(todo)
        keep = round(self.config.recent_s * 100)
        for _, batch, samples in todo:
            key = stream_key(batch)
            stream = self.streams.setdefault(key, RecentStream())
            if len(samples):  # every sample refused (time collision): only its gaps are cached
                stream.add(samples, keep)
            stream.touched_s = self.clock()
            self._stored[(batch.subject, batch.msg_id)] = None
            if len(self._stored) > self.config.dedup_capacity:
                self._stored.popitem(last=False)
            self.stats.batches_stored += 1
            self.stats.samples_stored += len(samples)
        for _, batch, _ in todo:
            key = stream_key(batch)
            clock = batch.clock if maps_to_utc(batch.clock) else None
            if clock is not None and key not in self._synced:
                self._remap_due[key] = clock
            elif clock is None and key in self._synced:  # sensor-time data after the mapping became known
                self._remap_due[key] = self._synced[key]
        self._run_remaps()
        return [(d, batch) for d, batch in raw if (batch.subject, batch.msg_id) in self._stored]

    def _write_raw(
        self, todo: list[tuple[Delivery, env.RawBatch, RawSamples]]
    ) -> list[tuple[Delivery, env.RawBatch, RawSamples]]:
        """The turn's batches in one request; if that fails for another reason than the store being unavailable,
        one request per batch, quarantining each batch that fails on its own. Returns the batches stored."""
        if not todo:
            return []
        try:
            report = self.store.write_raw_many([s for _, _, s in todo])
            self.stats.quarantined += len(report.quarantined)
            return self._as_stored(todo, report)
        except Exception as exc:
            if store_unavailable(exc):
                raise
            if len(todo) == 1:
                self.quarantine(todo[0][0], exc, todo[0][1].subject)
                return []
        stored = []
        for item in todo:
            try:
                report = self.store.write_raw_many([item[2]])
            except Exception as exc:
                if store_unavailable(exc):
                    raise
                self.quarantine(item[0], exc, item[1].subject)
                continue
            self.stats.quarantined += len(report.quarantined)
            stored.extend(self._as_stored([item], report))
        return stored

    def _as_stored(
        self, todo: list[tuple[Delivery, env.RawBatch, RawSamples]], report: WriteReport
    ) -> list[tuple[Delivery, env.RawBatch, RawSamples]]:
        """The batches as the store kept them: samples it refused (their point held another sample, or the server
        refused them as bad data; quarantined and recorded as gaps by the store) are left out, their gaps known to
        the cache; samples it already held at
        another time (a replay whose clock mapping moved: the stored copy wins) are left out too, so the cache
        never holds times the store does not. The batches are still acknowledged: a replay would be refused or
        skipped the same way."""
        if not report.collisions and not report.moved and not report.gaps:
            return todo
        refused = {(c.subject, c.placement, *c.refused) for c in report.collisions}
        for g in report.gaps:
            key = stream_key(g)
            self.streams.setdefault(key, RecentStream()).gaps.append((g.seq_first, g.seq_last))
            if g.reason == STORE_REFUSED:
                refused.update((*key, q) for q in range(g.seq_first, g.seq_last + 1))
                self.log_limited(
                    g.subject,
                    "refused",
                    "the store refused %s/%d seq %d..%d as bad data: recorded as a gap",
                    g.serial,
                    g.boot_epoch,
                    g.seq_first,
                    g.seq_last,
                )
        for m in report.moved:
            refused.update((m.subject, m.placement, m.serial, m.boot_epoch, q) for q in m.seq)
            self.log_limited(
                m.subject,
                "moved",
                "%d samples of %s/%d re-sent with a clock mapping moved by %d..%d us: the stored copies kept "
                "(a gateway must re-send the identical payload, UPLINK.md)",
                len(m),
                m.serial,
                m.boot_epoch,
                *m.shift_us,
            )
        out = []
        for d, batch, samples in todo:
            ids = stream_key(samples)
            kept = np.array([(*ids, q) not in refused for q in samples.seq.tolist()], dtype=bool)
            out.append((d, batch, samples if kept.all() else samples.take(kept)))
        return out

    def _run_remaps(self) -> None:
        """Move the sensor-time samples of each boot in ``_remap_due`` to UTC. A remap stays due until it ran: the
        store going down mid-way raises (the turn is retried) and the retried turn, whose batches are replays
        by then, runs the remaps still due."""
        while self._remap_due:
            key, clock = next(iter(self._remap_due.items()))
            self.charge(key[0], WORK_PER_REMAP)
            try:
                self._remap(key, clock)
                self._synced[key] = clock  # only once moved: a failed move is tried again with the next batch
            except Exception as exc:
                if store_unavailable(exc):
                    raise
                self.log_limited(key[0], "remap", "moving %s/%d to UTC failed: %s", key[2], key[3], exc)
            del self._remap_due[key]

    def _remap(self, key: StreamKey, clock: env.ClockMapping) -> None:
        moved = self.store.remap_raw(*key, clock)
        if moved:
            log.info("%s: %d sensor-time samples of %s/%d moved to UTC", key[0], moved, key[2], key[3])
            self.streams.pop(key, None)  # their cached times were sensor time
            self.on_moved_to_utc(key[0])  # its segments waiting for UTC: try again now

    def store_gap(self, message: env.Gap) -> None:
        """Record samples a gateway reports missing (the store, then the cache)."""
        self.stats.gaps += 1
        self.log_limited(
            message.subject,
            "gap",
            "gap %s %s/%d seq %d..%d (%s, %.2f s)",
            message.placement,
            message.serial,
            message.boot_epoch,
            message.seq_first_missing,
            message.seq_last_missing,
            message.reason,
            message.duration_s,
            level=logging.INFO,
        )
        self.store.write_gap(
            GapRecord(
                message.subject,
                message.session,
                message.placement,
                message.serial,
                message.boot_epoch,
                message.seq_first_missing,
                message.seq_last_missing,
                message.duration_s,
                message.reason,
                message.msg_id,
            )
        )
        key = stream_key(message)
        self.streams.setdefault(key, RecentStream()).gaps.append((message.seq_first_missing, message.seq_last_missing))

    def prune(self) -> None:
        """Forget the cache of sensor boots that sent nothing for ``recent_s`` (sessions ended, sensors off)."""
        now = self.clock()
        if now - self._pruned_s < self.config.recent_s:
            return
        self._pruned_s = now
        for key in [k for k, st in self.streams.items() if now - st.touched_s > self.config.recent_s]:
            del self.streams[key]
        for key in [k for k in self._synced if k not in self.streams]:
            del self._synced[key]

    def index_for(self, segment: Segment) -> Callable[[str, env.SensorPosition, int], RawIndex | None]:
        def index_for(placement: str, pos: env.SensorPosition, first: int) -> RawIndex | None:
            stream = self.stream(segment.subject, placement, pos)
            return None if stream is None else stream.index(first, pos.seq)

        return index_for

    def series_for(self, segment: Segment) -> Callable[[str, env.SensorPosition, int], RawSeries | None]:
        def series_for(placement: str, pos: env.SensorPosition, first: int) -> RawSeries | None:
            stream = self.stream(segment.subject, placement, pos)
            return None if stream is None else stream.series(pos.serial, pos.boot_epoch, first, pos.seq)

        return series_for

    def here(self, segment: Segment) -> bool:
        """This worker itself stored every sample of the segment's last second (no query)."""
        for placement, pos in segment.positions.items():
            stream = self.stream(segment.subject, placement, pos)
            index = None if stream is None else stream.index(pos.seq - 99, pos.seq)
            if index is None or coverage(pos.seq - 99, pos.seq, index)[0]:
                return False
        return True
