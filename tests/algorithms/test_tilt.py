"""The vectorised tilt estimate against exact ground truth and against imufusion (x-io Fusion)."""

from __future__ import annotations

import imufusion
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from analytics.algorithms.tilt import estimate_tilt, multiply, prefix_product
from analytics.errors import InvalidSignal

RATE_HZ = 100.0
G = 9.80665


def _walking_like_motion(seconds: float = 120.0, seed: int = 0, bias_dps: float = 0.0, noise: bool = False):
    """A sensor whose orientation sways like a pelvis in gait (+-5 deg roll at 0.9 Hz, +-2 deg pitch at 1.8 Hz,
    +-5 deg yaw at 0.9 Hz) while the walker turns 180 deg every 20 s, with walking accelerations of ~1-2 m/s^2.
    Returns acc (m/s^2), gyr (deg/s) as an IMU mounted at a random fixed rotation would measure them, and
    the true up vector in the sensor frame. The gyro reproduces the orientation increments exactly."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE_HZ)
    t = np.arange(n) / RATE_HZ
    turns = np.cumsum(np.where((t % 20.0) < 1.5, np.pi / 1.5 / RATE_HZ, 0.0))  # 180 deg in 1.5 s
    roll = np.radians(5) * np.sin(2 * np.pi * 0.9 * t)
    pitch = np.radians(2) * np.sin(2 * np.pi * 1.8 * t + 0.4)
    yaw = np.radians(5) * np.sin(2 * np.pi * 0.9 * t + 1.0) + turns
    body = Rotation.from_euler("ZYX", np.column_stack([yaw, pitch, roll]))
    mounting = Rotation.random(random_state=seed)
    sensor = body * mounting  # sensor-to-world
    gyr = np.degrees((sensor[:-1].inv() * sensor[1:]).as_rotvec() * RATE_HZ)
    gyr = np.vstack([gyr, gyr[-1]])
    lin = np.column_stack(
        [1.2 * np.sin(2 * np.pi * 1.8 * t), 0.8 * np.sin(2 * np.pi * 0.9 * t), 1.8 * np.sin(2 * np.pi * 1.8 * t + 1)]
    )
    acc = sensor.inv().apply(lin + [0.0, 0.0, G])
    up_true = sensor.inv().apply(np.tile([0.0, 0.0, 1.0], (n, 1)))
    if bias_dps:
        gyr = gyr + rng.normal(0.0, bias_dps, 3)
    if noise:
        gyr = gyr + rng.normal(0.0, 0.08, gyr.shape)
        acc = acc + rng.normal(0.0, 0.016, acc.shape)
    return acc, gyr, up_true


def _angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.degrees(np.arccos(np.clip(np.einsum("ij,ij->i", a, b), -1.0, 1.0)))


def _imufusion_up(acc: np.ndarray, gyr: np.ndarray) -> np.ndarray:
    """x-io Fusion 1.3 (revised Madgwick, gain 0.5, no magnetometer), one sample at a time."""
    ahrs = imufusion.Ahrs()
    ahrs.set_settings(imufusion.AhrsSettings(sample_rate=RATE_HZ, gain=0.5, gyroscope_range=2000.0))
    up = np.empty_like(acc)
    for k in range(acc.shape[0]):
        ahrs.update_no_magnetometer(gyr[k], acc[k] / G)
        up[k] = ahrs.get_gravity()
    return up / np.linalg.norm(up, axis=1, keepdims=True)


def test_prefix_product_equals_the_sequential_product():
    q = Rotation.random(777, random_state=3).as_quat(scalar_first=True)
    fast = prefix_product(q)
    slow = q[0]
    for k in range(1, q.shape[0]):
        slow = multiply(slow, q[k])
        slow /= np.linalg.norm(slow)
        assert min(np.abs(slow - fast[k]).max(), np.abs(slow + fast[k]).max()) < 1e-12


def test_perfect_sensor_tilt_is_exact_after_the_filter_settles():
    acc, gyr, up_true = _walking_like_motion()
    err = _angle_deg(estimate_tilt(acc, gyr, RATE_HZ).up, up_true)
    assert np.percentile(err, 99) < 0.3  # the worst is at the very start: this walk starts at full speed
    assert err.max() < 0.5


def test_noise_and_gyro_bias_keep_tilt_within_half_a_degree_and_beat_or_match_imufusion():
    acc, gyr, up_true = _walking_like_motion(seed=4, bias_dps=0.5, noise=True)
    ours = _angle_deg(estimate_tilt(acc, gyr, RATE_HZ).up, up_true)
    fusion = _angle_deg(_imufusion_up(acc, gyr), up_true)
    settled = slice(int(5 * RATE_HZ), None)  # imufusion's initialisation period
    assert np.sqrt(np.mean(ours[settled] ** 2)) < 0.5
    assert np.sqrt(np.mean(ours[settled] ** 2)) <= np.sqrt(np.mean(fusion[settled] ** 2)) + 0.1


def test_elevation_of_an_axis_is_heading_free():
    acc, gyr, _ = _walking_like_motion(seed=2)
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
