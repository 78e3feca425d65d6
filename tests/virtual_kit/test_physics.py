"""The sensor signals are the derivatives of the simulated motion (kinematic consistency)."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from analytics.recording.io import GRAVITY_MPS2
from firmware_protocol.sensor_info import PLACEMENTS
from simulator import simulate_session


def integrate_gyro(initial: Rotation, gyr_dps: np.ndarray, rate_hz: float) -> Rotation:
    """Body-frame integration with the mean of consecutive samples (second order), sample by sample."""
    omega = np.radians(0.5 * (gyr_dps[1:] + gyr_dps[:-1])) / rate_hz
    steps = Rotation.from_rotvec(omega)
    quats = [initial.as_quat()]
    current = initial
    for step in steps:
        current = current * step
        quats.append(current.as_quat())
    return Rotation.from_quat(np.array(quats))


def test_integrating_the_gyro_reproduces_the_true_sensor_orientation(clean_walk):
    rate = clean_walk.recording.sampling_rate_hz
    for placement in PLACEMENTS:
        mounting = clean_walk.sensors[placement].mounting
        truth = Rotation.from_quat(clean_walk.motion.quat[placement]) * mounting  # world <- sensor
        gyr = clean_walk.recording.sensors[placement].gyr_dps
        estimate = integrate_gyro(truth[0], gyr, rate)
        error_deg = np.degrees((truth.inv() * estimate).magnitude())
        # a 90 s walk with turns: errors stay far below what an analysis would notice
        assert error_deg.max() < 0.5, (placement, error_deg.max())


def test_static_accelerometer_norm_is_g_in_quiet_standing():
    session = simulate_session(script="walk", seed=4, acc_bias_mps2=0.0)  # default noise
    rate = session.recording.sampling_rate_hz
    still = slice(int(1.0 * rate), int(9.0 * rate))  # calibration stand
    for placement, data in session.recording.sensors.items():
        norm = np.linalg.norm(data.acc_mps2[still], axis=1)
        assert abs(norm.mean() - GRAVITY_MPS2) < 0.005, placement
        assert norm.std() < 0.05, placement


def test_noiseless_standing_measures_gravity_along_the_true_segment_up(clean_walk):
    rate = clean_walk.recording.sampling_rate_hz
    still = slice(int(1.0 * rate), int(9.0 * rate))
    for placement, data in clean_walk.recording.sensors.items():
        body = clean_walk.sensors[placement].mounting.apply(data.acc_mps2[still])  # sensor -> segment frame
        up = Rotation.from_quat(clean_walk.motion.quat[placement][still]).apply([0, 0, GRAVITY_MPS2], inverse=True)
        np.testing.assert_allclose(body, up, atol=0.06, err_msg=placement)  # postural sway: < 0.05 m/s^2
        assert np.abs(data.gyr_dps[still]).max() < 1.0  # postural sway only


def test_gyro_bias_is_constant_per_sensor():
    session = simulate_session(script="walk", seed=4, noise=0.0, gyro_bias_dps=2.0)
    clean = simulate_session(script="walk", seed=4, noise=0.0, gyro_bias_dps=0.0)
    for placement, data in session.recording.sensors.items():
        diff = data.gyr_dps - clean.recording.sensors[placement].gyr_dps
        np.testing.assert_allclose(diff, np.broadcast_to(diff[0], diff.shape), atol=1e-9)
        assert np.abs(diff[0]).max() > 0.01
