"""Exercise sets of a session: repetitions, holds and per-side quality, as gaitsym.result/1 ``exercise_set`` entries.

Entry point: ``analyze_exercise_sets(recording, *, markers=None)``. Sets come from the exercise markers
(``events.csv``: ``markers`` or ``recording.markers``) or, when there are none, are DETECTED from the
movement (analytics.algorithms.exercise_detection; ``segmented_by`` says which). Per set:

1. **Prime mover** (the segment whose tilt from rest shows each repetition): single_leg_stance the lifted
   (non-stance) thigh; single_leg_bridge and pelvic_tilt the pelvis; clam, quadruped_leg_raise and lunge the
   working thigh (``side``). Its movement angle is the angle between its vertical now and at rest
   (exercise_signals.angle_from_deg): at rest = quiet standing for the standing exercises, the first second of
   the set for the lying and kneeling ones. Repetitions, partial repetitions and holds:
   analytics.algorithms.exercise_reps (a repetition below 50 % of the set's typical amplitude is partial and is
   not counted).
2. **Reference posture** (schema): quiet standing (the session's first quiet standing, exercise_signals) for
   single_leg_stance and lunge; for single_leg_bridge, clam, pelvic_tilt and quadruped_leg_raise the median
   obliquity in the second before the set's first repetition (complete or partial).
3. **Metrics** (schema ``$defs.exercise_set``), over complete repetitions only:
   - holds (single_leg_bridge, single_leg_stance, quadruped_leg_raise): drop of the hemipelvis opposite
     ``side`` (+ downward) = sign(side) x relative obliquity over the hold samples: pelvic_drop_mean_deg,
     pelvic_drop_peak_deg; time_level_pct = % of hold samples with |relative obliquity| <= 2 deg;
   - pelvic_tilt: obliquity_abs_mean_deg, obliquity_abs_peak_deg, time_level_pct over the holds;
   - clam: thigh_rotation_amplitude_deg = mean over reps of the peak tilt of the working thigh from its
     posture at the repetition's onset (exact for the opening about the horizontal axis of side-lying);
     pelvic_rollback_deg = mean over reps of the peak rise of the pelvis's anterior axis from the onset;
   - lunge: thigh_internal_rotation_deg = mean over reps of the front thigh's rotation about its long axis
     (its standing vertical, found at the onset) between the onset and the bottom of the lunge (deepest thigh
     flexion), from the bias-corrected gyroscope (swing-twist), positive = internal; pelvic_drop_deg = mean
     over reps of the peak drop of the hemipelvis opposite the front leg, relative to quiet standing.
4. **Flags** (strings ``code: message``), never silently folded in: ``no_repetitions``, ``few_repetitions``
   (fewer than MIN_REPS complete), ``partial_repetitions`` (info: how many were not counted),
   ``hold_interrupted``, ``time_level_uncertain`` (many hold samples within the obliquity tolerance of the
   2 deg limit), ``set_too_short``, ``rest_not_still`` (the posture before the set moved: reference
   uncertain), ``no_standing_reference`` / ``no_pelvis_axes`` / ``gyro_bias_unknown`` (the metric needing it is
   null), ``unassigned_partial_movements`` (detection: stray small movements next to a set, not counted).
   Every detected movement is given one of the study's exercises (exercise_detection); there is no
   "not recognised" outcome yet.

Tolerances against simulator truth (bench/exercises_accuracy.py, 2 x 40 unseen seeds, bench/RESULTS.md,
"Exercise analysis"):
repetitions exact with markers and, on those seeds, without (detection precision and recall 1.0); mean
obliquity metrics within OBLIQUITY_TOLERANCE_DEG (0.15-0.25 deg standing, kneeling and pelvic tilt; 0.8 deg,
measured 0.51, single-leg bridge); peak drops up to 0.35 deg kneeling and 0.65 deg standing on single sets
(the hold span reads long and takes in the ends of the movement); clam thigh rotation -1.0 +- 0.4 deg (reads
low: the tilt sees only the horizontal-axis part of the rotation); pelvic rollback 0.3 deg; lunge internal
rotation 1.1 deg; hold durations read 0.5 s long (0.3-0.9 s: the slow ends of each movement, exercise_reps).
The pelvis signals (vertical, obliquity axes, quiet standing) are the gait pipeline's
(pelvic_obliquity.pelvis_signals), passed in by analyze_recording or computed here.

Limits said plainly: exercise metrics are validated on simulation only, until real exercise recordings exist.
The movement-angle model is blind to rotations about the vertical; sides and exercises of detected sets rely
on the posture and which segment moves (exercise_detection).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from analytics.algorithms.exercise_reps import RepetitionSegmentation, segment_repetitions, smooth_angle
from analytics.algorithms.exercise_signals import (
    ExerciseSignals,
    angle_from_deg,
    coarse_signals,
    compute_signals,
    mean_direction,
    refine_thighs,
    twist_deg,
)
from analytics.algorithms.gait_events import GaitEvents
from analytics.algorithms.pelvic_obliquity import PelvisSignals
from analytics.errors import AnalyticsError, InvalidSignal
from gaitsym_common.uplink.vocabulary import EXERCISE_IDS

EXERCISES = EXERCISE_IDS
"""The frozen activity vocabulary (gaitsym.exercises/1, gaitsym_common/uplink/exercises-v1.json)."""
SIDES = ("left", "right", "none")
SIDED = ("clam", "single_leg_bridge", "single_leg_stance", "lunge", "quadruped_leg_raise")
HOLD_EXERCISES = ("single_leg_bridge", "single_leg_stance", "quadruped_leg_raise", "pelvic_tilt", "clam")
"""Exercises whose repetitions include a hold (clam: the study's 10 s hold at the open position)."""
STANDING_EXERCISES = ("single_leg_stance", "lunge")
LYING_EXERCISES = ("single_leg_bridge", "clam", "pelvic_tilt", "quadruped_leg_raise")
SIDE_SIGN = {"left": 1.0, "right": -1.0}
LEVEL_DEG = 2.0
"""|obliquity| within this (deg) counts as level (time_level_pct)."""
REST_S = 1.0
"""Rest posture / lying reference window before the first repetition (s)."""
MIN_REPS = 2
OBLIQUITY_TOLERANCE_DEG = {
    "single_leg_bridge": 0.8,
    "single_leg_stance": 0.15,
    "quadruped_leg_raise": 0.2,
    "pelvic_tilt": 0.25,
}
"""Stated obliquity tolerance per hold exercise (deg): bench/RESULTS.md, "Exercise analysis", max error over 40 seeds,
rounded up. The bridge's is largest: its 25 deg extension turns about the walking-based left axis, whose
error leaks into obliquity (sin 25 deg = 0.42 deg per deg of axis error)."""
BORDERLINE_PCT = 10.0
"""time_level_pct is flagged when more than this share of hold samples (%) lies within the obliquity
tolerance of the 2 deg limit (each such sample may be counted on the wrong side)."""
MIN_SET_S = 3.0
"""A set shorter than this (s) cannot hold a repetition between two rests."""
REST_STILL_DPS = 6.0
"""Prime mover speed (deg/s) above which the 'rest' before a lying set was not rest (flag rest_not_still)."""


class ExerciseError(AnalyticsError):
    """Exercise markers or sets that cannot be analysed as given (names the marker or set)."""


def analyze_exercise_sets(
    recording: Any,
    *,
    markers: Sequence[Any] | None = None,
    gait_events: GaitEvents | None = None,
    pelvis: PelvisSignals | None = None,
) -> list[dict[str, Any]]:
    """One gaitsym.result/1 ``exercise_set`` entry per set (see the module docstring).

    ``recording``: an analytics.recording.Recording (pelvis, left_thigh, right_thigh). ``markers``: start/end
    ExerciseMarker-like objects (t_s, event, exercise, side, set); None = ``recording.markers``; when that is
    empty too, sets are detected. ``pelvis``: pelvic_obliquity.pelvis_signals of this recording if the
    caller already has it (the gait pipeline does: gait events, tilt, obliquity axes, quiet standing are then
    not computed again); else ``gait_events`` (detect_gait_events of the pelvis) is reused if given and the
    rest computed here. With markers, the thighs' verticals are computed only over the sets that need them
    (exercise_signals). Raises ExerciseError for inconsistent markers, InsufficientData / InvalidSignal for
    unusable sensor data.
    """
    rate = float(recording.sampling_rate_hz)
    acc = {p: s.acc_mps2 for p, s in recording.sensors.items()}
    gyr = {p: s.gyr_dps for p, s in recording.sensors.items()}
    chosen = list(recording.markers if markers is None else markers)
    if chosen:
        windows = pair_markers(chosen, recording.n_samples / rate)
        sig = compute_signals(acc, gyr, rate, gait_events=gait_events, pelvis=pelvis, windows=_needed(windows, rate))
        return [analyze_set(sig, ex, side, n, t0, t1, "markers") for ex, side, n, t0, t1 in windows]
    from analytics.algorithms.exercise_detection import detect_sets

    base = compute_signals(acc, gyr, rate, gait_events=gait_events, pelvis=pelvis, windows={})
    found = detect_sets(coarse_signals(base, acc, gyr))
    sig = refine_thighs(base, acc, gyr, _needed([(f.exercise, f.side, f.set, f.start_s, f.end_s) for f in found], rate))
    out = []
    for f in found:
        entry = analyze_set(sig, f.exercise, f.side, f.set, f.start_s, f.end_s, "detected")
        entry["flags"].extend(f.flags)
        out.append(entry)
    return out


def _needed(sets: Iterable[tuple[str, str, int, float, float]], rate: float) -> dict[str, list[tuple[int, int]]]:
    """Per thigh placement, the sample windows [i0, i1) of the sets whose measures need its vertical."""
    needed: dict[str, list[tuple[int, int]]] = {}
    for ex, side, _n, t0, t1 in sets:
        if ex in SIDED or ex == "pelvic_tilt":
            needed.setdefault(_prime_mover(ex, side), []).append((round(t0 * rate), round(t1 * rate) + 1))
    return needed


def pair_markers(markers: Iterable[Any], duration_s: float) -> list[tuple[str, str, int, float, float]]:
    """(exercise, side, set, start_s, end_s) per set from start/end markers, in time order."""
    open_: dict[tuple[str, str, int], float] = {}
    out = []
    for m in sorted(markers, key=lambda m: (float(m.t_s), m.event != "end")):
        key = (str(m.exercise), str(m.side), int(m.set))
        where = f"marker {m.event} {key[0]}/{key[1]}/set {key[2]} at {float(m.t_s):g} s"
        if key[0] not in EXERCISES:
            raise ExerciseError(f"{where}: unknown exercise id {key[0]!r} (gaitsym.exercises/1)")
        if key[1] not in SIDES:
            raise ExerciseError(f"{where}: side must be left, right or none")
        if m.event == "start":
            if key in open_:
                raise ExerciseError(f"{where}: set started twice without an end")
            open_[key] = float(m.t_s)
        elif m.event == "end":
            if key not in open_:
                raise ExerciseError(f"{where}: end without a start")
            t0 = open_.pop(key)
            out.append((key[0], key[1], key[2], max(0.0, t0), min(float(m.t_s), duration_s)))
        else:
            raise ExerciseError(f"{where}: event must be start or end")
    if open_:
        key = next(iter(open_))
        raise ExerciseError(f"marker start {key[0]}/{key[1]}/set {key[2]}: no end marker")
    return sorted(out, key=lambda w: w[3])


def _entry(ex: str, side: str, n: int, t0: float, t1: float, by: str) -> dict[str, Any]:
    return {
        "exercise": ex,
        "side": side,
        "set": n,
        "start_s": round(t0, 3),
        "end_s": round(t1, 3),
        "reps": None,
        "holds_s": [],
        "segmented_by": by,
        "metrics": {},
        "flags": [],
    }


def _prime_mover(ex: str, side: str) -> str:
    if ex in ("single_leg_bridge", "pelvic_tilt"):
        return "pelvis"
    if ex == "single_leg_stance":
        return "right_thigh" if side == "left" else "left_thigh"
    return f"{side}_thigh"


def analyze_set(sig: ExerciseSignals, ex: str, side: str, n: int, t0: float, t1: float, by: str) -> dict[str, Any]:
    """The result entry of one set [t0, t1] (s) of exercise ``ex`` on ``side``."""
    entry = _entry(ex, side, n, t0, t1, by)
    rate = sig.rate_hz
    flags: list[str] = entry["flags"]
    if ex == "stand":
        entry["holds_s"] = [round(t1 - t0, 3)]
    if ex not in SIDED and ex not in ("pelvic_tilt",):
        return entry
    if ex in SIDED and side not in ("left", "right"):
        raise ExerciseError(f"{ex} set {n} at {t0:g} s: a sided exercise needs side left or right, got {side!r}")
    i0, i1 = max(0, round(t0 * rate)), min(sig.n_samples, round(t1 * rate) + 1)
    if i1 - i0 < MIN_SET_S * rate:
        flags.append(f"set_too_short: {(i1 - i0) / rate:.1f} s; no repetition can be measured")
        return entry
    prime = _prime_mover(ex, side)
    up = sig.up[prime][i0:i1]
    if ex in STANDING_EXERCISES:
        if sig.standing is None:
            flags.append("no_standing_reference: no quiet standing of >= 3 s in the session; metrics withheld")
            return entry
        rest = sig.standing.up[prime]
    else:
        n_rest = round(REST_S * rate)
        rest = mean_direction(up[:n_rest])
        if float(np.max(sig.speed_dps[prime][i0 : i0 + n_rest])) > REST_STILL_DPS:
            flags.append("rest_not_still: the posture moved in the set's first second; reference uncertain")
    angle = smooth_angle(angle_from_deg(up, rest), rate)
    seg = segment_repetitions(angle, rate, has_hold=ex in HOLD_EXERCISES)
    complete = seg.complete
    entry["reps"] = len(complete)
    entry["holds_s"] = [round(h, 3) for h in seg.holds_s] if ex != "lunge" else []
    if seg.n_partial:
        flags.append(f"partial_repetitions: {seg.n_partial} below 50 % of the typical amplitude, not counted")
    interrupted = [k + 1 for k, r in enumerate(complete) if r.hold_interrupted]
    if interrupted:
        flags.append(f"hold_interrupted: repetitions {interrupted}; their holds include the interruption")
    if not complete:
        flags.append("no_repetitions: no complete repetition found; metrics withheld")
        return entry
    if len(complete) < MIN_REPS:
        flags.append(f"few_repetitions: {len(complete)} complete; metrics rest on too little to trust")
    entry["metrics"] = _metrics(sig, ex, side, seg, i0, i1, flags)
    return entry


def _metrics(
    sig: ExerciseSignals, ex: str, side: str, seg: RepetitionSegmentation, i0: int, i1: int, flags: list[str]
) -> dict[str, float | None]:
    rate = sig.rate_hz
    complete = seg.complete
    if ex == "clam":
        thigh = sig.up[f"{side}_thigh"][i0:i1]
        rotation = [float(angle_from_deg(thigh[r.onset : r.offset + 1], thigh[r.onset]).max()) for r in complete]
        out: dict[str, float | None] = {"thigh_rotation_amplitude_deg": round(float(np.mean(rotation)), 3)}
        fwd = sig.forward_elevation_deg(i0, i1)
        if fwd is None:
            flags.append("no_pelvis_axes: no walking to find the pelvis axes; pelvic_rollback_deg withheld")
            out["pelvic_rollback_deg"] = None
        else:
            rollback = [float((fwd[r.onset : r.offset + 1] - fwd[r.onset]).max()) for r in complete]
            out["pelvic_rollback_deg"] = round(float(np.mean(rollback)), 3)
        return out
    if sig.obliquity_raw_deg is None:
        flags.append("no_pelvis_axes: no walking to find the pelvis axes; obliquity metrics withheld")
        names = {
            "lunge": ("thigh_internal_rotation_deg", "pelvic_drop_deg"),
            "pelvic_tilt": ("obliquity_abs_mean_deg", "obliquity_abs_peak_deg", "time_level_pct"),
        }.get(ex, ("pelvic_drop_mean_deg", "pelvic_drop_peak_deg", "time_level_pct"))
        return dict.fromkeys(names)
    raw = sig.obliquity_raw_deg[i0:i1]
    if ex in STANDING_EXERCISES:
        assert sig.standing is not None  # checked by analyze_set
        reference = sig.standing.obliquity_deg
    else:
        first = seg.repetitions[0].onset
        reference = float(np.median(raw[max(0, first - round(REST_S * rate)) : first + 1]))
    rel = raw - reference
    if ex == "lunge":
        front = f"{side}_thigh"
        gyr, up = sig.corrected_gyr(front, i0, i1), sig.up[front][i0:i1]
        rotation = [-SIDE_SIGN[side] * twist_deg(gyr[r.onset : r.peak_index + 1], rate, up[r.onset]) for r in complete]
        drops = [float((SIDE_SIGN[side] * rel[r.onset : r.offset + 1]).max()) for r in complete]
        out = {"pelvic_drop_deg": round(float(np.mean(drops)), 3)}
        if sig.gyro_bias(front) is not None:
            out["thigh_internal_rotation_deg"] = round(float(np.mean(rotation)), 3)
        else:
            flags.append(f"gyro_bias_unknown: {front} never still for 5 s; thigh_internal_rotation_deg withheld")
            out["thigh_internal_rotation_deg"] = None
        return out
    held = np.concatenate([rel[r.hold[0] : r.hold[1]] for r in complete if r.hold is not None])
    level = round(100.0 * float(np.mean(np.abs(held) <= LEVEL_DEG)), 3)
    tolerance = OBLIQUITY_TOLERANCE_DEG[ex]
    borderline = 100.0 * float(np.mean(np.abs(np.abs(held) - LEVEL_DEG) <= tolerance))
    if borderline > BORDERLINE_PCT:
        flags.append(
            f"time_level_uncertain: {borderline:.0f} % of hold samples lie within the obliquity tolerance "
            f"(+-{tolerance:g} deg) of the 2 deg level limit; time_level_pct may be off by that much"
        )
    if ex == "pelvic_tilt":
        return {
            "obliquity_abs_mean_deg": round(float(np.abs(held).mean()), 3),
            "obliquity_abs_peak_deg": round(float(np.abs(held).max()), 3),
            "time_level_pct": level,
        }
    drop = SIDE_SIGN[side] * held
    return {
        "pelvic_drop_mean_deg": round(float(drop.mean()), 3),
        "pelvic_drop_peak_deg": round(float(drop.max()), 3),
        "time_level_pct": level,
    }


def exercise_asymmetry(sets: Iterable[dict[str, Any]]) -> dict[str, dict[str, dict[str, float | None]]]:
    """Left vs right per exercise and metric: {exercise: {metric: {left, right, diff}}}.

    left/right = mean of that side's set values (null when none); diff = left - right (null when either is
    null). ``reps`` is included as a metric (mean complete repetitions per set). Unsided exercises are skipped.
    """
    values: dict[str, dict[str, dict[str, list[float]]]] = {}
    for s in sets:
        if s.get("exercise") not in SIDED or s.get("side") not in ("left", "right"):
            continue
        per = values.setdefault(s["exercise"], {})
        items = dict(s.get("metrics") or {})
        items["reps"] = s.get("reps")
        for name, v in items.items():
            side_lists = per.setdefault(name, {"left": [], "right": []})
            if v is not None:
                if not np.isfinite(float(v)):
                    raise InvalidSignal(f"{s['exercise']} {name} is not finite: {v!r}")
                side_lists[s["side"]].append(float(v))
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    for ex, per in values.items():
        out[ex] = {}
        for name, sides in per.items():
            left = round(float(np.mean(sides["left"])), 3) if sides["left"] else None
            right = round(float(np.mean(sides["right"])), 3) if sides["right"] else None
            diff = round(left - right, 3) if left is not None and right is not None else None
            out[ex][name] = {"left": left, "right": right, "diff": diff}
    return out
