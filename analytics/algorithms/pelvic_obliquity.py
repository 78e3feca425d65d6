"""Pelvic obliquity, its quiet-standing reference, and pelvic drop during stance.

Definitions (gaitsym.result/1):

- **Pelvic obliquity** (deg): the elevation of the pelvis's leftward medio-lateral axis above the horizontal,
  asin(left . up), with ``up`` the earth vertical in the sensor frame (analytics.algorithms.tilt) and
  ``left`` the pelvis's left axis in the sensor frame (analytics.algorithms.pelvis_alignment). Positive when
  the right hemipelvis is lower than the left. Heading-free.
- **Reference**: the median obliquity over quiet standing. Sensor mounting tilt is large (-10 deg seen on
  real data, FIELD_NOTES section 2) and cannot be told apart from a static pelvic obliquity, so every angle
  is reported relative to the patient's own quiet standing (a dynamic, calibration-relative measure).
- **Pelvic drop** of a LEFT stance (deg): the peak of obliquity relative to standing between the left
  initial contact and the left final contact, i.e. the peak drop of the RIGHT (contralateral) hemipelvis,
  positive downward; a RIGHT stance takes the peak of minus the relative obliquity. This is the IMU analogue
  of the Trendelenburg sign (contralateral pelvic drop in single-limb support; Bramah 2018, AJSM: 1 deg more
  drop raised injury odds 80% in runners). IMU vs optical accuracy for the pelvic frontal plane: RMSE
  2.7-4.5 deg (Bolink 2016, Med Eng Phys): trends within a patient are the intended use.

Quiet standing (samples): the pelvis is upright (its up axis within ``UPRIGHT_MAX_DEG`` of the vertical, so
lying exercises do not count), the gyroscope is quiet (norm below ``STILL_GYRO_DPS`` after a 1 Hz low-pass)
for at least ``STANDING_MIN_S``. Units: deg, deg/s, s, Hz.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analytics.algorithms._checks import check_rate, check_xyz
from analytics.algorithms.tilt import smoothed_angular_speed_dps
from analytics.errors import InsufficientData, InvalidSignal

STILL_GYRO_DPS = 8.0
"""Angular speed (deg/s, 1 Hz low-passed) below which the pelvis counts as still: quiet standing sway is
~1-3 deg/s, walking ~20-60 deg/s."""
UPRIGHT_MAX_DEG = 30.0
"""Largest angle (deg) between the pelvis's up axis and the vertical for it to count as upright."""
STANDING_MIN_S = 2.0
"""Shortest quiet-standing period (s) used as a reference."""
EDGE_TRIM_S = 0.5
"""Trimmed from each end of a standing period (s), where the person settles or starts moving."""


@dataclass(frozen=True)
class StandingReference:
    """The quiet-standing reference: ``obliquity_deg`` (raw, mounting included), from ``n_samples`` samples
    in ``periods_s`` [(start_s, end_s)]; ``spread_deg`` is the interquartile range of obliquity within them."""

    obliquity_deg: float
    n_samples: int
    periods_s: tuple[tuple[float, float], ...]
    spread_deg: float


def obliquity_deg(up: np.ndarray, left_axis: np.ndarray) -> np.ndarray:
    """Raw pelvic obliquity (deg) at each sample: elevation of the left axis; ``up`` is (n, 3) unit vectors."""
    up = check_xyz("up", up)
    left = np.asarray(left_axis, dtype=np.float64)
    if left.shape != (3,) or not np.isfinite(left).all() or np.linalg.norm(left) < 1e-9:
        raise InvalidSignal(f"left_axis must be a finite non-zero 3-vector, got {left_axis!r}")
    left = left / np.linalg.norm(left)
    return np.degrees(np.arcsin(np.clip(up @ left, -1.0, 1.0)))


