"""Body axes of a pelvis IMU from walking: synthetic rotations, real data, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from gait_testlib import TRIALS, load_trial, make_walk, mirror
from scipy.spatial.transform import Rotation

from analytics.algorithms.pelvis_alignment import estimate_body_axes
from analytics.errors import AnalyticsError, InsufficientData, InvalidSignal


@pytest.mark.parametrize("seed", [None, 0, 1, 2, 3, 4])
def test_synthetic_axes_recovered_in_any_orientation(seed: int | None) -> None:
    walk = make_walk(rotation_seed=seed)
    axes = estimate_body_axes(walk.acc_mps2, walk.gyr_dps, 100.0)
    q = walk.body_to_sensor
    assert np.dot(axes.forward, q[:, 0]) > 0.99
    assert np.dot(axes.left, q[:, 1]) > 0.99
    assert np.dot(axes.up, q[:, 2]) > 0.999
    assert axes.confidence > 0.8
    assert np.allclose(axes.rotation @ axes.rotation.T, np.eye(3), atol=1e-9)
    assert np.linalg.det(axes.rotation) == pytest.approx(1.0)


def test_to_body_maps_sensor_vectors_to_forward_left_up() -> None:
    walk = make_walk(rotation_seed=7)
    axes = estimate_body_axes(walk.acc_mps2, walk.gyr_dps, 100.0)
    body = axes.to_body(walk.acc_mps2)
    # the whole mean specific force (gravity + the synthetic bumps' mean) lies on "up"
    assert body[:, 2].mean() == pytest.approx(np.linalg.norm(walk.acc_mps2.mean(axis=0)), abs=1e-9)
    assert abs(body[:, 0].mean()) < 1e-9 and abs(body[:, 1].mean()) < 1e-9


@pytest.mark.parametrize("trial", TRIALS)
def test_real_data_axes_match_the_recorded_frame(trial: str) -> None:
    """The recorded frame (x up, y right, z forward) is used here only as the answer, never as input."""
    acc, gyr, fs = load_trial(trial)
    axes = estimate_body_axes(acc, gyr, fs)
    assert np.dot(axes.up, [1, 0, 0]) > 0.9  # the sensor is tilted ~15 deg on this subject
    assert np.dot(axes.forward, [0, 0, 1]) > 0.9
    assert np.dot(axes.left, [0, -1, 0]) > 0.9


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_real_data_axes_rotate_with_the_sensor(seed: int) -> None:
    acc, gyr, fs = load_trial("HA-001_Test5_Trial1")
    r = Rotation.random(random_state=seed).as_matrix()
    plain = estimate_body_axes(acc, gyr, fs)
    rotated = estimate_body_axes(acc @ r.T, gyr @ r.T, fs)
    for name in ("up", "forward", "left"):
        assert np.allclose(r @ np.asarray(getattr(plain, name)), getattr(rotated, name), atol=1e-9)
    assert rotated.confidence == pytest.approx(plain.confidence, abs=1e-9)


def test_mirrored_walker_swaps_left() -> None:
    acc, gyr, fs = load_trial("HA-001_Test5_Trial1")
    plain = estimate_body_axes(acc, gyr, fs)
    m_acc, m_gyr = mirror(acc, gyr, axis=1)
    mirrored = estimate_body_axes(m_acc, m_gyr, fs)
    assert np.allclose(mirrored.forward, np.asarray(plain.forward) * [1, -1, 1], atol=1e-9)
    # the walker's left now lies along what was its right in the mirrored sensor frame
    assert np.allclose(mirrored.left, np.asarray(plain.left) * [-1, 1, -1], atol=1e-9)


def test_walking_mask_selects_samples_and_is_checked() -> None:
    walk = make_walk(rotation_seed=3)
    n = walk.acc_mps2.shape[0]
    mask = np.zeros(n, dtype=bool)
    mask[300:1150] = True
    axes = estimate_body_axes(walk.acc_mps2, walk.gyr_dps, 100.0, walking_mask=mask)
    assert np.dot(axes.forward, walk.body_to_sensor[:, 0]) > 0.99
    with pytest.raises(InvalidSignal, match="walking_mask"):
        estimate_body_axes(walk.acc_mps2, walk.gyr_dps, 100.0, walking_mask=mask[:-1])
    with pytest.raises(InsufficientData, match="walking_mask"):
        estimate_body_axes(walk.acc_mps2, walk.gyr_dps, 100.0, walking_mask=np.zeros(n, dtype=bool))


def test_bad_input_raises_typed_errors() -> None:
    walk = make_walk()
    acc, gyr = walk.acc_mps2, walk.gyr_dps
    with pytest.raises(InvalidSignal, match="sampling_rate_hz"):
        estimate_body_axes(acc, gyr, 0.0)
    with pytest.raises(InvalidSignal, match=r"acc_mps2 must have shape \(n, 3\)"):
        estimate_body_axes(acc[:, :2], gyr, 100.0)
    with pytest.raises(InsufficientData, match="too short"):
        estimate_body_axes(acc[:50], gyr[:50], 100.0)
    with pytest.raises(AnalyticsError, match="gravity"):
        estimate_body_axes(acc - acc.mean(axis=0), gyr, 100.0)
