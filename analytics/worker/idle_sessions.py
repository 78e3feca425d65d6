"""Final results for sessions no ``session_end`` will close: a gateway that died for good, a gateway replaced
with a fresh disk, or data stored before gateways closed the session they left open when restarted.

A session's final analysis normally starts on its ``session_end`` marker. A session that never gets one would keep
only its provisional (live) results. So every worker, every ``every_s`` (randomised, so that workers do not
scan in step), asks the store for the sessions whose raw data reaches into the stretch ``window_s`` long that
ends ``after_s`` ago (`Store.raw_sessions`: the batch index of that stretch, about one row per sensor-second),
and runs, for each of them that

- has no final ``session_summary`` (any worker's, any version), and
- has no raw batch after that stretch (its newest sample is more than ``after_s`` old),

the same final analysis a ``session_end`` marker triggers (`close_session`): every stored sample of the session,
per placement the sensor boot of its newest batch up to its last sample; samples neither stored nor recorded as
a gap by then are treated as missing (a gateway that died took them with it) and named in the ``data_gap``
flag like recorded gaps. Results are version 2, as after a ``session_end``; a ``session_end`` that arrives
later still replaces them (equal versions replace), a re-analysis (version 3 and up) is never replaced.

No state is kept between scans beyond what the store holds, so worker restarts lose nothing, and several workers
may close the same session at once: the analysis is a pure function of the stored data (same marker id, same
analysis id, same points), and `Store.replace_results` deletes a session's ranges before writing its points, so
the last writer leaves one complete copy. A scan that overlaps an analysis of another worker only costs the
repeated analysis; a session that got its summary meanwhile is skipped (checked again right before).

Limits: a session whose newest sample became older than ``after_s + window_s`` while no worker ran is not
seen by any scan (`gaitsym reanalyze --subject S --since DATE` gives it its final results). Sessions in sensor
time (gateway clock never synchronised) are never closed here: they wait for a synchronised mapping.

Times: ``utc()`` seconds for the store's timestamps (µs), ``clock()`` (the worker's monotonic clock) for when to
scan.
"""

from __future__ import annotations

import logging
import random
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from analytics.errors import InsufficientData
from analytics.stores import Store
from analytics.stores.model import SESSION_SUMMARY, RawIndex, RawSession, SessionResults, WriteReport
from analytics.worker.errors import Verdict, sort_failure
from analytics.worker.results import segment_results
from analytics.worker.segments import FINAL_VERSION, MAX_SESSION_S, Analyzer, Segment, load_segment
from gaitsym_common.uplink.envelope import SensorPosition

log = logging.getLogger("gaitsym.worker")
IDLE_MARKER = "idle-close"
"""Marker id prefix of a session closed without its ``session_end`` (the analysis id derives from it)."""


@dataclass(frozen=True)
class IdleClose:
    """When a worker closes a session whose gateway never sent ``session_end``."""

    after_s: float = 4 * 3600.0
    """A session whose newest raw sample is older than this gets its final analysis, s. Hours, so that a
    gateway that is only offline (its outbox keeps the session's data and its ``session_end``) is not taken
    for dead too early; when it comes back, its ``session_end`` replaces these results anyway."""
    every_s: float = 300.0
    """Mean time between two scans of one worker, s (randomised x0.8..1.2)."""
    window_s: float = 3600.0
    """Length of the stretch of raw data each scan reads, ending ``after_s`` ago, s. Much longer than
    ``every_s``: consecutive scans overlap, so a failed scan, a worker restart, or every worker down for up to
    ``window_s - every_s``, misses no session."""


@dataclass
class IdleStats:
    scans: int = 0
    closed: int = 0
    empty: int = 0
    """Sessions with too little data for a final analysis (no results written)."""
    failed: int = 0


