"""From a store to the typed report: which rows are read (`gather_report`, through the `Store` interface only, so
InfluxDB and the embedded store give the same report) and how they become a `SessionReport` (`report_from_rows`,
pure).

Fields of the session summary added after results were first stored (the stance SI's status, withheld reason,
event source, 95 % intervals, the thigh/pelvis cross-check; `analytics/stores/SCHEMA.md`) may be absent from
older results: absent is read as unknown, never as normal (`read_si` calls nothing within without an
interval, and a missing SI with no stored status is withheld for an unknown reason).
"""

from __future__ import annotations

import math
import re
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from analytics.algorithms.stride_checks import WITHHELD_SOURCES_DISAGREE, WITHHELD_TOO_FEW_STRIDES
from analytics.results.reading import DEFAULT_SI_BAND_PCT, SiReading, read_si
from analytics.stores import Store
from analytics.stores.model import EXERCISE_SET, SESSION_SUMMARY, STRIDE, ResultRow
from analytics.stores.plans import ExercisePlan, in_force
from gaitsym_common.uplink.vocabulary import EXERCISE_IDS, EXERCISES
from report.errors import InvalidReportInput, NoFinalResults, UnknownSession, UnknownSubject
from report.model import (
    Asymmetry,
    ExerciseLine,
    FlagNote,
    SessionReport,
    StanceEvidence,
    StanceStatus,
    TrendPoint,
)
from report.wording import SET_METRIC_ORDER

DEFAULT_TREND_WEEKS = 12.0
"""How far back the trend reaches before the reported session (weeks): the study's programme is 6 weeks."""
MAX_ID_CHARS = 200
"""Longest subject or session id accepted (ids are free text from the network: bounded)."""
WEEK_US = 7 * 86400 * 1_000_000
ADHERENCE_DAYS = 7
"""Sets done are compared with the plan (sets per week) over the days up to and including the session."""
DAY_US = 86400 * 1_000_000
NOT_EXERCISES = ("stand", "walk")
"""Activities of the vocabulary that are not exercises of the programme (calibration, the gait outcome)."""
_SET_FLAG = re.compile(r"(?:^|,)\s*([a-z][a-z0-9_]*):\s*")
"""A stored exercise flag is "code: message"; several are joined with commas."""


def check_id(kind: str, value: str) -> str:
    """A subject or session id as given on the command line: non-empty, bounded, printable."""
    if not value or not value.strip():
        raise InvalidReportInput(f"{kind}: an empty id")
    if len(value) > MAX_ID_CHARS:
        raise InvalidReportInput(f"{kind}: {len(value)} characters; ids are at most {MAX_ID_CHARS}")
    if not value.isprintable():
        raise InvalidReportInput(f"{kind}: {value!r} holds control characters")
    return value


# ---------------------------------------------------------------------------------------------------- reading


def gather_report(
    store: Store,
    subject: str,
    *,
    session: str | None = None,
    band_pct: float = DEFAULT_SI_BAND_PCT,
    trend_weeks: float = DEFAULT_TREND_WEEKS,
    now_us: int | None = None,
) -> SessionReport:
    """Read what the report of ``subject``'s ``session`` (None: the latest with final results) needs.

    Raises UnknownSubject, UnknownSession, NoFinalResults (typed, naming the id); store failures propagate as
    `analytics.stores.errors.StoreError` (the caller names the store).
    """
    check_id("subject", subject)
    if session is not None:
        check_id("session", session)
    if not (isinstance(band_pct, int | float) and math.isfinite(band_pct) and band_pct > 0):
        raise InvalidReportInput(f"band: {band_pct!r} is not a positive percentage")
    if not (math.isfinite(trend_weeks) and 0 < trend_weeks <= 520):
        raise InvalidReportInput(f"trend weeks: {trend_weeks!r} is not between 0 and 520 weeks")
    now_us = int(time.time() * 1e6) if now_us is None else now_us
    window_us = round(trend_weeks * WEEK_US)
    if session is not None:
        rows = store.read_results(subject, session=session)
        if not _summaries(rows):
            _no_such_session(store, subject, session, rows)
    else:
        rows = store.read_results(subject, start_us=now_us - window_us)
        if not _summaries(rows):  # the latest session is older than the window: read everything once
            rows = store.read_results(subject)
        if not _summaries(rows):
            if rows or store.read_results(subject, live=True):
                raise NoFinalResults(
                    f"subject {subject!r} has only provisional (live) results: the final analysis of its session "
                    "is not stored yet; try again when the session has ended"
                )
            raise UnknownSubject(
                f"no results for subject {subject!r} in this store: the id is not known here (check its spelling "
                "and the store), or nothing of this subject has been analysed yet"
            )
    latest = _latest_session(rows) if session is None else session
    session_rows = [r for r in rows if r.fields.get("session") == latest]
    t_us = min(r.time_us for r in _summaries(session_rows))
    history = store.read_results(subject, start_us=t_us - window_us, end_us=t_us)
    return report_from_rows(
        subject,
        latest,
        session_rows,
        history,
        plans=store.read_plans(subject),
        band_pct=band_pct,
        trend_weeks=trend_weeks,
        generated_us=now_us,
    )


