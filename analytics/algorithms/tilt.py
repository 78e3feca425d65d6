"""Where "up" is, in a sensor's own frame, at every sample: a vectorised, zero-phase complementary filter.

Follows the structure of the complementary filter used by x-io Fusion / Madgwick (Madgwick 2010; Fusion:
github.com/xioTechnologies/Fusion): the gyroscope gives orientation changes at high frequency, gravity in the
accelerometer corrects the low frequencies. Instead of a sample-by-sample loop (imufusion from Python takes 13x
longer on 30 min of one sensor: bench/RESULTS.md, "Tilt estimator vs imufusion"), the same idea is computed on
whole arrays:

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

Gyro bias and the cutoff. The low-pass must follow the gyro-frame drift caused by the gyro bias (a 0.5 deg/s
bias turns the frame by 30 deg a minute) while rejecting the walker's own low-frequency accelerations:
starting, stopping and turning put ~0.1-1 m/s^2 into the 0.05-0.3 Hz band, and at 0.1 Hz they leave a tilt
error of ~0.6 deg sd while walking (simulated 3-min walks, docs/pelvic-drop-accuracy.md). When the recording has
still periods, ``still_gyro_bias_dps`` estimates the bias as the mean gyro output over them (the approach of
x-io Fusion's gyroscope offset correction, FusionOffset: the sensor is still when its angular rate stays below
3 deg/s for seconds); with the bias removed the frame barely drifts and ``BIAS_CORRECTED_CUTOFF_HZ`` = 0.03 Hz
can be used, which cuts that error to ~0.17 deg sd. A residual bias error e (deg/s) costs about
e / (2 pi cutoff) deg where the walker turns (0.5 deg for e = 0.1 deg/s at 0.03 Hz), less than the
uncorrected 0.1 Hz filter loses to its walking accelerations.

Units: acc in m/s^2 (gravity included), gyr in deg/s, rate in Hz, cutoff in Hz; ``up`` is a unit vector.
Accuracy against imufusion (revised Madgwick, gain 0.5) on simulated walking with noise and gyro bias is
measured in tests/algorithms/test_tilt.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analytics.algorithms.filters import butter_sos, zero_phase
from analytics.errors import InvalidSignal

_Quat = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

GRAVITY_CUTOFF_HZ = 0.1
"""Low-pass cutoff for gravity in the gyro frame, Hz: ~9x below the slowest gait rhythm (stride frequency
~0.9 Hz), so walking's accelerations are attenuated by the 2nd-order filter's (0.9 / 0.1)^4 run twice."""
BIAS_CORRECTED_CUTOFF_HZ = 0.03
"""Cutoff (Hz) once the gyro bias is removed (see the module docstring): below the 0.05-0.3 Hz band of
starting, stopping and turning."""
BLOCK = 16384
"""Samples per block of the gyro integration and rotations: the prefix product is carried from block to
block, so only the frame, the rotated accelerations and ``up`` are whole-length arrays (memory). Per-block
temporaries are ~20 arrays of BLOCK samples (2.6 MB); 16384 instead of 8192 halves the per-call overhead of
the scan's small arrays: a 30-min tilt 31 -> 26 ms on one core, same result to 1e-14."""
STILL_GYRO_DPS = 3.0
"""Angular speed (deg/s, after a 1 Hz low-pass, bias included) below which a sensor is still (FusionOffset's
threshold)."""
STILL_MIN_S = 5.0
"""Shortest still period (s) used for the bias (FusionOffset's timeout)."""
STILL_TRIM_S = 0.5
"""Trimmed from each end of a still period (s)."""


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
    acc_mps2: np.ndarray,
    gyr_dps: np.ndarray,
    rate_hz: float,
    gravity_cutoff_hz: float = GRAVITY_CUTOFF_HZ,
    gyro_bias_dps: np.ndarray | None = None,
    keep_frame: bool = True,
) -> Tilt:
    """The vertical in the sensor frame at every sample (see the module docstring).

    ``gyro_bias_dps`` (3,), deg/s, is subtracted from the gyroscope first (see still_gyro_bias_dps); pass
    ``gravity_cutoff_hz=BIAS_CORRECTED_CUTOFF_HZ`` with it. ``keep_frame=False`` leaves ``gyro_frame`` empty
    (0, 4) for callers that need only ``up`` (it saves 32 bytes per sample). Works on 1-D component arrays
    throughout, freeing each as soon as it is used: the peak is ~16 float64 arrays of n samples.
    """
    acc, gyr = _check(acc_mps2, gyr_dps, rate_hz)
    bias = np.zeros(3)
    if gyro_bias_dps is not None:
        bias = np.asarray(gyro_bias_dps, dtype=np.float64)
        if bias.shape != (3,) or not np.isfinite(bias).all():
            raise InvalidSignal(f"gyro_bias_dps must be a finite 3-vector (deg/s), got {gyro_bias_dps!r}")
    n = acc.shape[0]
    dt = 1.0 / rate_hz
    frame = np.empty((4, n))
    rotated = np.empty((3, n))
    carry = np.array([[1.0], [0.0], [0.0], [0.0]])
    for b0 in range(0, n, BLOCK):
        b1 = min(n, b0 + BLOCK)
        lo = max(0, b0 - 1)  # increment k comes from the rate at sample k - 1
        omega = tuple(np.radians(gyr[lo:b1, i] - bias[i]) for i in range(3))
        increments = _rotation_increments(omega, dt)  # type: ignore[arg-type]
        if b0 > 0:
            increments = increments[:, 1:]
        block = _mul(carry, _scan(increments))
        frame[:, b0:b1] = block
        carry = block[:, -1:]
        rotated[:, b0:b1] = _rotate(block, (acc[b0:b1, 0], acc[b0:b1, 1], acc[b0:b1, 2]))
    centres, smooth = _low_pass_decimated(tuple(rotated), rate_hz, gravity_cutoff_hz)
    del rotated
    up = np.empty((n, 3))
    for b0 in range(0, n, BLOCK):
        b1 = min(n, b0 + BLOCK)
        samples = np.arange(b0, b1, dtype=np.float64)
        gravity = tuple(np.interp(samples, centres, smooth[i]) for i in range(3))
        quat = (frame[0, b0:b1], frame[1, b0:b1], frame[2, b0:b1], frame[3, b0:b1])
        ux, uy, uz = _rotate(quat, gravity, inverse=True)  # type: ignore[arg-type]
        norm = np.sqrt(ux * ux + uy * uy + uz * uz)
        up[b0:b1, 0], up[b0:b1, 1], up[b0:b1, 2] = ux / norm, uy / norm, uz / norm
    return Tilt(up=up, gyro_frame=np.ascontiguousarray(frame.T) if keep_frame else np.zeros((0, 4)))


