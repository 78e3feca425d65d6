"""From segment motion to what each IMU measures: angular velocity and specific force in the sensor frame.

- Angular velocity (body frame) from the orientation trajectory: a C2 cubic spline through the sign-continuous
  quaternions q(t) (world <- segment) differentiated analytically, omega_body = 2 vec(conj(q) q'), rad/s,
  reported in deg/s.
- Specific force (what an accelerometer measures, m/s^2): f = R^T (a + g Z), a = second derivative of the
  sensor point's position spline, g = 9.80665 m/s^2, Z up; +9.81 along the sensor's up axis when still.
  Heel-strike transients are added to the pelvis's acceleration (gait_model); a thigh sensor strapped on soft
  tissue (walkers with ``soft_tissue``) adds the tissue's wobble after each heel strike (soft_tissue.py), and one
  on a loose strap (the stress ``stress_loose_thigh_straps``) the strap's knock back and spring forward.
- Mounting: each sensor sits on its segment with a fixed rotation segment <- sensor; `random` draws a uniform
  random rotation per sensor (patients strap sensors on in any orientation), `aligned` uses the identity.
- Errors: white noise of density ACC_NOISE_DENSITY_MPS2_RTHZ / GYR_NOISE_DENSITY_DPS_RTHZ (config.py) times
  --noise, i.e. sd = density * sqrt(rate / 2); a constant bias per sensor and axis drawn with sd --gyro-bias
  (deg/s) and --acc-bias (m/s^2). Clock drift and packet loss belong to the packet stream (packets.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.interpolate import CubicSpline
from scipy.spatial.transform import Rotation

from analytics.recording.io import GRAVITY_MPS2, SensorData
from firmware_protocol.sensor_info import PLACEMENTS
from sensor_gateway.errors import SimulationError

from .config import ACC_NOISE_DENSITY_MPS2_RTHZ, GYR_NOISE_DENSITY_DPS_RTHZ, SessionConfig
from .kinematics import THIGHS, BodyMotion
from .soft_tissue import add_wobble, draw_loose_strap, draw_wobble, loose_strap_motion, wobble_motion
from .walkers import walker_profile

THIGH_SIDES = {placement: side for side, placement in THIGHS.items()}


@dataclass(frozen=True)
class SensorModel:
    """One sensor's fixed properties: mounting (segment <- sensor) and constant biases."""

    placement: str
    mounting: Rotation
    gyro_bias_dps: np.ndarray
    acc_bias_mps2: np.ndarray


def continuous_quaternions(quat: np.ndarray) -> np.ndarray:
    """Flip signs so consecutive quaternions lie in one hemisphere (q and -q are the same rotation)."""
    dots = np.einsum("ij,ij->i", quat[1:], quat[:-1])
    flips = np.concatenate([[1.0], np.cumprod(np.where(dots < 0, -1.0, 1.0))])
    return quat * flips[:, None]


def body_angular_velocity(quat: np.ndarray, rate_hz: float) -> np.ndarray:
    """Angular velocity in the segment frame, rad/s (n, 3), of quaternions world <- segment (x, y, z, w)."""
    q = continuous_quaternions(quat)
    t = np.arange(q.shape[0]) / rate_hz
    dq = CubicSpline(t, q, axis=0)(t, 1)
    v, w = q[:, :3], q[:, 3:4]
    dv, dw = dq[:, :3], dq[:, 3:4]
    norm2 = np.einsum("ij,ij->i", q, q)[:, None]
    return 2.0 * (w * dv - dw * v - np.cross(v, dv)) / norm2


def specific_force_world(position_m: np.ndarray, rate_hz: float) -> np.ndarray:
    """a + g Z in the world frame, m/s^2 (n, 3), from sensor-point positions (n, 3) m."""
    t = np.arange(position_m.shape[0]) / rate_hz
    acc = CubicSpline(t, position_m, axis=0)(t, 2)
    acc[:, 2] += GRAVITY_MPS2
    return acc


def draw_sensors(cfg: SessionConfig, rng: np.random.Generator) -> dict[str, SensorModel]:
    """Mounting and biases of the three sensors (from their own random stream, so truth never depends on them)."""
    out = {}
    for placement in PLACEMENTS:
        mounting = Rotation.random(random_state=rng) if cfg.mounting == "random" else Rotation.identity()
        out[placement] = SensorModel(
            placement,
            mounting,
            cfg.gyro_bias_dps * rng.standard_normal(3),
            cfg.acc_bias_mps2 * rng.standard_normal(3),
        )
    return out


def ideal_signals(motion: BodyMotion, sensor: SensorModel) -> tuple[np.ndarray, np.ndarray]:
    """Error-free (acc m/s^2, gyr deg/s) of one sensor in its own frame."""
    segment = sensor.placement
    omega = body_angular_velocity(motion.quat[segment], motion.rate_hz)
    force = specific_force_world(motion.position_m[segment], motion.rate_hz)
    if segment == "pelvis":
        force += motion.impacts_mps2
    force_body = Rotation.from_quat(motion.quat[segment]).apply(force, inverse=True)
    acc = sensor.mounting.apply(force_body, inverse=True)
    gyr = np.degrees(sensor.mounting.apply(omega, inverse=True))
    return acc, gyr


def measure(
    motion: BodyMotion,
    sensors: dict[str, SensorModel],
    cfg: SessionConfig,
    rng: np.random.Generator,
    walker_rng: np.random.Generator | None = None,
) -> dict[str, SensorData]:
    """What each sensor records: ideal signals (+ the soft tissue's wobble under a laterally strapped thigh
    sensor, and a loose strap's knock, for walkers that have them: simulator.soft_tissue, drawn from
    ``walker_rng``) + constant bias + white noise."""
    out = {}
    n = motion.n_samples
    bandwidth = np.sqrt(motion.rate_hz / 2.0)
    soft = walker_profile(cfg.walker).soft_tissue
    loose = walker_profile(cfg.walker).loose_strap
    if (soft or loose) and walker_rng is None:
        raise SimulationError(f"walker {cfg.walker!r} has soft tissue under the thigh sensors: needs walker_rng")
    for placement, sensor in sensors.items():
        acc, gyr = ideal_signals(motion, sensor)
        if soft and walker_rng is not None and placement in THIGH_SIDES:
            wobble = draw_wobble(walker_rng, THIGH_SIDES[placement])
            strikes = motion.heel_strikes_s.get(placement, [])
            acc, gyr = add_wobble(
                acc, gyr, sensor.mounting, wobble_motion(wobble, strikes, n, motion.rate_hz, walker_rng)
            )
        if loose and walker_rng is not None and placement in THIGH_SIDES:
            strap = draw_loose_strap(walker_rng)
            strikes = motion.heel_strikes_s.get(placement, [])
            acc, gyr = add_wobble(
                acc, gyr, sensor.mounting, loose_strap_motion(strap, strikes, n, motion.rate_hz, walker_rng)
            )
        acc += sensor.acc_bias_mps2
        gyr += sensor.gyro_bias_dps
        if cfg.noise > 0:
            acc += rng.normal(0.0, cfg.noise * ACC_NOISE_DENSITY_MPS2_RTHZ * bandwidth, (n, 3))
            gyr += rng.normal(0.0, cfg.noise * GYR_NOISE_DENSITY_DPS_RTHZ * bandwidth, (n, 3))
        out[placement] = SensorData(placement, acc, gyr)
    return out
