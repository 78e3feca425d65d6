"""The analysis of one recording: three IMUs in, one gaitsym.result/1 document out (issue 3). Pure: no IO.

Steps (each in its own algorithm module, see there for the papers and units):

1. Quality of each stream (signal_quality): saturated samples and stuck (dropped-out) streams.
2. Pelvis (pelvic_obliquity.pelvis_signals, computed once and shared with the exercise analysis): gyro bias
   from still periods and orientation (tilt), walking bouts and pelvis-only events (gait_events), body axes
   for obliquity (pelvis_alignment on tilt-levelled accelerations, pelvic_obliquity.obliquity_axes), quiet
   standing and the standing reference of obliquity.
3. Thighs: axes from standing + walking (thigh_alignment), is each sensor on a thigh and on its named side
   (side_check), toe offs and initial contacts per leg (thigh_events).
4. Events per walking bout: from both thighs when both are usable over the whole bout, otherwise from the
   pelvis alone (with sides from a usable thigh when there is one); ``gait.bouts[i].source`` says which. Thigh
   contacts must be confirmed by a pelvis contact (stride_checks.confirm_contacts), the rest are dropped.
5. Strides per side with stance, swing and step time and the pelvic drop relative to standing; strides that
   break a plausibility rule (stride_checks.stride_problems) are flagged and excluded; the summary rule
   (analytics.results) per session and per bout, with a bootstrap CI of SI (per bout only with
   MIN_STRIDES_PER_SIDE strides a side); the session's stance and step numbers are withheld when too few strides
   survive or the thigh and pelvis events disagree (stride_checks.asymmetry_verdict), and
   ``gait.summary.stance_asymmetry_evidence`` says what the asymmetry rests on.
6. Exercises (exercise_sets.analyze_exercise_sets, given the pelvis signals of step 2).
7. Flags: anything that limits a number is said next to it (``quality.flags``); side-labelled numbers that
   cannot be trusted are withheld (null) and listed in ``quality.withheld``.

Times in s from the first sample, angles in deg, angular velocities deg/s.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np

from analytics.algorithms.exercise_sets import analyze_exercise_sets
from analytics.algorithms.gait_events import GaitEvents
from analytics.algorithms.pelvic_obliquity import WALK_MARGIN_S, pelvic_drop_deg, pelvis_signals, standing_reference
from analytics.algorithms.pelvis_alignment import BodyAxes
from analytics.algorithms.side_check import SEGMENT_EXCURSION_DEG, check_thigh_sides, rotation_excursion_deg
from analytics.algorithms.signal_quality import spans_s, stream_quality
from analytics.algorithms.stride_checks import (
    CONFIRM_STEP_FRACTION,
    MIN_STRIDES_PER_SIDE,
    SOURCES_DISAGREE_PP,
    STRIDE_FLAGS,
    WITHHELD_SOURCES_DISAGREE,
    WITHHELD_TOO_FEW_STRIDES,
    asymmetry_verdict,
    bout_rhythm_s,
    confirm_contacts,
    median_step_s,
    stride_problems,
)
from analytics.algorithms.thigh_alignment import ThighAxes, estimate_thigh_axes
from analytics.algorithms.thigh_events import ThighEvents, detect_thigh_events
from analytics.errors import AnalyticsError, InsufficientData, InvalidSignal
from analytics.recording.io import Recording
from analytics.results import RESULT_SCHEMA, add_step_times, asymmetry, mark_included, summarize_gait
from analytics.results.summary import ASYMMETRY_METRICS, Resamples

GENERATOR_NAME = "gaitsym.analysis"
GENERATOR_VERSION = "0.1.0"
SIDES = ("left", "right")
THIGHS = {"left": "left_thigh", "right": "right_thigh"}
MAX_STEP_S = 1.5
"""A gap between contacts longer than this (s) ends a thigh-derived bout (as in gait_events)."""
MIN_BOUT_ICS = 4
"""Fewest initial contacts in a walking bout (two strides)."""
MATCH_S = 0.15
"""A pelvis IC within this time (s) of a thigh IC of one leg is that leg's contact."""
LOW_CONFIDENCE = 0.5
"""Alignment confidence below this is flagged."""
SIDE_LABELLED = (
    "gait.summary.stance_time_s",
    "gait.summary.step_time_s",
    "gait.summary.stance_si_pct",
    "gait.summary.stance_ratio",
    "gait.summary.stance_ga_pct",
    "gait.summary.pelvic_drop_deg",
    "gait.summary.asymmetry",
    "gait.bouts.asymmetry",
)
STEP_AND_STANCE = (
    "gait.summary.stance_time_s",
    "gait.summary.step_time_s",
    "gait.summary.stance_si_pct",
    "gait.summary.stance_ratio",
    "gait.summary.stance_ga_pct",
    "gait.summary.asymmetry.stance_time_s",
    "gait.summary.asymmetry.step_time_s",
)
"""What the stride-count and event-source gate withholds (stride_checks.asymmetry_verdict): every number that
rests on the contacts' timing."""

