"""Result points: a gaitsym.result/1 document turned into stride, exercise-set and session-summary points, with
their provenance. Result values keep the units of gaitsym.result/1 (s, deg, %).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from analytics.stores.errors import InvalidBatch
from analytics.stores.points import EXERCISE_SET, SESSION_SUMMARY, STORE_SCHEMA, STRIDE, FieldValue, Point

NOT_EXERCISE_SETS = ("stand", "walk")
"""Activities stored as exercise_set points that are not exercise sets: calibration stands and walks."""


@dataclass(frozen=True)
class ResultRow:
    measurement: str
    time_us: int
    tags: Mapping[str, str]
    fields: Mapping[str, FieldValue]


def result_order(row: ResultRow) -> tuple[int, str, list[tuple[str, str]]]:
    """The order `Store.read_results` answers in: by time, then measurement, then tags (a stable order whatever
    the store)."""
    return (row.time_us, row.measurement, sorted(row.tags.items()))


@dataclass(frozen=True)
class Provenance:
    """Where a result comes from: stored as fields on every result point."""

    analysis_id: str
    """Unique id of this analysis run (a field, never a tag)."""
    result_version: int
    """Increases with every re-analysis of a session; a lower version never replaces a higher one."""
    algorithm: str
    """Generator name and version, e.g. ``gaitsym-analytics 0.1.0``."""
    result_schema: str = "gaitsym.result/1"
    clock: Mapping[str, Any] = field(default_factory=dict)
    """Clock mapping used per placement (ClockMapping fields), stored as compact JSON."""

    def fields(self) -> dict[str, FieldValue]:
        return {
            "analysis_id": self.analysis_id,
            "result_version": int(self.result_version),
            "algorithm": self.algorithm,
            "result_schema": self.result_schema,
            "store_schema": STORE_SCHEMA,
            "clock": json.dumps(dict(self.clock), sort_keys=True, separators=(",", ":")),
        }


@dataclass(frozen=True)
class SessionResults:
    """The result points of one analysed session (or segment) and the time range they replace."""

    subject: str
    session: str
    start_us: int
    end_us: int
    result_version: int
    points: tuple[Point, ...]


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def results_from_document(
    doc: Mapping[str, Any], *, subject: str, session: str, t0_us: int, provenance: Provenance
) -> SessionResults:
    """Turn a gaitsym.result/1 document into stride, exercise-set and session-summary points.

    ``t0_us`` is the timestamp (µs) of the recording's first sample: result times (s from that sample) are
    placed at ``t0_us + round(t_s·1e6)``. Null values are left out (a withheld number is absent, not zero).
    """
    if doc.get("schema") != "gaitsym.result/1":
        raise InvalidBatch(f"schema: {doc.get('schema')!r} is not gaitsym.result/1")
    common = {**provenance.fields(), "session": session}
    points: list[Point] = []

    def at(t_s: float) -> int:
        return t0_us + round(float(t_s) * 1e6)

    for stride in doc["gait"]["strides"]:
        fields: dict[str, FieldValue] = dict(common)
        for key in ("start_s", "end_s", "stance_time_s", "swing_time_s", "step_time_s", "pelvic_drop_deg"):
            value = _num(stride.get(key))
            if value is not None:
                fields[key] = value
        fields["bout"] = int(stride["bout"])
        fields["included"] = bool(stride["included"])
        if stride.get("flags"):
            fields["flags"] = ",".join(stride["flags"])
        points.append(Point(STRIDE, (("side", stride["side"]), ("subject", subject)), fields, at(stride["start_s"])))
    for ex in doc["exercises"]:
        fields = dict(common)
        fields.update({"set": int(ex["set"]), "start_s": float(ex["start_s"]), "end_s": float(ex["end_s"])})
        if ex.get("reps") is not None:
            fields["reps"] = int(ex["reps"])
        holds = [float(h) for h in ex.get("holds_s", [])]
        fields["n_holds"] = len(holds)
        if holds:
            fields["hold_mean_s"] = sum(holds) / len(holds)
        for name, value in sorted(ex.get("metrics", {}).items()):
            num = _num(value)
            if num is not None:
                fields[name] = num
        if ex.get("flags"):
            fields["flags"] = ",".join(ex["flags"])
        fields["end_unix_ms"] = at(ex["end_s"]) // 1000
        tags = (("exercise", ex["exercise"]), ("side", ex["side"]), ("subject", subject))
        points.append(Point(EXERCISE_SET, tags, fields, at(ex["start_s"])))
    summary = doc["gait"]["summary"]
    duration_s = float(doc["recording"]["duration_s"])
    for side in ("left", "right"):
        fields = {**common, "n_strides": int(summary["n_strides"][side]), "duration_s": duration_s}
        for key in ("stance_time_s", "step_time_s", "pelvic_drop_deg"):
            value = _num((summary.get(key) or {}).get(side))
            if value is not None:
                fields[key] = value
        points.append(Point(SESSION_SUMMARY, (("side", side), ("subject", subject)), fields, t0_us))
    both: dict[str, FieldValue] = {**common, "duration_s": duration_s}
    for key in ("stance_si_pct", "stance_ratio", "stance_ga_pct"):
        value = _num(summary.get(key))
        if value is not None:
            both[key] = value
    for metric, block in sorted((summary.get("asymmetry") or {}).items()):
        for key in ("diff", "si_pct", "ratio", "ga_pct"):
            value = _num(block.get(key))
            if value is not None:
                both[f"{metric}_{key}"] = value
    both.update(evidence_fields(summary))
    both["n_sets"] = sum(1 for ex in doc["exercises"] if ex.get("exercise") not in NOT_EXERCISE_SETS)
    both["n_flags"] = len(doc["quality"]["flags"])
    if doc["quality"]["flags"]:
        both["flags"] = ",".join(sorted({str(f["code"]) for f in doc["quality"]["flags"]}))
    warnings = sorted({str(f["code"]) for f in doc["quality"]["flags"] if f.get("severity") != "info"})
    both["n_warnings"] = len(warnings)
    if warnings:
        both["warning_flags"] = ",".join(warnings)
    both["end_unix_ms"] = (t0_us + round(duration_s * 1e6)) // 1000
    gap_notes = [str(f.get("message", "")) for f in doc["quality"]["flags"] if f.get("code") == "data_gap"]
    if gap_notes:
        both["gaps"] = "; ".join(gap_notes)
    points.append(Point(SESSION_SUMMARY, (("side", "none"), ("subject", subject)), both, t0_us))
    end_us = max([t0_us + round(duration_s * 1e6), *(p.time_us for p in points)])
    return SessionResults(subject, session, t0_us, end_us, int(provenance.result_version), tuple(points))


def _interval(value: Any) -> tuple[float, float] | None:
    if not isinstance(value, list | tuple) or len(value) != 2:
        return None
    low, high = _num(value[0]), _num(value[1])
    return None if low is None or high is None else (low, high)


def evidence_fields(summary: Mapping[str, Any]) -> dict[str, FieldValue]:
    """What the session's asymmetry rests on, as session-summary fields (side ``none``): the stance SI's status
    and withheld reason, its event source, every 95 % interval of an SI and the thigh/pelvis cross-check.

    Absent from older results (and from documents without ``stance_asymmetry_evidence``): readers treat an
    absent field as unknown, never as normal."""
    out: dict[str, FieldValue] = {}
    evidence = summary.get("stance_asymmetry_evidence")
    if isinstance(evidence, Mapping):
        status = evidence.get("status")
        if status in ("reported", "withheld"):
            out["stance_si_status"] = str(status)
            if status == "withheld":
                out["stance_si_withheld_reason"] = str(evidence.get("withheld_reason") or "no_value")
        if evidence.get("event_source"):
            out["stance_event_source"] = str(evidence["event_source"])
        interval = _interval(evidence.get("si_ci95_pct"))
        if interval is not None and status != "withheld":
            out["stance_si_ci95_low_pct"], out["stance_si_ci95_high_pct"] = interval
        cross = evidence.get("cross_check")
        if isinstance(cross, Mapping):
            for key, name in (("thigh_events_si_pct", "thigh"), ("pelvis_events_si_pct", "pelvis")):
                value = _num(cross.get(key))
                if value is not None:
                    out[f"cross_check_{name}_si_pct"] = value
    for metric, block in sorted((summary.get("asymmetry") or {}).items()):
        interval = _interval(block.get("si_ci95_pct")) if isinstance(block, Mapping) else None
        if interval is not None:
            out[f"{metric}_si_ci95_low_pct"], out[f"{metric}_si_ci95_high_pct"] = interval
    return out
