"""Segments: what a closing marker asks the worker to analyse, read back from the store, never from memory.

A marker (`window`, `set_end`, `session_end`) names, per placement, the last sample ``(serial, boot_epoch,
seq)`` it refers to. The worker that receives it (any worker: Mosquitto hands messages round-robin):

1. checks that every sample of the segment is stored or known missing (`check_complete`: the batch index and the
   recorded gaps, `Store.raw_index`, or the worker's own log of what it stored; a session's end from the session's
   first sample when the marker names it, uplink ``session_seq_first``; else `SegmentIncomplete`: the
   consumer waits, bounded, then defers and retries; a segment is never analysed with an unexplained hole, and
   one with a recorded gap is analysed across it and flagged ``data_gap`` naming the gap);
2. reads the segment's samples (`load_segment`): the session's samples of each placement with sequence
   <= the marker's, and, for a set end, only the last ``lookback_s`` seconds, from the worker's memory when it
   holds them, else from the store (a window marker instead feeds its session's live analysis the samples since
   the previous one: `live_windows`, which puts them on the same grid); the three sensors are resampled
   by linear interpolation onto one common grid at the sensors' rate, starting on a whole sample period (their
   stored UTC times, from each batch's clock mapping, differ by a fraction of a sample). Samples still in
   sensor time (gateway clock not synchronised) raise `ClockNotSynced`: deferred until they are moved to UTC;
3. analyses it (`analytics.pipeline.analyze_recording`) and builds the result points with provenance
   (`results.segment_results`): the algorithm and schema versions and the clock mapping used per placement.

Which samples a final segment holds is a pure function of the marker and the stored data (sequence numbers, not
arrival times): one worker or three store the same final results. Live results are provisional and go to their
own measurements (``stride_live``, ``exercise_set_live``, appended, never deleting): which window writes a
stride depends on which worker served which window. Versions (``result_version``): live 1 (flagged
``provisional``), the session's final analysis 2, each re-analysis the stored version + 1 (`analytics.stores`
never lets a lower version replace a higher one).

Units: timestamps µs (UTC), rates Hz, durations s, as in analytics.stores.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from analytics.recording.io import Recording, SensorData
from analytics.stores import Store
from analytics.stores.model import RawIndex, RawSeries
from analytics.worker.errors import SegmentIncomplete
from gaitsym_common.uplink.envelope import Marker, SensorPosition

LIVE_VERSION = 1
FINAL_VERSION = 2
SEGMENT_KINDS = {"window": "window", "set_end": "set", "session_end": "session"}
MAX_SESSION_S = 6 * 3600.0
"""Longest session a final analysis looks back over, s (bounds the store scan when UTC is known)."""
START_WAIT_S = 3600.0
"""How long after a session's end its final analysis waits for the session's first samples the end names, s:
many times the gateway's re-send period (``ack_timeout_s``, 30 s); a start still missing then never comes, and
the analysis takes the first batch stored, as for a marker that names none."""

Analyzer = Callable[[Recording], dict[str, Any]]


def default_analyzer(kind: str) -> Analyzer:
    """The production analysis for a segment kind: windows gait only, sets and sessions with exercises."""
    from analytics.pipeline import analyze_recording

    if kind == "window":
        return lambda rec: analyze_recording(rec, exercise_analyzer=None)
    return lambda rec: analyze_recording(rec)


def algorithm_name() -> str:
    from analytics.pipeline.analyze import GENERATOR_NAME, GENERATOR_VERSION

    return f"{GENERATOR_NAME} {GENERATOR_VERSION}"


@dataclass(frozen=True)
class Segment:
    """A stretch of one subject's session to analyse: up to ``positions`` (per placement), optionally only
    the last ``lookback_s`` seconds (live segments)."""

    subject: str
    session: str
    kind: str
    """window | set | session"""
    marker_id: str
    positions: Mapping[str, SensorPosition]
    t_utc_s: float | None = None
    lookback_s: float | None = None

    @staticmethod
    def from_marker(marker: Marker, lookback_s: Mapping[str, float | None]) -> Segment | None:
        kind = SEGMENT_KINDS.get(marker.type)
        if kind is None or not marker.last_seq:
            return None
        return Segment(
            marker.subject,
            marker.session,
            kind,
            marker.msg_id,
            dict(marker.last_seq),
            marker.t_utc_s,
            lookback_s.get(kind),
        )

    @property
    def final(self) -> bool:
        return self.kind == "session"


def _lookback_samples(lookback_s: float | None, rate_hz: float = 100.0) -> int | None:
    return None if lookback_s is None else round(lookback_s * rate_hz)


class ClockNotSynced(SegmentIncomplete):
    """A segment's samples are in sensor time (the gateway's clock was not UTC-synchronised): the three sensors
    cannot be put on one time base yet. Deferred until a synchronised mapping of the same boot epoch arrives
    (the worker then moves the samples to UTC, `Store.remap_raw`), never dropped."""


def coverage(lo: int, hi: int, index: RawIndex) -> tuple[int, list[tuple[int, int]]]:
    """Of samples ``lo..hi``: how many are neither stored nor known missing, and the known-missing ranges.

    Stored: the batches' ranges (a batch holding fewer samples than its range lost some inside; those must be
    named by gaps). Known missing: the gaps (uplink ``gap`` messages). Pure function."""
    if hi < lo:
        return 0, []
    spans = sorted(
        [(max(a, lo), min(b, hi)) for a, b, _ in index.batches] + [(max(a, lo), min(b, hi)) for a, b in index.gaps]
    )
    covered, reach = 0, lo - 1
    for a, b in spans:
        if b < a or b <= reach:
            continue
        a = max(a, reach + 1)
        covered += b - a + 1
        reach = b
    unaccounted = (hi - lo + 1) - covered
    missing = [(max(a, lo), min(b, hi)) for a, b in index.gaps if min(b, hi) >= max(a, lo)]
    for a, b, n in index.batches:  # losses inside a batch: only accounted for when a gap names them
        lost = (b - a + 1) - n
        if lost > 0:
            named = sum(min(b, gb) - max(a, ga) + 1 for ga, gb in index.gaps if min(b, gb) >= max(a, ga))
            unaccounted += max(0, lost - named)
    return unaccounted, sorted(set(missing))


def session_start_of(segment: Segment, pos: SensorPosition) -> int | None:
    """The first sample of the session in the marker's sensor boot, when the session's end names it (uplink
    ``session_seq_first``; None: a window or set, or a gateway that does not say)."""
    return pos.session_seq_first if segment.final else None


IndexFor = Callable[[str, SensorPosition, int], "RawIndex | None"]
"""(placement, marker position, first sequence wanted) -> what the caller itself knows (None: ask the store)."""


def check_complete(
    store: Store,
    segment: Segment,
    rate_hz: float = 100.0,
    index_for: IndexFor | None = None,
    first_seq: Mapping[str, int] | None = None,
    waited_s: float = 0.0,
) -> dict[str, tuple[int, list[tuple[int, int]]]]:
    """Every sample of the segment (per placement, from the first sample of the boot epoch, or the lookback, or
    ``first_seq`` of that placement, up to the marker's sequence) is stored or known missing (a recorded gap); else
    SegmentIncomplete.

    A session's end that names where the session starts (`session_start_of`) is checked from there, whatever the
    store holds: its first batches may come after the marker (re-sent by the gateway after the broker dropped
    them), and a final analysis from the first batch stored would miss the session's start for good. Without it,
    the check starts at the first batch of the boot stored (or the lookback, or ``first_seq``), clipped to it; so
    does a session old enough for its start to be past the raw retention (`_start_may_be_deleted`: never stored
    again, it would be waited for forever). ``waited_s``: how long the caller has held this session end; it
    bounds the wait for a marker without UTC (an unsynchronised gateway clock), whose age is otherwise unknown.

    Returns per placement the first sequence of the segment and the known-missing ranges in it. ``index_for``
    answers from the caller's own knowledge (the worker's log of what it stored) when it can: a live window is
    then checked without a query."""
    n_back = _lookback_samples(segment.lookback_s, rate_hz)
    out: dict[str, tuple[int, list[tuple[int, int]]]] = {}
    for placement, pos in sorted(segment.positions.items()):
        want = None if n_back is None else pos.seq - n_back + 1
        if first_seq is not None and placement in first_seq:
            want = first_seq[placement]
        start = session_start_of(segment, pos)
        unaccounted, lo, missing = _check_placement(store, segment, placement, pos, want, start, index_for)
        if unaccounted and start is not None and _start_may_be_deleted(store, segment, waited_s=waited_s):
            unaccounted, lo, missing = _check_placement(store, segment, placement, pos, want, None, index_for)
        if unaccounted:
            raise SegmentIncomplete(
                f"{segment.subject} {placement}: {unaccounted} samples of {pos.serial}/{pos.boot_epoch} "
                f"{lo}..{pos.seq} neither stored nor known missing (the {segment.kind} marker needs them)",
                missing=unaccounted,
            )
        out[placement] = (lo, missing)
    return out


def _check_placement(
    store: Store,
    segment: Segment,
    placement: str,
    pos: SensorPosition,
    want: int | None,
    start: int | None,
    index_for: IndexFor | None,
) -> tuple[int, int, list[tuple[int, int]]]:
    """`check_complete` of one placement: (samples neither stored nor known missing, first sequence of the
    segment, known-missing ranges), from ``start`` exactly when given, else from ``want`` clipped to what is
    stored (None: the first batch stored). The caller's own index first, then the store's."""
    if start is not None:
        want = start
    unaccounted, lo = 0, 0
    missing: list[tuple[int, int]] = []
    for attempt in ("local", "store"):
        if attempt == "local":
            if index_for is None or want is None:
                continue
            index = index_for(placement, pos, want)
            if index is None:
                continue
        else:
            index = store.raw_index(segment.subject, placement, pos.serial, pos.boot_epoch, want, pos.seq)
        firsts = [a for a, _, _ in index.batches] + [a for a, _ in index.gaps]
        if not firsts:
            unaccounted, lo, missing = pos.seq - (want or 0) + 1, want or 0, []
        else:
            lo = start if start is not None else min(firsts) if want is None else max(want, min(firsts))
            unaccounted, missing = coverage(lo, pos.seq, index)
        if unaccounted == 0:
            break
    return unaccounted, lo, missing


def _start_may_be_deleted(
    store: Store, segment: Segment, now_utc_s: float | None = None, waited_s: float = 0.0
) -> bool:
    """The session's start is not waited for any longer (asked only when its first samples are not there): the
    session ended more than ``START_WAIT_S`` ago, or its end has been held that long (``waited_s``; the only age
    known of a marker without UTC, and only since this worker took it: a restart begins the wait again), since a
    gateway re-sends what was not acknowledged every 30 s, so a start still missing by then was refused or lost
    for good (quarantined as malformed, say); or it may have begun before the store's raw retention (its end,
    less the longest session, is older than what the store keeps), so its first samples may be deleted already."""
    if waited_s > START_WAIT_S:
        return True
    if segment.t_utc_s is None:
        return False
    now = time.time() if now_utc_s is None else now_utc_s
    if now - segment.t_utc_s > START_WAIT_S:
        return True
    kept_s = store.raw_kept_for_s()
    if kept_s is None:
        return False
    return segment.t_utc_s - MAX_SESSION_S < now - kept_s


@dataclass(frozen=True)
class LoadedSegment:
    recording: Recording
    t0_us: int
    """Timestamp (µs) of the common grid's first sample: result times are placed at t0 + t_s."""
    end_us: int
    clock: dict[str, Any]
    """Per placement: sensor identity, first and last stored (t_sensor_us, time_us) and the rate between them."""
    session_from_us: int | None = None
    """Live windows: the first instant every placement has samples of the segment's own session (None: all
    of the window's samples are). A window's context may reach back before the session opened (quiet standing,
    the previous session); its provisional strides are kept only from here on, the range the session's final
    analysis (which reads only the session's samples) replaces."""


