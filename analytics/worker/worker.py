"""The analytics worker's consumer: MQTT deliveries in, durable raw data and results out, acks last.

One thread does the work (`Worker.run` / `Worker.step`); paho's thread only enqueues (`link.PahoWorkerLink`).
Per turn, in this order:

1. **admit** every delivery: its payload is untrusted bytes. Its subject's budget (`budget.SubjectBudgets`:
   payload bytes, charged from the topic alone, then work once the envelope is read) is checked first; past it,
   the delivery is *shed*: acknowledged to the broker (so the messages queued behind it, other subjects' among
   them, come in) without being stored or acknowledged end to end (the gateway's outbox re-sends it). Then it
   is **decoded** (`decode.decode_message`, bounded: any failure is a MalformedMessage); a malformed payload is
   quarantined once (kept with its topic in the worker quarantine, capped per subject; a copy seen again is
   only counted), counted, logged (one line per subject per ``log_every_s``), and its delivery acknowledged
   to the broker so it is not redelivered forever; the worker keeps going. Admitted deliveries wait in the
   *carry*; each turn takes from it round-robin across subjects, up to ``turn_max_work`` (the rest waits for
   the next turn), so one subject's backlog never makes another's wait for more than a turn;
2. **store raw batches**: every raw batch of the turn in one `Store.write_raw_many` (idempotent and durable on
   return; one request instead of one per batch); if that fails for another reason than the store being
   unavailable, each batch is written on its own and the one that fails is quarantined, so one bad batch never
   holds back the others. A batch whose (subject, ``msg_id``) this worker already stored is not
   written again (a replay; the store would overwrite the same points anyway: samples are keyed by subject,
   placement and the timestamp computed from the sample's sensor ticks and the batch's own clock mapping, so
   replays and other workers land on the same points). A sample the store refuses because its point holds
   another sample (a gateway's mapping moved back) is quarantined and recorded as a gap by the store; its batch
   is acknowledged and the cache keeps what was stored. A sensor boot epoch first seen with a synchronised
   clock gets `Store.remap_raw` (moves any sensor-time points stored while the gateway clock was
   unsynchronised); **gaps** are recorded (`Store.write_gap`). The worker also keeps, per sensor boot, the
   last ``recent_s`` seconds of what *it* stored (samples, batch ranges, gaps): a cache that lets live windows
   be checked and read without a query; whatever it lacks (another worker stored it) is read from the store;
3. **acknowledge**: once the writes returned, the end-to-end ``ack`` (per subject, the stored msg_ids) is
   published to the gateway and then the broker's PUBACK is sent. If the store is unavailable
   (`StoreUnavailable`: overload or outage, after the store's own retries) nothing is acknowledged and
   the delivery is retried with backoff: Mosquitto stops sending after ``max_inflight_messages``
   unacknowledged deliveries, the gateway's outbox keeps everything else;
4. **segments**: a `window`, `set_end` or `session_end` marker becomes a `segments.Segment`, analysed once every
   sample it names is stored or known missing (a recorded gap: then analysed across it, flagged ``data_gap``
   naming the gap); polled every ``poll_s`` for up to ``segment_wait_s``; then *deferred*: the broker delivery
   is acknowledged, the analysis retried with backoff for up to ``defer_for_s``; the gateway's outbox re-sends
   the marker while it stays unacknowledged end to end, so a worker restart loses no segment. Samples still in
   sensor time (gateway clock not synchronised) defer the segment the same way until a synchronised mapping of
   the boot arrives and `Store.remap_raw` moved them: never dropped. A segment is never analysed with an
   unexplained hole. Bounded per subject: at most ``max_held_markers_per_subject`` waiting markers keep their
   broker delivery unacknowledged (more are acknowledged at once: each held one takes one of the broker's
   in-flight slots, which every subject shares), and at most ``max_pending_per_subject`` segments wait (more
   are shed: the gateway re-sends them).

Live windows: each window analyses only the samples since this worker's previous window of the subject plus
``live_context_s`` of context, and appends the strides ending in that new part to the *provisional*
measurements (`Store.write_live`: no delete, never touching final results); a window marker arriving while an
older one of the same subject still waits replaces it (under load, windows coalesce instead of queueing). The
session's final analysis replaces the session's final results and removes its provisional ones, and the worker
that ran it removes them once more ``live_sweep_after_s`` later (a late window of another worker).

Times: seconds of `time.monotonic` unless named ``_utc_s``.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
from collections import OrderedDict, defaultdict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from analytics.errors import InsufficientData
from analytics.stores import Store
from analytics.stores.errors import StoreUnavailable
from analytics.stores.model import (
    STRIDE_LIVE,
    GapRecord,
    RawIndex,
    RawSamples,
    RawSeries,
    SessionResults,
    WriteReport,
)
from analytics.stores.quarantine import Quarantine
from analytics.worker.budget import (
    WORK_PER_GAP,
    WORK_PER_MALFORMED,
    WORK_PER_MARKER,
    BudgetConfig,
    LogLimiter,
    SubjectBudgets,
)
from analytics.worker.decode import batch_samples, decode_message, topic_subject
from analytics.worker.errors import MalformedMessage, SegmentIncomplete, Verdict, backoff_s, sort_failure
from analytics.worker.idle_sessions import IdleClose, IdleSessions
from analytics.worker.link import Delivery, WorkerLink
from analytics.worker.segments import (
    FINAL_VERSION,
    LIVE_VERSION,
    Analyzer,
    ClockNotSynced,
    Segment,
    algorithm_name,
    check_complete,
    coverage,
    default_analyzer,
    load_segment,
    segment_results,
)
from sensor_gateway.mqtt.client import Connected, Disconnected
from sensor_gateway.uplink import envelope as env
from sensor_gateway.uplink.topics import topic, worker_subscriptions

log = logging.getLogger("gaitsym.worker")
LIVE_OVERLAP_S = 1.0
"""A window also looks for strides ending up to this long before its new part (detected late)."""
LIVE_SAME_STRIDE_US = 150_000


@dataclass(frozen=True)
class WorkerConfig:
    worker_id: str = "worker-1"
    group: str = "gaitsym-workers"
    segment_wait_s: float = 10.0
    """How long a closing marker waits for its samples to be stored before it is deferred, s."""
    defer_for_s: float = 600.0
    """How long a deferred segment is retried before it is left to the gateway's re-send, s."""
    poll_s: float = 0.1
    """Interval between completeness checks of a waiting segment, s."""
    lookback_s: Mapping[str, float | None] = field(
        default_factory=lambda: {"window": 8.0, "set": 240.0, "session": None}
    )
    """Seconds of data each segment kind analyses (None: the whole session); for windows, the context added
    before the part no earlier window of this worker covered."""
    live_new_default_s: float = 2.0
    """New part of a window when this worker analysed no earlier window of the subject, s."""
    live_new_max_s: float = 20.0
    """Longest new part a coalesced window analyses, s (more is left to the final analysis)."""
    turn_budget_s: float = 1.0
    """Analysis time per turn before the worker goes back to storing and acknowledging raw data, s (session
    ends first, then set ends, then live windows; what is left waits for the next turn, windows coalescing)."""
    recent_s: float = 30.0
    """Seconds of its own stored samples per sensor boot the worker keeps in memory (a cache, about 2 MB per
    subject); a boot that sent nothing for that long is forgotten."""
    live_segments: bool = True
    """Analyse window and set markers while the session runs (provisional results, version 1, replaced by the
    session's final analysis); False: session ends only. (Once off by default: on InfluxDB 1.6.7 the repeated
    delete-then-write hid re-written strides from the index; fixed in `analytics.stores.influx` by anchor
    points, see its ``ANCHOR_US`` and docs/influxdb-index-loss.md.)"""
    live_sweep_after_s: float = 30.0
    """After a session's final analysis, its range's provisional points are removed once more this much later:
    a live window of another worker that was still being analysed may have written them after the final
    analysis (best effort: a sweep is not persisted across a restart). A window that was deferred checks the
    store for the session's final results before writing instead."""
    dedup_capacity: int = 200_000
    """(subject, msg_id) of stored batches remembered to skip replays (a cache: correctness never depends on it).
    The subject is part of the identity: two kits may share serials (two virtual kits, or a kit handed from one
    patient to the next), and one subject's batches must never pass for another's replays."""
    quarantine_path: str | None = None
    idle_close: IdleClose | None = field(default_factory=IdleClose)
    """Final analysis of sessions that never get a ``session_end`` (`idle_sessions`); None: off."""
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    """Per-subject token buckets (payload bytes, work) past which deliveries are shed (`budget`)."""
    turn_max_work: int = 20_000
    """Work units (samples; gaps and markers count as several, `budget`) taken from the carry per turn, round
    robin across subjects (at least one delivery): bounds a turn's store write to about 0.1-0.3 s, so a subject's
    backlog delays another subject's batch by a turn at most."""
    turn_max_work_per_subject: int = 4_096
    """One subject's share of a turn (at least one delivery; 4,096 is the largest raw batch): a subject with a
    backlog adds at most one large batch to the turn's write, which every other subject's batches wait for."""
    max_held_markers_per_subject: int = 8
    max_pending_per_subject: int = 64
    log_every_s: float = 10.0
    """At most one log line per subject and kind of event (malformed, shed, gap) this often; the others counted."""