ExerciseAnalyzer = Callable[[Recording], list[dict[str, Any]]]


def _excursion(acc: np.ndarray, gyr: np.ndarray, fs: float, walking: np.ndarray) -> float | None:
    """rotation_excursion_deg over the walking samples, None when there is too little walking to judge."""
    try:
        return rotation_excursion_deg(acc, gyr, fs, walking)
    except InsufficientData:
        return None


def default_exercise_analyzer() -> ExerciseAnalyzer | None:
    """analytics.algorithms.exercise_sets.analyze_exercise_sets (analyze_recording passes it the pelvis
    signals it has already computed)."""
    analyzer: ExerciseAnalyzer = analyze_exercise_sets
    return analyzer


class _Flags:
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add(self, code: str, severity: str, message: str, **extra: Any) -> None:
        self.items.append({"code": code, "severity": severity, "message": message, **extra})


def analyze_recording(
    recording: Recording,
    *,
    exercise_analyzer: ExerciseAnalyzer | bool | None = True,
    include_obliquity: bool = False,
) -> dict[str, Any]:
    """Analyse one recording into a gaitsym.result/1 document (source "analysis"); see the module docstring.

    ``exercise_analyzer``: a callable (recording) -> list of exercise_set entries; True (default) uses
    default_exercise_analyzer(); None or False analyses no exercises. ``include_obliquity`` adds the
    ``pelvis`` block with the obliquity trajectory relative to standing. Raises InsufficientData without a
    pelvis sensor or with too short a recording, InvalidSignal for malformed arrays.
    """
    if not isinstance(recording, Recording):
        raise InvalidSignal(f"analyze_recording needs an analytics.recording.io.Recording, got {type(recording)}")
    if "pelvis" not in recording.sensors:
        raise InsufficientData(
            f"the recording has no pelvis sensor (placements: {', '.join(recording.sensors) or 'none'}); "
            "pelvic drop and gait events need it"
        )
    fs = float(recording.sampling_rate_hz)
    n = recording.n_samples
    flags = _Flags()
    withheld: list[str] = []
    alignment: dict[str, dict[str, Any]] = {}
    flags.add(
        "dynamic_calibration_relative",
        "info",
        "pelvic angles are dynamic and relative to the patient's own quiet standing in this session: static "
        "pelvic obliquity cannot be separated from how the sensor sits on the body",
    )

    # 1. stream quality
    bad: dict[str, np.ndarray] = {}
    saturated_any = np.zeros(n, dtype=bool)
    for placement, data in recording.sensors.items():
        q = stream_quality(data.acc_mps2, data.gyr_dps, fs)
        bad[placement] = q.stuck
        saturated_any |= q.saturated
        for start, end in spans_s(q.saturated, fs):
            flags.add(
                "saturation",
                "warning",
                f"{placement}: accelerometer or gyroscope at full scale; strides overlapping it are excluded",
                placement=placement,
                start_s=start,
                end_s=end,
            )
        for start, end in spans_s(q.stuck, fs):
            flags.add(
                "sensor_dropout",
                "warning",
                f"{placement}: the stream repeats one sample (sensor dropped out); no events from it here",
                placement=placement,
                start_s=start,
                end_s=end,
            )

    # 2. pelvis (one chain shared with the exercise analysis, pelvic_obliquity.pelvis_signals)
    pelvis = recording.sensors["pelvis"]
    ps = pelvis_signals(pelvis.acc_mps2, pelvis.gyr_dps, fs, unusable=bad["pelvis"])
    events, gyro_bias, body_axes, pelvis_up = ps.events, ps.gyro_bias_dps, ps.axes, ps.up_axis
    walking, standing = ps.walking, ps.standing
    reference = None
    if events.axes is None:
        flags.add("no_walking", "warning", "no walking bout found: no gait events, strides or pelvic drop")
    else:
        assert ps.obliquity_raw_deg is not None
        try:
            reference = standing_reference(ps.obliquity_raw_deg, standing, fs)
        except InsufficientData as exc:
            flags.add("no_standing_reference", "withheld", f"pelvic drop withheld: {exc}")
            withheld.append("gait.summary.pelvic_drop_deg")
    pelvis_excursion = _excursion(pelvis.acc_mps2, pelvis.gyr_dps, fs, walking)
    pelvis_ok = pelvis_excursion is None or pelvis_excursion < SEGMENT_EXCURSION_DEG
    alignment["pelvis"] = _pelvis_alignment(events, body_axes, standing, fs, flags)
    alignment["pelvis"]["gyro_bias_dps"] = None if gyro_bias is None else [float(x) for x in gyro_bias]
    if not pelvis_ok:
        flags.add(
            "wrong_segment",
            "withheld",
            f"pelvis: it swings like a thigh while walking ({pelvis_excursion:.0f} deg per stride about a horizontal "
            f"axis, a pelvis stays below {SEGMENT_EXCURSION_DEG:.0f}): it is not on the pelvis; all gait numbers "
            "withheld",
            placement="pelvis",
        )
        alignment["pelvis"]["confidence"] = 0.0

    # 3. thighs
    thigh_axes: dict[str, ThighAxes] = {}
    flexion: dict[str, np.ndarray] = {}
    for side, placement in THIGHS.items():
        if placement not in recording.sensors:
            flags.add(
                "thigh_missing",
                "warning",
                f"no {placement} sensor: events of walking bouts come from the pelvis alone (less accurate)",
                placement=placement,
            )
            continue
        data = recording.sensors[placement]
        if walking.sum() < 10:
            continue
        excursion = _excursion(data.acc_mps2, data.gyr_dps, fs, walking & ~bad[placement])
        if excursion is not None and excursion < SEGMENT_EXCURSION_DEG:
            flags.add(
                "wrong_segment",
                "warning",
                f"{placement}: it swings only {excursion:.0f} deg per stride about a horizontal axis while walking;"
                f" a thigh sweeps over {SEGMENT_EXCURSION_DEG:.0f}: not used (is it on the thigh?)",
                placement=placement,
            )
            continue
        try:
            axes = estimate_thigh_axes(data.acc_mps2, data.gyr_dps, fs, walking & ~bad[placement], standing)
        except InsufficientData as exc:
            flags.add("thigh_unusable", "warning", f"{placement}: {exc}", placement=placement)
            continue
        thigh_axes[side] = axes
        flexion[side] = axes.flexion_velocity_dps(data.gyr_dps)
        alignment[placement] = {
            "confidence": float(np.clip(axes.confidence, 0.0, 1.0)),
            "long_axis": list(axes.long_axis),
            "flexion_axis": list(axes.flexion_axis),
            "forward": list(axes.forward),
            "long_axis_source": axes.long_axis_source,
            "axis_confidence": axes.axis_confidence,
            "sign_confidence": axes.sign_confidence,
        }
        if axes.confidence < LOW_CONFIDENCE:
            flags.add(
                "low_alignment_confidence",
                "warning",
                f"{placement}: alignment confidence {axes.confidence:.2f}"
                + (" (no quiet standing: long axis from walking)" if axes.long_axis_source == "walking" else ""),
                placement=placement,
            )

    sides_trusted = True
    if flexion and walking.sum() >= 4 * fs:
        check = check_thigh_sides(pelvis.gyr_dps @ pelvis_up, flexion, fs, walking)
        for side in flexion:
            alignment[THIGHS[side]]["side_check_score"] = check.score
        if check.swapped is True:
            sides_trusted = False
            flags.add(
                "thigh_sides_swapped",
                "withheld",
                "the thigh sensors seem to be on the opposite legs to their names (pelvis rotation runs with "
                f"the other thigh, score {check.score:.2f}): side-labelled numbers withheld",
            )
        elif check.swapped is None:
            flags.add(
                "thigh_sides_unconfirmed",
                "warning",
                f"the thigh sensors' sides could not be confirmed against the pelvis (score {check.score:.2f})",
            )
    elif not flexion and events.walking_bouts:
        flags.add(
            "sides_from_pelvis",
            "warning",
            f"no usable thigh sensor: left/right from the pelvis alone (side confidence {events.side_confidence:.2f})",
        )
        if events.side_confidence < LOW_CONFIDENCE:
            sides_trusted = False
            flags.add(
                "sides_uncertain",
                "withheld",
                f"left/right labels from the pelvis are uncertain (confidence {events.side_confidence:.2f}): "
                "side-labelled numbers withheld",
            )
    if not pelvis_ok:
        sides_trusted = False

    thigh_events = {side: detect_thigh_events(w, fs, walking & ~bad[THIGHS[side]]) for side, w in flexion.items()}
    flexion.clear()  # (memory: the flexion rates are not needed any more)

    # 4. events per bout
    ics: list[dict[str, Any]] = []
    fcs: list[dict[str, Any]] = []
    bouts: list[dict[str, Any]] = []
    strides: list[dict[str, Any]] = []
    # the same thigh bouts with events from the pelvis alone: the second source the thigh events are checked by
    cross_ics: list[dict[str, Any]] = []
    cross_strides: list[dict[str, Any]] = []
    contacts_dropped = contacts_judged = 0
    thigh_until = -np.inf  # last contact of the previous thigh bout: margins of close pelvis bouts overlap
    pelvis_ics = sorted(events.initial_contacts, key=lambda c: c.t_s)
    pelvis_fcs = sorted(events.final_contacts, key=lambda c: c.t_s)
    ic_times = np.array([c.t_s for c in pelvis_ics])
    fc_times = np.array([c.t_s for c in pelvis_fcs])

    def pelvis_between(contacts: list[Any], times: np.ndarray, a: float, b: float) -> list[Any]:
        # a slice of the time-ordered contacts, not a scan of all of them per bout (~100 bouts in 30 min)
        return contacts[int(np.searchsorted(times, a, "left")) : int(np.searchsorted(times, b, "right"))]

    for b in events.walking_bouts if pelvis_ok else ():
        lo = b.start_s - WALK_MARGIN_S
        hi = b.end_s + WALK_MARGIN_S
        i0, i1 = max(0, round(lo * fs)), min(n, round(hi * fs) + 1)
        usable = [s for s in thigh_events if not bad[THIGHS[s]][i0:i1].any()]
        pelvis_ic = pelvis_between(pelvis_ics, ic_times, b.start_s, b.end_s)
        if len(usable) == 2:
            lo = max(lo, np.nextafter(thigh_until, np.inf))  # each thigh contact belongs to one bout only
            confirmed, judged, dropped = _confirmed_thigh_events(thigh_events, pelvis_ic, lo, hi)
            contacts_judged += judged
            contacts_dropped += dropped
            for sub in _thigh_bouts(confirmed, lo, hi):
                index = len(bouts)
                bic = [c for c in pelvis_ic if sub[0] - MATCH_S <= c.t_s <= sub[1] + MATCH_S]
                bfc = pelvis_between(pelvis_fcs, fc_times, sub[0] - MATCH_S, sub[1] + 0.5)
                relabel = _sides_from_thigh(bic, confirmed, usable)
                cic = [{"t_s": c.t_s, "side": relabel(c.side)} for c in bic]
                cross_ics.extend(cic)
                cross_strides.extend(_strides(cic, [{"t_s": c.t_s, "side": relabel(c.side)} for c in bfc], index))
                bouts.append({"start_s": sub[0], "end_s": sub[1], "source": "thigh", "_events": sub[2]})
                thigh_until = sub[1]
        else:
            bfc = pelvis_between(pelvis_fcs, fc_times, b.start_s - 0.01, b.end_s + 0.5)
            relabel = _sides_from_thigh(pelvis_ic, thigh_events, usable)
            bic_d = [{"t_s": c.t_s, "side": relabel(c.side)} for c in pelvis_ic]
            bfc_d = [{"t_s": c.t_s, "side": relabel(c.side)} for c in bfc]
            bouts.append({"start_s": b.start_s, "end_s": b.end_s, "source": "pelvis", "_events": (bic_d, bfc_d)})
    for index, bout in enumerate(bouts):
        bic, bfc = bout.pop("_events")
        ics.extend(bic)
        fcs.extend(bfc)
        strides.extend(_strides(bic, bfc, index))
    if contacts_dropped:
        flags.add(
            "thigh_contacts_unconfirmed",
            "info",
            f"{contacts_dropped} of {contacts_judged} thigh initial contacts had no pelvis contact within a quarter "
            "step (a second contact in one step, or none where the pelvis felt one): dropped with their swings",
        )

    # 5. strides, pelvic drop, summary
    strides.sort(key=lambda s: s["start_s"])
    for stride, included in zip(strides, mark_included(strides), strict=True):
        stride["included"] = included
    excluded = _exclude_implausible(strides, ics)
    if excluded:
        flags.add(
            "implausible_strides",
            "info",
            "strides excluded from every summary (values kept, flagged per stride): "
            + ", ".join(f"{count} {code} ({STRIDE_FLAGS[code]})" for code, count in sorted(excluded.items())),
        )
    cross_strides.sort(key=lambda s: s["start_s"])
    for stride, included in zip(cross_strides, mark_included(cross_strides), strict=True):
        stride["included"] = included
    _exclude_implausible(cross_strides, cross_ics)
    add_step_times(strides)
    relative = None  # obliquity relative to standing (computed here, not held through the thigh steps: memory)
    if reference is not None:
        assert ps.obliquity_raw_deg is not None
        relative = ps.obliquity_raw_deg - reference.obliquity_deg
    if strides and relative is not None:
        drops = pelvic_drop_deg(
            relative,
            fs,
            np.array([s["side"] for s in strides]),
            np.array([s["start_s"] for s in strides]),
            np.array([s["start_s"] + s["stance_time_s"] for s in strides]),
        )
        for stride, drop in zip(strides, drops, strict=True):
            stride["pelvic_drop_deg"] = float(drop) if np.isfinite(drop) else None
    for stride in strides:
        i0, i1 = round(stride["start_s"] * fs), round(stride["end_s"] * fs) + 1
        if saturated_any[i0:i1].any():
            stride["flags"].append("saturation")
            stride["included"] = False
    summary = summarize_gait(strides)
    gate = _asymmetry_gate(summary, strides, bouts, cross_strides, contacts_dropped, sides_trusted)
    by_bout: dict[int, list[dict[str, Any]]] = {index: [] for index in range(len(bouts))}
    for stride in strides:
        by_bout[stride["bout"]].append(stride)
    resamples: Resamples = {}  # bouts of equal stride counts share bootstrap indices (same intervals)
    for index, bout in enumerate(bouts):
        mine = by_bout[index]
        bout["n_strides"] = len(mine)
        # bootstrap CI of SI per bout for stance time only (it is most of the analysis time otherwise), and only
        # with MIN_STRIDES_PER_SIDE a side: below that the percentile interval covers far less than it claims
        enough = min(len(_values(mine, side, "stance_time_s")) for side in SIDES) >= MIN_STRIDES_PER_SIDE
        bout["asymmetry"] = {
            metric: asymmetry(
                _values(mine, "left", metric),
                _values(mine, "right", metric),
                bootstrap=metric == "stance_time_s" and enough,
                resamples=resamples,
            )
            for metric in ASYMMETRY_METRICS
        }
    if not sides_trusted:
        _withhold(summary, bouts, strides)
        withheld.extend(p for p in SIDE_LABELLED if p not in withheld)
    elif relative is None:
        summary["pelvic_drop_deg"] = {"left": None, "right": None}
        summary["asymmetry"]["pelvic_drop_deg"] = _empty_block()
    if gate is not None:
        _withhold_step_and_stance(summary, bouts if gate["code"] == WITHHELD_SOURCES_DISAGREE else [])
        withheld.extend(p for p in STEP_AND_STANCE if p not in withheld)
        flags.add(gate["code"], "withheld", gate["message"])
    summary["stance_asymmetry_evidence"] = _evidence(summary, strides, bouts, gate, contacts_dropped, sides_trusted)
    if any(b["source"] == "pelvis" for b in bouts):
        flags.add(
            "pelvis_only_events",
            "info",
            f"{sum(b['source'] == 'pelvis' for b in bouts)} of {len(bouts)} walking bouts have events from the "
            "pelvis alone (a thigh sensor missing, dropped out or not usable)",
        )

    pelvis_block = None
    if include_obliquity:
        pelvis_block = {
            "obliquity_deg": [] if relative is None else np.round(relative, 2).tolist(),
            "rate_hz": fs,
            "t0_s": 0.0,
            "standing_baseline_deg": None if reference is None else reference.obliquity_deg,
        }
    del relative  # (memory: the exercise analysis comes next)

    # 6. exercises
    analyzer: ExerciseAnalyzer | None
    if exercise_analyzer is True:
        analyzer = default_exercise_analyzer()
        if analyzer is None:
            flags.add("exercises_not_analysed", "info", "exercise analysis is not installed in this build")
    elif exercise_analyzer is False or exercise_analyzer is None:
        analyzer = None
    else:
        analyzer = exercise_analyzer
    exercises: list[dict[str, Any]] = []
    if analyzer is not None:
        del thigh_events, saturated_any  # (memory: not needed any more)
        try:
            if analyzer is analyze_exercise_sets:  # the default: shares the pelvis chain computed above
                exercises = analyze_exercise_sets(recording, pelvis=ps)
            else:
                exercises = list(analyzer(recording))
        except AnalyticsError as exc:
            flags.add("exercises_failed", "warning", f"exercise analysis failed: {exc}")

    doc: dict[str, Any] = {
        "schema": RESULT_SCHEMA,
        "source": "analysis",
        "generator": {
            "name": GENERATOR_NAME,
            "version": GENERATOR_VERSION,
            "settings": {
                "walk_margin_s": WALK_MARGIN_S,
                "segment_excursion_deg": SEGMENT_EXCURSION_DEG,
                "low_confidence": LOW_CONFIDENCE,
                "thigh_events": "swing-landmark phase interpolation (analytics.algorithms.thigh_events)",
                "stride_checks": "thigh contacts confirmed by the pelvis, plausibility rules, asymmetry gate "
                "(analytics.algorithms.stride_checks)",
                "min_strides_per_side": MIN_STRIDES_PER_SIDE,
                "sources_disagree_pp": SOURCES_DISAGREE_PP,
            },
        },
        "recording": {
            "duration_s": recording.duration_s,
            "sampling_rate_hz": fs,
            "placements": list(recording.sensors),
            "subject": recording.subject.get("id") if isinstance(recording.subject.get("id"), str) else None,
            "task": recording.task,
        },
        "gait": {
            "initial_contacts": sorted(ics, key=lambda c: c["t_s"]),
            "final_contacts": sorted(fcs, key=lambda c: c["t_s"]),
            "bouts": bouts,
            "strides": strides,
            "summary": summary,
        },
        "exercises": exercises,
        "quality": {"flags": flags.items, "alignment": alignment, "withheld": withheld},
    }
    if pelvis_block is not None:
        doc["pelvis"] = pelvis_block
    return doc


