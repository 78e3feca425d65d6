"""The analytics worker's consumer: MQTT deliveries in, durable raw data and results out, acks last.

One thread does the work (`Worker.run` / `Worker.step`) but the raw writes' store requests (2.); paho's thread
only enqueues (`link.PahoWorkerLink`).
Per turn, in this order:

1. **admit** every delivery: its payload is untrusted bytes. Its subject's budget (`budget.SubjectBudgets`:
   payload bytes, charged from the topic alone, then work once the envelope is read) is checked first; past it,
   the delivery is *shed*: acknowledged to the broker (so the messages queued behind it, other subjects' among
   them, come in) without being stored or acknowledged end to end (the gateway's outbox re-sends it). Then it
   is **decoded** (`decode.decode_message`, bounded: any failure is a MalformedMessage); a malformed payload is
   quarantined once (kept with its topic in the worker quarantine, capped per subject; a copy seen again is
   only counted), counted, logged (one line per subject per ``log_every_s``), and its delivery acknowledged
   to the broker so it is not redelivered forever; the worker keeps going. A raw batch is decoded as it is
   taken (`RawIngest.take`: malformed packets are quarantined then) and live windows read it from then on. Admitted
   deliveries wait in the *carry* (`carry`: bounded; past its bound a subject catching up gives way first, what
   does not fit is shed, and that subject's live results pause for ``live_pause_after_shed_s``); each turn
   takes from it round-robin across subjects, up to ``turn_max_work`` (the rest waits for the next turn), so one
   subject's backlog never makes another's wait for more than a turn.
   A window marker of a session whose live analysis runs here skips the carry, unless a marker or gap of its
   subject waits there (it keeps its place behind them): it goes to the segments at once (with one worker its
   samples were taken with it; batches another worker took are read from the store once stored there), so a
   live stride waits neither for the turn's gathering nor for the raw writes ahead of it (at 100 subjects each
   takes a third of a second or more);
2. **store raw batches and gaps** (`raw_ingest.RawIngest`): a turn starts ``turn_gather_s`` after the oldest
   delivery waiting for it arrived (in real time deliveries trickle in: one store request for several subjects'
   batches costs the store less than one for each), then every raw batch of the turn goes in one store request,
   written in a thread of its own (``raw_write_async``; at most ``raw_writes_in_flight`` turns at once, finished
   in order) while this thread analyses (a batch that fails on its own is quarantined, a replay skipped),
   sensor-time samples moved to UTC once a synchronised mapping of their boot arrives, gaps recorded; raw ingest
   also keeps, per sensor boot, the last ``recent_s`` seconds of what *this* worker stored, so live windows are
   checked and fed without a query;
3. **acknowledge**: once a turn's write returned, its deliveries' end-to-end ``ack`` (per subject, the stored
   msg_ids, published once the oldest is ``ack_every_s`` old: one message for several turns) goes to the gateway
   and the broker's PUBACK is sent. If the store is unavailable (`StoreUnavailable`: overload or outage, after
   the store's own retries) nothing is acknowledged and the delivery is retried with backoff; the broker may stop
   sending after ``RECEIVE_MAXIMUM`` unacknowledged deliveries (`link`: Debian's Mosquitto does not), the carry's
   bound sheds what comes beyond it, and the gateway's outbox keeps everything;
4. **segments** (`segment_jobs.SegmentJobs`): a `window`, `set_end` or `session_end` marker waits as a segment
   until every sample it names is stored or known missing, is analysed (session ends first, then set ends,
   then live windows, for up to ``turn_budget_s`` a turn; a window feeds its session's live analysis only what
   is new, `live_windows`), its results stored, then it is acknowledged like a raw batch; one that waits too
   long is deferred (its broker delivery acknowledged, the gateway re-sends it until the end-to-end ack). Live
   windows coalesce under load, and their analyses space out while windows wait; a final analysis is swept
   once more later.

The modules: this one (the turn: admit, budgets, retries), `carry` (what waits for a turn), `malformed`
(deliveries set aside), `acks` (end-to-end acks published), `raw_ingest`, `segment_jobs` (with `live_windows`);
`config` holds `WorkerConfig` and `WorkerStats`, shared by them.

Times: seconds of `time.monotonic` unless named ``_utc_s``.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from pathlib import Path
from typing import TypeGuard

from analytics.stores import Store
from analytics.stores.errors import StoreUnavailable
from analytics.stores.quarantine import Quarantine
from analytics.worker.acks import EndToEndAcks
from analytics.worker.budget import (
    MIN_WORK_PER_BATCH,
    WORK_PER_GAP,
    WORK_PER_MALFORMED,
    WORK_PER_MARKER,
    SubjectBudgets,
)
from analytics.worker.bundles import PartAcks, bundle_parts
from analytics.worker.carry import Admitted, Carry
from analytics.worker.config import SubjectLog, WorkerConfig, WorkerStats
from analytics.worker.decode import decode_message, topic_subject
from analytics.worker.errors import MalformedMessage, SegmentIncomplete, backoff_s
from analytics.worker.idle_sessions import IdleSessions
from analytics.worker.link import Delivery, Token, WorkerLink
from analytics.worker.malformed import MalformedMessages
from analytics.worker.raw_ingest import RawIngest, RawWrite, store_unavailable
from analytics.worker.segment_jobs import SegmentJobs
from analytics.worker.segments import SEGMENT_KINDS, Analyzer, Segment, algorithm_name, default_analyzer
from gaitsym_common.mqtt.client import Connected, Disconnected
from gaitsym_common.uplink import envelope as env
from gaitsym_common.uplink.topics import worker_subscriptions

log = logging.getLogger("gaitsym.worker")


def _is_window(message: env.Message) -> TypeGuard[env.Marker]:
    return isinstance(message, env.Marker) and SEGMENT_KINDS.get(message.type) == "window"


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
        self.link = PartAcks(link)
        """The broker link; a bundle's delivery is acknowledged to the broker once each of its parts is."""
        self.store = store
        self.analyzer_for = analyzer_for
        self.clock = clock
        self.stats = WorkerStats()
        self.algorithm = algorithm_name()
        self._carry = Carry(config.max_carry_work, config.max_carry_bytes)
        """Admitted deliveries not yet handled (a turn's leftovers, or kept while the store is unavailable)."""
        self._writing: deque[tuple[RawWrite, list[Admitted], float]] = deque()
        """Turns' raw batches being written (`RawIngest.start_batches`; at most ``raw_writes_in_flight``), their
        deliveries, when each write started; finished in order."""
        self._retry_at = 0.0
        """No turn before this (after a failure: backoff)."""
        self.budgets = SubjectBudgets(config.budget)
        self._log_limited = SubjectLog(config.worker_id, config.log_every_s, clock)
        self.shed_by_subject: dict[str, int] = defaultdict(int)
        """Deliveries shed per subject (for operators and tests; forgotten past 10,000 subjects)."""
        self._settled: set[Token] = set()
        """Deliveries already acknowledged (quarantined, in this turn or as they were admitted): a retried turn
        leaves them out."""
        self._retry_attempt = 0
        self._live_paused: dict[str, float] = {}
        """Per subject a delivery of which found the carry full: until when its window markers go without a live
        analysis (``live_pause_after_shed_s``)."""
        self.acks = EndToEndAcks(config.worker_id, config.ack_every_s, self.link, self.stats, clock)
        """End-to-end acks to publish (per subject, msg_ids), flushed at each step."""
        path = config.quarantine_path
        if path is None:
            from analytics.stores.paths import state_dir

            path = str(state_dir() / f"worker-quarantine-{config.worker_id}.sqlite")
        self.quarantine = Quarantine(Path(path))
        self.malformed = MalformedMessages(self.quarantine, self.stats, self._log_limited)
        self.ingest = RawIngest(
            config,
            store,
            self.stats,
            clock,
            self._log_limited,
            self._quarantine,
            lambda s: self.jobs.wake(s),
            lambda subject, work: self.budgets.charge_work(subject, work, self.clock()),
        )
        self.ingest.waiting = self._carry.ranges
        self.jobs = SegmentJobs(
            config, store, self.stats, clock, self.link, self.acks.pending, self.ingest, analyzer_for, self.algorithm
        )
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
        while self._writing and self._writing[0][0].done.wait(30.0):
            self._finish_write()
        self.acks.send_due(force=True)
        log.info("%s: stopping; %s", self.config.worker_id, self.stats)
        self.link.close()
        self.store.close()
        self.quarantine.close()

    @property
    def busy(self) -> bool:
        """True while deliveries wait for a turn or a retry, or segments for their samples."""
        return bool(self._carry or self.jobs.pending or self._writing)

    # ------------------------------------------------------------------------------------------ one turn

    def step(self, timeout_s: float = 0.2) -> None:
        now = self.clock()
        wait = timeout_s
        due_s = self.jobs.next_due_s()
        if due_s is not None:
            wait = min(wait, max(0.0, due_s - now))
        if self._carry:
            wait = min(wait, max(0.0, self._retry_at - now, self._gather_until() - now))
        if self._writing:
            wait = min(wait, 0.05)  # woken when the write is over (`_wake`); a link that cannot wake: polled
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
        while self._writing and self._writing[0][0].done.is_set():
            self._finish_write()
        now = self.clock()
        if (
            self._carry
            and len(self._writing) < max(1, self.config.raw_writes_in_flight)
            and now >= self._retry_at
            and now >= self._gather_until()
        ):
            self._handle()
        self.acks.send_due()
        self.ingest.prune()
        self.jobs.run()
        self.acks.send_due()
        self.jobs.sweep()
        if self.idle_sessions is not None:
            self.idle_sessions.step()

    def _gather_until(self) -> float:
        """When the carry's turn is due: ``turn_gather_s`` after its oldest delivery arrived (several subjects'
        batches then go in one store write), at once when it holds a turn's work already."""
        if not self._carry:
            return 0.0
        if self._carry.work >= self.config.turn_max_work:
            return 0.0
        return self._carry.oldest_at_s() + self.config.turn_gather_s

    def _admit(self, deliveries: list[Delivery]) -> None:
        """Budget, then decode: each delivery is shed, quarantined or added to the carry (module docstring, 1)."""
        if not deliveries:
            return
        now = self.clock()
        self.budgets.forget_idle(now)
        if self._live_paused:
            self._live_paused = {s: until for s, until in self._live_paused.items() if until > now}
        taken: set[str] = set()
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
                self._shed(d, subject, "past its budget: payload bytes")
                continue
            message = self._decoded(d, subject, now)
            if not isinstance(message, env.Bundle):
                if message is not None:
                    self._admit_message(d, message, subject, now, taken)
                continue
            # each part as if it had come alone (its payload bytes were charged with the bundle's)
            parts = bundle_parts(d, message)
            self.link.expect(d.token, len(parts))
            self.stats.bundles += 1
            for part in parts:
                part_message = self._decoded(part, subject, now)
                if part_message is not None:
                    self._admit_message(part, part_message, subject, now, taken)
        self._carry_peaks()
        if taken:
            self.jobs.wake_windows(taken)

    def _decoded(self, d: Delivery, subject: str, now: float) -> env.Message | None:
        """The delivery's message, or None when it is malformed (quarantined, or shed past the work budget)."""
        try:
            return decode_message(d.topic, d.payload)
        except Exception as exc:  # decode_message raises only MalformedMessage; a bug is bad input too here
            if not self.budgets.take_work(subject, WORK_PER_MALFORMED, now):
                self._shed(d, subject, "past its budget: work")
                return None
            self._quarantine(d, exc, subject)
            return None

    def _admit_message(self, d: Delivery, message: env.Message, subject: str, now: float, taken: set[str]) -> None:
        """Shed, quarantine or carry one decoded message (a lone delivery's, or a bundle's part)."""
        if isinstance(message, env.RawBatch):
            work = max(message.n_samples, MIN_WORK_PER_BATCH)
        elif isinstance(message, env.Gap):
            work = WORK_PER_GAP
        else:
            work = WORK_PER_MARKER
        if self._live_paused.get(subject, 0.0) > now and self.config.live_segments and _is_window(message):
            # acknowledged end to end without an analysis: the window after the pause feeds every sample since
            # the last one fed (strides older than `LiveSettings.max_window_s` are left to the final analysis)
            self.stats.windows_paused += 1
            self.acks.pending[subject].append(message.msg_id)
            self.link.ack(d.token)
            return
        carried = (
            isinstance(message, env.RawBatch)
            or not self._live_window(message)
            or bool(self._carry.in_order().get(subject))
        )
        if carried and not self._carry.admits(subject, work, len(d.payload)):
            self.stats.shed_carry_full += 1
            self._live_paused[subject] = now + self.config.live_pause_after_shed_s
            self._shed(d, subject, "the worker's carry full")
            return
        if not self.budgets.take_work(subject, work, now):
            self._shed(d, subject, "past its budget: work")
            return
        if isinstance(message, env.RawBatch):
            try:
                self.ingest.take(d, message)
            except MalformedMessage as exc:
                self._quarantine(d, exc, subject)
                return
            taken.add(subject)
        elif not carried:
            # its samples are read from what this worker took (`RawIngest.take`): it need not wait for a turn
            shed = self.jobs.admit(d, message, now)  # type: ignore[arg-type]
            if shed is not None:
                self._shed(d, subject, shed)
            return
        self._carry.append(Admitted(d, message, subject, work, now))

    def _carry_peaks(self) -> None:
        self.stats.carry_peak_work = self._carry.peak_work
        self.stats.carry_peak_bytes = self._carry.peak_bytes

    def _live_window(self, message: env.Message) -> bool:
        """A window marker of a session this worker's live analysis runs: it feeds the session from the samples
        taken and need not wait for a turn. The others wait in the carry: set and session ends (they wait for the
        store), and a session's first window here (its cold start may read the store, so it waits for this
        worker's writes of what it names; admitted at once, each new window would name batches not yet written)."""
        if not (self.config.live_segments and _is_window(message)):
            return False
        segment = Segment.from_marker(message, self.config.lookback_s)
        return segment is not None and self.jobs.live.holds(segment)

    def _handle(self) -> None:
        turn = self._carry.take_turn(self.config.turn_max_work, self.config.turn_max_work_per_subject)
        self._settled.clear()
        raw_turn = [a for a in turn if isinstance(a.message, env.RawBatch)]
        others = [a for a in turn if not isinstance(a.message, env.RawBatch)]
        self.stats.turns += 1
        background = self._wake if self.config.raw_write_async else None
        try:
            job = self.ingest.start_batches([(a.delivery, a.message) for a in raw_turn], background)  # type: ignore[misc]
        except Exception as exc:  # a bug in raw ingest: the whole turn is kept and retried
            self._failed(exc, [a for a in turn if a.delivery.token not in self._settled])
            return
        self._writing.append((job, raw_turn, time.perf_counter()))
        self.jobs.wake_windows({a.subject for a in raw_turn})
        for i, a in enumerate(others):
            try:
                self._handle_one(a.delivery, a.message, a.at_s)
            except Exception as exc:
                if store_unavailable(exc):
                    self._failed(exc, others[i:])
                    break
                self._quarantine(a.delivery, exc, a.subject)  # this message's own failure: it alone is set aside
        if background is None:
            self._finish_write()

    def _finish_write(self) -> None:
        """The turn's raw write is over: acknowledge what was stored (end to end, then to the broker), or keep the
        turn's batches for a retry when the store is unavailable."""
        if not self._writing:
            return
        job, raw_turn, wall0 = self._writing.popleft()
        try:
            stored = self.ingest.finish_batches(job)
        except Exception as exc:  # the store unavailable, or a bug in raw ingest: the turn's batches are retried
            self._failed(exc, [a for a in raw_turn if a.delivery.token not in job.quarantined | self._settled])
            return
        finally:
            self.stats.raw_write_wall_s += time.perf_counter() - wall0
        for d, batch in stored:
            self.acks.pending[batch.subject].append(batch.msg_id)
            self.link.ack(d.token)
        self._retry_attempt = 0

    def _wake(self) -> None:
        """The background raw write is over (its thread): the consumer's wait returns."""
        wake = getattr(self.link, "wake", None)
        if wake is not None:
            wake()

    def _failed(self, exc: BaseException, keep: list[Admitted]) -> None:
        """The store is unavailable: keep these deliveries unacknowledged (first in the carry), retry with backoff."""
        self._retry_attempt += 1
        delay = backoff_s(self._retry_attempt) * (1.0 + 0.2 * random.random())
        if isinstance(exc, StoreUnavailable):
            # refused connection: the store already polled for its retry_for_s; a long backoff here would only
            # delay the first write after the server is back
            delay = exc.retry_after_s if exc.refused else max(delay, exc.retry_after_s)
        self._carry.put_back(keep)
        self._carry_peaks()
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
        if not store_unavailable(exc):
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
            "%s: deliveries shed, its gateway re-sends them (%d shed in all)",
            what,
            self.stats.shed,
        )

    def _handle_one(self, d: Delivery, message: env.Message, arrived_s: float | None = None) -> None:
        if isinstance(message, env.Gap):
            self.ingest.store_gap(message)
            self.acks.pending[message.subject].append(message.msg_id)
            self.link.ack(d.token)
        elif isinstance(message, env.Marker):
            shed = self.jobs.admit(d, message, arrived_s)
            if shed is not None:
                self._shed(d, message.subject, shed)
        else:
            raise MalformedMessage(d.topic, f"{message.kind!r} is not a message a worker reads")

    def _quarantine(self, d: Delivery, exc: BaseException, subject: str) -> None:
        """Set a malformed delivery aside (`malformed`) and acknowledge it to the broker so it is never redelivered;
        no end-to-end ack (it never becomes good)."""
        self._settled.add(d.token)
        self.malformed.set_aside(d, exc, subject)
        self.link.ack(d.token)


__all__ = ["SegmentIncomplete", "Worker", "WorkerConfig", "WorkerStats"]
