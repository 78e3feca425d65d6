"""Segments: what a closing marker asks the worker to analyse, read back from the store, never from memory.

A marker (`window`, `set_end`, `session_end`) names, per placement, the last sample ``(serial, boot_epoch,
seq)`` it refers to. The worker that receives it (any worker: Mosquitto hands messages round-robin):

1. checks the store holds every sample of the segment (`check_complete`; else `SegmentIncomplete`: the
   consumer waits, bounded, then defers and retries; a segment is never analysed with a hole);
2. reads the segment's samples (`load_segment`): the session's samples of each placement with sequence
   <= the marker's, and, for live segments, only the last ``lookback_s`` seconds; the three sensors are
   resampled by linear interpolation onto one common grid at the sensors' rate (their stored UTC times,
   from each batch's clock mapping, differ by a fraction of a sample);
3. analyses it (`analytics.pipeline.analyze_recording`) and builds the result points with provenance
   (`segment_results`): the algorithm and schema versions and the clock mapping used per placement.

Which samples a segment holds is a pure function of the marker and the stored data (sequence numbers, not
arrival times): one worker or three store the same results. Versions (``result_version``): live window
and set segments 1 (provisional, flagged ``provisional``), the session's final analysis 2, each
re-analysis the stored version + 1 (`analytics.stores` never lets a lower version replace a higher one).

Units: timestamps µs (UTC), rates Hz, durations s, as in analytics.stores.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from analytics.recording.io import Recording, SensorData
from analytics.stores import Store
from analytics.stores.model import Provenance, RawSeries, SessionResults, results_from_document
from analytics.worker.errors import SegmentIncomplete
from sensor_gateway.uplink.envelope import Marker, SensorPosition

LIVE_VERSION = 1
FINAL_VERSION = 2
SEGMENT_KINDS = {"window": "window", "set_end": "set", "session_end": "session"}
MAX_SESSION_S = 6 * 3600.0
"""Longest session a final analysis looks back over, s (bounds the store scan when UTC is known)."""

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


def check_complete(store: Store, segment: Segment, rate_hz: float = 100.0) -> None:
    """Raise SegmentIncomplete unless every sample of the segment (per placement, from the first stored sample
    of the boot epoch, or the lookback, up to the marker's sequence) is in the store."""
    n_back = _lookback_samples(segment.lookback_s, rate_hz)
    for placement, pos in sorted(segment.positions.items()):
        progress = store.raw_progress(segment.subject, placement, pos.serial, pos.boot_epoch)
        if progress.seq_last is None or progress.seq_first is None or progress.seq_last < pos.seq:
            have = -1 if progress.seq_last is None else progress.seq_last
            raise SegmentIncomplete(
                f"{segment.subject} {placement}: store holds {pos.serial}/{pos.boot_epoch} up to seq {have}, "
                f"the {segment.kind} marker needs {pos.seq}",
                missing=pos.seq - have,
            )
        lo = progress.seq_first if n_back is None else max(progress.seq_first, pos.seq - n_back + 1)
        stored = store.count_raw(segment.subject, placement, pos.serial, pos.boot_epoch, lo, pos.seq)
        expected = pos.seq - lo + 1
        if stored < expected:
            raise SegmentIncomplete(
                f"{segment.subject} {placement}: {expected - stored} of samples {lo}..{pos.seq} not yet stored",
                missing=expected - stored,
            )


@dataclass(frozen=True)
class LoadedSegment:
    recording: Recording
    t0_us: int
    """Timestamp (µs) of the common grid's first sample: result times are placed at t0 + t_s."""
    end_us: int
    clock: dict[str, Any]
    """Per placement: sensor identity, first and last stored (t_sensor_us, time_us) and the rate between them."""


def _select(series: RawSeries, pos: SensorPosition, n_back: int | None) -> np.ndarray:
    keep = (series.seq <= pos.seq) & (series.boot_epoch == pos.boot_epoch)
    keep &= np.array([s == pos.serial for s in series.serial], dtype=bool)
    if n_back is not None:
        keep &= series.seq > pos.seq - n_back
    return np.flatnonzero(keep)


def load_segment(store: Store, segment: Segment, min_samples: int = 200) -> LoadedSegment | None:
    """Read the segment's samples of every placement and resample them onto one grid (None: too few)."""
    start_us = end_us = None
    if segment.t_utc_s is not None:
        end_us = round((segment.t_utc_s + 60.0) * 1e6)
        span = segment.lookback_s + 60.0 if segment.lookback_s is not None else MAX_SESSION_S
        start_us = end_us - round(span * 1e6)
    picked: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    clock: dict[str, Any] = {}
    rates: list[float] = []
    for placement, pos in sorted(segment.positions.items()):
        series = store.read_raw(segment.subject, placement, start_us=start_us, end_us=end_us, session=segment.session)
        idx = _select(series, pos, _lookback_samples(segment.lookback_s))
        if len(idx) < min_samples:
            return None
        t = series.time_us[idx]
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
    t0 = max(int(v[0][0]) for v in picked.values())
    t1 = min(int(v[0][-1]) for v in picked.values())
    period_us = 1e6 / rate_hz
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
    return LoadedSegment(rec, t0, t1, clock)


def analysis_id(segment: Segment, version: int, algorithm: str) -> str:
    """Deterministic id of one analysis run (same segment, version and algorithm -> same id in any worker)."""
    text = f"{segment.subject}|{segment.session}|{segment.marker_id}|{version}|{algorithm}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def segment_results(
    segment: Segment, loaded: LoadedSegment, doc: dict[str, Any], version: int, algorithm: str
) -> SessionResults:
    """Result points of an analysed segment (provisional ones flagged), replacing its whole time range."""
    if not segment.final:
        doc = _flag_provisional(doc)
    provenance = Provenance(
        analysis_id=analysis_id(segment, version, algorithm),
        result_version=version,
        algorithm=algorithm,
        clock=loaded.clock,
    )
    results = results_from_document(
        doc, subject=segment.subject, session=segment.session, t0_us=loaded.t0_us, provenance=provenance
    )
    points = results.points
    if not segment.final:
        # live segments write strides (windows) or sets (set ends), never a session summary
        points = tuple(p for p in points if p.measurement != "session_summary")
    return replace(results, points=points, start_us=loaded.t0_us, end_us=max(results.end_us, loaded.end_us))


def _flag_provisional(doc: dict[str, Any]) -> dict[str, Any]:
    doc = json.loads(json.dumps(doc))
    for stride in doc["gait"]["strides"]:
        stride["flags"] = [*stride.get("flags", []), "provisional"]
    for ex in doc["exercises"]:
        ex["flags"] = [*ex.get("flags", []), "provisional"]
    return doc