def _pelvis_alignment(
    events: GaitEvents, axes: BodyAxes | None, standing: np.ndarray, fs: float, flags: _Flags
) -> dict[str, Any]:
    if axes is None:
        return {"confidence": 0.0, "standing_s": float(standing.sum() / fs)}
    confidence = axes.confidence
    has_standing = bool(standing.any())
    if not has_standing:
        confidence *= 0.5
        flags.add(
            "no_standing",
            "warning",
            "no quiet standing of at least 2 s: the pelvis has no standing calibration (confidence halved)",
            placement="pelvis",
        )
    if confidence < LOW_CONFIDENCE:
        flags.add(
            "low_alignment_confidence", "warning", f"pelvis: alignment confidence {confidence:.2f}", placement="pelvis"
        )
    return {
        "confidence": float(np.clip(confidence, 0.0, 1.0)),
        "up": list(axes.up),
        "forward": list(axes.forward),
        "left": list(axes.left),
        "up_confidence": axes.up_confidence,
        "ap_line_confidence": axes.ap_line_confidence,
        "forward_confidence": axes.forward_confidence,
        "side_confidence": events.side_confidence,
        "standing_s": float(standing.sum() / fs),
    }


def _thigh_bouts(
    thigh_events: dict[str, Any], lo: float, hi: float
) -> list[tuple[float, float, tuple[list[dict[str, Any]], list[dict[str, Any]]]]]:
    """Split the thigh contacts inside [lo, hi] s into bouts (gaps > MAX_STEP_S), with their contacts."""
    contacts: list[tuple[float, str, str]] = []
    for side, ev in thigh_events.items():
        for kind, times in (("ic", ev.initial_contact_s), ("fc", ev.toe_off_s)):
            inside = times[(times >= lo) & (times <= hi)]
            contacts.extend((t, side, kind) for t in inside.tolist())
    contacts.sort()
    ic_times = [c[0] for c in contacts if c[2] == "ic"]
    out: list[tuple[float, float, tuple[list[dict[str, Any]], list[dict[str, Any]]]]] = []
    if len(ic_times) < MIN_BOUT_ICS:
        return out
    groups: list[list[float]] = [[ic_times[0]]]
    for t in ic_times[1:]:
        if t - groups[-1][-1] > MAX_STEP_S:
            groups.append([t])
        else:
            groups[-1].append(t)
    for g in groups:
        if len(g) < MIN_BOUT_ICS:
            continue
        start, end = g[0], g[-1]
        bic = [{"t_s": t, "side": s} for t, s, k in contacts if k == "ic" and start <= t <= end]
        bfc = [{"t_s": t, "side": s} for t, s, k in contacts if k == "fc" and start - MAX_STEP_S <= t <= end]
        out.append((start, end, (bic, bfc)))
    return out


