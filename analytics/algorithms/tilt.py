"""Where "up" is, in a sensor's own frame, at every sample: a vectorised, zero-phase complementary filter.

Follows the structure of the complementary filter used by x-io Fusion / Madgwick (Madgwick 2010; Fusion:
github.com/xioTechnologies/Fusion): the gyroscope gives orientation changes at high frequency, gravity in the
accelerometer anchors the low frequencies. Instead of a sample-by-sample loop (imufusion costs ~2.1 us per
sample from Python, FIELD_NOTES section 2), the same idea is computed on whole arrays:

1. Gyro integration as a prefix product of per-sample rotation quaternions,
   Q_k = dq_0 * dq_1 * ... * dq_(k-1), computed by a work-efficient parallel scan (Blelloch 1990) on
   whole arrays. Q_k maps sensor axes at sample k into the frame of the sensor at sample 0 (the "gyro frame").
2. The accelerometer is rotated into the gyro frame. There gravity is (almost) constant: it moves only as
   the integrated gyro bias rotates the frame, slowly, while linear accelerations of walking average out.
3. A zero-phase low-pass (Butterworth, ``gravity_cutoff_hz``, applied forwards and backwards) of that
   signal estimates gravity in the gyro frame at every sample, following bias drift without lag.
4. Rotating it back by Q_k gives the unit "up" vector in the sensor frame at sample k.

Heading is never needed (tilt and obliquity are heading-free), so no magnetometer is used. The elevation of
any body axis b (a unit vector in the sensor frame) above the horizontal is asin(b . up_k).

Units: acc in m/s^2 (gravity included), gyr in deg/s, rate in Hz, cutoff in Hz; ``up`` is a unit vector.
Accuracy against imufusion (revised Madgwick, gain 0.5) on simulated walking with noise and gyro bias is
measured in tests/algorithms/test_tilt.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

from analytics.errors import InvalidSignal

_Quat = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

GRAVITY_CUTOFF_HZ = 0.1
"""Low-pass cutoff for gravity in the gyro frame, Hz: ~9x below the slowest gait rhythm (stride frequency
~0.9 Hz), so walking's accelerations are attenuated by the 2nd-order filter's (0.9 / 0.1)^4 run twice."""


@dataclass(frozen=True)
class Tilt:
    """``up``: (n, 3) unit vector of the earth's vertical in the sensor frame at each sample.
    ``gyro_frame``: (n, 4) quaternions (w, x, y, z) from sensor axes at sample k to those at sample 0."""

    up: np.ndarray
    gyro_frame: np.ndarray

    def elevation_deg(self, axis: np.ndarray) -> np.ndarray:
        """Elevation above the horizontal of a sensor-frame axis (unit 3-vector) at each sample, degrees."""
        axis = np.asarray(axis, dtype=np.float64)
        axis = axis / np.linalg.norm(axis)
        return np.degrees(np.arcsin(np.clip(self.up @ axis, -1.0, 1.0)))


def estimate_tilt(
    acc_mps2: np.ndarray, gyr_dps: np.ndarray, rate_hz: float, gravity_cutoff_hz: float = GRAVITY_CUTOFF_HZ
) -> Tilt:
    """The vertical in the sensor frame at every sample (see the module docstring)."""
    acc, gyr = _check(acc_mps2, gyr_dps, rate_hz)
    frame = _scan(*_rotation_increments(np.radians(gyr).T, 1.0 / rate_hz))
    ax, ay, az = _rotate(frame, (acc[:, 0], acc[:, 1], acc[:, 2]))
    gravity = _low_pass(np.stack([ax, ay, az], axis=1), rate_hz, gravity_cutoff_hz)
    inverse = (frame[0], -frame[1], -frame[2], -frame[3])
    ux, uy, uz = _rotate(inverse, (gravity[:, 0], gravity[:, 1], gravity[:, 2]))
    norm = np.sqrt(ux * ux + uy * uy + uz * uz)
    up = np.stack([ux / norm, uy / norm, uz / norm], axis=1)
    return Tilt(up=up, gyro_frame=np.stack(frame, axis=1))


def _low_pass(x: np.ndarray, rate_hz: float, cutoff_hz: float) -> np.ndarray:
    """Zero-phase 2nd-order Butterworth low-pass of each column, computed at a reduced rate.

    The signal is averaged over blocks of ``factor`` samples (the last block may be shorter; its spectrum
    above the cutoff is removed anyway), filtered forwards and backwards with mirrored (even) padding, which
    holds the level at the ends instead of extrapolating a slope, and linearly interpolated back.
    """
    n = x.shape[0]
    factor = max(1, int(rate_hz / (40.0 * cutoff_hz)))  # keep >= 40 samples per cutoff period
    if n // factor < 16:
        factor = 1
    starts = np.arange(0, n, factor)
    sums = np.add.reduceat(x, starts, axis=0)
    counts = np.diff(np.append(starts, n))
    head = sums / counts[:, None]
    low_rate = rate_hz / factor
    sos = signal.butter(2, cutoff_hz, btype="low", fs=low_rate, output="sos")
    pad = min(head.shape[0] - 1, int(3 * low_rate / cutoff_hz))
    smooth = signal.sosfiltfilt(sos, head, axis=0, padtype="even", padlen=pad)
    if factor == 1:
        return np.asarray(smooth)
    centres = starts + 0.5 * (counts - 1)
    samples = np.arange(n, dtype=np.float64)
    return np.stack([np.interp(samples, centres, smooth[:, i]) for i in range(3)], axis=1)


def _check(acc: np.ndarray, gyr: np.ndarray, rate_hz: float) -> tuple[np.ndarray, np.ndarray]:
    acc = np.asarray(acc, dtype=np.float64)
    gyr = np.asarray(gyr, dtype=np.float64)
    if not (isinstance(rate_hz, int | float) and np.isfinite(rate_hz) and rate_hz > 0):
        raise InvalidSignal(f"rate_hz must be a positive number (Hz), got {rate_hz!r}")
    for name, arr in (("acc_mps2", acc), ("gyr_dps", gyr)):
        if arr.ndim != 2 or arr.shape[1] != 3:
            raise InvalidSignal(f"{name} must have shape (n, 3), got {arr.shape}")
        if not np.isfinite(arr).all():
            raise InvalidSignal(f"{name} contains NaN or infinite values")
    if acc.shape != gyr.shape:
        raise InvalidSignal(f"acc_mps2 {acc.shape} and gyr_dps {gyr.shape} differ in length")
    if acc.shape[0] < 2 * rate_hz:
        raise InvalidSignal(f"need at least 2 s of samples to find the vertical, got {acc.shape[0]}")
    return acc, gyr


def _rotation_increments(omega_rad_s: np.ndarray, dt_s: float) -> _Quat:
    """Quaternion components of the rotation over each sample interval (body frame), exact for constant
    rate; ``omega_rad_s`` is (3, n). Q_0 is the identity: interval k's rotation acts from sample k to k+1."""
    wx, wy, wz = omega_rad_s
    angle = np.sqrt(wx * wx + wy * wy + wz * wz) * dt_s
    half = 0.5 * angle
    safe = np.where(angle > 1e-12, angle, 1.0)
    scale = np.where(angle > 1e-12, np.sin(half) / safe, 0.5) * dt_s  # sin(x/2)/x, exact near zero
    n = wx.shape[0]
    out: _Quat = (np.empty(n), np.empty(n), np.empty(n), np.empty(n))
    out[0][0], out[1][0], out[2][0], out[3][0] = 1.0, 0.0, 0.0, 0.0
    out[0][1:] = np.cos(half[:-1])
    out[1][1:] = (wx * scale)[:-1]
    out[2][1:] = (wy * scale)[:-1]
    out[3][1:] = (wz * scale)[:-1]
    return out


