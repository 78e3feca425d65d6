"""Axes of a thigh IMU worn in any orientation, found from walking: long axis, flexion axis, and the
signed sagittal (flexion) angular velocity.

The sensor frame is never trusted. Each axis comes from a property of walking that does not depend on how
the sensor sits on the thigh:

1. **Long axis** (knee -> hip, a unit vector in the sensor frame): the mean specific force direction, i.e.
   gravity, over quiet standing when there is some (the thigh is vertical in standing), otherwise over the
   walking samples (the thigh swings about the vertical, roughly +27 to -11 deg, Perry & Burnfield 2010, so
   the mean is within ~10 deg of the long axis; ``long_axis_source`` says which).
2. **Flexion axis**: the thigh's rotation in walking is mostly sagittal (hip flexion/extension range
   ~40 deg against ~10 deg ab/adduction and rotation; Perry & Burnfield 2010), so the principal axis of the
   angular velocity, after removing its component along the long axis (turning), is the medio-lateral
   flexion axis (the approach of Seel et al. 2014, Sensors 14:6891, for joint axes from gyroscopes).
   Confidence: 1 - lambda2 / lambda1 of that 2 x 2 covariance.
3. **Sign** (which way is flexion): swing is faster than stance. The thigh flexes through ~38 deg in swing
   (~40 % of the cycle) and extends by about as much in stance (~60 %), so the largest angular velocity of
   the cycle, mid-swing (~ +160 deg/s against ~ -90 deg/s in stance at 105 steps/min), is a flexion
   velocity. The sign is chosen so that the 99th percentile exceeds minus the 1st percentile. Confidence:
   1 - (|p1| / p99)^2: 0 when the two are equal, ~0.7 for normal walking, 1 for a one-sided velocity.
   A transient can outweigh the swing in those percentiles: a sensor on a loose strap knocked back by each heel
   strike and springing forward (simulator stress ``stress_loose_thigh_straps``) reaches -100 deg/s and more for a
   few tens of ms, but it returns to where it was, so over ``SIGN_WINDOW_S`` it rotates the sensor by little, while
   a swing rotates the thigh by ~20 deg over that window. The same rule is therefore also applied to the velocity
   averaged over ``SIGN_WINDOW_S``; when the two disagree, the sustained one decides the sign, and the confidence
   is the smaller of the two cues' confidences in their own signs (two cues that disagree are doubt, not the
   sustained cue's certainty).
4. **Forward** (anterior) axis of the thigh = long axis x flexion axis: positive flexion velocity raises it.

Units: acc m/s^2 (gravity included), gyr deg/s, rates Hz.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from analytics.algorithms._checks import check_imu
from analytics.errors import InsufficientData, InvalidSignal

MIN_WALKING_S = 4.0
"""Walking needed (s) to find the flexion axis: about three strides."""
SIGN_WINDOW_S = 0.2
"""Window (s) of the sustained cue for the sign (module docstring, 3): long against a heel-strike knock or ring of
the sensor on its strap (~0.1 s, little net rotation), short against a swing (~0.4 s, ~20 deg over the window)."""


@dataclass(frozen=True)
class ThighAxes:
    """Thigh axes as unit vectors in the sensor frame, with confidences (0..1).

    ``flexion_axis``: angular velocity along it is hip flexion (positive: knee moving forward), deg/s.
    """

    long_axis: tuple[float, float, float]
    flexion_axis: tuple[float, float, float]
    forward: tuple[float, float, float]
    long_axis_source: Literal["standing", "walking"]
    axis_confidence: float
    sign_confidence: float

    @property
    def confidence(self) -> float:
        """The weaker of the two confidences; halved when the long axis had no standing to come from."""
        base = min(self.axis_confidence, self.sign_confidence)
        return base if self.long_axis_source == "standing" else 0.5 * base

    def flexion_velocity_dps(self, gyr_dps: np.ndarray) -> np.ndarray:
        """Sagittal (flexion-positive) angular velocity, deg/s, of (n, 3) gyro samples."""
        return np.asarray(gyr_dps, dtype=np.float64) @ np.asarray(self.flexion_axis)


def _moving_mean(x: np.ndarray, width: int) -> np.ndarray:
    """Means of ``width`` consecutive samples (the rotation over that window divided by its duration)."""
    if x.size <= width:
        return np.array([float(np.mean(x))])
    c = np.concatenate([[0.0], np.cumsum(x)])
    return (c[width:] - c[:-width]) / width


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _column_mean(x: np.ndarray) -> np.ndarray:
    """Mean of each column of (m, 3) (a matrix product: ~20x faster than mean(axis=0) on such arrays)."""
    return np.full(x.shape[0], 1.0 / x.shape[0]) @ x


def _own_sign_confidence(hi: float, lo: float) -> float:
    """1 - (smaller / larger)^2 of the 99th percentile ``hi`` and minus the 1st ``lo`` of a velocity: how sure
    that cue is of the sign it picks (module docstring, 3)."""
    big, small = (hi, -lo) if hi >= -lo else (-lo, hi)
    return float(1.0 - (small / big) ** 2) if big > 0 else 0.0


def estimate_thigh_axes(
    acc_mps2: np.ndarray,
    gyr_dps: np.ndarray,
    sampling_rate_hz: float,
    walking_mask: np.ndarray,
    standing_mask: np.ndarray | None = None,
) -> ThighAxes:
    """Find the long, flexion and forward axes of a thigh IMU (see the module docstring).

    ``walking_mask`` / ``standing_mask``: bool (n,) selecting walking / quiet standing samples. Raises
    InvalidSignal for bad arrays or masks, InsufficientData with less than MIN_WALKING_S of walking.
    """
    acc, gyr, fs = check_imu(acc_mps2, gyr_dps, sampling_rate_hz, 0.0)
    n = acc.shape[0]
    masks = {"walking_mask": walking_mask, "standing_mask": standing_mask}
    for name, mask in masks.items():
        if mask is not None and (np.asarray(mask).shape != (n,) or np.asarray(mask).dtype != np.bool_):
            raise InvalidSignal(f"{name} must be a bool array of shape ({n},)")
    walk = np.asarray(walking_mask)
    if walk.sum() < MIN_WALKING_S * fs:
        raise InsufficientData(
            f"thigh: {walk.sum() / fs:.1f} s of walking; need {MIN_WALKING_S:g} s to find the flexion axis"
        )
    if standing_mask is not None and np.asarray(standing_mask).sum() >= fs:
        long_axis = _unit(_column_mean(acc[np.asarray(standing_mask)]))
        source: Literal["standing", "walking"] = "standing"
    else:
        long_axis = _unit(_column_mean(acc[walk]))
        source = "walking"
    g = gyr[walk]
    e1 = _unit(np.cross(long_axis, np.eye(3)[int(np.argmin(np.abs(long_axis)))]))
    e2 = np.cross(long_axis, e1)
    # covariance of the rotation in the plane normal to the long axis (turning removed), from 3 x 3 moments
    basis = np.column_stack([e1, e2])
    mean = _column_mean(g)
    eigval, eigvec = np.linalg.eigh(basis.T @ (g.T @ g - g.shape[0] * np.outer(mean, mean)) @ basis)
    if eigval[1] <= 0:
        raise InsufficientData("thigh: no rotation while walking; cannot find the flexion axis")
    axis = _unit(eigvec[0, 1] * e1 + eigvec[1, 1] * e2)
    omega = g @ axis
    hi, lo = np.percentile(omega, [99.0, 1.0])
    sustained_hi, sustained_lo = np.percentile(_moving_mean(omega, max(1, round(SIGN_WINDOW_S * fs))), [99.0, 1.0])
    sign_conf = _own_sign_confidence(hi, lo)
    if (hi < -lo) != (sustained_hi < -sustained_lo):  # a transient outweighs the swing: the sustained cue decides
        sign_conf = min(sign_conf, _own_sign_confidence(sustained_hi, sustained_lo))
        hi, lo = sustained_hi, sustained_lo
    if hi < -lo:
        axis, hi, lo = -axis, -lo, -hi
    forward = _unit(np.cross(long_axis, axis))
    return ThighAxes(
        long_axis=tuple(float(x) for x in long_axis),  # type: ignore[arg-type]
        flexion_axis=tuple(float(x) for x in axis),  # type: ignore[arg-type]
        forward=tuple(float(x) for x in forward),  # type: ignore[arg-type]
        long_axis_source=source,
        axis_confidence=float(1.0 - eigval[0] / eigval[1]),
        sign_confidence=max(0.0, sign_conf),
    )
