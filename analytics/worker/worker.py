"""The analytics worker's consumer: MQTT deliveries in, durable raw data and results out, acks last.

One thread does the work (`Worker.run` / `Worker.step`); paho's thread only enqueues (`link.PahoWorkerLink`).
Per turn, in this order:

1. **decode** every delivery (`decode.decode_message`); a malformed payload is quarantined (kept with its
   topic in the worker quarantine), counted, logged at WARNING, and its delivery acknowledged to the broker
   so it is not redelivered forever; the worker keeps going;
2. **store raw batches** (`Store.write_raw`, idempotent and durable on return). A batch whose ``msg_id`` this
   worker already stored is not written again (a replay; the store would overwrite the same points
   anyway: samples are keyed by subject, placement and the timestamp computed from the sample's sensor
   ticks and the batch's own clock mapping, so replays and other workers land on the same points). A
   sensor boot epoch first seen with a synchronised clock gets `Store.remap_raw` (moves any sensor-time
   points stored while the gateway clock was unsynchronised);
3. **acknowledge**: once the writes returned, the end-to-end ``ack`` (per subject, the stored msg_ids) is
   published to the gateway and then the broker's PUBACK is sent. If the store is unavailable
   (`StoreUnavailable`: overload or outage, after the store's own retries) nothing is acknowledged and
   the delivery is retried with backoff: Mosquitto stops sending after ``max_inflight_messages``
   unacknowledged deliveries, the gateway's outbox keeps everything else;
4. **segments**: a `window`, `set_end` or `session_end` marker becomes a `segments.Segment`, analysed from the
   store once the store holds every sample it names (polled every ``poll_s`` for up to ``segment_wait_s``;
   then *deferred*: the broker delivery is acknowledged, the analysis retried with backoff for up to
   ``defer_for_s``; the gateway's outbox re-sends the marker while it stays unacknowledged end to end, so a
   worker restart loses no segment). A segment is never analysed with a hole.

Times: seconds of `time.monotonic` unless named ``_utc_s``.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from analytics.errors import InsufficientData
from analytics.stores import Store
from analytics.stores.errors import StoreUnavailable
from analytics.stores.quarantine import Quarantine
from analytics.worker.decode import batch_samples, decode_message
from analytics.worker.errors import MalformedMessage, SegmentIncomplete, Verdict, backoff_s, sort_failure
from analytics.worker.link import Delivery, WorkerLink
from analytics.worker.segments import (
    FINAL_VERSION,
    LIVE_VERSION,
    Analyzer,
    Segment,
    algorithm_name,
    check_complete,
    default_analyzer,
    load_segment,
    segment_results,
)
from sensor_gateway.mqtt.client import Connected, Disconnected
from sensor_gateway.uplink import envelope as env
from sensor_gateway.uplink.topics import topic, worker_subscriptions

log = logging.getLogger("gaitsym.worker")


@dataclass(frozen=True)
class WorkerConfig:
    worker_id: str = "worker-1"
    group: str = "gaitsym-workers"
    segment_wait_s: float = 10.0
    """How long a closing marker waits for its samples to be stored before it is deferred, s."""
    defer_for_s: float = 600.0
    """How long a deferred segment is retried before it is left to the gateway's re-send, s."""
    poll_s: float = 0.25
    """Interval between completeness checks of a waiting segment, s."""
    lookback_s: Mapping[str, float | None] = field(
        default_factory=lambda: {"window": 20.0, "set": 240.0, "session": None}
    )
    """Seconds of data each live segment kind analyses (None: the whole session)."""
    live_segments: bool = True
    """Analyse window and set markers while the session runs (provisional results, version 1, replaced by the
    session's final analysis); False: session ends only. (Once off by default: on InfluxDB 1.6.7 the repeated
    delete-then-write hid re-written strides from the index; fixed in `analytics.stores.influx` by anchor
    points, see its ``ANCHOR_US`` and bench/RESULTS_worker.md.)"""
    dedup_capacity: int = 200_000
    """msg_ids of stored batches remembered to skip replays (a cache: correctness never depends on it)."""
    quarantine_path: str | None = None