def carry_gyro_frame(
    carry: np.ndarray | None, gyr_dps: np.ndarray, rate_hz: float, gyro_bias_dps: np.ndarray | None = None
) -> np.ndarray:
    """The gyro frame (`Tilt.gyro_frame`'s quaternions, as (4, m) component rows) of the next samples of a stream,
    carried on from the frame of the sample before them: ``carry`` (4,), with ``gyr_dps`` (m + 1, 3) deg/s starting at
    that sample; None starts the stream (frame identity at its first sample, ``gyr_dps`` (m, 3)). Carried block by
    block as `estimate_tilt` carries its blocks: the frames of a stream fed in pieces are those of the whole stream
    to rounding (a constant rotation apart from those of a later start: `up_in_sensor_frame` does not depend on
    where the frame started)."""
    gyr = np.asarray(gyr_dps, dtype=np.float64)
    bias = np.zeros(3) if gyro_bias_dps is None else np.asarray(gyro_bias_dps, dtype=np.float64)
    omega = tuple(np.radians(gyr[:, i] - bias[i]) for i in range(3))
    increments = _rotation_increments(omega, 1.0 / rate_hz)  # type: ignore[arg-type]
    if carry is None:
        return _scan(increments)
    return _mul(np.asarray(carry, dtype=np.float64)[:, None], _scan(increments[:, 1:]))