@dataclass
class WorkerStats:
    deliveries: int = 0
    batches_stored: int = 0
    samples_stored: int = 0
    replays_skipped: int = 0
    gaps: int = 0
    malformed: int = 0
    """Malformed deliveries (each quarantined once: see ``malformed_repeats``)."""
    malformed_repeats: int = 0
    """Malformed deliveries identical to one already quarantined (acknowledged, not written again)."""
    shed: int = 0
    """Deliveries acknowledged to the broker without being stored (their subject past its budget, or too many
    of its segments waiting): the gateway re-sends them."""
    quarantined: int = 0
    store_retries: int = 0
    segments_analysed: int = 0
    segments_empty: int = 0
    segments_deferred: int = 0
    segments_superseded: int = 0
    segments_unsynced: int = 0
    windows_coalesced: int = 0
    acks_sent: int = 0
    analysis_cpu_s: float = 0.0
    """CPU time of this thread in the analyses (`analyzer_for`), s: benches tell the worker's own cost from the
    pipeline's (whose share depends on how many live windows coalesce under load)."""


StreamKey = tuple[str, str, str, int]
"""subject, placement, serial, boot_epoch"""


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
class _Stream:
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


@dataclass
class _Pending:
    segment: Segment
    token: tuple[int, int] | None
    first_s: float
    due_s: float
    attempts: int = 0
    deferred: int = 0
    """Retries since the segment was deferred (0: not deferred)."""


