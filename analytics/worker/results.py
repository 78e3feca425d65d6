"""Result points of an analysed segment (`segment_results`): the analysis document with its gaps and provisional
flags, as points with provenance (`analysis_id`, the result version, the algorithm, the clock mapping used per
placement), ready for `Store.replace_results` or `Store.write_live`.

Units: timestamps µs (UTC), durations s, as in analytics.stores.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from analytics.stores.model import LIVE_OF, STRIDE, Point, Provenance, SessionResults, results_from_document
from analytics.worker.segments import LoadedSegment, Segment


def analysis_id(segment: Segment, version: int, algorithm: str) -> str:
    """Deterministic id of one analysis run (same segment, version and algorithm -> same id in any worker)."""
    text = f"{segment.subject}|{segment.session}|{segment.marker_id}|{version}|{algorithm}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def segment_results(
    segment: Segment,
    loaded: LoadedSegment,
    doc: dict[str, Any],
    version: int,
    algorithm: str,
    gaps: Mapping[str, list[tuple[int, int]]] | None = None,
    new_from_us: int | None = None,
) -> SessionResults:
    """Result points of an analysed segment.

    Final (session) segments: strides, sets and the summary, replacing the session's time range. Live segments:
    provisional points of the live measurements (``stride_live``, ``exercise_set_live``, flagged
    ``provisional``), no summary; a window keeps only strides ending at or after ``new_from_us`` (the part of the
    window no earlier window of this worker covered), not starting in the window's first second (edge) nor
    before the session's own samples (``session_from_us``).
    ``gaps``: known-missing sample ranges per placement: the segment is analysed across them and says so (a
    ``data_gap`` quality flag naming each gap; strides overlapping a gap flagged ``data_gap``)."""
    doc = json.loads(json.dumps(doc))
    gap_spans_us = _gap_spans(loaded, gaps or {})
    if gap_spans_us:
        _flag_gaps(doc, gaps or {}, gap_spans_us, loaded.t0_us)
    if not segment.final:
        _flag_provisional(doc)
        if segment.kind == "window":
            doc["gait"]["strides"] = [
                st
                for st in doc["gait"]["strides"]
                if st.get("start_s", 0.0) >= 1.0
                and (new_from_us is None or loaded.t0_us + round(float(st["end_s"]) * 1e6) >= new_from_us)
                and (
                    loaded.session_from_us is None
                    or loaded.t0_us + round(float(st["start_s"]) * 1e6) >= loaded.session_from_us
                )
            ]
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
        points = tuple(replace(p, measurement=LIVE_OF[p.measurement]) for p in points if p.measurement in LIVE_OF)
    return replace(results, points=points, start_us=loaded.t0_us, end_us=max(results.end_us, loaded.end_us))


def _gap_spans(loaded: LoadedSegment, gaps: Mapping[str, list[tuple[int, int]]]) -> list[tuple[int, int]]:
    """Known-missing ranges as µs intervals (from each placement's first/last sample times, linearly)."""
    spans = []
    for placement, ranges in gaps.items():
        c = loaded.clock.get(placement)
        if not c or not ranges:
            continue
        n = max(1, int(c["seq_last"]) - int(c["seq_first"]))
        per = (int(c["time_us_last"]) - int(c["time_us_first"])) / n
        for a, b in ranges:
            spans.append(
                (
                    int(c["time_us_first"] + (a - int(c["seq_first"])) * per),
                    int(c["time_us_first"] + (b - int(c["seq_first"]) + 1) * per),
                )
            )
    return spans


def _flag_gaps(
    doc: dict[str, Any], gaps: Mapping[str, list[tuple[int, int]]], spans_us: list[tuple[int, int]], t0_us: int
) -> None:
    names = [f"{p} seq {a}..{b}" for p, ranges in sorted(gaps.items()) for a, b in ranges]
    doc["quality"]["flags"].append(
        {
            "code": "data_gap",
            "severity": "warning",
            "message": "analysed across samples known to be missing: " + "; ".join(names),
        }
    )
    for stride in doc["gait"]["strides"]:
        a = t0_us + round(float(stride["start_s"]) * 1e6)
        b = t0_us + round(float(stride["end_s"]) * 1e6)
        if any(lo <= b and a <= hi for lo, hi in spans_us):
            stride["flags"] = [*stride.get("flags", []), "data_gap"]


def _flag_provisional(doc: dict[str, Any]) -> None:
    for stride in doc["gait"]["strides"]:
        stride["flags"] = [*stride.get("flags", []), "provisional"]
    for ex in doc["exercises"]:
        ex["flags"] = [*ex.get("flags", []), "provisional"]


def live_stride_points(
    doc: dict[str, Any], subject: str, session: str, t0_us: int, period_us: float, provenance: Provenance
) -> list[Point]:
    """``stride_live`` points of a live analysis's strides (``doc``, times in s from ``t0_us``), each at the grid
    instant (whole ``period_us`` from ``t0_us``) nearest its start, its ``start_s``/``end_s`` in s from there: two
    workers giving out the same stride write the same point."""
    results = results_from_document(doc, subject=subject, session=session, t0_us=t0_us, provenance=provenance)
    out = []
    for p in results.points:
        if p.measurement != STRIDE:
            continue
        k = round((p.time_us - t0_us) / period_us)
        at = t0_us + round(k * period_us)
        fields = dict(p.fields)
        for name in ("start_s", "end_s"):
            fields[name] = (t0_us + float(fields[name]) * 1e6 - at) / 1e6  # type: ignore[arg-type]
        out.append(replace(p, measurement=LIVE_OF[STRIDE], time_us=at, fields=fields))
    return out
