"""Repetition segmentation on signals with known answers; bad markers and inputs fail naming the problem."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from analytics.algorithms.exercise_reps import segment_repetitions
from analytics.algorithms.exercise_sets import ExerciseError, analyze_exercise_sets, pair_markers
from analytics.errors import AnalyticsError, InsufficientData, InvalidSignal
from analytics.recording.io import ExerciseMarker

RATE = 100.0


def _bump(t: np.ndarray, start: float, rise: float, hold: float, amplitude: float) -> np.ndarray:
    """Smootherstep up over ``rise`` s, hold, down over ``rise`` s (deg)."""

    def step(x: np.ndarray) -> np.ndarray:
        x = np.clip(x, 0.0, 1.0)
        return x * x * x * (x * (6.0 * x - 15.0) + 10.0)

    up = step((t - start) / rise)
    down = step((t - start - rise - hold) / rise)
    return amplitude * (up - down)


def test_partial_repetitions_below_half_the_typical_amplitude_are_not_counted():
    t = np.arange(0, 60, 1 / RATE)
    x = (
        _bump(t, 2, 1.5, 5, 40)
        + _bump(t, 12, 1.0, 0, 0.4 * 40)  # partial: 40 % of typical
        + _bump(t, 16, 2.0, 5, 44)
        + _bump(t, 28, 1.2, 0, 0.3 * 40)  # partial: 30 %
        + _bump(t, 33, 1.5, 5, 38)
        + _bump(t, 45, 1.5, 5, 0.6 * 40)  # complete: 60 % of typical is more than half
    )
    seg = segment_repetitions(x, RATE, has_hold=True)
    assert len(seg.complete) == 4
    assert seg.n_partial == 2
    assert seg.typical_amplitude_deg == pytest.approx(39.0, abs=0.01)  # median of 40, 44, 38, 24
    for hold in seg.holds_s:  # 5 s holds; the ends of the smootherstep within 3 % add ~0.2 s a side
        assert 5.0 < hold < 5.8


def test_an_interrupted_hold_is_flagged():
    t = np.arange(0, 20, 1 / RATE)
    x = _bump(t, 2, 1.5, 8, 30) - _bump(t, 6, 0.3, 0.5, 15)  # drops to half for ~0.8 s mid-hold
    seg = segment_repetitions(x, RATE, has_hold=True)
    assert len(seg.complete) == 1 and seg.complete[0].hold_interrupted


def test_no_movement_gives_no_repetitions():
    seg = segment_repetitions(np.full(500, 0.5), RATE, has_hold=True)
    assert seg.repetitions == () and seg.holds_s == []


def test_bad_angle_signal_is_rejected():
    with pytest.raises(InvalidSignal, match="angle_deg"):
        segment_repetitions(np.array([0.0, np.nan, 1.0]), RATE, has_hold=False)


@pytest.mark.parametrize(
    ("markers", "message"),
    [
        ([ExerciseMarker(5.0, "end", "clam", "left", 1)], "end without a start"),
        (
            [ExerciseMarker(1.0, "start", "yoga", "left", 1), ExerciseMarker(5.0, "end", "yoga", "left", 1)],
            "unknown exercise",
        ),
        ([ExerciseMarker(1.0, "start", "clam", "left", 1)], "no end marker"),
        ([ExerciseMarker(1.0, "start", "clam", "up", 1), ExerciseMarker(5.0, "end", "clam", "up", 1)], "side must be"),
    ],
)
def test_inconsistent_markers_raise_an_error_naming_the_marker(markers, message):
    with pytest.raises(ExerciseError, match=message) as info:
        pair_markers(markers, 100.0)
    assert isinstance(info.value, AnalyticsError)


def test_flags_for_a_too_short_set_and_a_missing_sensor(session):
    rec = session.recording
    short = [ExerciseMarker(200.0, "start", "clam", "left", 1), ExerciseMarker(201.0, "end", "clam", "left", 1)]
    (entry,) = analyze_exercise_sets(rec, markers=short)
    assert entry["reps"] is None and entry["metrics"] == {}
    assert entry["flags"][0].startswith("set_too_short")
    no_thigh = dataclasses.replace(rec, sensors={k: v for k, v in rec.sensors.items() if k != "left_thigh"})
    with pytest.raises(InsufficientData, match="left_thigh"):
        analyze_exercise_sets(no_thigh)
