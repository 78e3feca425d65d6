"""Pelvic obliquity, its standing reference and pelvic drop, on signals with analytic answers."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.algorithms.pelvic_obliquity import (
    obliquity_deg,
    pelvic_drop_deg,
    quiet_standing_mask,
    standing_reference,
)
from analytics.errors import InsufficientData, InvalidSignal

RATE = 100.0


def _up_with_roll(roll_deg: np.ndarray) -> np.ndarray:
    """Up vector in a sensor frame whose x axis points left, for a pelvis rolled by roll_deg (left side up)."""
    r = np.radians(roll_deg)
    return np.column_stack([np.sin(r), np.zeros_like(r), np.cos(r)])


def test_obliquity_is_the_elevation_of_the_left_axis_and_positive_when_the_right_side_is_lower():
    roll = np.linspace(-10, 10, 21)
    np.testing.assert_allclose(obliquity_deg(_up_with_roll(roll), np.array([1.0, 0.0, 0.0])), roll, atol=1e-9)
    # the same pelvis seen by a sensor whose axes are permuted and flipped: same obliquity
    flip = np.array([[0, 0, -1], [1, 0, 0], [0, -1, 0]], dtype=float)
    up_rot = _up_with_roll(roll) @ flip.T
    np.testing.assert_allclose(obliquity_deg(up_rot, flip @ [1.0, 0.0, 0.0]), roll, atol=1e-9)


def test_pelvic_drop_is_the_peak_contralateral_drop_in_each_stance():
    t = np.arange(0, 10, 1 / RATE)
    rel = 5.0 * np.sin(2 * np.pi * 0.5 * t)  # +5 deg peak at 0.5 s, -5 at 1.5 s, period 2 s
    sides = np.array(["left", "right", "left", "right"])
    starts = np.array([0.2, 1.2, 2.2, 3.2])
    ends = np.array([0.8, 1.8, 2.8, 3.8])
    drop = pelvic_drop_deg(rel, RATE, sides, starts, ends)
    np.testing.assert_allclose(drop, [5.0, 5.0, 5.0, 5.0], atol=1e-3)
    # a stance that never sees the contralateral side drop gives a negative drop (hip hiking), not zero
    assert pelvic_drop_deg(rel, RATE, np.array(["right"]), np.array([0.2]), np.array([0.8]))[0] == pytest.approx(
        -5.0 * np.sin(2 * np.pi * 0.5 * 0.2), abs=1e-9
    )


def test_overlapping_windows_and_windows_at_the_end_are_handled():
    rel = np.arange(100, dtype=float)
    drop = pelvic_drop_deg(rel, RATE, np.array(["left", "left"]), np.array([0.1, 0.05]), np.array([0.99, 0.5]))
    np.testing.assert_allclose(drop, [99.0, 50.0])
    outside = pelvic_drop_deg(rel, RATE, np.array(["left"]), np.array([0.5]), np.array([1.5]))
    assert np.isnan(outside[0])


def test_mirrored_motion_gives_mirrored_drops():
    t = np.arange(0, 4, 1 / RATE)
    rel = 3.0 * np.sin(2 * np.pi * 0.5 * t) + 1.0 * np.sin(2 * np.pi * 1.0 * t)
    sides = np.array(["left", "right"])
    starts, ends = np.array([0.1, 1.1]), np.array([0.9, 1.9])
    drop = pelvic_drop_deg(rel, RATE, sides, starts, ends)
    mirrored = pelvic_drop_deg(-rel, RATE, np.array(["right", "left"]), starts, ends)
    np.testing.assert_allclose(drop, mirrored)


def test_quiet_standing_needs_stillness_and_an_upright_pelvis():
    n = int(30 * RATE)
    t = np.arange(n) / RATE
    gyr = np.zeros((n, 3))
    gyr[int(10 * RATE) : int(20 * RATE), 1] = 40.0 * np.sin(2 * np.pi * 1.0 * t[int(10 * RATE) : int(20 * RATE)])
    roll = np.zeros(n)
    roll[int(25 * RATE) :] = 90.0  # lying on the side for the last 5 s: still, but not standing
    up = _up_with_roll(roll)
    mask = quiet_standing_mask(gyr, up, np.array([0.0, 0.0, 1.0]), RATE)
    assert mask[int(2 * RATE) : int(9 * RATE)].all()
    assert not mask[int(10.5 * RATE) : int(19.5 * RATE)].any()
    assert not mask[int(25 * RATE) :].any()
    ref = standing_reference(np.where(mask, -10.0, 99.0), mask, RATE)
    assert ref.obliquity_deg == -10.0 and ref.spread_deg == 0.0
    assert ref.n_samples == int(mask.sum()) and len(ref.periods_s) == 2


def test_no_standing_is_insufficient_data_and_bad_input_is_named():
    with pytest.raises(InsufficientData, match="no quiet upright standing"):
        standing_reference(np.zeros(10), np.zeros(10, dtype=bool), RATE)
    with pytest.raises(InvalidSignal, match="left_axis"):
        obliquity_deg(np.tile([0.0, 0.0, 1.0], (5, 1)), np.zeros(3))
    with pytest.raises(InvalidSignal, match="side must be"):
        pelvic_drop_deg(np.zeros(10), RATE, np.array(["up"]), np.array([0.0]), np.array([0.05]))
    with pytest.raises(InvalidSignal, match="same length"):
        pelvic_drop_deg(np.zeros(10), RATE, np.array(["left"]), np.array([0.0, 0.01]), np.array([0.05]))
    with pytest.raises(InvalidSignal, match="NaN"):
        obliquity_deg(np.full((5, 3), np.nan), np.array([1.0, 0.0, 0.0]))
