"""Shared intermediates of the exercise analysis: windowed thigh verticals, the pipeline's pelvis chain, and
set detection where a set is interrupted (stray partial repetitions, a lunge that looks like a walking bout)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from analytics.algorithms.exercise_sets import analyze_exercise_sets
from analytics.algorithms.exercise_signals import (
    TILT_MARGIN_S,
    WindowedVertical,
    angle_from_deg,
    compute_signals,
    merge_windows,
)
from analytics.algorithms.pelvic_obliquity import pelvis_signals
from analytics.errors import InsufficientData
from sensor_gateway.virtual_kit import simulate_session
from sensor_gateway.virtual_kit.session import SimulatedSession

SKIP = ("stand", "walk")


def _arrays(session: SimulatedSession) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], float]:
    rec = session.recording
    acc = {p: s.acc_mps2 for p, s in rec.sensors.items()}
    gyr = {p: s.gyr_dps for p, s in rec.sensors.items()}
    return acc, gyr, float(rec.sampling_rate_hz)


def test_merge_windows_widens_clips_and_joins():
    assert merge_windows([(50, 60), (10, 20), (25, 30)], 3, 58) == [(7, 33), (47, 58)]
    assert merge_windows([], 3, 10) == []


def test_windowed_thigh_verticals_match_the_whole_recording_inside_the_windows(session):
    acc, gyr, rate = _arrays(session)
    pelvis = pelvis_signals(acc["pelvis"], gyr["pelvis"], rate)
    marked = [t for t in session.truth["exercises"] if t["exercise"] not in SKIP][:3]
    windows = [(round(t["start_s"] * rate), round(t["end_s"] * rate) + 1) for t in marked]
    windowed = compute_signals(acc, gyr, rate, pelvis=pelvis, windows={"left_thigh": windows})
    whole = compute_signals(acc, gyr, rate, pelvis=pelvis)
    left = windowed.up["left_thigh"]
    assert isinstance(left, WindowedVertical)
    computed = sum(b - a for a, b in left.windows)
    assert computed < 0.6 * windowed.n_samples  # only where needed (three sets + margins + standing)
    worst = 0.0
    for i0, i1 in windows:
        reference = whole.up["left_thigh"][i0:i1]
        diff = [float(angle_from_deg(left[i0:i1][k : k + 1], reference[k]).max()) for k in range(0, i1 - i0, 7)]
        worst = max(worst, max(diff))
    assert worst < 0.01, f"windowed vertical differs by {worst:.4f} deg from the whole-recording one"
    assert windowed.standing is not None and whole.standing is not None
    assert windowed.standing.start_s == whole.standing.start_s
    np.testing.assert_allclose(windowed.standing.up["left_thigh"], whole.standing.up["left_thigh"], atol=1e-6)
    # the right thigh was asked for nowhere: only its standing reference (plus margins) was computed
    right = windowed.up["right_thigh"]
    assert isinstance(right, WindowedVertical) and len(right.windows) == 1
    assert right.windows[0][1] - right.windows[0][0] < (2 * TILT_MARGIN_S + 60) * rate
    with pytest.raises(InsufficientData, match="not computed"):
        right[windows[0][0] : windows[0][1]]


def test_passing_the_pelvis_chain_gives_the_same_sets_as_computing_it(session, with_markers):
    acc, gyr, rate = _arrays(session)
    pelvis = pelvis_signals(acc["pelvis"], gyr["pelvis"], rate)
    shared = analyze_exercise_sets(session.recording, pelvis=pelvis)
    assert shared == with_markers


@pytest.mark.parametrize(
    ("seed", "exercise"),
    [
        (1031, "single_leg_bridge"),  # two partial repetitions mid-set, too small to be a bridge on their own
        (1007, "pelvic_tilt"),  # partial tilts (2-3 deg, not movements) make a 20 s gap between repetitions
        (1006, "lunge"),  # a lunge's step out and back made a 4-step "walking bout"
    ],
)
def test_interrupted_sets_are_detected_whole_with_their_repetitions(seed, exercise):
    session = simulate_session(seed=seed, minutes=15)
    truth = [t for t in session.truth["exercises"] if t["exercise"] == exercise]
    found = [
        e
        for e in analyze_exercise_sets(dataclasses.replace(session.recording, markers=()))
        if e["exercise"] == exercise
    ]
    assert [(e["side"], e["reps"]) for e in found] == [(t["side"], t["reps"]) for t in truth]
    for e, t in zip(found, truth, strict=True):
        assert abs(e["start_s"] - t["start_s"]) < 10 and abs(e["end_s"] - t["end_s"]) < 10