def _confirmed_thigh_events(
    thigh_events: dict[str, ThighEvents], pelvis_ic: list[Any], lo: float, hi: float
) -> tuple[dict[str, ThighEvents], int, int]:
    """Each leg's swings whose initial contact a pelvis contact confirms (stride_checks.confirm_contacts); a
    dropped swing takes its toe off with it (both come from one swing). Judged: contacts inside [lo, hi] s and
    inside the pelvis's own steps (beyond its first and last contact the pelvis has no say: gait initiation
    and termination steps load the trunk too little for it). Returns the kept swings, how many contacts were
    judged and how many dropped."""
    times = [c.t_s for c in pelvis_ic]
    step = median_step_s(times)
    out: dict[str, ThighEvents] = {}
    judged = dropped = 0
    if step is not None:
        margin = CONFIRM_STEP_FRACTION * step
        lo, hi = max(lo, min(times) - margin), min(hi, max(times) + margin)
    for side, ev in thigh_events.items():
        inside = (ev.initial_contact_s >= lo) & (ev.initial_contact_s <= hi)
        keep = np.ones(ev.initial_contact_s.size, dtype=bool)
        if step is not None and inside.any():
            keep[inside] = confirm_contacts(ev.initial_contact_s[inside], [c.t_s for c in pelvis_ic], step)
        judged += int(inside.sum())
        dropped += int((~keep).sum())
        out[side] = ThighEvents(ev.toe_off_s[keep], ev.initial_contact_s[keep], ev.swing_peak_s[keep])
    return out, judged, dropped


