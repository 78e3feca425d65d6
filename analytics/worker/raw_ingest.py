"""Raw ingest: a turn's raw batches and gaps into the store, and this worker's cache of what it stored.

- **raw batches** (`RawIngest.store_batches`, or `start_batches` then `finish_batches`): every raw batch of the
  turn in one `Store.write_raw_many` (idempotent and durable on return; one request instead of one per batch),
  optionally in a thread of its own while the worker analyses (the request is mostly waiting for the server:
  at 100 subjects about a third of a second per second of data); if that fails for another reason than the
  store being unavailable, each batch is written on its own and the one that fails is quarantined, so one bad
  batch never holds back the others. A batch whose (subject, ``msg_id``) this worker already stored is
  not written again (a replay; the store would overwrite the same points anyway: samples are keyed by subject,
  placement and the timestamp computed from the sample's sensor ticks and the batch's own clock mapping, so
  replays and other workers land on the same points). A sample the store refuses because its point holds
  another sample (a gateway's mapping moved back) is quarantined and recorded as a gap by the store; its batch
  is acknowledged and the cache keeps what was stored.
- **remap**: a sensor boot epoch first seen with a synchronised clock gets `Store.remap_raw` (moves any
  sensor-time points stored while the gateway clock was unsynchronised); the segments of its subject waiting
  for UTC are then tried again at once.
- **gaps** are recorded (`RawIngest.store_gap`, `Store.write_gap`).
- **the cache** (`recent.RecentStream`): per sensor boot, the last ``recent_s`` seconds of what *this* worker stored
  (samples, batch ranges, gaps). It lets live windows be checked and read without a query (`index_for`,
  `series_for`, `here`); whatever it lacks (another worker stored it) is read from the store. Correctness never
  depends on it.
- **in flight**: the samples of the writes under way, and of the batches taken for a later turn (`take`: decoded as
  the consumer admits them). Live windows read them too (`stream`, `live_index_for`, `here`), so a provisional
  stride waits neither for the database to store its samples (at 100 subjects a raw write takes ~0.3-0.6 s) nor for
  its batches' turn. A turn whose write the store refused is not in flight until its retry starts (it may never be
  stored as it was): meanwhile a window needing it waits for it (`awaiting_own_write`). Most are stored as decoded
  (a write the store could not take is tried again with the turn); those it keeps out (a batch quarantined on its
  own, samples refused as bad data or because their point holds another sample, a re-sent copy whose clock mapping
  moved) may already be in a provisional stride, which the session's final analysis, reading only the store,
  replaces. Final and set analyses wait for the store (`index_for`, `series_for`).

Nothing here acknowledges: the consumer (`worker`) acknowledges what `store_batches` (`finish_batches`) returns
once it returned. Everything but the one write request runs on the consumer's thread.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
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
from analytics.worker.link import Delivery, Token
from analytics.worker.recent import RecentStream
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
class RawWrite:
    """One turn's raw batches on their way to the store (`RawIngest.start_batches`): ``todo`` the decoded ones to
    write; ``report`` or ``error`` once ``done``."""

    raw: list[tuple[Delivery, env.RawBatch]]
    todo: list[tuple[Delivery, env.RawBatch, RawSamples]]
    quarantined: set[Token] = field(default_factory=set)
    """Deliveries set aside as malformed (never retried)."""
    report: WriteReport | None = None
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)
    ranges: dict[StreamKey, list[tuple[int, int]]] = field(default_factory=dict)
    """Per sensor boot, the sequence ranges of its batches."""

    def attempt(self, store: Store, then: Callable[[], None] | None = None) -> None:
        """The one request (any thread): its report, or what it raised, kept for `RawIngest.finish_batches`."""
        try:
            self.report = store.write_raw_many([s for _, _, s in self.todo])
        except BaseException as exc:  # handed to the caller's thread, which decides
            self.error = exc
        finally:
            self.done.set()
            if then is not None:
                then()


def _uncovered(first: int, last: int, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of ``first..last`` no span covers."""
    out, at = [], first
    for a, b in sorted(spans):
        if b < at:
            continue
        if a > last:
            break
        if a > at:
            out.append((at, a - 1))
        at = max(at, b + 1)
    if at <= last:
        out.append((at, last))
    return out


