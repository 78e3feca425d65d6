"""Exercise sets found without markers: posture, then movements, then which exercise and side they are.

Method (rule-based activity recognition on mounting-free signals, exercise_signals):

1. **Posture** per sample from the pelvis's vertical in its body frame (axes found from walking): upright
   (the pelvis's up axis within 35 deg of the vertical), supine (anterior axis within 50 deg of up: pelvic
   tilt, bridge), four-point kneeling (anterior axis within 50 deg of down), side-lying (left axis within
   50 deg of up or down: clam; left axis up = lying on the right side = the LEFT leg works). Runs shorter
   than ``MIN_POSTURE_S`` are dropped.
2. **Movements**: in each posture run, the angle of each segment (pelvis, both thighs) from its rest posture
   (upright: the session's quiet standing; lying and kneeling: the run's first still second); a movement is a
   run where the largest of the three exceeds ``MOVE_DEG``, lies inside the posture run, lasts at least
   ``MIN_MOVE_S`` and (upright) is not walking; it is widened to where every segment is back within
   ``QUIET_SHARE`` x MOVE_DEG of rest (the movement's true onset and offset).
3. **Exercise and side** of a movement, from its posture and peak segment angles P (pelvis), L, R (thighs):
   supine: single_leg_bridge when a thigh moves more than ``BRIDGE_THIGH_SHARE`` x P (side = the thigh
   that moves more: the supporting leg's hip extends most), else pelvic_tilt;
   kneeling: quadruped_leg_raise, side = the thigh that moves; side-lying: clam, side from the posture;
   upright: lunge when the less-moving thigh moves more than ``LUNGE_MINOR_SHARE`` of the other (the back
   leg extends in a lunge; side = the thigh that moves more), else single_leg_stance (side = the thigh that
   stays: the stance leg). Both rules are ratios of the segments' angles, so a partial repetition (15-35 %
   of the movement) is classified like the complete repetitions of its set. Upright, the pelvis detector's
   walking bouts are not movements, unless a thigh tilts beyond ``WALK_THIGH_MAX_DEG`` in one (a lunge's
   step out and back can pass for a 4-step bout).
4. **Sets**: consecutive movements with the same exercise and side in one posture run, unless every
   segment rests (within QUIET_SHARE x MOVE_DEG) for more than ``MAX_GAP_S`` between them: the rest is
   measured as quiet time, so partial repetitions too small to be movements (a pelvic tilt's 2-3 deg) do not
   count as rest. One or two movements below PARTIAL_SHARE of a neighbouring set's median (stray partial
   repetitions) are not a set: between two parts of one set they are joined with it (its repetition
   analysis counts them as partial), at its edge they are reported by a flag on it. A set spans from
   ``PAD_S`` before its first movement to ``PAD_S`` after its last.

Units: deg, s. Precision/recall on simulated sessions: bench/exercises_accuracy.py. Validated on simulation
only until real exercise recordings exist; real patients' postures vary more than the simulator's.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from analytics.algorithms.exercise_reps import PARTIAL_SHARE, runs, smooth_angle
from analytics.algorithms.exercise_signals import STILL_DPS, ExerciseSignals, angle_from_deg, mean_direction
from analytics.algorithms.pelvic_obliquity import WALK_MARGIN_S
from analytics.errors import InsufficientData
from firmware_protocol.sensor_info import PLACEMENTS

UPRIGHT_DEG = 35.0
LYING_DEG = 50.0
MIN_POSTURE_S = 4.0
MOVE_DEG = 5.0
MIN_MOVE_S = 1.0
QUIET_SHARE = 0.3
"""A movement starts and ends where every segment is within 30 % of MOVE_DEG of its rest posture."""
BRIDGE_THIGH_SHARE = 0.3
"""Supine: a bridge when a thigh tilts more than this share of the pelvis's tilt (the hips extend, carrying
the thighs: ~0.6 in a bridge; a posterior pelvic tilt leaves them still: ~0.03). A ratio, so that a partial
repetition is classified like the complete ones of its set."""
LUNGE_MINOR_SHARE = 0.15
MAX_GAP_S = 20.0
"""Longest quiet rest (s) inside a set: a longer span with every segment at rest ends the set."""
WALK_THIGH_MAX_DEG = 45.0
"""A thigh tilting further than this (deg) from standing is not walking: hip flexion in gait peaks at
~30 deg (Perry & Burnfield, Gait Analysis, 2010); a lunge flexes the front hip ~80 deg."""
PAD_S = 1.5
MAX_STRAY = 2
"""At most this many small movements next to a set are taken as its stray partial repetitions (not a set)."""
REST_STILL_S = 0.8


@dataclass(frozen=True)
class DetectedSet:
    exercise: str
    side: str
    set: int
    start_s: float
    end_s: float
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Movement:
    posture: str
    onset: int
    offset: int
    peaks: tuple[float, float, float]
    """Peak angles (deg) of pelvis, left thigh, right thigh."""


def posture_labels(sig: ExerciseSignals) -> np.ndarray:
    """Posture per sample: 'upright', 'supine', 'kneeling', 'side_left_up', 'side_right_up' or ''."""
    if sig.axes is None:
        raise InsufficientData("set detection needs the pelvis axes, found from walking: no walking found")
    g = sig.pelvis_up @ sig.axes.rotation.T  # columns: forward, left, up components of the vertical
    lying = np.cos(np.radians(LYING_DEG))
    labels = np.full(g.shape[0], "", dtype=object)
    labels[g[:, 0] > lying] = "supine"
    labels[g[:, 0] < -lying] = "kneeling"
    labels[g[:, 1] > lying] = "side_left_up"
    labels[g[:, 1] < -lying] = "side_right_up"
    labels[g[:, 2] > np.cos(np.radians(UPRIGHT_DEG))] = "upright"
    return labels


def _posture_runs(labels: np.ndarray, rate: float) -> list[tuple[str, int, int]]:
    change = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    bounds = np.concatenate([[0], change, [labels.size]])
    return [
        (str(labels[a]), int(a), int(b))
        for a, b in itertools.pairwise(bounds)
        if labels[a] and b - a >= MIN_POSTURE_S * rate
    ]


def _walking(sig: ExerciseSignals, angles: np.ndarray, a: int, b: int) -> np.ndarray:
    """The pelvis detector's walking samples in [a, b), less the "bouts" that are not walking: a bout
    (a run of sig.walking, less its WALK_MARGIN_S either side) in which a thigh tilts more than
    ``WALK_THIGH_MAX_DEG`` from standing is an exercise with steps (a lunge's step out and back can make
    the four regular vertical-acceleration peaks of a minimal walking bout). ``angles``: (3, b - a) deg."""
    walking = sig.walking[a:b].copy()
    margin = round(WALK_MARGIN_S * sig.rate_hz)
    thighs = angles[1:].max(axis=0)
    for s, e in zip(*runs(walking), strict=True):
        core = thighs[s + margin : e - margin] if e - s > 2 * margin else thighs[s:e]
        if core.size and float(core.max()) > WALK_THIGH_MAX_DEG:
            walking[s:e] = False
    return walking


def _movements(sig: ExerciseSignals, posture: str, a: int, b: int) -> tuple[list[_Movement], np.ndarray]:
    """The movements of posture run [a, b) and its quiet samples (bool, b - a: every segment within
    QUIET_SHARE x MOVE_DEG of rest)."""
    rate = sig.rate_hz
    if posture == "upright":
        assert sig.standing is not None
        rest = sig.standing.up
    else:
        still = np.ones(b - a, dtype=bool)
        for p in PLACEMENTS:
            still &= sig.speed_dps[p][a:b] < STILL_DPS
        s, e = runs(still)
        ok = np.flatnonzero(e - s >= REST_STILL_S * rate)
        if not ok.size:
            return [], np.zeros(b - a, dtype=bool)
        r0, r1 = a + int(s[ok[0]]), a + int(e[ok[0]])
        rest = {p: mean_direction(sig.up[p][r0:r1]) for p in PLACEMENTS}
    angles = np.stack([smooth_angle(angle_from_deg(sig.up[p][a:b], rest[p]), rate) for p in PLACEMENTS])
    largest = angles.max(axis=0)
    active = largest > MOVE_DEG
    if posture == "upright":
        active &= ~_walking(sig, angles, a, b)
    still = largest < QUIET_SHARE * MOVE_DEG
    quiet = np.flatnonzero(still)
    out = []
    for s, e in zip(*runs(active), strict=True):
        if s == 0 or e == b - a or e - s < MIN_MOVE_S * rate:
            continue  # touches the posture run's edge (a transition) or too brief
        peaks = angles[:, s:e].max(axis=1)
        k = int(np.searchsorted(quiet, s))  # widen to where the movement leaves and regains rest
        onset = int(quiet[k - 1]) if k > 0 else int(s)
        offset = int(quiet[k]) if k < quiet.size and quiet[k] >= e else int(e)
        out.append(_Movement(posture, a + onset, a + offset, (float(peaks[0]), float(peaks[1]), float(peaks[2]))))
    return out, still


def classify(m: _Movement) -> tuple[str, str]:
    """Exercise id and side of one movement (see the module docstring)."""
    pelvis, left, right = m.peaks
    more = "left" if left >= right else "right"
    less = "right" if more == "left" else "left"
    if m.posture == "supine":
        if max(left, right) > BRIDGE_THIGH_SHARE * pelvis:
            return "single_leg_bridge", more
        return "pelvic_tilt", "none"
    if m.posture == "kneeling":
        return "quadruped_leg_raise", more
    if m.posture == "side_left_up":
        return "clam", "left"
    if m.posture == "side_right_up":
        return "clam", "right"
    if min(left, right) > LUNGE_MINOR_SHARE * max(left, right):
        return "lunge", more
    return "single_leg_stance", less


def _labels(moves: list[_Movement], rate: float) -> list[tuple[str, str]]:
    """Labels of a posture run's movements. A movement unlike its neighbours (within MAX_GAP_S) and below
    ``PARTIAL_SHARE`` of one of them (a partial repetition, whose small angles can look like another
    exercise) takes that neighbour's label (the previous one first), unless a bigger neighbour shares its own.
    """
    labels = [classify(m) for m in moves]
    size = [max(m.peaks) for m in moves]
    out = list(labels)
    for i, m in enumerate(moves):
        near = [j for j in (i - 1, i + 1) if 0 <= j < len(moves) and abs(moves[j].onset - m.onset) < MAX_GAP_S * rate]
        if any(labels[j] == labels[i] and size[i] >= PARTIAL_SHARE * size[j] for j in near):
            continue  # like a neighbour of its size: a repetition of the same set
        bigger = [j for j in near if size[i] < PARTIAL_SHARE * size[j]]
        if bigger and not any(labels[j] == labels[i] for j in bigger):
            out[i] = labels[bigger[0]]
    return out


def _longest_run(mask: np.ndarray) -> int:
    """Length (samples) of the longest run of True in a boolean array."""
    starts, ends = runs(mask)
    return int((ends - starts).max()) if starts.size else 0


def detect_sets(sig: ExerciseSignals) -> list[DetectedSet]:
    """Exercise sets of a whole session without markers (see the module docstring)."""
    if sig.standing is None:
        raise InsufficientData("set detection needs a quiet standing of >= 3 s (the standing exercises' rest)")
    rate = sig.rate_hz
    max_rest = MAX_GAP_S * rate
    groups: list[dict[str, Any]] = []
    for posture, a, b in _posture_runs(posture_labels(sig), rate):
        moves, quiet = _movements(sig, posture, a, b)

        def rest(g: dict[str, Any], onset: int, a: int = a, quiet: np.ndarray = quiet) -> int:
            """Longest quiet span (samples) between a group's end and a later onset (both in this run)."""
            return _longest_run(quiet[g["offset"] - a : onset - a])

        run_groups: list[dict[str, Any]] = []
        for m, (ex, side) in zip(moves, _labels(moves, rate), strict=True):
            last = run_groups[-1] if run_groups else None
            if last is not None and last["key"] == (ex, side, a) and rest(last, m.onset) < max_rest:
                last["offset"] = m.offset
                last["sizes"].append(max(m.peaks))
            else:
                run_groups.append({"key": (ex, side, a), "onset": m.onset, "offset": m.offset, "sizes": [max(m.peaks)]})
        kept: list[dict[str, Any]] = []
        strays: list[tuple[dict[str, Any], dict[str, Any]]] = []  # (stray group, its host)
        for i, g in enumerate(run_groups):
            near = [
                h
                for h in run_groups[max(0, i - 1) : i] + run_groups[i + 1 : i + 2]
                if min(abs(h["onset"] - g["offset"]), abs(g["onset"] - h["offset"])) < max_rest
            ]
            host = [
                h
                for h in near
                if len(g["sizes"]) <= MAX_STRAY and max(g["sizes"]) < PARTIAL_SHARE * float(np.median(h["sizes"]))
            ]
            if host:  # only small movements next to a set: partial repetitions of it, not a set of their own
                strays.append((g, host[0]))
                continue
            last = kept[-1] if kept else None
            if last is not None and last["key"] == g["key"] and rest(last, g["onset"]) < max_rest:
                # stray movements between them had split one set: join it again
                last["offset"] = g["offset"]
                last["sizes"].extend(g["sizes"])
                g["into"] = last
            else:
                kept.append(g)
        for g, first_host in strays:
            owner = first_host
            while "into" in owner:
                owner = owner["into"]
            if owner["onset"] <= g["onset"] <= owner["offset"]:
                continue  # inside the joined set: its repetition analysis sees them (partial repetitions)
            owner.setdefault("flags", []).append(
                f"unassigned_partial_movements: {len(g['sizes'])} small movement(s) at {g['onset'] / rate:.1f} s "
                "next to this set, not counted"
            )
        groups.extend(kept)
    counter: dict[tuple[str, str], int] = {}
    out = []
    n = sig.n_samples
    for g in groups:
        ex, side, _run = g["key"]
        counter[(ex, side)] = counter.get((ex, side), 0) + 1
        start = max(0.0, g["onset"] / rate - PAD_S)
        end = min((n - 1) / rate, g["offset"] / rate + PAD_S)
        out.append(DetectedSet(ex, side, counter[(ex, side)], start, end, tuple(g.get("flags", ()))))
    return out