def quiet_standing_mask(
    gyr_dps: np.ndarray, up: np.ndarray, pelvis_up_axis: np.ndarray, sampling_rate_hz: float
) -> np.ndarray:
    """Boolean mask of quiet upright standing samples (see the module docstring)."""
    rate = check_rate(sampling_rate_hz)
    gyr = check_xyz("gyr_dps", gyr_dps)
    up = check_xyz("up", up)
    axis = np.asarray(pelvis_up_axis, dtype=np.float64)
    axis = axis / np.linalg.norm(axis)
    speed = smoothed_angular_speed_dps(gyr, rate, 1.0)
    upright = up @ axis >= np.cos(np.radians(UPRIGHT_MAX_DEG))
    still = (speed < STILL_GYRO_DPS) & upright
    return _keep_runs(still, round(STANDING_MIN_S * rate), round(EDGE_TRIM_S * rate))


def _keep_runs(mask: np.ndarray, min_len: int, trim: int) -> np.ndarray:
    """Keep runs of True at least ``min_len + 2 trim`` long, trimmed by ``trim`` at each end."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    out = np.zeros_like(mask)
    for s, e in zip(starts, ends, strict=True):
        if e - s >= min_len + 2 * trim:
            out[s + trim : e - trim] = True
    return out


def standing_reference(obliquity: np.ndarray, standing: np.ndarray, sampling_rate_hz: float) -> StandingReference:
    """Median raw obliquity over the standing samples; InsufficientData when there are none."""
    rate = check_rate(sampling_rate_hz)
    obliquity = np.asarray(obliquity, dtype=np.float64)
    if standing.shape != obliquity.shape:
        raise InvalidSignal(f"standing mask {standing.shape} and obliquity {obliquity.shape} differ")
    if not standing.any():
        raise InsufficientData(
            f"no quiet upright standing of at least {STANDING_MIN_S:g} s: pelvic angles have no reference"
        )
    values = obliquity[standing]
    edges = np.diff(np.concatenate([[0], standing.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    q25, q50, q75 = np.percentile(values, [25, 50, 75])
    return StandingReference(
        obliquity_deg=float(q50),
        n_samples=int(values.size),
        periods_s=tuple((s / rate, e / rate) for s, e in zip(starts, ends, strict=True)),
        spread_deg=float(q75 - q25),
    )


def pelvic_drop_deg(
    relative_obliquity: np.ndarray,
    sampling_rate_hz: float,
    sides: np.ndarray,
    stance_start_s: np.ndarray,
    stance_end_s: np.ndarray,
) -> np.ndarray:
    """Peak contralateral drop (deg, positive downward) during each stance [start, end] (see the docstring).

    ``sides`` holds "left"/"right" per stance; a stance outside the signal or shorter than one sample gives NaN.
    """
    rate = check_rate(sampling_rate_hz)
    x = np.asarray(relative_obliquity, dtype=np.float64)
    sides = np.asarray(sides)
    start = np.round(np.asarray(stance_start_s, dtype=np.float64) * rate).astype(np.int64)
    end = np.round(np.asarray(stance_end_s, dtype=np.float64) * rate).astype(np.int64) + 1
    if not (sides.shape == start.shape == end.shape):
        raise InvalidSignal("sides, stance_start_s and stance_end_s must have the same length")
    bad_side = ~np.isin(sides, ["left", "right"])
    if bad_side.any():
        raise InvalidSignal(f"side must be 'left' or 'right', got {sides[bad_side][0]!r}")
    out = np.full(start.shape, np.nan)
    valid = (start >= 0) & (end <= x.size) & (end > start)
    for side, sign in (("left", 1.0), ("right", -1.0)):
        pick = np.flatnonzero(valid & (sides == side))
        if pick.size:
            out[pick] = _window_max(sign * x, start[pick], end[pick])
    return out


def _window_max(x: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """max(x[start_i:end_i]) for each window, vectorised (windows may overlap)."""
    order = np.argsort(start, kind="stable")
    s, e = start[order], end[order]
    if np.all(s[1:] >= e[:-1]):  # disjoint windows: one reduceat pass
        idx = np.empty(2 * s.size, dtype=np.int64)
        idx[0::2], idx[1::2] = s, e
        if idx[-1] == x.size:
            maxima = np.maximum.reduceat(np.append(x, -np.inf), idx)[0::2]
        else:
            maxima = np.maximum.reduceat(x, idx)[0::2]
    else:
        maxima = np.array([x[a:b].max() for a, b in zip(s, e, strict=True)])
    out = np.empty_like(maxima)
    out[order] = maxima
    return out
