"""The vectorised tilt estimate against exact ground truth and against imufusion (x-io Fusion)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from analytics.algorithms.tilt import (
    BIAS_CORRECTED_CUTOFF_HZ,
    BLOCK,
    conjugate,
    estimate_tilt,
    level_accelerations,
    multiply,
    prefix_product,
    still_gyro_bias_dps,
)
from analytics.errors import InvalidSignal
from testing.tilt_reference import RATE_HZ, G, angle_deg, imufusion_up, walking_like_motion


def test_prefix_product_equals_the_sequential_product():
    q = Rotation.random(777, random_state=3).as_quat(scalar_first=True)
    fast = prefix_product(q)
    slow = q[0]
    for k in range(1, q.shape[0]):
        slow = multiply(slow, q[k])
        slow /= np.linalg.norm(slow)
        assert min(np.abs(slow - fast[k]).max(), np.abs(slow + fast[k]).max()) < 1e-12


def test_perfect_sensor_tilt_is_exact_after_the_filter_settles():
    acc, gyr, up_true = walking_like_motion()
    err = angle_deg(estimate_tilt(acc, gyr, RATE_HZ).up, up_true)
    assert np.percentile(err, 99) < 0.3  # the worst is at the very start: this walk starts at full speed
    assert err.max() < 0.5


def test_noise_and_gyro_bias_keep_tilt_within_half_a_degree_and_beat_or_match_imufusion():
    acc, gyr, up_true = walking_like_motion(seed=4, bias_dps=0.5, noise=True)
    ours = angle_deg(estimate_tilt(acc, gyr, RATE_HZ).up, up_true)
    fusion = angle_deg(imufusion_up(acc, gyr), up_true)
    settled = slice(int(5 * RATE_HZ), None)  # imufusion's initialisation period
    assert np.sqrt(np.mean(ours[settled] ** 2)) < 0.5
    assert np.sqrt(np.mean(ours[settled] ** 2)) <= np.sqrt(np.mean(fusion[settled] ** 2)) + 0.1


def test_elevation_of_an_axis_is_heading_free():
    acc, gyr, _ = walking_like_motion(seed=2)
    tilt = estimate_tilt(acc, gyr, RATE_HZ)
    up_mean = tilt.up.mean(axis=0)
    horizontal = np.cross(up_mean, [1.0, 0.0, 0.0])
    elevation = tilt.elevation_deg(horizontal)
    assert np.abs(elevation).max() < 8.0  # a horizontal axis stays within the sway amplitude through turns
    assert tilt.elevation_deg(up_mean).min() > 80.0


@pytest.mark.parametrize(
    ("acc", "gyr", "rate", "message"),
    [
        (np.zeros((500, 2)), np.zeros((500, 3)), 100.0, "acc_mps2 must have shape"),
        (np.zeros((500, 3)), np.zeros((400, 3)), 100.0, "differ in length"),
        (np.full((500, 3), np.nan), np.zeros((500, 3)), 100.0, "NaN"),
        (np.zeros((500, 3)), np.zeros((500, 3)), 0.0, "rate_hz must be a positive"),
        (np.zeros((50, 3)), np.zeros((50, 3)), 100.0, "at least 2 s"),
    ],
)
def test_bad_input_is_refused_clearly(acc, gyr, rate, message):
    with pytest.raises(InvalidSignal, match=message):
        estimate_tilt(acc, gyr, rate)


def test_still_periods_give_the_gyro_bias_and_none_without_them():
    _, gyr, _ = walking_like_motion(seconds=60.0, seed=5, noise=True)
    bias = np.array([0.4, -0.7, 0.3])
    still = int(10 * RATE_HZ)  # 10 s of standing still (gyro noise only) before the walk
    gyr_still = np.random.default_rng(2).normal(0.0, 0.08, (still, 3))
    found = still_gyro_bias_dps(np.vstack([gyr_still, gyr]) + bias, RATE_HZ)
    assert found is not None
    assert np.abs(found - bias).max() < 0.02
    assert still_gyro_bias_dps(gyr + bias, RATE_HZ) is None  # walking all the time: never still


def test_bias_removal_and_the_low_cutoff_cut_the_obliquity_error_of_real_walking_bouts():
    """Simulated walk (starts, stops, 180 deg turns, gyro bias ~0.5 deg/s): the elevation of the pelvis's true
    left axis against the truth, relative to the calibration stand, while walking."""
    from scipy.spatial.transform import Rotation

    from simulator.session import simulate_session

    s = simulate_session(seed=7, script="walk", minutes=1.5)
    pelvis, fs = s.recording.sensors["pelvis"], s.recording.sampling_rate_hz
    mounting = s.sensors["pelvis"].mounting
    left = mounting.inv().apply([0.0, 1.0, 0.0])
    up_true = (Rotation.from_quat(s.motion.quat["pelvis"]) * mounting).inv().apply([0.0, 0.0, 1.0])
    truth = np.degrees(np.arcsin(up_true @ left))
    walking = np.zeros(truth.size, dtype=bool)
    for bout in s.truth["gait"]["bouts"]:
        walking[round(bout["start_s"] * fs) : round(bout["end_s"] * fs)] = True
    calibration = slice(round(3 * fs), round(9 * fs))

    def error_sd(tilt):
        err = tilt.elevation_deg(left) - truth
        return float(np.std(err[walking] - np.median(err[calibration])))

    bias = still_gyro_bias_dps(pelvis.gyr_dps, fs)
    assert bias is not None
    assert np.abs(bias - s.sensors["pelvis"].gyro_bias_dps).max() < 0.05
    plain = error_sd(estimate_tilt(pelvis.acc_mps2, pelvis.gyr_dps, fs))
    corrected = error_sd(estimate_tilt(pelvis.acc_mps2, pelvis.gyr_dps, fs, BIAS_CORRECTED_CUTOFF_HZ, bias))
    assert corrected < 0.3
    assert corrected < 0.5 * plain


def test_levelled_accelerations_put_gravity_on_the_reference_and_keep_lengths():
    rng = np.random.default_rng(3)
    up = Rotation.random(500, random_state=4).apply([0.0, 0.0, 1.0]) * 0.2 + [0.0, 0.0, 1.0]
    up /= np.linalg.norm(up, axis=1, keepdims=True)
    reference = np.array([0.1, -0.2, 1.0]) / np.linalg.norm([0.1, -0.2, 1.0])
    gravity = G * up
    out = level_accelerations(gravity, up, reference)
    assert np.abs(out - G * reference).max() < 1e-9
    other = rng.normal(size=(500, 3))
    levelled = level_accelerations(other, up, reference)
    assert np.allclose(np.linalg.norm(levelled, axis=1), np.linalg.norm(other, axis=1))
    assert np.allclose(levelled @ reference, np.einsum("ij,ij->i", other, up))  # vertical part stays vertical


def test_blockwise_integration_carries_the_frame_across_blocks_and_keep_frame_false_gives_the_same_up():
    acc, gyr, _ = walking_like_motion(seconds=2.5 * BLOCK / RATE_HZ, seed=6, noise=True)
    full = estimate_tilt(acc, gyr, RATE_HZ)
    lean = estimate_tilt(acc, gyr, RATE_HZ, keep_frame=False)
    assert np.array_equal(full.up, lean.up) and lean.gyro_frame.shape == (0, 4)
    # the frame over each sample interval turns by exactly that interval's gyro increment, at block edges too
    for k in (BLOCK - 1, 2 * BLOCK - 1, 100):
        step = multiply(conjugate(full.gyro_frame[k]), full.gyro_frame[k + 1])
        w = np.radians(gyr[k]) / RATE_HZ
        angle = np.linalg.norm(w)
        expected = np.concatenate([[np.cos(angle / 2)], np.sin(angle / 2) * w / angle])
        assert np.abs(step - expected).max() < 1e-9