@dataclass
class IdleSessions:
    """A worker's scan for sessions to close (see the module docstring); `step` is called every worker turn and
    does at most one scan or one session's analysis."""

    store: Store
    config: IdleClose
    analyzer: Callable[[], Analyzer]
    algorithm: str
    clock: Callable[[], float] = time.monotonic
    utc: Callable[[], float] = time.time
    stats: IdleStats = field(default_factory=IdleStats)
    _due_s: float | None = None
    _todo: list[RawSession] = field(default_factory=list)
    _done: OrderedDict[tuple[str, str], None] = field(default_factory=OrderedDict)
    """Sessions this worker saw with final results, or gave up on (bad data): not looked at again (a cache:
    consecutive scans overlap)."""

    def step(self) -> None:
        now = self.clock()
        if self._due_s is None:  # the first scan soon after start, at a random moment
            self._due_s = now + random.uniform(0.0, 0.2) * self.config.every_s
        try:
            if self._todo:
                self._close_next()
            elif now >= self._due_s:
                self._due_s = now + self.config.every_s * random.uniform(0.8, 1.2)
                self._todo = self.scan()
        except Exception as exc:  # the store is down, or a bug: the next scan tries again
            self.stats.failed += 1
            self._todo = []
            log.warning("idle-session scan failed (%s: %s): tried again at the next scan", type(exc).__name__, exc)

    def scan(self) -> list[RawSession]:
        """Sessions to close now (see the module docstring), with their whole extent."""
        self.stats.scans += 1
        before_us = round((self.utc() - self.config.after_s) * 1e6)
        found = self.store.raw_sessions(before_us - round(self.config.window_s * 1e6), before_us)
        out = []
        for s in found:
            if (s.subject, s.session) in self._done:
                continue
            if final_stored(self.store, s):
                self._forget((s.subject, s.session))
                continue
            if self.store.raw_sessions(before_us + 1, round(self.utc() * 1e6), subject=s.subject, session=s.session):
                continue  # still streaming (or streamed again later): not idle
            whole = session_extent(self.store, s.subject, s.session, s.last_us)
            if whole is not None:
                out.append(whole)
        if out:
            log.info("idle-session scan: %d session(s) without session_end to close", len(out))
        return out

    def _close_next(self) -> None:
        found = self._todo.pop(0)
        key = (found.subject, found.session)
        if final_stored(self.store, found):
            self._forget(key)  # another worker (or a late session_end) was faster
            return
        try:
            closed = close_session(self.store, found, self.analyzer(), self.algorithm)
        except InsufficientData as exc:
            closed, reason = None, str(exc)
        except Exception as exc:
            self.stats.failed += 1
            if sort_failure(exc) is Verdict.QUARANTINE:
                self._forget(key)  # bad data stays bad; a store outage or missing samples are tried again
            log.warning("%s %s: closing it without session_end failed: %s", found.subject, found.session, exc)
            return
        else:
            reason = "too few samples"
        self._forget(key)
        if closed is None:
            self.stats.empty += 1
            log.info("%s %s: no final results without session_end: %s", found.subject, found.session, reason)
            return
        results, report = closed
        self.stats.closed += 1
        log.info(
            "%s %s: closed without session_end (newest sample %.1f h old): %d points, version %d%s",
            found.subject,
            found.session,
            (self.utc() - found.last_us / 1e6) / 3600,
            report.points_written,
            results.result_version,
            " (superseded)" if report.superseded else "",
        )

    def _forget(self, key: tuple[str, str]) -> None:
        """Not looked at again by this worker (another worker or a restart looks once more)."""
        self._done[key] = None
        if len(self._done) > 10_000:
            self._done.popitem(last=False)


def final_stored(store: Store, found: RawSession) -> bool:
    """The session has a final summary (any version from a final analysis on). Its time is the first sample
    of the analysed recording, at most `MAX_SESSION_S` before the session's last sample."""
    start_us = found.last_us - round((MAX_SESSION_S + 120.0) * 1e6)
    rows = store.read_results(found.subject, session=found.session, start_us=start_us, end_us=found.last_us)
    return any(
        r.measurement == SESSION_SUMMARY and int(r.fields.get("result_version", 0)) >= FINAL_VERSION  # type: ignore[call-overload]
        for r in rows
    )


def session_extent(store: Store, subject: str, session: str, last_us: int) -> RawSession | None:
    """A session's raw data as far back as a final analysis reads (`MAX_SESSION_S` before its last sample)."""
    found = store.raw_sessions(last_us - round(MAX_SESSION_S * 1e6), last_us, subject=subject, session=session)
    return found[0] if found else None


def unaccounted(lo: int, hi: int, index: RawIndex) -> list[tuple[int, int]]:
    """Sequence ranges in [lo, hi] neither stored (batches) nor recorded as missing (gaps). Pure function."""
    out = []
    reach = lo - 1
    for a, b in sorted([(a, b) for a, b, _ in index.batches] + list(index.gaps)):
        if a > reach + 1 and reach < hi:
            out.append((reach + 1, min(a - 1, hi)))
        reach = max(reach, b)
    if reach < hi:
        out.append((reach + 1, hi))
    return out


def close_session(
    store: Store,
    found: RawSession,
    analyze: Analyzer,
    algorithm: str,
    version: int = FINAL_VERSION,
) -> tuple[SessionResults, WriteReport] | None:
    """The final analysis of a session from what the store holds (``found``: its extent, `session_extent`), as a
    ``session_end`` at its last samples would run it; samples neither stored nor recorded as a gap are taken as
    missing (named in the ``data_gap`` flag). None: too few samples. Raises InsufficientData from the analysis."""
    positions = {p: SensorPosition(s.serial, s.boot_epoch, s.seq_last) for p, s in found.sensors.items()}
    key = ",".join(f"{p}={pos.seq}" for p, pos in sorted(positions.items()))
    segment = Segment(
        found.subject,
        found.session,
        "session",
        f"{IDLE_MARKER}:{found.session}:{key}",
        positions,
        t_utc_s=found.last_us / 1e6,
    )
    missing: dict[str, list[tuple[int, int]]] = {}
    for placement, s in found.sensors.items():
        index = store.raw_index(found.subject, placement, s.serial, s.boot_epoch, s.seq_first, s.seq_last)
        recorded = [(max(a, s.seq_first), min(b, s.seq_last)) for a, b in index.gaps]
        missing[placement] = sorted(set(recorded + unaccounted(s.seq_first, s.seq_last, index)))
    first_seq = {p: s.seq_first for p, s in found.sensors.items()}
    loaded = load_segment(store, segment, first_seq=first_seq, known_missing=missing)
    if loaded is None:
        return None
    doc = analyze(loaded.recording)
    gaps = {p: ranges for p, ranges in missing.items() if ranges}
    results = segment_results(segment, loaded, doc, version, algorithm, gaps=gaps)
    return results, store.replace_results(results)