def select_samples(series: RawSeries, pos: SensorPosition, first_seq: int | None) -> np.ndarray:
    """Positions in ``series`` of the samples of the marker's sensor boot with sequence ``first_seq..pos.seq``."""
    keep = (series.seq <= pos.seq) & (series.boot_epoch == pos.boot_epoch)
    if len(set(series.serial)) > 1:
        keep &= np.array([s == pos.serial for s in series.serial], dtype=bool)
    elif series.serial and series.serial[0] != pos.serial:
        keep &= False
    if first_seq is not None:
        keep &= series.seq >= first_seq
    return np.flatnonzero(keep)


SeriesFor = Callable[[str, SensorPosition, int], "RawSeries | None"]
"""(placement, marker position, first sequence) -> the samples from the caller's memory (None: read the store)."""


def load_segment(
    store: Store,
    segment: Segment,
    min_samples: int = 200,
    first_seq: Mapping[str, int] | None = None,
    series_for: SeriesFor | None = None,
    known_missing: Mapping[str, list[tuple[int, int]]] | None = None,
) -> LoadedSegment | None:
    """Read the segment's samples of every placement and resample them onto one grid (None: too few).

    The grid's first instant is a whole multiple of the sample period (in µs since 1970): overlapping live
    windows put a stride's events on the same timestamps. Raises ClockNotSynced when samples are in sensor
    time (deferred until a synchronised mapping arrives).
    With ``first_seq`` and ``known_missing`` (what `check_complete` found), every sample from the first one read
    up to the marker's that is not known missing must be read back, else SegmentIncomplete (retried): a
    segment is never analysed with a hole, even when the store's answer came back short."""
    start_us = end_us = None
    if segment.t_utc_s is not None:
        end_us = round((segment.t_utc_s + 60.0) * 1e6)
        span = segment.lookback_s + 60.0 if segment.lookback_s is not None else MAX_SESSION_S
        start_us = end_us - round(span * 1e6)
    n_back = _lookback_samples(segment.lookback_s)
    session_from: list[int] = []
    picked: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    clock: dict[str, Any] = {}
    rates: list[float] = []
    for placement, pos in sorted(segment.positions.items()):
        first = (first_seq or {}).get(placement)
        if first is None and n_back is not None:
            first = pos.seq - n_back + 1
        series = None
        if series_for is not None and first is not None:
            series = series_for(placement, pos, first)
        if series is None:
            series = store.read_raw(
                segment.subject, placement, start_us=start_us, end_us=end_us, session=segment.session
            )
        idx = select_samples(series, pos, first)
        if first is not None and known_missing is not None and placement in known_missing:
            check_read_back(segment, placement, series.seq[idx], first, pos.seq, known_missing[placement])
        if len(idx) < min_samples:
            return None
        t = series.time_us[idx]
        if int(t[0]) < 0:
            raise ClockNotSynced(
                f"{segment.subject} {placement}: samples of {pos.serial}/{pos.boot_epoch} are in sensor time "
                "(gateway clock not synchronised): waiting for a synchronised mapping of this boot",
                missing=0,
            )
        if not segment.final:
            own = _first_of_session(series, idx, segment.session)
            if own is None:
                return None  # none of the window is this session's
            if own > 0:
                session_from.append(int(t[own]))
        ticks = series.t_sensor_us[idx]
        span_ticks = int(ticks[-1] - ticks[0])
        rates.append(1e6 * (len(idx) - 1) / span_ticks if span_ticks > 0 else 100.0)
        picked[placement] = (t, series.acc_mps2[idx], series.gyr_dps[idx])
        clock[placement] = {
            "serial": pos.serial,
            "boot_epoch": int(pos.boot_epoch),
            "seq_first": int(series.seq[idx[0]]),
            "seq_last": int(series.seq[idx[-1]]),
            "t_sensor_us_first": int(ticks[0]),
            "time_us_first": int(t[0]),
            "t_sensor_us_last": int(ticks[-1]),
            "time_us_last": int(t[-1]),
            "rate": (int(t[-1] - t[0]) / span_ticks) if span_ticks > 0 else 1.0,
            "utc_synced": bool(t[0] >= 0),
        }
    rate_hz = float(round(float(np.median(rates))))
    period_us = 1e6 / rate_hz
    t_first = max(int(v[0][0]) for v in picked.values())
    t0 = int(np.ceil(t_first / period_us) * period_us) if period_us == int(period_us) else t_first
    t1 = min(int(v[0][-1]) for v in picked.values())
    n = int((t1 - t0) // period_us) + 1
    if n < min_samples:
        return None
    grid = np.arange(n, dtype=np.float64) * period_us
    sensors = {}
    for placement, (t, acc, gyr) in picked.items():
        rel = (t - t0).astype(np.float64)
        acc_g = np.column_stack([np.interp(grid, rel, acc[:, k]) for k in range(3)])
        gyr_g = np.column_stack([np.interp(grid, rel, gyr[:, k]) for k in range(3)])
        sensors[placement] = SensorData(placement, acc_g, gyr_g)
    rec = Recording(
        sampling_rate_hz=rate_hz,
        time_s=grid / 1e6,
        sensors=sensors,
        subject={"id": segment.subject},
        task=f"{segment.kind} of session {segment.session}",
    )
    return LoadedSegment(rec, t0, t1, clock, max(session_from) if session_from else None)


def check_read_back(
    segment: Segment,
    placement: str,
    seq: np.ndarray,
    first: int,
    last: int,
    missing: list[tuple[int, int]],
    strict: bool = False,
) -> None:
    """Every sample from the first one read back (not before ``first``: a final segment's boot may have
    samples from before its session opened, which it does not read; ``strict``: from ``first`` itself, for a
    reader continuing where it stopped) up to ``last`` that is not known missing was read back
    (SegmentIncomplete otherwise): an answer cut short or with a hole is never analysed."""
    if not len(seq) and not strict:
        return  # nothing of it here (e.g. a sensor lost before the session opened): too few samples, not a hole
    if not strict:
        first = max(first, int(seq.min()))
    absent = sum(max(0, min(b, last) - max(a, first) + 1) for a, b in missing)
    want = last - first + 1 - absent
    # `np.diff`'s arithmetic, without its overhead (a live window checks three placements a second)
    have = len(seq) if len(seq) < 2 or bool((np.subtract(seq[1:], seq[:-1]) > 0).all()) else len(np.unique(seq))
    if have < want:
        raise SegmentIncomplete(
            f"{segment.subject} {placement}: read back {have} of the {want} stored samples {first}..{last} "
            f"the {segment.kind} needs (the store answered short): retried",
            missing=want - have,
        )


def _first_of_session(series: RawSeries, idx: np.ndarray, session: str) -> int | None:
    """Position in ``idx`` of the first sample of ``session`` (0 when all are; None when none is)."""
    if not len(idx):
        return None
    if len(set(series.session)) == 1:  # the usual case: one session throughout
        return 0 if series.session[int(idx[0])] == session else None
    for k, i in enumerate(idx.tolist()):
        if series.session[i] == session:
            return k
    return None