def rotate_into_gyro_frame(frame: np.ndarray, acc_mps2: np.ndarray) -> np.ndarray:
    """Accelerations (m, 3) rotated into the gyro frame by their samples' frames ``frame`` (4, m): (3, m)."""
    acc = np.asarray(acc_mps2, dtype=np.float64)
    return np.stack(_rotate((frame[0], frame[1], frame[2], frame[3]), (acc[:, 0], acc[:, 1], acc[:, 2])))


def up_in_sensor_frame(frame: np.ndarray, rotated: np.ndarray, rate_hz: float, gravity_cutoff_hz: float) -> np.ndarray:
    """`estimate_tilt`'s ``up`` (n, 3) from its samples' gyro frames ``frame`` (4, n) and accelerations rotated into
    it ``rotated`` (3, n) (`carry_gyro_frame`, `rotate_into_gyro_frame`): gravity low-passed there, rotated back."""
    n = frame.shape[1]
    if n < 2 * rate_hz:
        raise InvalidSignal(f"need at least 2 s of samples to find the vertical, got {n}")
    centres, smooth = _low_pass_decimated((rotated[0], rotated[1], rotated[2]), rate_hz, gravity_cutoff_hz)
    if smooth.shape[1] == n:  # not decimated: np.interp at the block centres, the samples, gives their values
        gravity = (smooth[0], smooth[1], smooth[2])
    else:
        samples = np.arange(n, dtype=np.float64)
        gravity = (
            np.interp(samples, centres, smooth[0]),
            np.interp(samples, centres, smooth[1]),
            np.interp(samples, centres, smooth[2]),
        )
    ux, uy, uz = _rotate(frame, gravity, inverse=True)
    norm = np.sqrt(ux * ux + uy * uy + uz * uz)
    return np.stack([ux / norm, uy / norm, uz / norm], axis=1)


def smoothed_angular_speed_dps(gyr_dps: np.ndarray, rate_hz: float, cutoff_hz: float = 1.0) -> np.ndarray:
    """Angular speed |gyr| (n,), deg/s, low-passed at ``cutoff_hz`` (zero-phase 2nd-order Butterworth at a
    reduced rate, as for gravity): what "still" is judged on. ``gyr_dps`` (n, 3) deg/s."""
    gyr = np.asarray(gyr_dps, dtype=np.float64)
    speed = np.sqrt(gyr[:, 0] * gyr[:, 0] + gyr[:, 1] * gyr[:, 1] + gyr[:, 2] * gyr[:, 2])
    return _low_pass_columns((speed,), rate_hz, cutoff_hz)[0]


def block_means(xyz: np.ndarray, q: int) -> np.ndarray:
    """Means of consecutive blocks of ``q`` rows of an (n, 3) array (the last block may be shorter), as a
    C-ordered (ceil(n / q), 3) array: sums of strided views, no copy of the input whatever its layout."""
    n = xyz.shape[0]
    full = n // q
    total = np.array(xyz[0 : full * q : q], dtype=np.float64, order="C")
    for i in range(1, q):
        total += xyz[i : full * q : q]
    total /= q
    if full * q < n:
        total = np.vstack([total, np.asarray(xyz[full * q :], dtype=np.float64).mean(axis=0)])
    return total