def _summaries(rows: Iterable[ResultRow]) -> list[ResultRow]:
    return [r for r in rows if r.measurement == SESSION_SUMMARY]


def _latest_session(rows: Sequence[ResultRow]) -> str:
    summaries = _summaries(rows)
    newest = max(summaries, key=lambda r: (r.time_us, str(r.fields.get("session", ""))))
    return str(newest.fields.get("session", ""))


def _no_such_session(store: Store, subject: str, session: str, rows: Sequence[ResultRow]) -> None:
    if rows or store.read_results(subject, session=session, live=True):
        raise NoFinalResults(
            f"session {session!r} of subject {subject!r} has only provisional (live) results: its final analysis "
            "is not stored yet; try again when the session has ended"
        )
    known = _summaries(store.read_results(subject))
    if not known:
        raise UnknownSubject(
            f"no results for subject {subject!r} in this store: the id is not known here (check its spelling and "
            "the store), or nothing of this subject has been analysed yet"
        )
    first_seen = {str(r.fields.get("session", "")): r.time_us for r in sorted(known, key=lambda r: -r.time_us)}
    sessions = sorted(first_seen, key=lambda s: first_seen[s])
    shown = ", ".join(repr(s) for s in sessions[-5:])
    raise UnknownSession(
        f"subject {subject!r} has no stored session {session!r} ({len(sessions)} stored; the latest: {shown})"
    )


# ---------------------------------------------------------------------------------------------------- building


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _int(value: Any) -> int | None:
    number = _num(value)
    return None if number is None else round(number)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _interval(fields: Mapping[str, Any], *prefixes: str) -> tuple[float, float] | None:
    for prefix in prefixes:
        low, high = _num(fields.get(f"{prefix}_ci95_low_pct")), _num(fields.get(f"{prefix}_ci95_high_pct"))
        if low is not None and high is not None:
            return (low, high)
    return None


def _codes(text: Any) -> list[str]:
    return [c.strip() for c in str(text or "").split(",") if c.strip()]


def _inferred_reason(flags: Sequence[str]) -> str | None:
    """Why the stance numbers are missing, from the session's flags (results stored before the reason was)."""
    for code, reason in (
        ("thigh_sides_swapped", "side_labels_untrusted"),
        ("sides_uncertain", "side_labels_untrusted"),
        (WITHHELD_SOURCES_DISAGREE, WITHHELD_SOURCES_DISAGREE),
        (WITHHELD_TOO_FEW_STRIDES, WITHHELD_TOO_FEW_STRIDES),
        ("no_walking", "no_walking"),
    ):
        if code in flags:
            return reason
    return None


def stance_reading(both: Mapping[str, Any], band_pct: float) -> tuple[SiReading, StanceEvidence]:
    """The stance-time SI of a session summary (side none) read against the band, and its evidence."""
    raw_status = both.get("stance_si_status")
    status: StanceStatus = raw_status if raw_status in ("reported", "withheld") else "unknown"
    si = _num(both.get("stance_si_pct"))
    ci = _interval(both, "stance_si", "stance_time_s_si")
    flags = _codes(both.get("flags"))
    reason = _text(both.get("stance_si_withheld_reason"))
    if status == "withheld" or si is None:
        reading = read_si(None, None, band_pct=band_pct, withheld_reason=reason or _inferred_reason(flags) or "unknown")
    else:
        reading = read_si(si, ci, band_pct=band_pct)
    evidence = StanceEvidence(
        status=status,
        withheld_reason=reading.withheld_reason,
        event_source=_text(both.get("stance_event_source")),
        cross_check_thigh_si_pct=_num(both.get("cross_check_thigh_si_pct")),
        cross_check_pelvis_si_pct=_num(both.get("cross_check_pelvis_si_pct")),
    )
    return reading, evidence


