"""Reference motion and a reference tilt filter for the tilt estimate, shared by tests/algorithms/test_tilt.py and
bench/tilt_vs_imufusion.py: a walking-like sensor motion with exact ground truth, the angle between unit vectors, and
x-io Fusion (imufusion) as the independent filter to compare against."""

from __future__ import annotations

import imufusion
import numpy as np
from scipy.spatial.transform import Rotation

RATE_HZ = 100.0
G = 9.80665


def walking_like_motion(seconds: float = 120.0, seed: int = 0, bias_dps: float = 0.0, noise: bool = False):
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


def angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.degrees(np.arccos(np.clip(np.einsum("ij,ij->i", a, b), -1.0, 1.0)))


def imufusion_up(acc: np.ndarray, gyr: np.ndarray) -> np.ndarray:
    """x-io Fusion 1.3 (revised Madgwick, gain 0.5, no magnetometer), one sample at a time."""
    ahrs = imufusion.Ahrs()
    ahrs.set_settings(imufusion.AhrsSettings(sample_rate=RATE_HZ, gain=0.5, gyroscope_range=2000.0))
    up = np.empty_like(acc)
    for k in range(acc.shape[0]):
        ahrs.update_no_magnetometer(gyr[k], acc[k] / G)
        up[k] = ahrs.get_gravity()
    return up / np.linalg.norm(up, axis=1, keepdims=True)