def _uncovered_any(ranges: list[tuple[int, int]], spans: list[tuple[int, int]]) -> bool:
    return any(_uncovered(a, b, spans) for a, b in ranges)


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
        self._keep = round(config.recent_s * 100)
        """Samples each cached stream keeps (``recent_s`` at 100 Hz)."""
        self._stored: OrderedDict[tuple[str, str], None] = OrderedDict()
        """(subject, msg_id) of the batches this worker stored (replays are skipped)."""
        self._synced: dict[StreamKey, env.ClockMapping] = {}
        """The synchronised mapping of each sensor boot whose samples were moved to UTC (forgotten with its cache:
        a boot seen again costs one more, idempotent, remap)."""
        self._remap_due: dict[StreamKey, env.ClockMapping] = {}
        """Remaps to run (`_run_remaps`); only the turn's batches add to it, so it stays small."""
        self._pruned_s = 0.0
        self._flight: list[RawWrite] = []
        """The writes under way (`start_batches` .. `finish_batches`): what this worker is storing, not yet in its
        cache."""
        self._in_flight: dict[StreamKey, RecentStream] = {}
        """The samples of the writes under way and of the batches taken for a later turn (`take`), per sensor boot
        (module docstring)."""
        self._taken: dict[Token, tuple[env.RawBatch, RawSamples]] = {}
        """Per delivery (its token) of a batch taken and not yet in a write (`take`): the batch and its decoded
        samples. Per delivery, not per msg_id: a re-sent copy is decoded and written as what it is, and each
        copy's entry goes when its turn comes (a copy skipped as a replay too)."""
        self.waiting: Callable[[StreamKey], list[tuple[int, int]]] = lambda key: []
        """Per sensor boot, the sequence ranges of the raw batches this worker took and has not started writing yet
        (the consumer's carry, waiting for a turn): set by the consumer."""

    def awaiting_own_write(self, key: StreamKey, first: int, last: int) -> bool:
        """Whether every sample of ``first..last`` that this worker neither stored recently nor is writing is in a
        batch waiting here for its turn to be written, or in a write under way (read from there soon: nothing to
        ask the store for meanwhile)."""
        flight = [r for job in self._flight for r in job.ranges.get(key, ())] + self.waiting(key)
        if not flight:
            return False
        stream = self._live(key)
        # chunks outside first..last leave what is uncovered in it as it is: only those overlapping it are looked at
        held = (
            [] if stream is None else [(c.seq_first, c.seq_last) for c in stream.overlapping(first, last)] + stream.gaps
        )
        lacking = _uncovered(first, last, held)
        return bool(lacking) and not _uncovered_any(lacking, flight)

    def writing(self, key: StreamKey, first: int, last: int) -> bool:
        """Whether any sample of ``first..last`` is in a write of this worker under way or waiting for its turn."""
        ranges = [r for job in self._flight for r in job.ranges.get(key, ())] + self.waiting(key)
        return any(a <= last and first <= b for a, b in ranges)

    def stream(self, subject: str, placement: str, pos: env.SensorPosition) -> RecentStream | None:
        """For live windows: what this worker stored recently of the sensor boot a marker position names, and what
        it is writing (None: neither)."""
        return self._live((subject, placement, pos.serial, pos.boot_epoch))

    def _stored_stream(self, subject: str, placement: str, pos: env.SensorPosition) -> RecentStream | None:
        """The cache of the sensor boot a marker position names: what this worker stored (None: nothing recently)."""
        return self.streams.get((subject, placement, pos.serial, pos.boot_epoch))

    def _live(self, key: StreamKey) -> RecentStream | None:
        stored, flying = self.streams.get(key), self._in_flight.get(key)
        if flying is None or stored is None:
            return stored if flying is None else flying
        return stored.joined(flying)

    def store_batches(self, raw: list[tuple[Delivery, env.RawBatch]]) -> list[tuple[Delivery, env.RawBatch]]:
        """Store the turn's raw batches; returns those to acknowledge (stored now or before: a replay). Raises only
        when the store is unavailable (then nothing of the turn is acknowledged: it is retried); a batch that fails
        on its own is quarantined."""
        return self.finish_batches(self.start_batches(raw))

    def take(self, d: Delivery, batch: env.RawBatch) -> None:
        """A raw batch the consumer took and will write with a later turn: decoded now (raises MalformedMessage)
        and read by live windows from now on, as the samples of a write under way are (a window does not wait
        for the turn's gathering, nor for the writes ahead of it). `start_batches` writes it; a replay of a batch
        stored here is not decoded (it is skipped there)."""
        if (batch.subject, batch.msg_id) in self._stored:
            return
        samples = batch_samples(batch, d.topic)
        self._taken[d.token] = (batch, samples)
        if len(samples):
            self._in_flight.setdefault(stream_key(batch), RecentStream()).add(samples, self._keep)

    @property
    def taken(self) -> int:
        """Batches taken and not yet in a write (each goes when its turn comes)."""
        return len(self._taken)

    def start_batches(
        self, raw: list[tuple[Delivery, env.RawBatch]], background: Callable[[], None] | None = None
    ) -> RawWrite:
        """Decode the turn's raw batches (a malformed one is quarantined, a replay of one stored here skipped) and
        write them in one request: here, or, with ``background`` (called when the write is over), in a thread of
        its own while the caller goes on (the store is thread-safe; only the request runs there). Then
        `finish_batches`, on the caller's thread."""
        todo: list[tuple[Delivery, env.RawBatch, RawSamples]] = []
        quarantined = set()
        for d, batch in raw:
            taken = self._taken.pop(d.token, None)
            if (batch.subject, batch.msg_id) in self._stored:
                self.stats.replays_skipped += 1
                continue
            try:
                todo.append(
                    (d, batch, taken[1] if taken is not None and taken[0] is batch else batch_samples(batch, d.topic))
                )
            except MalformedMessage as exc:
                self.quarantine(d, exc, batch.subject)
                quarantined.add(d.token)
        job = RawWrite(raw, todo, quarantined=quarantined)
        for _, b, samples in todo:
            key = stream_key(b)
            job.ranges.setdefault(key, []).append((b.seq_first, b.seq_last))
            if len(samples):
                self._in_flight.setdefault(key, RecentStream()).add(samples, self._keep)
        self._flight.append(job)
        if not todo:
            job.done.set()
        elif background is None:
            job.attempt(self.store)
        else:
            threading.Thread(target=job.attempt, args=(self.store, background), daemon=True).start()
        return job

    def finish_batches(self, job: RawWrite) -> list[tuple[Delivery, env.RawBatch]]:
        """After `start_batches`' write is over: the batches the store kept, into the cache; the remaps they call
        for; the batches to acknowledge. Raises when the store is unavailable (nothing of the turn acknowledged);
        after another failure each batch is written on its own and the one that fails quarantined."""
        job.done.wait()
        if job in self._flight:
            self._flight.remove(job)
        self._landed(job)
        if job.error is not None:
            if store_unavailable(job.error):
                raise job.error
            todo = self._one_by_one(job.todo, job.error)
        elif job.report is not None:
            self.stats.quarantined += len(job.report.quarantined)
            todo = self._as_stored(job.todo, job.report)
        else:
            todo = []
        for _, batch, samples in todo:
            key = stream_key(batch)
            stream = self.streams.setdefault(key, RecentStream())
            if len(samples):  # every sample refused (time collision): only its gaps are cached
                stream.add(samples, self._keep)
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
        return [(d, batch) for d, batch in job.raw if (batch.subject, batch.msg_id) in self._stored]

    def _landed(self, job: RawWrite) -> None:
        """The job's samples are no longer in flight: stored (then in the cache), or to be written again."""
        for _, b, _ in job.todo:
            key = stream_key(b)
            flying = self._in_flight.get(key)
            if flying is None:
                continue
            flying.drop(b.seq_first)
            if not flying.chunks:
                del self._in_flight[key]

    def _one_by_one(
        self, todo: list[tuple[Delivery, env.RawBatch, RawSamples]], error: BaseException
    ) -> list[tuple[Delivery, env.RawBatch, RawSamples]]:
        """The turn's request failed with ``error``, another reason than the store being unavailable: one request
        per batch, quarantining each batch that fails on its own (a lone batch: with that error). Returns the
        batches stored."""
        if len(todo) == 1:
            self.quarantine(todo[0][0], error, todo[0][1].subject)
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
        return self._index_for(segment, self._stored_stream)

    def live_index_for(self, segment: Segment) -> Callable[[str, env.SensorPosition, int], RawIndex | None]:
        """`index_for` with the writes under way (`stream`): for live windows only."""
        return self._index_for(segment, self.stream)

    @staticmethod
    def _index_for(
        segment: Segment, stream_of: Callable[[str, str, env.SensorPosition], RecentStream | None]
    ) -> Callable[[str, env.SensorPosition, int], RawIndex | None]:
        def index_for(placement: str, pos: env.SensorPosition, first: int) -> RawIndex | None:
            stream = stream_of(segment.subject, placement, pos)
            return None if stream is None else stream.index(first, pos.seq)

        return index_for

    def series_for(self, segment: Segment) -> Callable[[str, env.SensorPosition, int], RawSeries | None]:
        def series_for(placement: str, pos: env.SensorPosition, first: int) -> RawSeries | None:
            # only when every sample is here or known missing: with several workers, batches another worker
            # stored are not (the segment would be read back short again and again, never from the store)
            stream = self._stored_stream(segment.subject, placement, pos)
            index = None if stream is None else stream.index(first, pos.seq)
            if stream is None or index is None or coverage(first, pos.seq, index)[0]:
                return None
            return stream.series(pos.serial, pos.boot_epoch, first, pos.seq)

        return series_for

    def here(self, segment: Segment) -> bool:
        """This worker itself stored, or is writing, every sample of a live window's last second (no query)."""
        for placement, pos in segment.positions.items():
            stream = self.stream(segment.subject, placement, pos)
            index = None if stream is None else stream.index(pos.seq - 99, pos.seq)
            if index is None or coverage(pos.seq - 99, pos.seq, index)[0]:
                return False
        return True