def _exclude_implausible(strides: list[dict[str, Any]], ics: list[dict[str, Any]]) -> dict[str, int]:
    """Flag and exclude the strides that break a rule of stride_checks; how many strides broke each rule."""
    if not strides:
        return {}
    by_bout: dict[int, list[float]] = {}
    for s in strides:
        by_bout.setdefault(s["bout"], []).append(s["end_s"] - s["start_s"])
    rhythm = {b: bout_rhythm_s(times) for b, times in by_bout.items()}
    problems = stride_problems(
        [s["side"] for s in strides],
        [s["start_s"] for s in strides],
        [s["end_s"] for s in strides],
        [s["stance_time_s"] for s in strides],
        [rhythm[s["bout"]] for s in strides],
        [c["t_s"] for c in ics],
        [c["side"] for c in ics],
    )
    counts: dict[str, int] = {}
    for stride, codes in zip(strides, problems, strict=True):
        for code in codes:
            stride["flags"].append(code)
            counts[code] = counts.get(code, 0) + 1
        if codes:
            stride["included"] = False
    return counts


def _asymmetry_gate(
    summary: dict[str, Any],
    strides: list[dict[str, Any]],
    bouts: list[dict[str, Any]],
    cross_strides: list[dict[str, Any]],
    contacts_dropped: int,
    sides_trusted: bool,
) -> dict[str, Any] | None:
    """Whether the session's stance and step numbers must be withheld (stride_checks.asymmetry_verdict): the
    flag to raise, or None. Also records the cross-check figures in ``summary`` for the evidence block."""
    thigh_bouts = {i for i, b in enumerate(bouts) if b["source"] == "thigh"}
    cross_si = own_si = None
    if thigh_bouts:
        own = [s for s in strides if s["bout"] in thigh_bouts]
        own_si = asymmetry(
            _values(own, "left", "stance_time_s"), _values(own, "right", "stance_time_s"), bootstrap=False
        )["si_pct"]
        cross_si = asymmetry(
            _values(cross_strides, "left", "stance_time_s"),
            _values(cross_strides, "right", "stance_time_s"),
            bootstrap=False,
        )["si_pct"]
    summary["_cross_check"] = (own_si, cross_si)
    block = summary["asymmetry"]["stance_time_s"]
    code = asymmetry_verdict(block["n_left"], block["n_right"], own_si, cross_si)
    if code is None or not sides_trusted or not strides:  # no strides: nothing measured, nothing to withhold
        return None
    if code == WITHHELD_TOO_FEW_STRIDES:
        message = (
            f"stance and step times withheld: {block['n_left']} left and {block['n_right']} right strides survive "
            f"the plausibility checks; {MIN_STRIDES_PER_SIDE} a side are needed for an asymmetry and an honest "
            "interval"
        )
    else:
        message = (
            f"stance and step times withheld: the thigh events give a stance SI of {own_si:+.1f} %, the pelvis "
            f"alone {cross_si:+.1f} % over the same walking (more than {SOURCES_DISAGREE_PP:g} points apart)"
            + (f"; {contacts_dropped} thigh contacts had no pelvis contact" if contacts_dropped else "")
        )
    return {"code": code, "message": message}