def _side_metric(
    metric: str, sides: Mapping[str, Mapping[str, Any]], both: Mapping[str, Any], band_pct: float, reason: str | None
) -> Asymmetry:
    left, right = _num(sides["left"].get(metric)), _num(sides["right"].get(metric))
    si = _num(both.get(f"{metric}_si_pct"))
    diff = _num(both.get(f"{metric}_diff"))
    if diff is None and left is not None and right is not None:
        diff = left - right
    if si is None:
        if left is not None and right is not None:
            reason = "asymmetry_undefined"
        reading = read_si(None, None, band_pct=band_pct, withheld_reason=reason or "no_value")
    else:
        reading = read_si(si, _interval(both, f"{metric}_si"), band_pct=band_pct)
    return Asymmetry(metric, left, right, diff, reading)


def _by_side(rows: Iterable[ResultRow]) -> dict[str, Mapping[str, Any]]:
    """Summary fields per side tag; of two rows of one side, the higher result_version."""
    out: dict[str, Mapping[str, Any]] = {"left": {}, "right": {}, "none": {}}
    version: dict[str, int] = {}
    for row in rows:
        side = row.tags.get("side", "")
        v = _int(row.fields.get("result_version")) or 0
        if side in out and v >= version.get(side, -1):
            out[side], version[side] = row.fields, v
    return out


def set_flags(text: Any) -> list[FlagNote]:
    """An exercise set's stored flags ("code: message, code: message") as notes."""
    text = str(text or "")
    found = list(_SET_FLAG.finditer(text))
    notes = []
    for i, match in enumerate(found):
        end = found[i + 1].start() if i + 1 < len(found) else len(text)
        notes.append(FlagNote(match[1], text[match.end() : end].strip()))
    return notes


def _plans_in_force(plans: Sequence[ExercisePlan], at_us: int) -> dict[tuple[str, str], ExercisePlan]:
    """The plan in force at ``at_us`` per (exercise, side): the latest point set by then, unless it cleared it."""
    return {(p.exercise, p.side): p for p in in_force([p for p in plans if p.time_us <= at_us])}


def _exercise_lines(
    session_sets: Sequence[ResultRow], week_sets: Sequence[ResultRow], plans: Mapping[tuple[str, str], ExercisePlan]
) -> list[ExerciseLine]:
    def key(row: ResultRow) -> tuple[str, str]:
        return (row.tags.get("exercise", ""), row.tags.get("side", "none"))

    groups: dict[tuple[str, str], list[ResultRow]] = defaultdict(list)
    for row in session_sets:
        if key(row)[0] not in NOT_EXERCISES:
            groups[key(row)].append(row)
    in_week: dict[tuple[str, str], int] = defaultdict(int)
    for row in week_sets:
        in_week[key(row)] += 1
    keys = set(groups) | set(plans)
    order = {e: i for i, e in enumerate(EXERCISE_IDS)}
    side_order = {"left": 0, "right": 1, "none": 2}
    lines = []
    for exercise, side in sorted(keys, key=lambda k: (order.get(k[0], len(order)), k[0], side_order.get(k[1], 3))):
        rows = groups.get((exercise, side), [])
        reps = [_int(r.fields.get("reps")) for r in rows]
        holds = [h for r in rows if (h := _num(r.fields.get("hold_mean_s"))) is not None]
        names = [m for m in SET_METRIC_ORDER if any(m in r.fields for r in rows)]
        extra = sorted(
            {k for r in rows for k in r.fields if k.endswith(("_deg", "_pct")) and k not in SET_METRIC_ORDER}
        )
        metrics = []
        for name in [*names, *extra]:
            values = [v for r in rows if (v := _num(r.fields.get(name))) is not None]
            metrics.append((name, sum(values) / len(values) if values else None))
        flags: list[FlagNote] = []
        for row in sorted(rows, key=lambda r: r.time_us):
            for note in set_flags(row.fields.get("flags")):
                set_no = _int(row.fields.get("set"))
                flags.append(FlagNote(note.code, f"set {set_no}: {note.detail}" if set_no else note.detail))
        plan = plans.get((exercise, side))
        lines.append(
            ExerciseLine(
                exercise=exercise,
                label=EXERCISES[exercise].label if exercise in EXERCISES else exercise,
                side=side,
                sets_done=len(rows),
                sets_week=in_week[(exercise, side)],
                planned_per_week=None if plan is None else plan.sets_per_week,
                planned_reps_per_set=None if plan is None else plan.reps_per_set,
                reps=None if all(r is None for r in reps) else sum(r for r in reps if r is not None),
                hold_mean_s=sum(holds) / len(holds) if holds else None,
                metrics=tuple(metrics),
                flags=tuple(flags),
            )
        )
    return lines