def still_mask(gyr_dps: np.ndarray, rate_hz: float, speed_dps: np.ndarray | None = None) -> np.ndarray:
    """Samples (bool, n) of still periods: the 1 Hz low-passed angular speed below ``STILL_GYRO_DPS`` for at
    least ``STILL_MIN_S`` s, trimmed by ``STILL_TRIM_S`` s at each end. ``gyr_dps`` (n, 3) deg/s;
    ``speed_dps``: smoothed_angular_speed_dps(gyr_dps, rate_hz) if the caller has it."""
    if speed_dps is None:
        speed_dps = smoothed_angular_speed_dps(gyr_dps, rate_hz)
    still = speed_dps < STILL_GYRO_DPS
    edges = np.diff(np.concatenate([[0], still.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    trim, min_len = round(STILL_TRIM_S * rate_hz), round(STILL_MIN_S * rate_hz)
    out = np.zeros(still.shape, dtype=bool)
    for s, e in zip(starts, ends, strict=True):
        if e - s >= min_len + 2 * trim:
            out[s + trim : e - trim] = True
    return out


def still_gyro_bias_dps(gyr_dps: np.ndarray, rate_hz: float, speed_dps: np.ndarray | None = None) -> np.ndarray | None:
    """Constant gyro bias (3,), deg/s: the mean gyro output over the still periods (still_mask); None when
    there are none. Sway of a standing body averages out (its angle stays within a degree or so, so over 5 s
    its mean rate is ~0.1 deg/s at most, ~0.01 deg/s over the ~50 s of a simulated 3-min walk).
    ``speed_dps``: smoothed_angular_speed_dps(gyr_dps, rate_hz) if the caller has it."""
    mask = still_mask(gyr_dps, rate_hz, speed_dps)
    if not mask.any():
        return None
    return np.asarray(gyr_dps, dtype=np.float64)[mask].T @ np.full(int(mask.sum()), 1.0 / mask.sum())


def level_accelerations(acc_mps2: np.ndarray, up: np.ndarray, reference_up: np.ndarray) -> np.ndarray:
    """Specific force (n, 3) re-expressed in the sensor frame as it would be if the sensor kept the fixed
    posture ``reference_up`` (unit 3-vector): each sample is rotated by the smallest rotation taking its own
    vertical ``up[k]`` onto ``reference_up`` (Rodrigues' formula). Gravity then lies along ``reference_up``
    at every sample, and horizontal accelerations stay horizontal: the sensor's rolling and pitching no longer
    leaks g sin(angle) into its horizontal axes. Units: those of ``acc_mps2``."""
    acc = np.asarray(acc_mps2, dtype=np.float64)
    ref = np.asarray(reference_up, dtype=np.float64)
    ref = ref / np.linalg.norm(ref)
    v = np.cross(up, ref)
    c = up @ ref
    vxa = np.cross(v, acc)
    k = np.einsum("ij,ij->i", v, acc) / (1.0 + c)
    return acc * c[:, None] + vxa + v * k[:, None]


def _low_pass(x: np.ndarray, rate_hz: float, cutoff_hz: float) -> np.ndarray:
    """Zero-phase 2nd-order Butterworth low-pass of each column of (n, k) ``x`` (see _low_pass_columns)."""
    columns = _low_pass_columns(tuple(x[:, i] for i in range(x.shape[1])), rate_hz, cutoff_hz)
    return np.stack(columns, axis=1)


def _low_pass_columns(columns: tuple[np.ndarray, ...], rate_hz: float, cutoff_hz: float) -> tuple[np.ndarray, ...]:
    """Zero-phase 2nd-order Butterworth low-pass of 1-D signals of n samples (see _low_pass_decimated),
    interpolated back to every sample."""
    centres, smooth = _low_pass_decimated(columns, rate_hz, cutoff_hz)
    samples = np.arange(columns[0].shape[0], dtype=np.float64)
    return tuple(np.interp(samples, centres, smooth[i]) for i in range(len(columns)))


def _low_pass_decimated(
    columns: tuple[np.ndarray, ...], rate_hz: float, cutoff_hz: float
) -> tuple[np.ndarray, np.ndarray]:
    """Zero-phase 2nd-order Butterworth low-pass of 1-D signals of n samples, at a reduced rate.

    Each signal is averaged over blocks of ``factor`` samples (the last block may be shorter; its spectrum
    above the cutoff is removed anyway), filtered forwards and backwards with mirrored (even) padding, which
    holds the level at the ends instead of extrapolating a slope. Returns the block centres (in samples)
    and the filtered block values (k, m), one row per signal, to be linearly interpolated back (np.interp).
    """
    n = columns[0].shape[0]
    factor = max(1, int(rate_hz / (40.0 * cutoff_hz)))  # keep >= 40 samples per cutoff period
    if n // factor < 16:
        factor = 1
    starts = np.arange(0, n, factor)
    counts = np.full(starts.size, factor)  # every block but the last is full
    counts[-1:] = n - starts[-1:]
    # blocks of one sample: their means are the samples; else each row's block sums (the same sums as row by row)
    head = np.stack(columns)
    if factor > 1:
        head = np.add.reduceat(head, starts, axis=1) / counts
    low_rate = rate_hz / factor
    sos = butter_sos(2, cutoff_hz, "low", low_rate)
    pad = min(head.shape[1] - 1, int(3 * low_rate / cutoff_hz))
    smooth = zero_phase(sos, head, axis=1, padtype="even", padlen=pad)
    return starts + 0.5 * (counts - 1), smooth


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


def _rotation_increments(omega_rad_s: tuple[np.ndarray, np.ndarray, np.ndarray], dt_s: float) -> np.ndarray:
    """Quaternions (4, n) (w, x, y, z rows) of the rotation over each sample interval (body frame), exact for
    constant rate; ``omega_rad_s`` is (x, y, z) of n samples. Q_0 is the identity: interval k's rotation acts
    from sample k to k+1."""
    wx, wy, wz = omega_rad_s
    angle = np.sqrt(wx * wx + wy * wy + wz * wz) * dt_s
    half = 0.5 * angle
    safe = np.where(angle > 1e-12, angle, 1.0)
    scale = np.where(angle > 1e-12, np.sin(half) / safe, 0.5) * dt_s  # sin(x/2)/x, exact near zero
    n = wx.shape[0]
    out = np.empty((4, n))
    out[:, 0] = 1.0, 0.0, 0.0, 0.0
    out[0][1:] = np.cos(half[:-1])
    out[1][1:] = (wx * scale)[:-1]
    out[2][1:] = (wy * scale)[:-1]
    out[3][1:] = (wz * scale)[:-1]
    return out


def _rotate(
    q: _Quat | np.ndarray, v: tuple[np.ndarray, np.ndarray, np.ndarray], inverse: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rotate vectors by unit quaternions (component arrays, or their (4, n) rows): v + 2w (u x v) + 2 u x (u x v);
    by their conjugates (the inverse rotations) when ``inverse``: t = 2 u x v flips sign with u, so only the w t
    term changes sign. In-place arithmetic keeps the temporaries to ~5 arrays."""
    w, ux, uy, uz = q
    vx, vy, vz = v
    tx = uy * vz
    tx -= uz * vy
    tx *= 2.0
    ty = uz * vx
    ty -= ux * vz
    ty *= 2.0
    tz = ux * vy
    tz -= uy * vx
    tz *= 2.0
    sign = -1.0 if inverse else 1.0
    out = []
    for vc, tc, (ua, tb), (ub, ta) in (
        (vx, tx, (uy, tz), (uz, ty)),
        (vy, ty, (uz, tx), (ux, tz)),
        (vz, tz, (ux, ty), (uy, tx)),
    ):
        o = w * tc
        if inverse:
            o *= sign
        o += vc
        cross = ua * tb
        cross -= ub * ta
        o += cross
        out.append(o)
    return out[0], out[1], out[2]


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
    out = np.ascontiguousarray(_scan(np.array(q.T, dtype=np.float64, order="C")).T)  # a copy: _scan works in place
    return out / np.sqrt(np.einsum("ij,ij->i", out, out))[:, None]


_B_OF_TERM = np.array([[0, 1, 2, 3], [1, 0, 3, 2], [2, 3, 0, 1], [3, 2, 1, 0]])
"""Hamilton product, component c = sum over terms t of sign[c, t] * a[t] * b[_B_OF_TERM[c, t]] (a's components in
order in every row)."""
_SIGN_OF_TERM = np.array(
    [[1.0, -1.0, -1.0, -1.0], [1.0, 1.0, 1.0, -1.0], [1.0, -1.0, 1.0, 1.0], [1.0, 1.0, -1.0, 1.0]]
)[:, :, None]


_MUL_AT_ONCE_UP_TO = 384
"""Up to this many quaternions `_mul` forms all 16 products in one (4, 4, m) array: fewer numpy calls, which is what
costs on the scan's short levels (a live window's new second); beyond, the (4, 4, m) temporaries cost more than the
calls (a 30-min tilt 25 -> 31 ms), so it goes component by component."""


def _mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton products of quaternions (4, m) (w, x, y, z rows; either may be (4, 1)): (4, m).

    Component by component aw*bw - ax*bx - ay*by - az*bz, aw*bx + ax*bw + ay*bz - az*by, ...: either way the
    same products summed left to right (x - y is x + (-y), and a sign flip is exact), so the same numbers."""
    m = max(a.shape[1], b.shape[1])
    if m > _MUL_AT_ONCE_UP_TO:
        aw, ax, ay, az = a
        bw, bx, by, bz = b
        out = np.empty((4, m))
        np.subtract(aw * bw - ax * bx - ay * by, az * bz, out=out[0])
        np.subtract(aw * bx + ax * bw + ay * bz, az * by, out=out[1])
        np.add(aw * by - ax * bz + ay * bw, az * bx, out=out[2])
        np.add(aw * bz + ax * by - ay * bx, az * bw, out=out[3])
        return out
    terms = a[None, :, :] * b[_B_OF_TERM]
    terms *= _SIGN_OF_TERM
    out = terms[:, 0] + terms[:, 1]
    out += terms[:, 2]
    out += terms[:, 3]
    return out


_SCAN_IN_PYTHON_UP_TO = 12
"""Up to this many quaternions `_scan` works on Python floats: its last levels (a live window's new second halves
down to 12, 6, 3 quaternions) cost numpy's per-call overhead several times over, a dozen products in Python less."""

_Floats = tuple[float, float, float, float]


def _scan_floats(q: list[_Floats]) -> list[_Floats]:
    """`_scan` of quaternions as (w, x, y, z) Python floats: the same pairs, levels and products (`_mul`'s sums
    left to right, x - y for x + (-y)), so the same numbers (Python floats are IEEE doubles, as numpy's)."""
    n = len(q)
    if n == 1:
        return q
    p = _scan_floats([_mul_floats(q[k], q[k + 1]) for k in range(0, n - 1, 2)])  # P_1, P_3, ...
    out = [q[0]]
    for k, pk in enumerate(p):
        out.append(pk)
        if 2 * k + 2 < n:
            out.append(_mul_floats(pk, q[2 * k + 2]))  # P_2k+2 = P_2k+1 q_2k+2
    return out


def _mul_floats(a: _Floats, b: _Floats) -> _Floats:
    """`_mul` of two quaternions as Python floats."""
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return (
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    )


def _scan(q: np.ndarray) -> np.ndarray:
    """Prefix products of the quaternions (4, n) (w, x, y, z rows), computed IN PLACE (the input becomes the
    output, which is returned)."""
    n = q.shape[1]
    if n == 1:
        return q
    if n <= _SCAN_IN_PYTHON_UP_TO:
        q[:] = np.array(_scan_floats(list(zip(*q.tolist(), strict=True)))).T
        return q
    p = _scan(_mul(q[:, 0:-1:2], q[:, 1::2]))  # P_1, P_3, P_5, ... (from the pairs q_0 q_1, q_2 q_3, ...)
    rest = q[:, 2::2]  # q_2, q_4, ...: P_2k = P_(2k-1) q_2k
    even = _mul(p[:, : rest.shape[1]], rest)
    q[:, 1::2] = p  # q_1, q_3, ... are no longer needed; q_0 = P_0 stays
    q[:, 2::2] = even
    return q
