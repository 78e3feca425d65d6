"""Shared intermediates of the exercise analysis: windowed thigh verticals, the pipeline's pelvis chain, and
set detection where a set is interrupted (stray partial repetitions, a lunge that looks like a walking bout)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from analytics.algorithms.exercise_detection import MOVE_DEG, detect_sets
from analytics.algorithms.exercise_sets import analyze_exercise_sets
from analytics.algorithms.exercise_signals import (
    TILT_MARGIN_S,
    WindowedVertical,
    angle_from_deg,
    coarse_signals,
    compute_signals,
    merge_windows,
)
from analytics.algorithms.pelvic_obliquity import pelvis_signals
from analytics.algorithms.tilt import block_means
from analytics.errors import InsufficientData
from simulator import simulate_session
from simulator.session import SimulatedSession

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


def test_block_means_average_consecutive_rows_whatever_the_layout():
    x = np.arange(30, dtype=np.float64).reshape(10, 3)
    expected = np.array([[4.5, 5.5, 6.5], [16.5, 17.5, 18.5], [25.5, 26.5, 27.5]])  # rows 0-3, 4-7, 8-9
    np.testing.assert_array_equal(block_means(x, 4), expected)
    np.testing.assert_array_equal(block_means(np.asfortranarray(x), 4), expected)
    np.testing.assert_array_equal(block_means(x[:8], 4), expected[:2])
    np.testing.assert_array_equal(block_means(x, 1), x)


def test_coarse_detection_finds_the_sets_full_rate_detection_finds(session):
    """Set detection on the signals at COARSE_RATE_HZ finds the same sets (exercise, side, bounds within two
    coarse samples) as on the full-rate signals, and the coarse signals are consistent block means."""
    acc, gyr, rate = _arrays(session)
    pelvis = pelvis_signals(acc["pelvis"], gyr["pelvis"], rate)
    full = compute_signals(acc, gyr, rate, pelvis=pelvis)
    coarse = coarse_signals(compute_signals(acc, gyr, rate, pelvis=pelvis, windows={}), acc, gyr)
    q = round(rate / coarse.rate_hz)
    assert q == 4 and coarse.n_samples == -(-full.n_samples // q)
    for p in ("pelvis", "left_thigh", "right_thigh"):
        assert coarse.speed_dps[p].shape == (coarse.n_samples,)
        up = np.asarray(coarse.up[p][0 : coarse.n_samples])
        np.testing.assert_allclose(np.linalg.norm(up, axis=1), 1.0, atol=1e-9)
        # the coarse vertical follows the full-rate one averaged over each block: closely at rest and in slow
        # exercise movements, within a few degrees in the thighs' fast swing of walking (the gyro rates are
        # block means), always well below MOVE_DEG, the smallest angle detection acts on
        reference = block_means(np.asarray(full.up[p][0 : full.n_samples]), q)
        reference /= np.linalg.norm(reference, axis=1)[:, None]
        error = np.degrees(np.arccos(np.clip(np.einsum("ij,ij->i", up, reference), -1.0, 1.0)))
        assert float(np.median(error)) < 0.3, p
        assert float(np.percentile(error[~coarse.walking], 99)) < 1.5, p
        assert float(error.max()) < 0.6 * MOVE_DEG, f"{p}: coarse vertical {error.max():.2f} deg from the full-rate one"
    at_full = detect_sets(full)
    at_coarse = detect_sets(coarse)
    assert [(d.exercise, d.side) for d in at_coarse] == [(d.exercise, d.side) for d in at_full]
    assert len(at_full) >= 5
    for a, b in zip(at_coarse, at_full, strict=True):
        assert abs(a.start_s - b.start_s) <= 2 * q / rate + 1e-9 and abs(a.end_s - b.end_s) <= 2 * q / rate + 1e-9


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