def _rotate(q: _Quat, v: tuple[np.ndarray, np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rotate vectors by unit quaternions, component arrays: v + 2w (u x v) + 2 u x (u x v)."""
    w, ux, uy, uz = q
    vx, vy, vz = v
    tx = 2.0 * (uy * vz - uz * vy)
    ty = 2.0 * (uz * vx - ux * vz)
    tz = 2.0 * (ux * vy - uy * vx)
    return (
        vx + w * tx + (uy * tz - uz * ty),
        vy + w * ty + (uz * tx - ux * tz),
        vz + w * tz + (ux * ty - uy * tx),
    )


def multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product of quaternion arrays (..., 4) in (w, x, y, z) order."""
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        axis=-1,
    )


def conjugate(q: np.ndarray) -> np.ndarray:
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors v (n, 3) by unit quaternions q (n, 4): q v q*."""
    w = q[:, :1]
    u = q[:, 1:]
    t = 2.0 * np.cross(u, v)
    return v + w * t + np.cross(u, t)


def prefix_product(q: np.ndarray) -> np.ndarray:
    """P_k = q_0 * q_1 * ... * q_k for quaternion arrays (n, 4): a work-efficient recursive scan.

    Pairs are multiplied (n/2 products), the pairs' prefix products are found recursively, and the odd
    and even outputs follow from them: about 2n quaternion products in all, each level one vectorised pass.
    """
    w, x, y, z = (np.ascontiguousarray(c) for c in q.T)
    pw, px, py, pz = _scan(w, x, y, z)
    out = np.stack([pw, px, py, pz], axis=1)
    return out / np.sqrt(np.einsum("ij,ij->i", out, out))[:, None]


def _mul(a: _Quat, b: _Quat) -> _Quat:
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return (
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    )


def _scan(w: np.ndarray, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> _Quat:
    n = w.shape[0]
    if n == 1:
        return w.copy(), x.copy(), y.copy(), z.copy()
    even = (w[0:-1:2], x[0:-1:2], y[0:-1:2], z[0:-1:2])
    odd = (w[1::2], x[1::2], y[1::2], z[1::2])
    pairs = _mul(even, odd)  # q_0 q_1, q_2 q_3, ...
    pw, px, py, pz = _scan(*pairs)  # P_1, P_3, P_5, ...
    out: _Quat = (np.empty(n), np.empty(n), np.empty(n), np.empty(n))
    for o, p, c in zip(out, (pw, px, py, pz), (w, x, y, z), strict=True):
        o[1::2] = p
        o[0] = c[0]
    rest = (w[2::2], x[2::2], y[2::2], z[2::2])  # q_2, q_4, ...: P_2k = P_(2k-1) q_2k
    m = rest[0].shape[0]
    ew, ex, ey, ez = _mul((pw[:m], px[:m], py[:m], pz[:m]), rest)
    out[0][2::2], out[1][2::2], out[2][2::2], out[3][2::2] = ew, ex, ey, ez
    return out