def _withhold_step_and_stance(summary: dict[str, Any], bouts: list[dict[str, Any]]) -> None:
    """Null the session's stance and step numbers (and those of ``bouts``); strides keep their values."""
    summary["stance_time_s"] = {"left": None, "right": None}
    summary["step_time_s"] = {"left": None, "right": None}
    for key in ("stance_si_pct", "stance_ratio", "stance_ga_pct"):
        summary[key] = None
    for blocks in [summary["asymmetry"]] + [b["asymmetry"] for b in bouts if b["source"] == "thigh"]:
        blocks["stance_time_s"] = _empty_block()
        blocks["step_time_s"] = _empty_block()


def _evidence(
    summary: dict[str, Any],
    strides: list[dict[str, Any]],
    bouts: list[dict[str, Any]],
    gate: dict[str, Any] | None,
    contacts_dropped: int,
    sides_trusted: bool,
) -> dict[str, Any]:
    """What the session's stance-time asymmetry rests on (optional gaitsym.result/1 field)."""
    own_si, cross_si = summary.pop("_cross_check")
    sources = {b["source"] for b in bouts}
    source = {frozenset(): None, frozenset({"thigh"}): "thigh+pelvis", frozenset({"pelvis"}): "pelvis"}.get(
        frozenset(sources), "mixed"
    )
    excluded: dict[str, int] = {}
    for stride in strides:
        for code in stride["flags"]:
            excluded[code] = excluded.get(code, 0) + 1
    block = summary["asymmetry"]["stance_time_s"]
    reason = None if sides_trusted else "side_labels_untrusted"
    if reason is None and gate is not None:
        reason = gate["code"]
    if reason is None and not strides:
        reason = "no_walking"
    return {
        "status": "reported" if summary["stance_si_pct"] is not None else "withheld",
        "withheld_reason": reason,
        "event_source": source,
        "strides_used": dict(summary["n_strides"]),
        "strides_excluded": excluded,
        "contacts_dropped": contacts_dropped,
        "min_strides_per_side": MIN_STRIDES_PER_SIDE,
        "si_ci95_pct": block.get("si_ci95_pct"),
        "cross_check": None
        if own_si is None and cross_si is None
        else {
            "thigh_events_si_pct": own_si,
            "pelvis_events_si_pct": cross_si,
            "limit_pp": SOURCES_DISAGREE_PP,
        },
    }