@dataclass
class WorkerStats:
    deliveries: int = 0
    batches_stored: int = 0
    samples_stored: int = 0
    replays_skipped: int = 0
    gaps: int = 0
    malformed: int = 0
    quarantined: int = 0
    store_retries: int = 0
    segments_analysed: int = 0
    segments_empty: int = 0
    segments_deferred: int = 0
    segments_superseded: int = 0
    acks_sent: int = 0


@dataclass
class _Pending:
    segment: Segment
    token: tuple[int, int] | None
    first_s: float
    due_s: float
    attempts: int = 0
    deferred: int = 0
    """Retries since the segment was deferred (0: not deferred)."""


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
        self._stored: OrderedDict[str, None] = OrderedDict()
        self._remapped: set[tuple[str, str, str, int]] = set()
        self._retry: list[Delivery] = []
        self._retry_at = 0.0
        self._retry_attempt = 0
        self._pending: list[_Pending] = []
        self._acks: dict[str, list[str]] = defaultdict(list)
        path = config.quarantine_path
        if path is None:
            from analytics.stores.paths import state_dir

            path = str(state_dir() / f"worker-quarantine-{config.worker_id}.sqlite")
        self.quarantine = Quarantine(Path(path))
        self.on_segment: Callable[[Segment, int], None] | None = None
        """Hook called after a segment's results are stored (segment, points written): benches, demo."""

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
        """True while deliveries wait for a retry or segments for their samples."""
        return bool(self._retry or self._pending)

    # ------------------------------------------------------------------------------------------ one turn

    def step(self, timeout_s: float = 0.2) -> None:
        now = self.clock()
        wait = timeout_s
        if self._pending:
            wait = min(wait, max(0.0, min(p.due_s for p in self._pending) - now))
        if self._retry:
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
        if self._retry:
            if self.clock() < self._retry_at:
                self._retry.extend(deliveries)
                return
            deliveries, self._retry = self._retry + deliveries, []
        self._handle(deliveries)
        self._flush_acks()
        self._segments()
        self._flush_acks()

    def _handle(self, deliveries: list[Delivery]) -> None:
        for i, d in enumerate(deliveries):
            try:
                self._handle_one(d)
            except Exception as exc:
                verdict = sort_failure(exc)
                if verdict is Verdict.QUARANTINE:
                    self._quarantine(d, exc)
                    continue
                # RETRY: the store (or something outside) failed: keep this and every later delivery
                self._retry_attempt += 1
                delay = backoff_s(self._retry_attempt) * (1.0 + 0.2 * random.random())
                if isinstance(exc, StoreUnavailable):
                    delay = max(delay, exc.retry_after_s)
                self._retry = list(deliveries[i:])
                self._retry_at = self.clock() + delay
                self.stats.store_retries += 1
                log.warning(
                    "%s: %s; %d deliveries kept unacknowledged, retry %d in %.1f s",
                    self.config.worker_id,
                    exc,
                    len(self._retry),
                    self._retry_attempt,
                    delay,
                )
                if not isinstance(exc, StoreUnavailable | OSError | TimeoutError):
                    log.exception("unexpected failure (kept for retry)", exc_info=exc)
                return
        self._retry_attempt = 0

    def _handle_one(self, d: Delivery) -> None:
        message = decode_message(d.topic, d.payload)
        if isinstance(message, env.RawBatch):
            self._store_batch(message, d)
        elif isinstance(message, env.Gap):
            self.stats.gaps += 1
            log.info(
                "gap %s %s %s/%d seq %d..%d (%s, %.2f s)",
                message.subject,
                message.placement,
                message.serial,
                message.boot_epoch,
                message.seq_first_missing,
                message.seq_last_missing,
                message.reason,
                message.duration_s,
            )
            self._acks[message.subject].append(message.msg_id)
            self.link.ack(d.token)
        elif isinstance(message, env.Marker):
            segment = Segment.from_marker(message, self.config.lookback_s)
            if segment is None or (not segment.final and not self.config.live_segments):
                self._acks[message.subject].append(message.msg_id)
                self.link.ack(d.token)
                return
            if any(p.segment.marker_id == segment.marker_id for p in self._pending):
                self.link.ack(d.token)  # a replay of a segment already waiting here
                return
            now = self.clock()
            self._pending.append(_Pending(segment, d.token, now, now))
        else:
            raise MalformedMessage(d.topic, f"{message.kind!r} is not a message a worker reads")

    def _store_batch(self, batch: env.RawBatch, d: Delivery) -> None:
        if batch.msg_id in self._stored:
            self.stats.replays_skipped += 1
        else:
            samples = batch_samples(batch, d.topic)
            report = self.store.write_raw(samples)
            if report.quarantined:
                self.stats.quarantined += 1
            key = (batch.subject, batch.placement, batch.sensor.serial, batch.sensor.boot_epoch)
            if batch.clock.utc_synced and key not in self._remapped:
                moved = self.store.remap_raw(*key, batch.clock)
                if moved:
                    log.info("%s: %d sensor-time samples of %s/%d moved to UTC", batch.subject, moved, *key[2:])
                self._remapped.add(key)
            self._stored[batch.msg_id] = None
            if len(self._stored) > self.config.dedup_capacity:
                self._stored.popitem(last=False)
            self.stats.batches_stored += 1
            self.stats.samples_stored += len(samples)
        self._acks[batch.subject].append(batch.msg_id)
        self.link.ack(d.token)

    def _quarantine(self, d: Delivery, exc: BaseException) -> None:
        self.stats.malformed += 1
        text = d.payload[:300_000].decode("utf-8", errors="replace")
        self.quarantine.put(f"mqtt topic={d.topic}", None, "malformed message", str(exc), [text])
        log.warning("%s: quarantined a malformed message on %s: %s", self.config.worker_id, d.topic, exc)
        self.link.ack(d.token)

    def _flush_acks(self) -> None:
        for subject, ids in self._acks.items():
            for i in range(0, len(ids), 500):
                ack = env.Ack("ack", subject, tuple(ids[i : i + 500]), self.config.worker_id)
                if self.link.publish(topic(subject, "ack"), env.encode(ack)):
                    self.stats.acks_sent += 1
        self._acks.clear()

    # ------------------------------------------------------------------------------------------ segments

    def _segments(self) -> None:
        now = self.clock()
        keep: list[_Pending] = []
        for p in sorted(self._pending, key=lambda p: p.due_s):
            if p.due_s > now:
                keep.append(p)
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
        the session end (same analysis id) or a live segment arriving after the end (replacing would be wasted
        work, or would put provisional strides back over final ones)."""
        for row in self.store.read_results(segment.subject, session=segment.session):
            if row.measurement != "session_summary":
                continue
            version = int(row.fields.get("result_version", 0))  # type: ignore[call-overload]
            if version > LIVE_VERSION and not segment.final:
                return True
            if segment.final and version >= FINAL_VERSION and row.fields.get("analysis_id") == analysis_id:
                return True
        return False

    def _analyse(self, p: _Pending) -> None:
        segment = p.segment
        check_complete(self.store, segment)
        loaded = load_segment(self.store, segment)
        if loaded is None:
            self.stats.segments_empty += 1
            return
        try:
            doc = self.analyzer_for(segment.kind)(loaded.recording)
        except InsufficientData as exc:
            log.info("%s %s: no results for this %s: %s", segment.subject, segment.session, segment.kind, exc)
            self.stats.segments_empty += 1
            return
        version = FINAL_VERSION if segment.final else LIVE_VERSION
        results = segment_results(segment, loaded, doc, version, self.algorithm)
        if self._already_stored(segment, results.points[-1].fields.get("analysis_id") if results.points else None):
            self.stats.segments_superseded += 1
            return
        report = self.store.replace_results(results)
        log.info(
            "%s %s %s %s: %d points, version %d%s",
            segment.subject,
            segment.session,
            segment.kind,
            segment.marker_id.rsplit(":", 2)[-2],
            report.points_written,
            version,
            " (superseded)" if report.superseded else "",
        )
        if report.superseded:
            self.stats.segments_superseded += 1
        else:
            self.stats.segments_analysed += 1
        if self.on_segment is not None:
            self.on_segment(segment, report.points_written)


__all__ = ["SegmentIncomplete", "Worker", "WorkerConfig", "WorkerStats"]
