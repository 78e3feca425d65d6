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
   supine: single_leg_bridge when a thigh moves > ``BRIDGE_THIGH_DEG`` or P > ``BRIDGE_PELVIS_DEG``
   (side = the thigh that moves more: the supporting leg's hip extends most), else pelvic_tilt;
   kneeling: quadruped_leg_raise, side = the thigh that moves; side-lying: clam, side from the posture;
   upright: lunge when the less-moving thigh moves more than ``LUNGE_MINOR_SHARE`` of the other (the back
   leg extends in a lunge; side = the thigh that moves more), else single_leg_stance (side = the thigh that
   stays: the stance leg).
4. **Sets**: consecutive movements with the same exercise and side, less than ``MAX_GAP_S`` apart, in one
   posture run. One or two movements below PARTIAL_SHARE of a neighbouring set's median (stray partial
   repetitions at a set's edge) are not a set: they are reported by a flag on that neighbour. A set spans
   from ``PAD_S`` before its first movement to ``PAD_S`` after its last.

Units: deg, s. Precision/recall on simulated sessions: bench/exercises_accuracy.py. Validated on simulation
only until real exercise recordings exist; real patients' postures vary more than the simulator's.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from analytics.algorithms.exercise_reps import PARTIAL_SHARE, runs, smooth_angle
from analytics.algorithms.exercise_signals import PLACEMENTS, STILL_DPS, ExerciseSignals, angle_from_deg, mean_direction
from analytics.errors import InsufficientData

UPRIGHT_DEG = 35.0
LYING_DEG = 50.0
MIN_POSTURE_S = 4.0
MOVE_DEG = 5.0
MIN_MOVE_S = 1.0
QUIET_SHARE = 0.3
"""A movement starts and ends where every segment is within 30 % of MOVE_DEG of its rest posture."""
BRIDGE_THIGH_DEG = 8.0
BRIDGE_PELVIS_DEG = 17.0
LUNGE_MINOR_SHARE = 0.15
MAX_GAP_S = 20.0
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
    g = sig.up["pelvis"] @ sig.axes.rotation.T  # columns: forward, left, up components of the vertical
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


def _movements(sig: ExerciseSignals, posture: str, a: int, b: int) -> list[_Movement]:
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
            return []
        r0, r1 = a + int(s[ok[0]]), a + int(e[ok[0]])
        rest = {p: mean_direction(sig.up[p][r0:r1]) for p in PLACEMENTS}
    angles = np.stack([smooth_angle(angle_from_deg(sig.up[p][a:b], rest[p]), rate) for p in PLACEMENTS])
    largest = angles.max(axis=0)
    active = largest > MOVE_DEG
    if posture == "upright":
        active &= ~sig.walking[a:b]
    quiet = np.flatnonzero(largest < QUIET_SHARE * MOVE_DEG)
    out = []
    for s, e in zip(*runs(active), strict=True):
        if s == 0 or e == b - a or e - s < MIN_MOVE_S * rate:
            continue  # touches the posture run's edge (a transition) or too brief
        peaks = angles[:, s:e].max(axis=1)
        k = int(np.searchsorted(quiet, s))  # widen to where the movement leaves and regains rest
        onset = int(quiet[k - 1]) if k > 0 else int(s)
        offset = int(quiet[k]) if k < quiet.size and quiet[k] >= e else int(e)
        out.append(_Movement(posture, a + onset, a + offset, (float(peaks[0]), float(peaks[1]), float(peaks[2]))))
    return out


def classify(m: _Movement) -> tuple[str, str]:
    """Exercise id and side of one movement (see the module docstring)."""
    pelvis, left, right = m.peaks
    more = "left" if left >= right else "right"
    less = "right" if more == "left" else "left"
    if m.posture == "supine":
        if max(left, right) > BRIDGE_THIGH_DEG or pelvis > BRIDGE_PELVIS_DEG:
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


def detect_sets(sig: ExerciseSignals) -> list[DetectedSet]:
    """Exercise sets of a whole session without markers (see the module docstring)."""
    if sig.standing is None:
        raise InsufficientData("set detection needs a quiet standing of >= 3 s (the standing exercises' rest)")
    rate = sig.rate_hz
    groups: list[dict[str, Any]] = []
    for posture, a, b in _posture_runs(posture_labels(sig), rate):
        moves = _movements(sig, posture, a, b)
        for m, (ex, side) in zip(moves, _labels(moves, rate), strict=True):
            last = groups[-1] if groups else None
            if last is not None and last["key"] == (ex, side, a) and m.onset - last["offset"] < MAX_GAP_S * rate:
                last["offset"] = m.offset
                last["sizes"].append(max(m.peaks))
            else:
                groups.append({"key": (ex, side, a), "onset": m.onset, "offset": m.offset, "sizes": [max(m.peaks)]})
    kept: list[dict[str, Any]] = []
    for i, g in enumerate(groups):
        near = [
            h
            for h in groups[max(0, i - 1) : i] + groups[i + 1 : i + 2]
            if h["key"][2] == g["key"][2]
            and min(abs(h["onset"] - g["offset"]), abs(g["onset"] - h["offset"])) < MAX_GAP_S * rate
        ]
        host = [
            h
            for h in near
            if len(g["sizes"]) <= MAX_STRAY and max(g["sizes"]) < PARTIAL_SHARE * float(np.median(h["sizes"]))
        ]
        if host:  # only small movements next to a set: partial repetitions of it, not a set of their own
            host[0].setdefault("flags", []).append(
                f"unassigned_partial_movements: {len(g['sizes'])} small movement(s) at {g['onset'] / rate:.1f} s "
                "next to this set, not counted"
            )
            continue
        kept.append(g)
    counter: dict[tuple[str, str], int] = {}
    out = []
    n = sig.n_samples
    for g in kept:
        ex, side, _run = g["key"]
        counter[(ex, side)] = counter.get((ex, side), 0) + 1
        start = max(0.0, g["onset"] / rate - PAD_S)
        end = min((n - 1) / rate, g["offset"] / rate + PAD_S)
        out.append(DetectedSet(ex, side, counter[(ex, side)], start, end, tuple(g.get("flags", ()))))
    return out
