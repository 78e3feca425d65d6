"""Are the thigh sensors on the sides (and segments) their names say? Checks from walking kinematics.

1. **Left/right** (pelvis-thigh coupling): in walking the pelvis rotates about the vertical with the swing
   leg: the hemipelvis of the forward leg is forward, so the pelvis is turned furthest towards the RIGHT
   (clockwise seen from above) when the LEFT thigh is most flexed, at left initial contact (pelvic rotation
   +-4-5 deg, Perry & Burnfield 2010; Saunders, Inman & Eberhart 1953). At the stride frequency the pelvis yaw
   angle is therefore in anti-phase with left thigh flexion and in phase with right thigh flexion. The score
   is the correlation, over walking, of the pelvis yaw rate (about its vertical axis, counter-clockwise
   positive) with (right - left) thigh flexion velocity, both band-passed around the stride frequency
   (``STRIDE_BAND_HZ``): +1 = labels as expected, -1 = the thighs are swapped. With one thigh, its flexion
   velocity is used with the sign of its side. The check needs only the pelvis's vertical (heading-free),
   not its forward axis.
2. **Segment plausibility**: a thigh sweeps ~40 deg in each stride, its flexion velocity spanning ~250 deg/s
   (mid-swing ~+160, stance ~-90 deg/s at 105 steps/min); the pelvis rotates by less than ~10 deg in any
   plane, its angular velocity spanning well under 100 deg/s (Perry & Burnfield 2010). A sensor whose
   walking angular-velocity span about horizontal axes (p99 - p1 along its main rotation axis, turning
   removed) is on the other side of ``SEGMENT_SPAN_DPS`` is not on the segment its name says.

Units: deg/s, Hz.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

from analytics.algorithms._checks import check_rate
from analytics.errors import InsufficientData, InvalidSignal

STRIDE_BAND_HZ = (0.4, 1.6)
"""Band (Hz) around the stride frequency of walking (~0.7-1.2 Hz), excluding the step frequency's bulk."""
SEGMENT_SPAN_DPS = 120.0
"""Walking angular-velocity span (deg/s) separating a thigh (~250) from a pelvis (< ~80)."""
MIN_BAND_RATE_HZ = 20.0
"""Lowest rate (Hz) the stride band is filtered at (the band ends at 1.6 Hz)."""
MIN_CORRELATION = 0.3
"""|score| below this: the check cannot tell the sides apart."""


@dataclass(frozen=True)
class SideCheck:
    """``score`` in -1..1 (+1: sides as labelled, -1: swapped); ``swapped`` None when |score| is too small."""

    score: float
    swapped: bool | None


def check_thigh_sides(
    pelvis_yaw_rate_dps: np.ndarray,
    flexion_velocity_dps: dict[str, np.ndarray],
    sampling_rate_hz: float,
    walking_mask: np.ndarray,
) -> SideCheck:
    """Left/right check of thigh sensors against the pelvis (see the module docstring).

    ``flexion_velocity_dps`` maps "left" and/or "right" to (n,) flexion velocities, deg/s.
    """
    fs = check_rate(sampling_rate_hz)
    yaw = np.asarray(pelvis_yaw_rate_dps, dtype=np.float64)
    if not flexion_velocity_dps or set(flexion_velocity_dps) - {"left", "right"}:
        raise InvalidSignal("flexion_velocity_dps must map 'left' and/or 'right' to arrays")
    combined = np.zeros_like(yaw)
    for side, w in flexion_velocity_dps.items():
        w = np.asarray(w, dtype=np.float64)
        if w.shape != yaw.shape:
            raise InvalidSignal(f"{side} flexion velocity {w.shape} and pelvis yaw rate {yaw.shape} differ")
        combined += w if side == "right" else -w
    if walking_mask.shape != yaw.shape or walking_mask.sum() < 4 * fs:
        raise InsufficientData("side check needs at least 4 s of walking")
    # Both signals are band-passed at a reduced rate (block means of `factor` samples, >= 20 Hz kept): the
    # block mean's first zero lies at the reduced rate itself, so nothing aliases into the stride band.
    factor = max(1, int(fs / MIN_BAND_RATE_HZ))
    m = yaw.size // factor * factor
    if m // factor < 64:
        factor, m = 1, yaw.size
    low_rate = fs / factor
    sos = signal.butter(2, STRIDE_BAND_HZ, "bandpass", fs=low_rate, output="sos")
    both = np.stack([yaw[:m], combined[:m]]).reshape(2, -1, factor).mean(axis=2)
    filtered = signal.sosfiltfilt(sos, both, axis=1)
    keep = walking_mask[:m].reshape(-1, factor).all(axis=1)
    a, b = filtered[0, keep], filtered[1, keep]
    den = float(np.sqrt(np.dot(a, a) * np.dot(b, b)))
    score = float(np.dot(a, b) / den) if den > 0 else 0.0
    swapped = None if abs(score) < MIN_CORRELATION else score < 0
    return SideCheck(score, swapped)


def rotation_span_dps(acc_mps2: np.ndarray, gyr_dps: np.ndarray, walking_mask: np.ndarray) -> float:
    """p99 - p1 (deg/s) of the angular velocity about horizontal axes (turning removed: the component along
    the mean specific force, i.e. the vertical, is dropped) along its principal axis, over walking samples."""
    g = np.asarray(gyr_dps, dtype=np.float64)[walking_mask]
    m = g.shape[0]
    if m < 10:
        raise InsufficientData("segment check needs walking samples")
    weights = np.full(m, 1.0 / m)
    vertical = weights @ np.asarray(acc_mps2, dtype=np.float64)[walking_mask]
    vertical = vertical / np.linalg.norm(vertical)
    # covariance of the horizontal part P g (P = I - v v^T), from the 3 x 3 moments: no (m, 3) temporaries
    horizontal = np.eye(3) - np.outer(vertical, vertical)
    mean = weights @ g
    cov = horizontal @ (g.T @ g - m * np.outer(mean, mean)) @ horizontal
    _, vec = np.linalg.eigh(cov)
    axis = horizontal @ vec[:, -1]
    hi, lo = np.percentile(g @ axis - mean @ axis, [99.0, 1.0])
    return float(hi - lo)