def _sides_from_thigh(bic: list[Any], thigh_events: dict[str, Any], usable: list[str]) -> Callable[[str], str]:
    """Side relabelling of pelvis contacts: keep, or flip when a usable thigh says the pelvis has them swapped."""
    if not usable or not bic:
        return lambda s: s
    side = usable[0]
    thigh_ics = np.asarray(thigh_events[side].initial_contact_s)
    if thigh_ics.size == 0:
        return lambda s: s
    agree = disagree = 0
    for c in bic:
        near = np.min(np.abs(thigh_ics - c.t_s)) <= MATCH_S
        if near:
            agree += c.side == side
            disagree += c.side != side
    if disagree > agree:
        return lambda s: "right" if s == "left" else "left"
    return lambda s: s


def _strides(ics: list[dict[str, Any]], fcs: list[dict[str, Any]], bout: int) -> list[dict[str, Any]]:
    """Same-side IC-to-IC strides of one bout; stance = IC to the first same-side FC before the next IC."""
    out = []
    for side in SIDES:
        times = sorted(c["t_s"] for c in ics if c["side"] == side)
        fc = np.array(sorted(c["t_s"] for c in fcs if c["side"] == side))
        for a, b in itertools.pairwise(times):
            if b - a > 2 * MAX_STEP_S:
                continue
            inside = fc[(fc > a) & (fc < b)]
            if inside.size == 0:
                continue
            stance = float(inside[0] - a)
            out.append(
                {
                    "side": side,
                    "start_s": float(a),
                    "end_s": float(b),
                    "stance_time_s": stance,
                    "swing_time_s": float(b - a - stance),
                    "step_time_s": None,
                    "pelvic_drop_deg": None,
                    "bout": bout,
                    "included": True,
                    "flags": [],
                }
            )
    return out


def _values(strides: list[dict[str, Any]], side: str, metric: str) -> np.ndarray:
    vals = [s.get(metric) for s in strides if s["side"] == side and s["included"]]
    return np.array([v for v in vals if v is not None and np.isfinite(v)], dtype=np.float64)


def _empty_block() -> dict[str, Any]:
    return asymmetry(np.zeros(0), np.zeros(0), bootstrap=False)


def _withhold(summary: dict[str, Any], bouts: list[dict[str, Any]], strides: list[dict[str, Any]]) -> None:
    """Null every side-labelled number of the summaries (strides keep their values, flagged)."""
    summary["stance_time_s"] = {"left": None, "right": None}
    summary["step_time_s"] = {"left": None, "right": None}
    summary["pelvic_drop_deg"] = {"left": None, "right": None}
    for key in ("stance_si_pct", "stance_ratio", "stance_ga_pct"):
        summary[key] = None
    summary["asymmetry"] = {metric: _empty_block() for metric in ASYMMETRY_METRICS}
    for bout in bouts:
        bout["asymmetry"] = {metric: _empty_block() for metric in ASYMMETRY_METRICS}
    for stride in strides:
        stride["flags"].append("side_untrusted")