def _excluded(strides: Iterable[ResultRow]) -> list[tuple[str, int]]:
    counts: dict[str, int] = defaultdict(int)
    for row in strides:
        for code in _codes(row.fields.get("flags")):
            counts[code] += 1
    return sorted(counts.items())


def trend_points(history: Sequence[ResultRow], band_pct: float) -> list[TrendPoint]:
    """One point per session with a final summary, oldest first."""
    by_session: dict[str, list[ResultRow]] = defaultdict(list)
    for row in _summaries(history):
        by_session[str(row.fields.get("session", ""))].append(row)
    points = []
    for session, rows in by_session.items():
        sides = _by_side(rows)
        reading, evidence = stance_reading(sides["none"], band_pct)
        points.append(
            TrendPoint(
                session=session,
                time_us=min(r.time_us for r in rows),
                stance=reading,
                stance_status=evidence.status,
                drop_left_deg=_num(sides["left"].get("pelvic_drop_deg")),
                drop_right_deg=_num(sides["right"].get("pelvic_drop_deg")),
            )
        )
    return sorted(points, key=lambda p: (p.time_us, p.session))


def report_from_rows(
    subject: str,
    session: str,
    session_rows: Sequence[ResultRow],
    history: Sequence[ResultRow],
    *,
    plans: Sequence[ExercisePlan] = (),
    band_pct: float = DEFAULT_SI_BAND_PCT,
    trend_weeks: float = DEFAULT_TREND_WEEKS,
    generated_us: int = 0,
) -> SessionReport:
    """The report of one session from its result rows and the subject's summaries in the trend window. Pure."""
    summaries = _summaries(session_rows)
    if not summaries:
        raise UnknownSession(f"subject {subject!r} has no stored session summary for session {session!r}")
    sides = _by_side(summaries)
    both = sides["none"]
    stance, evidence = stance_reading(both, band_pct)
    flags = tuple(sorted(set(_codes(both.get("flags")))))
    gate_reason = evidence.withheld_reason if stance.verdict == "withheld" else None
    # pelvic drop is withheld by the side-label and standing-reference flags, never by the stance gate
    drop_reason = "side_labels_untrusted" if {"thigh_sides_swapped", "sides_uncertain"} & set(flags) else None
    if drop_reason is None and "no_standing_reference" in flags:
        drop_reason = "no_standing_reference"
    step = _side_metric("step_time_s", sides, both, band_pct, gate_reason)
    drop = _side_metric("pelvic_drop_deg", sides, both, band_pct, drop_reason)
    stance_asym = Asymmetry(
        "stance_time_s",
        _num(sides["left"].get("stance_time_s")),
        _num(sides["right"].get("stance_time_s")),
        _num(both.get("stance_time_s_diff")),
        stance,
    )
    history_rows = [r for r in history if r.fields.get("session") != session] + list(summaries)
    version = _int(both.get("result_version"))
    t_us = min(r.time_us for r in summaries)
    duration_s = _num(both.get("duration_s")) or _num(sides["left"].get("duration_s"))
    end_us = t_us + round((duration_s or 0.0) * 1e6)
    in_force_now = _plans_in_force(plans, end_us)
    session_sets = [r for r in session_rows if r.measurement == EXERCISE_SET]
    week_sets = session_sets + [
        r
        for r in history
        if r.measurement == EXERCISE_SET
        and r.fields.get("session") != session
        and end_us - ADHERENCE_DAYS * DAY_US < r.time_us <= end_us
    ]
    return SessionReport(
        subject=subject,
        session=session,
        time_us=t_us,
        duration_s=duration_s,
        result_version=version,
        algorithm=_text(both.get("algorithm")),
        band_pct=band_pct,
        n_strides=(_int(sides["left"].get("n_strides")), _int(sides["right"].get("n_strides"))),
        asymmetries=(stance_asym, step, drop),
        stance_evidence=evidence,
        exercises=tuple(_exercise_lines(session_sets, week_sets, in_force_now)),
        session_flags=flags,
        gaps=_text(both.get("gaps")),
        excluded_strides=tuple(_excluded(r for r in session_rows if r.measurement == STRIDE)),
        trend=tuple(trend_points(history_rows, band_pct)),
        trend_weeks=trend_weeks,
        has_plan=bool(in_force_now),
        generated_us=generated_us,
    )