@dataclass(frozen=True, slots=True)
class _Admitted:
    """A delivery within its subject's budget, decoded, waiting in the carry for a turn."""

    delivery: Delivery
    message: env.Message
    subject: str
    work: int


class Worker:
    """See the module docstring. ``analyzer_for(kind)`` returns the analysis of a segment kind."""

    def __init__(
        self,
        config: WorkerConfig,
        link: WorkerLink,
        store: Store,
        analyzer_for: Callable[[str], Analyzer] = default_analyzer,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.link = link
        self.store = store
        self.analyzer_for = analyzer_for
        self.clock = clock
        self.stats = WorkerStats()
        self.algorithm = algorithm_name()
        self._stored: OrderedDict[tuple[str, str], None] = OrderedDict()
        """(subject, msg_id) of the batches this worker stored (replays are skipped)."""
        self._carry: list[_Admitted] = []
        """Admitted deliveries not yet handled (a turn's leftovers, or kept while the store is unavailable)."""
        self._retry_at = 0.0
        """No turn before this (after a failure: backoff)."""
        self.budgets = SubjectBudgets(config.budget)
        self._log_limiter = LogLimiter(config.log_every_s)
        self._quarantined: OrderedDict[bytes, None] = OrderedDict()
        """Digests of the malformed payloads quarantined recently: a copy seen again is not written again."""
        self.shed_by_subject: dict[str, int] = defaultdict(int)
        """Deliveries shed per subject (for operators and tests; forgotten past 10,000 subjects)."""
        self._settled: set[tuple[int, int]] = set()
        """Deliveries of this turn already acknowledged (quarantined): a retried turn leaves them out."""
        self._retry_attempt = 0
        self._pending: list[_Pending] = []
        self._acks: dict[str, list[str]] = defaultdict(list)
        self._streams: dict[StreamKey, _Stream] = {}
        self._synced: dict[StreamKey, env.ClockMapping] = {}
        self._finals: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._sweeps: list[tuple[float, str, int, int]] = []
        """(due, subject, start_us, end_us): live points to remove again after a final analysis."""
        self._pruned_s = 0.0
        self._live_written: dict[tuple[str, str], deque[tuple[str, int]]] = {}
        path = config.quarantine_path
        if path is None:
            from analytics.stores.paths import state_dir

            path = str(state_dir() / f"worker-quarantine-{config.worker_id}.sqlite")
        self.quarantine = Quarantine(Path(path))
        self.on_segment: Callable[[Segment, int], None] | None = None
        """Hook called after a segment's results are stored (segment, points written): benches, demo."""
        self.idle_sessions = None
        if config.idle_close is not None:
            session = analyzer_for  # the same analysis as a session_end's
            self.idle_sessions = IdleSessions(
                store, config.idle_close, lambda: session("session"), self.algorithm, clock
            )

    # ------------------------------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.link.connect(worker_subscriptions(self.config.group))

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.step(timeout_s=0.2)

    def close(self) -> None:
        log.info("%s: stopping; %s", self.config.worker_id, self.stats)
        self.link.close()
        self.store.close()
        self.quarantine.close()

    @property
    def busy(self) -> bool:
        """True while deliveries wait for a turn or a retry, or segments for their samples."""
        return bool(self._carry or self._pending)

    # ------------------------------------------------------------------------------------------ one turn

    def step(self, timeout_s: float = 0.2) -> None:
        now = self.clock()
        wait = timeout_s
        if self._pending:
            wait = min(wait, max(0.0, min(p.due_s for p in self._pending) - now))
        if self._carry:
            wait = min(wait, max(0.0, self._retry_at - now))
        deliveries: list[Delivery] = []
        for event in self.link.wait(wait):
            if isinstance(event, Delivery):
                deliveries.append(event)
            elif isinstance(event, Connected):
                log.info("%s: MQTT connected (session present: %s)", self.config.worker_id, event.session_present)
            elif isinstance(event, Disconnected):
                log.warning("%s: MQTT disconnected: %s", self.config.worker_id, event.reason)
        self.stats.deliveries += len(deliveries)
        self._admit(deliveries)
        if self._carry and self.clock() >= self._retry_at:
            self._handle()
        self._flush_acks()
        self._segments()
        self._flush_acks()
        self._sweep()
        if self.idle_sessions is not None:
            self.idle_sessions.step()

    def _sweep(self) -> None:
        """Remove provisional points written into finalised sessions after their final analysis (see
        ``WorkerConfig.live_sweep_after_s``); an unavailable store is tried again at the next turn."""
        now = self.clock()
        keep = []
        for due, subject, start_us, end_us in self._sweeps:
            if due > now:
                keep.append((due, subject, start_us, end_us))
                continue
            try:
                self.store.delete_live(subject, start_us, end_us)
            except StoreUnavailable as exc:
                log.warning("%s: live sweep of %s postponed: %s", self.config.worker_id, subject, exc)
                keep.append((now + self.config.poll_s * 10, subject, start_us, end_us))
        self._sweeps = keep

    def _admit(self, deliveries: list[Delivery]) -> None:
        """Budget, then decode: each delivery is shed, quarantined or added to the carry (module docstring, 1)."""
        if not deliveries:
            return
        now = self.clock()
        self.budgets.forget_idle(now)
        for d in deliveries:
            subject = topic_subject(d.topic)
            if not d.token[1]:
                # packet id 0: published at QoS 0, which no gateway does (the uplink is QoS 1) and which escapes
                # the broker's in-flight limit; dropped unread, never acknowledged (a PUBACK of packet id 0 is a
                # protocol error: the broker would disconnect this worker, every subject with it)
                self._count_shed(subject)
                self._log_limited(subject, "qos0", "dropped a QoS 0 delivery on %s (uplink is QoS 1)", d.topic[:200])
                continue
            if not self.budgets.take_bytes(subject, len(d.payload), now):
                self._shed(d, subject, "payload bytes")
                continue
            try:
                message = decode_message(d.topic, d.payload)
            except Exception as exc:  # decode_message raises only MalformedMessage; a bug is bad input too here
                if not self.budgets.take_work(subject, WORK_PER_MALFORMED, now):
                    self._shed(d, subject, "work")
                    continue
                self._quarantine(d, exc, subject)
                continue
            if isinstance(message, env.RawBatch):
                work = message.n_samples
            elif isinstance(message, env.Gap):
                work = WORK_PER_GAP
            else:
                work = WORK_PER_MARKER
            if not self.budgets.take_work(subject, work, now):
                self._shed(d, subject, "work")
                continue
            self._carry.append(_Admitted(d, message, subject, work))

    def _take_turn(self) -> list[_Admitted]:
        """This turn's share of the carry: round robin across subjects, each subject's deliveries in order, until
        ``turn_max_work`` in all or ``turn_max_work_per_subject`` for a subject (at least one delivery of each);
        the rest stays in the carry for the next turn."""
        queues: dict[str, deque[_Admitted]] = {}
        for a in self._carry:
            queues.setdefault(a.subject, deque()).append(a)
        turn: list[_Admitted] = []
        work = 0
        spent: dict[str, int] = defaultdict(int)
        left: dict[str, deque[_Admitted]] = {}
        while queues and (not turn or work < self.config.turn_max_work):
            for subject in list(queues):
                if turn and work >= self.config.turn_max_work:
                    break
                queue = queues[subject]
                a = queue.popleft()
                turn.append(a)
                work += a.work
                spent[subject] += a.work
                if queue and spent[subject] >= self.config.turn_max_work_per_subject:
                    left[subject] = queue  # its share of this turn is taken
                if not queue or subject in left:
                    del queues[subject]
        self._carry = [a for queue in (*left.values(), *queues.values()) for a in queue]
        return turn

    def _handle(self) -> None:
        turn = self._take_turn()
        self._settled.clear()
        raw = [(a.delivery, a.message) for a in turn if isinstance(a.message, env.RawBatch)]
        others = [a for a in turn if not isinstance(a.message, env.RawBatch)]
        try:
            self._store_batches(raw)  # type: ignore[arg-type]
        except Exception as exc:  # only the store being unavailable comes out of it: keep the turn
            self._failed(exc, [a for a in turn if a.delivery.token not in self._settled])
            return
        for i, a in enumerate(others):
            try:
                self._handle_one(a.delivery, a.message)
            except Exception as exc:
                if _store_unavailable(exc):
                    self._failed(exc, others[i:])
                    return
                self._quarantine(a.delivery, exc, a.subject)  # this message's own failure: it alone is set aside
        self._retry_attempt = 0

    def _failed(self, exc: BaseException, keep: list[_Admitted]) -> None:
        """The store is unavailable: keep these deliveries unacknowledged (first in the carry), retry with backoff."""
        self._retry_attempt += 1
        delay = backoff_s(self._retry_attempt) * (1.0 + 0.2 * random.random())
        if isinstance(exc, StoreUnavailable):
            # refused connection: the store already polled for its retry_for_s; a long backoff here would only
            # delay the first write after the server is back
            delay = exc.retry_after_s if exc.refused else max(delay, exc.retry_after_s)
        self._carry = list(keep) + self._carry
        self._retry_at = self.clock() + delay
        self.stats.store_retries += 1
        log.warning(
            "%s: %s; %d deliveries kept unacknowledged, retry %d in %.1f s",
            self.config.worker_id,
            exc,
            len(self._carry),
            self._retry_attempt,
            delay,
        )
        if not isinstance(exc, StoreUnavailable | OSError | TimeoutError):
            log.exception("unexpected failure (kept for retry)", exc_info=exc)

    def _count_shed(self, subject: str) -> None:
        self.stats.shed += 1
        if len(self.shed_by_subject) > 10_000:
            self.shed_by_subject.clear()
        self.shed_by_subject[subject] += 1

    def _shed(self, d: Delivery, subject: str, what: str) -> None:
        """Acknowledge a delivery to the broker without storing it: the gateway's outbox re-sends it (no end-to-end
        ack), and the deliveries queued behind it at the broker come in."""
        self._count_shed(subject)
        self.link.ack(d.token)
        self._log_limited(
            subject,
            "shed",
            "past its budget (%s): deliveries shed, its gateway re-sends them (%d shed in all)",
            what,
            self.stats.shed,
        )

    def _handle_one(self, d: Delivery, message: env.Message) -> None:
        if isinstance(message, env.Gap):
            self.stats.gaps += 1
            self._log_limited(
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
            key = (message.subject, message.placement, message.serial, message.boot_epoch)
            self._streams.setdefault(key, _Stream()).gaps.append((message.seq_first_missing, message.seq_last_missing))
            self._acks[message.subject].append(message.msg_id)
            self.link.ack(d.token)
        elif isinstance(message, env.Marker):
            segment = Segment.from_marker(message, self.config.lookback_s)
            if segment is None or (not segment.final and not self.config.live_segments):
                self._acks[message.subject].append(message.msg_id)
                self.link.ack(d.token)
                return
            mine = [p for p in self._pending if p.segment.subject == segment.subject]
            if any(p.segment.marker_id == segment.marker_id for p in mine):
                self.link.ack(d.token)  # a replay of a segment already waiting here
                return
            if len(mine) >= self.config.max_pending_per_subject:
                self._shed(d, segment.subject, f"{len(mine)} segments waiting")
                return
            token: tuple[int, int] | None = d.token
            if sum(p.token is not None for p in mine) >= self.config.max_held_markers_per_subject:
                self.link.ack(d.token)  # the broker's in-flight slots are shared by every subject; the gateway re-sends
                token = None
            now = self.clock()
            self._pending.append(_Pending(segment, token, now, now))
        else:
            raise MalformedMessage(d.topic, f"{message.kind!r} is not a message a worker reads")

    def _coalesce_windows(self) -> None:
        """Of a subject's waiting windows, the newest one whose samples are all here covers the older ones
        (its new part starts where this worker's previous window ended): they are done without an analysis.
        So a worker that fell behind analyses each subject once per turn instead of queueing, and a window
        still waiting for its last batch is never overtaken by a newer one (that would starve both)."""
        groups: dict[tuple[str, str], list[_Pending]] = defaultdict(list)
        for p in self._pending:
            if p.segment.kind == "window":
                groups[(p.segment.subject, p.segment.session)].append(p)
        for group in groups.values():
            if len(group) < 2:
                continue
            group.sort(key=lambda p: sum(pos.seq for pos in p.segment.positions.values()))
            for i in range(len(group) - 1, 0, -1):
                if self._here(group[i].segment):
                    for old in group[:i]:
                        self._pending.remove(old)
                        self._done(old)
                        self.stats.windows_coalesced += 1
                    break

    def _here(self, segment: Segment) -> bool:
        """This worker itself stored every sample of the segment's last second (no query)."""
        for placement, pos in segment.positions.items():
            stream = self._streams.get((segment.subject, placement, pos.serial, pos.boot_epoch))
            index = None if stream is None else stream.index(pos.seq - 99, pos.seq)
            if index is None or coverage(pos.seq - 99, pos.seq, index)[0]:
                return False
        return True

    def _store_batches(self, raw: list[tuple[Delivery, env.RawBatch]]) -> None:
        """Store the turn's raw batches; raises only when the store is unavailable (then nothing of the turn is
        acknowledged: it is retried); a batch that fails on its own is quarantined."""
        todo: list[tuple[Delivery, env.RawBatch, RawSamples]] = []
        for d, batch in raw:
            if (batch.subject, batch.msg_id) in self._stored:
                self.stats.replays_skipped += 1
                continue
            try:
                todo.append((d, batch, batch_samples(batch, d.topic)))
            except MalformedMessage as exc:
                self._quarantine(d, exc, batch.subject)
        todo = self._write_raw(todo)
        keep = round(self.config.recent_s * 100)
        for _, batch, samples in todo:
            key = (batch.subject, batch.placement, batch.sensor.serial, batch.sensor.boot_epoch)
            stream = self._streams.setdefault(key, _Stream())
            if len(samples):  # every sample refused (time collision): only its gaps are cached
                stream.add(samples, keep)
            stream.touched_s = self.clock()
            self._stored[(batch.subject, batch.msg_id)] = None
            if len(self._stored) > self.config.dedup_capacity:
                self._stored.popitem(last=False)
            self.stats.batches_stored += 1
            self.stats.samples_stored += len(samples)
        for _, batch, _ in todo:
            key = (batch.subject, batch.placement, batch.sensor.serial, batch.sensor.boot_epoch)
            clock = batch.clock if batch.clock.utc_synced and batch.clock.ref_utc_s is not None else None
            try:
                if clock is not None and key not in self._synced:
                    self._remap(key, clock)
                    self._synced[key] = clock  # only once moved: a failed move is tried again with the next batch
                elif clock is None and key in self._synced:  # sensor-time data after the mapping became known
                    self._remap(key, self._synced[key])
            except Exception as exc:
                if _store_unavailable(exc):
                    raise
                self._log_limited(batch.subject, "remap", "moving %s/%d to UTC failed: %s", key[2], key[3], exc)
        for d, batch in raw:
            if (batch.subject, batch.msg_id) in self._stored:
                self._acks[batch.subject].append(batch.msg_id)
                self.link.ack(d.token)

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
            if _store_unavailable(exc):
                raise
            if len(todo) == 1:
                self._quarantine(todo[0][0], exc, todo[0][1].subject)
                return []
        stored = []
        for item in todo:
            try:
                report = self.store.write_raw_many([item[2]])
            except Exception as exc:
                if _store_unavailable(exc):
                    raise
                self._quarantine(item[0], exc, item[1].subject)
                continue
            self.stats.quarantined += len(report.quarantined)
            stored.extend(self._as_stored([item], report))
        return stored

    def _as_stored(
        self, todo: list[tuple[Delivery, env.RawBatch, RawSamples]], report: WriteReport
    ) -> list[tuple[Delivery, env.RawBatch, RawSamples]]:
        """The batches as the store kept them: samples it refused (their point held another sample; quarantined
        and recorded as gaps by the store) are left out, their gaps known to the cache; samples it already held at
        another time (a replay whose clock mapping moved: the stored copy wins) are left out too, so the cache
        never holds times the store does not. The batches are still acknowledged: a replay would be refused or
        skipped the same way."""
        if not report.collisions and not report.moved:
            return todo
        for g in report.gaps:
            key = (g.subject, g.placement, g.serial, g.boot_epoch)
            self._streams.setdefault(key, _Stream()).gaps.append((g.seq_first, g.seq_last))
        refused = {(c.subject, c.placement, *c.refused) for c in report.collisions}
        for m in report.moved:
            refused.update((m.subject, m.placement, m.serial, m.boot_epoch, q) for q in m.seq)
            self._log_limited(
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
            ids = (samples.subject, samples.placement, samples.serial, samples.boot_epoch)
            kept = np.array([(*ids, q) not in refused for q in samples.seq.tolist()], dtype=bool)
            out.append((d, batch, samples if kept.all() else samples.take(kept)))
        return out

    def _log_limited(self, subject: str, kind: str, message: str, *args: object, level: int = logging.WARNING) -> None:
        """A log line about one subject, at most one per ``log_every_s`` for each kind of event."""
        held = self._log_limiter.allow((subject, kind), self.clock())
        if held is not None:
            suffix = f" ({held} more since the last line)" if held else ""
            log.log(level, "%s: %s: " + message + suffix, self.config.worker_id, subject, *args)

    def _remap(self, key: StreamKey, clock: env.ClockMapping) -> None:
        moved = self.store.remap_raw(*key, clock)
        if moved:
            log.info("%s: %d sensor-time samples of %s/%d moved to UTC", key[0], moved, key[2], key[3])
            self._streams.pop(key, None)  # their cached times were sensor time
            now = self.clock()
            for p in self._pending:  # segments waiting for UTC: try again now
                if p.segment.subject == key[0]:
                    p.due_s = min(p.due_s, now)

    def _index_for(self, segment: Segment) -> Callable[[str, env.SensorPosition, int], RawIndex | None]:
        def index_for(placement: str, pos: env.SensorPosition, first: int) -> RawIndex | None:
            stream = self._streams.get((segment.subject, placement, pos.serial, pos.boot_epoch))
            return None if stream is None else stream.index(first, pos.seq)

        return index_for

    def _series_for(self, segment: Segment) -> Callable[[str, env.SensorPosition, int], RawSeries | None]:
        def series_for(placement: str, pos: env.SensorPosition, first: int) -> RawSeries | None:
            stream = self._streams.get((segment.subject, placement, pos.serial, pos.boot_epoch))
            return None if stream is None else stream.series(pos.serial, pos.boot_epoch, first, pos.seq)

        return series_for

    def _quarantine(self, d: Delivery, exc: BaseException, subject: str) -> None:
        """Keep a malformed delivery aside (once: a copy seen again is only counted), log it (limited per
        subject), acknowledge it to the broker so it is never redelivered; no end-to-end ack (it never becomes
        good)."""
        self.stats.malformed += 1
        self._settled.add(d.token)
        digest = hashlib.blake2b(d.topic.encode("utf-8", errors="replace") + b"\0" + d.payload, digest_size=16)
        key = digest.digest()
        if key in self._quarantined:
            self.stats.malformed_repeats += 1
            self._quarantined.move_to_end(key)
        else:
            text = d.payload[: env.MAX_PAYLOAD_BYTES].decode("utf-8", errors="replace")
            what = f"mqtt topic={d.topic[:200]}"
            try:
                self.quarantine.put(what, None, "malformed message", str(exc)[:4000], [text], subject, log_line=False)
            except Exception as failure:  # no room to keep a copy: the message is still bad data, never retried
                self._log_limited(subject, "quarantine", "could not keep a malformed message aside: %s", failure)
            self._quarantined[key] = None
            if len(self._quarantined) > 10_000:
                self._quarantined.popitem(last=False)
        self._log_limited(
            subject,
            "malformed",
            "quarantined a malformed message on %s: %s (%d malformed in all)",
            d.topic[:200],
            str(exc)[:500],
            self.stats.malformed,
        )
        self.link.ack(d.token)

    def _flush_acks(self) -> None:
        """Publish the end-to-end acks, per subject, in messages well under the payload limit."""
        budget = env.MAX_PAYLOAD_BYTES // 2
        for subject, ids in self._acks.items():
            chunk: list[str] = []
            size = 0
            for i, msg_id in enumerate(ids):
                chunk.append(msg_id)
                size += len(msg_id) + 3
                if len(chunk) < 500 and size < budget and i < len(ids) - 1:
                    continue
                ack = env.Ack("ack", subject, tuple(chunk), self.config.worker_id)
                if self.link.publish(topic(subject, "ack"), env.encode(ack)):
                    self.stats.acks_sent += 1
                chunk, size = [], 0
        self._acks.clear()

    # ------------------------------------------------------------------------------------------ segments

    def _prune(self) -> None:
        """Forget the cache of sensor boots that sent nothing for ``recent_s`` (sessions ended, sensors off)."""
        now = self.clock()
        if now - self._pruned_s < self.config.recent_s:
            return
        self._pruned_s = now
        for key in [k for k, st in self._streams.items() if now - st.touched_s > self.config.recent_s]:
            del self._streams[key]

    def _segments(self) -> None:
        self._prune()
        self._coalesce_windows()
        now = self.clock()
        keep: list[_Pending] = []
        rank = {"session": 0, "set": 1, "window": 2}
        for p in sorted(self._pending, key=lambda p: (rank.get(p.segment.kind, 3), p.due_s)):
            if p.due_s > now or self.clock() - now > self.config.turn_budget_s:
                keep.append(p)  # not due, or this turn's analysis time is spent: raw data goes first
                continue
            try:
                self._analyse(p)
            except Exception as exc:
                verdict = sort_failure(exc)
                if verdict is Verdict.QUARANTINE:
                    log.warning("%s: segment %s dropped: %s", self.config.worker_id, p.segment.marker_id, exc)
                    self._done(p)
                    continue
                p.attempts += 1
                waited = self.clock() - p.first_s
                if verdict is Verdict.DEFER and waited < self.config.segment_wait_s:
                    p.due_s = self.clock() + self.config.poll_s
                elif waited >= self.config.defer_for_s:
                    log.error(
                        "%s: segment %s still incomplete after %.0f s (%s): left to the gateway's re-send",
                        self.config.worker_id,
                        p.segment.marker_id,
                        waited,
                        exc,
                    )
                    continue
                else:
                    if not p.deferred:
                        self.stats.segments_deferred += 1
                        log.warning("%s: segment %s deferred: %s", self.config.worker_id, p.segment.marker_id, exc)
                        if p.token is not None:
                            self.link.ack(p.token)  # the broker may forget it: the gateway re-sends it
                            p.token = None
                    p.deferred += 1
                    p.due_s = self.clock() + backoff_s(p.deferred, base_s=1.0, max_s=30.0)
                keep.append(p)
                continue
            self._done(p)
        self._pending = keep

    def _done(self, p: _Pending) -> None:
        self._acks[p.segment.subject].append(p.segment.marker_id)
        if p.token is not None:
            self.link.ack(p.token)

    def _already_stored(self, segment: Segment, analysis_id: object) -> bool:
        """True when the session's final results are stored and this segment would not change them: a replay of
        the session end (same analysis id) or a live segment arriving after the end."""
        if not segment.final:
            return (segment.subject, segment.session) in self._finals
        for row in self.store.read_results(segment.subject, session=segment.session):
            if row.measurement != "session_summary":
                continue
            version = int(row.fields.get("result_version", 0))  # type: ignore[call-overload]
            if version >= FINAL_VERSION and row.fields.get("analysis_id") == analysis_id:
                return True
        return False

    def _final_stored(self, subject: str, session: str) -> bool:
        """The session's final results are in the store (written by any worker)."""
        return any(
            r.measurement == "session_summary" and int(r.fields.get("result_version", 0)) >= FINAL_VERSION  # type: ignore[call-overload]
            for r in self.store.read_results(subject, session=session)
        )

    def _new_live_points(self, results: SessionResults) -> SessionResults:
        """Drop provisional strides this worker already wrote (the same stride seen again by an overlapping window:
        same side, start within ``LIVE_SAME_STRIDE_US``): each stride is written once, at its first detection."""
        written = self._live_written.setdefault((results.subject, results.session), deque(maxlen=200))
        keep = []
        for p in results.points:
            if p.measurement == STRIDE_LIVE:
                side = dict(p.tags).get("side", "")
                if any(s == side and abs(t - p.time_us) < LIVE_SAME_STRIDE_US for s, t in written):
                    continue
                written.append((side, p.time_us))
            keep.append(p)
        return replace(results, points=tuple(keep))

    def _window_span(self, segment: Segment) -> tuple[Segment, float]:
        """A live window: the new part since this worker's previous window of the subject, plus context."""
        news = []
        for placement, pos in segment.positions.items():
            stream = self._streams.get((segment.subject, placement, pos.serial, pos.boot_epoch))
            if stream is not None and stream.last_window_seq is not None and stream.last_window_seq < pos.seq:
                news.append((pos.seq - stream.last_window_seq) / 100.0)
        new_s = min(max(news), self.config.live_new_max_s) if news else self.config.live_new_default_s
        context = segment.lookback_s or 0.0
        return replace(segment, lookback_s=context + new_s), new_s

    def _analyse(self, p: _Pending) -> None:
        segment = p.segment
        if not segment.final and (segment.subject, segment.session) in self._finals:
            self.stats.segments_superseded += 1
            return
        if not segment.final and p.deferred and self._final_stored(segment.subject, segment.session):
            self._finals[(segment.subject, segment.session)] = None  # another worker finished the session
            self.stats.segments_superseded += 1
            return
        new_s = 0.0
        if segment.kind == "window":
            segment, new_s = self._window_span(segment)
        known = check_complete(self.store, segment, index_for=self._index_for(segment))
        try:
            loaded = load_segment(
                self.store,
                segment,
                first_seq={pl: lo for pl, (lo, _) in known.items()},
                series_for=None if segment.final else self._series_for(segment),
                known_missing={pl: missing for pl, (_, missing) in known.items()},
            )
        except ClockNotSynced as exc:
            if not p.attempts:
                self.stats.segments_unsynced += 1
                log.info("%s: %s waits: %s", self.config.worker_id, segment.marker_id, exc)
            raise
        if loaded is None:
            self.stats.segments_empty += 1
            return
        cpu0 = time.thread_time()
        try:
            doc = self.analyzer_for(segment.kind)(loaded.recording)
        except InsufficientData as exc:
            log.info("%s %s: no results for this %s: %s", segment.subject, segment.session, segment.kind, exc)
            self.stats.segments_empty += 1
            return
        finally:
            self.stats.analysis_cpu_s += time.thread_time() - cpu0
        version = FINAL_VERSION if segment.final else LIVE_VERSION
        gaps = {pl: missing for pl, (_, missing) in known.items() if missing}
        # strides ending in the new part, and in the second before it (detected only now: the same stride of an
        # earlier window lands on the same timestamp, the grid being whole sample periods, and overwrites)
        new_from_us = loaded.end_us - round((new_s + LIVE_OVERLAP_S) * 1e6) if segment.kind == "window" else None
        results = segment_results(segment, loaded, doc, version, self.algorithm, gaps=gaps, new_from_us=new_from_us)
        if self._already_stored(segment, results.points[-1].fields.get("analysis_id") if results.points else None):
            self.stats.segments_superseded += 1
            return
        if segment.final:
            report = self.store.replace_results(results)
            if not report.superseded:
                self._finals[(segment.subject, segment.session)] = None
                self._sweeps.append(
                    (self.clock() + self.config.live_sweep_after_s, segment.subject, results.start_us, results.end_us)
                )
                if len(self._finals) > 10_000:
                    self._finals.popitem(last=False)
                self._live_written.pop((segment.subject, segment.session), None)
        else:
            results = self._new_live_points(results)
            report = self.store.write_live(results)
            if segment.kind == "window":
                for placement, pos in segment.positions.items():
                    stream = self._streams.get((segment.subject, placement, pos.serial, pos.boot_epoch))
                    if stream is not None:
                        stream.last_window_seq = pos.seq
        log.info(
            "%s %s %s %s: %d points, version %d%s%s",
            segment.subject,
            segment.session,
            segment.kind,
            _marker_label(segment.marker_id),
            report.points_written,
            version,
            " (superseded)" if report.superseded else "",
            f" across gaps {gaps}" if gaps else "",
        )
        if report.superseded:
            self.stats.segments_superseded += 1
        else:
            self.stats.segments_analysed += 1
        if self.on_segment is not None:
            self.on_segment(segment, report.points_written)


def _marker_label(marker_id: str) -> str:
    """The short part of a marker id for a log line (the gateway's ids end ``...:{positions}:{set}``)."""
    parts = marker_id.rsplit(":", 2)
    return parts[-2] if len(parts) == 3 else marker_id[:80]


def _store_unavailable(exc: BaseException) -> bool:
    """The store itself failed (outage, overload, I/O), not one message's data: keep everything, retry later."""
    return isinstance(exc, StoreUnavailable | OSError | TimeoutError)


__all__ = ["SegmentIncomplete", "Worker", "WorkerConfig", "WorkerStats"]
