"""Segment jobs: what the worker does with a closing marker, from its arrival to its acknowledgement.

A `window`, `set_end` or `session_end` marker becomes a `segments.Segment` (`SegmentJobs.admit`), analysed once
every sample it names is stored or known missing (a recorded gap: then analysed across it, flagged ``data_gap``
naming the gap; a session's end from the session's first sample when the gateway names it, so that its first
batches, re-sent after the broker dropped them, are waited for: `segments.check_complete`); polled every ``poll_s``
for up to ``segment_wait_s``; then *deferred*: the broker delivery is acknowledged, the analysis retried with
backoff for up to ``defer_for_s``; the gateway's outbox re-sends the marker while it stays unacknowledged end to
end, so a worker restart loses no segment. Samples still in sensor time (gateway clock not synchronised) defer the
segment the same way until a synchronised mapping of the boot arrives and `Store.remap_raw` moved them
(`raw_ingest`, which then wakes the subject's segments): never dropped. A segment is never analysed with an
unexplained hole. Bounded per subject: at most ``max_held_markers_per_subject`` waiting markers keep their broker
delivery unacknowledged, and at most ``max_held_markers`` across subjects, well below the broker's in-flight window
(more are acknowledged at once: each held one takes one of the broker's in-flight slots, which every subject and the
raw batches the markers wait for share), and at most ``max_pending_per_subject`` segments wait (more are shed: the
gateway re-sends them).

One segment's life, in this module's order: `admit` (a `PendingSegment`) -> `run` each turn: `_coalesce_windows`
(an older window covered by a newer one is done without an analysis) -> `_analyse` once due: a window goes to the
session's live analysis (`live_windows.LiveWindows.window`: its new samples checked, fed, analysed if a stride can
have become ready); a set or session end to `segments.check_complete` and `segments.load_segment` (from raw
ingest's cache when it holds the samples, else the store), the analysis, `results.segment_results`, then the
store (`write_live` or `replace_results`) -> `_done`: the end-to-end ack queued and the broker delivery
acknowledged -> for a session end, `sweep` later.

Live windows: the provisional strides the turn's windows gave out are appended in one write at the end of the turn
(`Store.write_live`: no delete, never touching final results; several subjects in one request), and only then
are those windows acknowledged; a write that fails keeps them waiting and their points with their session. A
window marker arriving while an older one of the same subject still waits replaces it (under load, windows
coalesce instead of queueing). The session's final analysis replaces the session's final results and removes
its provisional ones, and the worker that ran it removes them once more ``live_sweep_after_s`` later (a late
window of another worker).

Times: seconds of `time.monotonic` unless named ``_utc_s``.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace

from analytics.errors import InsufficientData
from analytics.stores import Store
from analytics.stores.errors import StoreUnavailable
from analytics.stores.model import EXERCISE_SET_LIVE, Point, SessionResults
from analytics.worker.config import WorkerConfig, WorkerStats
from analytics.worker.errors import Verdict, backoff_s, sort_failure
from analytics.worker.link import Delivery, Token, WorkerLink
from analytics.worker.live_session import LiveSession
from analytics.worker.live_windows import LiveWindows
from analytics.worker.raw_ingest import RawIngest, store_unavailable
from analytics.worker.results import segment_results
from analytics.worker.segments import (
    FINAL_VERSION,
    LIVE_VERSION,
    Analyzer,
    ClockNotSynced,
    Segment,
    check_complete,
    load_segment,
)
from gaitsym_common.uplink import envelope as env

log = logging.getLogger("gaitsym.worker")


@dataclass
class PendingSegment:
    segment: Segment
    token: Token | None
    first_s: float
    due_s: float
    attempts: int = 0
    deferred: int = 0
    """Retries since the segment was deferred (0: not deferred)."""
    unsynced: bool = False
    """It met samples in sensor time (counted and logged once)."""


class SegmentJobs:
    """The segments waiting on this worker, their analysis, and the sweeps after final analyses (module docstring).

    ``acks`` is the consumer's queue of end-to-end acks (per subject, msg_ids): a segment done is queued there,
    and its broker delivery acknowledged on ``link``."""

    def __init__(
        self,
        config: WorkerConfig,
        store: Store,
        stats: WorkerStats,
        clock: Callable[[], float],
        link: WorkerLink,
        acks: dict[str, list[str]],
        ingest: RawIngest,
        analyzer_for: Callable[[str], Analyzer],
        algorithm: str,
    ) -> None:
        self.config = config
        self.store = store
        self.stats = stats
        self.clock = clock
        self.link = link
        self.acks = acks
        self.ingest = ingest
        self.analyzer_for = analyzer_for
        self.algorithm = algorithm
        self.pending: list[PendingSegment] = []
        self._finals: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._held_since: dict[str, OrderedDict[str, float]] = {}
        """Per subject, session ends by marker id: when this worker first took each (a deferred one is given up
        and re-sent by the gateway, and its wait for a start it names must not begin again with every re-send).
        At most ``max_pending_per_subject`` a subject, the oldest forgotten first: a subject's flood of ends
        restarts only its own waits; an entry goes when its end is done, or with its subject's oldest."""
        self.sweeps: list[tuple[float, str, int, int]] = []
        """(due, subject, start_us, end_us): live points to remove again after a final analysis."""
        self.live = LiveWindows(
            store,
            ingest,
            clock,
            cold_s=config.live_cold_s,
            new_default_s=config.live_new_default_s,
            settings=config.live,
        )
        self._live_out: list[tuple[PendingSegment, LiveSession, list[Point]]] = []
        """The turn's windows whose points wait for the turn's one live write (then they are done)."""

    def next_due_s(self) -> float | None:
        return min((p.due_s for p in self.pending), default=None)

    def admit(self, d: Delivery, message: env.Marker, arrived_s: float | None = None) -> str | None:
        """A closing marker (``arrived_s``: when the worker admitted it, default now): waits here as a segment, or
        is done at once (nothing to analyse, or a replay of one waiting). Returns why it must be shed instead (too
        many of its subject's segments waiting), else None."""
        segment = Segment.from_marker(message, self.config.lookback_s)
        if segment is None or (not segment.final and not self.config.live_segments):
            self.acks[message.subject].append(message.msg_id)
            self.link.ack(d.token)
            return None
        mine = [p for p in self.pending if p.segment.subject == segment.subject]
        if any(p.segment.marker_id == segment.marker_id for p in mine):
            self.link.ack(d.token)  # a replay of a segment already waiting here
            return None
        if len(mine) >= self.config.max_pending_per_subject:
            return f"{len(mine)} segments waiting"
        token: Token | None = d.token
        if (
            sum(p.token is not None for p in mine) >= self.config.max_held_markers_per_subject
            or sum(p.token is not None for p in self.pending) >= self.config.max_held_markers
        ):
            # the broker's in-flight slots are shared by every subject, and raw batches must keep coming through
            # them (the markers wait for those): the gateway re-sends a marker until its end-to-end ack
            self.link.ack(d.token)
            token = None
        now = self.clock()
        first_s = now if arrived_s is None else min(now, arrived_s)
        if segment.final:
            held = self._held_since.setdefault(segment.subject, OrderedDict())
            held.setdefault(segment.marker_id, first_s)
            held.move_to_end(segment.marker_id)
            while len(held) > self.config.max_pending_per_subject:
                held.popitem(last=False)
        self.pending.append(PendingSegment(segment, token, first_s, now))
        return None

    def wake(self, subject: str) -> None:
        """The subject's sensor-time samples were moved to UTC: its segments waiting for them are due now."""
        now = self.clock()
        for p in self.pending:
            if p.segment.subject == subject:
                p.due_s = min(p.due_s, now)

    def wake_windows(self, subjects: set[str]) -> None:
        """These subjects' raw batches are being written: their live windows waiting for them are due now (a live
        window reads samples in flight, `raw_ingest`); deferred ones keep their backoff (they wait for another
        worker's batches)."""
        now = self.clock()
        for p in self.pending:
            if p.segment.kind == "window" and not p.deferred and p.segment.subject in subjects:
                p.due_s = min(p.due_s, now)

    def _coalesce_windows(self) -> None:
        """Of a subject's waiting windows, the newest one whose samples are all here covers the older ones
        (its new part starts where this worker's previous window ended): they are done without an analysis.
        So a worker that fell behind analyses each subject once per turn instead of queueing, and a window
        still waiting for its last batch is never overtaken by a newer one (that would starve both)."""
        groups: dict[tuple[str, str], list[PendingSegment]] = defaultdict(list)
        for p in self.pending:
            if p.segment.kind == "window":
                groups[(p.segment.subject, p.segment.session)].append(p)
        for group in groups.values():
            if len(group) < 2:
                continue
            group.sort(key=lambda p: sum(pos.seq for pos in p.segment.positions.values()))
            for i in range(len(group) - 1, 0, -1):
                if self.ingest.here(group[i].segment):
                    for old in group[:i]:
                        self.pending.remove(old)
                        self._done(old)
                        self.stats.windows_coalesced += 1
                    break

    def run(self) -> None:
        """Analyse the segments that are due, session ends first, then set ends, then live windows, until
        ``turn_budget_s`` is spent; defer or drop those that fail (module docstring)."""
        self._coalesce_windows()
        now = self.clock()
        keep: list[PendingSegment] = []
        rank = {"session": 0, "set": 1, "window": 2}
        for p in sorted(self.pending, key=lambda p: (rank.get(p.segment.kind, 3), p.due_s)):
            if p.due_s > now or self.clock() - now > self.config.turn_budget_s:
                keep.append(p)  # not due, or this turn's analysis time is spent: raw data goes first
                continue
            try:
                waits = self._analyse(p)
            except Exception as exc:
                verdict = sort_failure(exc)
                if verdict is Verdict.QUARANTINE:
                    log.warning("%s: segment %s dropped: %s", self.config.worker_id, p.segment.marker_id, exc)
                    self._done(p)
                    continue
                self._failed(p, verdict, exc, keep)
                continue
            if not waits:
                self._done(p)
        self.pending = keep
        self._flush_live()

    def _failed(self, p: PendingSegment, verdict: Verdict, exc: BaseException, keep: list[PendingSegment]) -> None:
        """A segment whose analysis failed: polled again while it may still complete, then deferred (its broker
        delivery acknowledged, retried with backoff), given up past ``defer_for_s`` (the gateway re-sends it)."""
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
            if p.token is not None:  # never held past here: the broker's slot (and a bundle's other parts) go free
                self.link.ack(p.token)
                p.token = None
            return
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

    def _flush_live(self) -> None:
        """The turn's live points in one write; then their windows are done (acknowledged). A failed write keeps
        the windows waiting (retried like a failed analysis) and the points with their sessions."""
        out, self._live_out = self._live_out, []
        points = [pt for _, _, pts in out for pt in pts]
        if points:
            subjects = sorted({p.segment.subject for p, _, _ in out})
            batch = SessionResults(
                subject=",".join(subjects)[:200],
                session="live windows",
                start_us=min(pt.time_us for pt in points),
                end_us=max(pt.time_us for pt in points),
                result_version=LIVE_VERSION,
                points=tuple(points),
            )
            wall0 = time.perf_counter()
            try:
                report = self.store.write_live(batch)
            except Exception as exc:
                verdict = sort_failure(exc) if not store_unavailable(exc) else Verdict.RETRY
                log.warning("%s: live results of %d windows not written: %s", self.config.worker_id, len(out), exc)
                keep: list[PendingSegment] = []
                for p, _, _ in out:
                    self._failed(p, Verdict.DEFER if verdict is not Verdict.RETRY else verdict, exc, keep)
                self.pending.extend(keep)
                return
            finally:
                self.stats.live_write_wall_s += time.perf_counter() - wall0
            log.debug("%d live points of %d windows written (%d requests)", len(points), len(out), report.requests)
        for p, live, pts in out:
            self.live.written(live, pts)
            self.stats.segments_analysed += 1
            self._done(p)

    def _done(self, p: PendingSegment) -> None:
        self.acks[p.segment.subject].append(p.segment.marker_id)
        held = self._held_since.get(p.segment.subject)
        if held is not None:
            held.pop(p.segment.marker_id, None)
            if not held:
                del self._held_since[p.segment.subject]
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

    def final_stored(self, subject: str, session: str) -> bool:
        """The session's final results are in the store (written by any worker)."""
        return any(
            r.measurement == "session_summary" and int(r.fields.get("result_version", 0)) >= FINAL_VERSION  # type: ignore[call-overload]
            for r in self.store.read_results(subject, session=session)
        )

    def _analyse(self, p: PendingSegment) -> bool:
        """Analyse one due segment; True when it waits for the turn's live write before it is done."""
        segment = p.segment
        if not segment.final and (segment.subject, segment.session) in self._finals:
            self.stats.segments_superseded += 1
            return False
        if not segment.final and p.deferred and self.final_stored(segment.subject, segment.session):
            self._finals[(segment.subject, segment.session)] = None  # another worker finished the session
            self.stats.segments_superseded += 1
            return False
        if segment.kind == "window":
            return self._window(p)
        known = check_complete(
            self.store,
            segment,
            index_for=self.ingest.index_for(segment),
            waited_s=self.clock()
            - self._held_since.get(segment.subject, OrderedDict()).get(segment.marker_id, p.first_s),
        )
        try:
            loaded = load_segment(
                self.store,
                segment,
                first_seq={pl: lo for pl, (lo, _) in known.items()},
                series_for=None if segment.final else self.ingest.series_for(segment),
                known_missing={pl: missing for pl, (_, missing) in known.items()},
            )
        except ClockNotSynced as exc:
            self._unsynced(p, exc)
            raise
        if loaded is None:
            self.stats.segments_empty += 1
            return False
        cpu0 = time.thread_time()
        try:
            doc = self.analyzer_for(segment.kind)(loaded.recording)
        except InsufficientData as exc:
            log.info("%s %s: no results for this %s: %s", segment.subject, segment.session, segment.kind, exc)
            self.stats.segments_empty += 1
            return False
        finally:
            self.stats.analysis_cpu_s += time.thread_time() - cpu0
        version = FINAL_VERSION if segment.final else LIVE_VERSION
        gaps = {pl: missing for pl, (_, missing) in known.items() if missing}
        results = segment_results(segment, loaded, doc, version, self.algorithm, gaps=gaps)
        if self._already_stored(segment, results.points[-1].fields.get("analysis_id") if results.points else None):
            self.stats.segments_superseded += 1
            return False
        if segment.final:
            report = self.store.replace_results(results)
            if not report.superseded:
                self._finals[(segment.subject, segment.session)] = None
                self.sweeps.append(
                    (self.clock() + self.config.live_sweep_after_s, segment.subject, results.start_us, results.end_us)
                )
                if len(self._finals) > 10_000:
                    self._finals.popitem(last=False)
                self.live.forget(segment.subject, segment.session)
        else:
            # a set end: its exercise set, provisionally (the session's live strides come from its windows)
            results = replace(results, points=tuple(p for p in results.points if p.measurement == EXERCISE_SET_LIVE))
            report = self.store.write_live(results)
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
        return False

    def _unsynced(self, p: PendingSegment, exc: ClockNotSynced) -> None:
        if not p.unsynced:
            p.unsynced = True
            self.stats.segments_unsynced += 1
            log.info("%s: %s waits: %s", self.config.worker_id, p.segment.marker_id, exc)

    def _window(self, p: PendingSegment) -> bool:
        """A window marker: its session's live analysis (`live_windows`); True when it gave out points, which the
        turn's live write stores before the window is done."""
        segment = p.segment
        cpu0 = time.thread_time()
        wall0 = time.perf_counter()
        try:
            live, points = self.live.window(segment, self.algorithm)
        except ClockNotSynced as exc:
            self._unsynced(p, exc)
            raise
        finally:
            self.stats.analysis_cpu_s += time.thread_time() - cpu0
            self.stats.live_wall_s += time.perf_counter() - wall0
            self._live_stats()
        if not points:
            self.stats.segments_empty += 1
            return False
        log.debug(
            "%s %s window %s: %d live points",
            segment.subject,
            segment.session,
            _marker_label(segment.marker_id),
            len(points),
        )
        self._live_out.append((p, live, points))
        return True

    def _live_stats(self) -> None:
        """The live analyses' counters into the worker's."""
        c = self.live.counters
        g = self.live.totals
        st = self.stats
        st.live_windows, st.live_cold_starts, st.live_store_reads = c.windows, c.cold_starts, c.store_reads
        st.live_samples_from_store = c.samples_from_store
        st.live_analyses, st.live_samples_analysed = g.windows, g.samples_analysed
        st.live_samples_new, st.live_estimates = g.samples_new, g.estimates

    def sweep(self) -> None:
        """Remove provisional points written into finalised sessions after their final analysis (see
        ``WorkerConfig.live_sweep_after_s``); an unavailable store is tried again at the next turn."""
        now = self.clock()
        keep = []
        for due, subject, start_us, end_us in self.sweeps:
            if due > now:
                keep.append((due, subject, start_us, end_us))
                continue
            try:
                self.store.delete_live(subject, start_us, end_us)
            except StoreUnavailable as exc:
                log.warning("%s: live sweep of %s postponed: %s", self.config.worker_id, subject, exc)
                keep.append((now + self.config.poll_s * 10, subject, start_us, end_us))
        self.sweeps = keep


def _marker_label(marker_id: str) -> str:
    """The short part of a marker id for a log line (the gateway's ids end ``...:{positions}:{set}``)."""
    parts = marker_id.rsplit(":", 2)
    return parts[-2] if len(parts) == 3 else marker_id[:80]
