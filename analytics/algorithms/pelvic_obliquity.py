"""Pelvic obliquity, its quiet-standing reference, and pelvic drop during stance.

Definitions (gaitsym.result/1):

- **Pelvic obliquity** (deg): the elevation of the pelvis's leftward medio-lateral axis above the horizontal,
  asin(left . up), with ``up`` the earth vertical in the sensor frame (analytics.algorithms.tilt) and
  ``left`` the pelvis's left axis in the sensor frame (analytics.algorithms.pelvis_alignment). Positive when
  the right hemipelvis is lower than the left. Heading-free.
- **Reference**: the median obliquity over quiet standing. Sensor mounting tilt (a belt-worn sensor sits at
  the angle of the back under it) cannot be told apart from a static pelvic obliquity, so every angle
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

``pelvis_signals`` runs the whole pelvis chain once per recording (gait events, gyro bias, tilt, obliquity
axes, quiet standing, raw obliquity) so that the gait pipeline and the exercise analysis share it
(analytics.pipeline.analyze, analytics.algorithms.exercise_signals): one definition, computed once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analytics.algorithms._checks import check_imu, check_rate, check_xyz
from analytics.algorithms.gait_events import GaitEvents, detect_gait_events
from analytics.algorithms.pelvis_alignment import GAIT_BAND_HZ, BodyAxes, estimate_body_axes
from analytics.algorithms.tilt import (
    BIAS_CORRECTED_CUTOFF_HZ,
    GRAVITY_CUTOFF_HZ,
    block_means,
    estimate_tilt,
    level_accelerations,
    smoothed_angular_speed_dps,
    still_gyro_bias_dps,
)
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
WALK_MARGIN_S = 1.5
"""Samples this close (s) to a pelvis walking bout count as walking (the pelvis detector trims bout ends)."""
AXES_DECIMATION = 4
"""Block-mean factor of the accelerations the obliquity axes are found from (see obliquity_axes)."""


@dataclass(frozen=True)
class StandingReference:
    """The quiet-standing reference: ``obliquity_deg`` (raw, mounting included), from ``n_samples`` samples
    in ``periods_s`` [(start_s, end_s)]; ``spread_deg`` is the interquartile range of obliquity within them."""

    obliquity_deg: float
    n_samples: int
    periods_s: tuple[tuple[float, float], ...]
    spread_deg: float


@dataclass(frozen=True)
class PelvisSignals:
    """The pelvis's per-recording signals (see pelvis_signals); arrays have one row per sample.

    ``events``: detect_gait_events. ``gyro_bias_dps``: still_gyro_bias_dps (None: no still period).
    ``up``: (n, 3) vertical in the sensor frame (tilt, bias-corrected when the bias is known).
    ``axes``: body axes for obliquity (obliquity_axes; the detector's axes when walking is short; None
    without walking). ``up_axis``: the pelvis's up axis in the sensor frame (the detector's, else the median
    vertical). ``walking``: samples within WALK_MARGIN_S of a walking bout; ``in_bout``: inside one.
    ``speed_dps``: 1 Hz low-passed angular speed (deg/s). ``standing``: quiet_standing_mask without the
    ``unusable`` samples. ``obliquity_raw_deg``: obliquity_deg(up, axes.left), None without axes.
    """

    events: GaitEvents
    gyro_bias_dps: np.ndarray | None
    up: np.ndarray
    axes: BodyAxes | None
    up_axis: np.ndarray
    walking: np.ndarray
    in_bout: np.ndarray
    speed_dps: np.ndarray
    standing: np.ndarray
    obliquity_raw_deg: np.ndarray | None


def pelvis_signals(
    acc_mps2: np.ndarray,
    gyr_dps: np.ndarray,
    sampling_rate_hz: float,
    *,
    events: GaitEvents | None = None,
    unusable: np.ndarray | None = None,
) -> PelvisSignals:
    """The pelvis chain of a recording, once: gait events (unless given), gyro bias from still periods, tilt
    (BIAS_CORRECTED_CUTOFF_HZ with a known bias, else GRAVITY_CUTOFF_HZ; see tilt), walking masks, obliquity
    axes, quiet standing (``unusable``: bool (n,) samples to leave out, e.g. a stuck stream) and raw obliquity.

    ``acc_mps2`` (n, 3) m/s^2 with gravity, ``gyr_dps`` (n, 3) deg/s, sensor frame; rate in Hz.
    """
    acc, gyr, fs = check_imu(acc_mps2, gyr_dps, sampling_rate_hz, 2.0)
    n = acc.shape[0]
    if events is None:
        events = detect_gait_events(acc, gyr, fs)  # first: its transient memory is the largest
    speed = smoothed_angular_speed_dps(gyr, fs, 1.0)
    bias = still_gyro_bias_dps(gyr, fs, speed)
    cutoff = GRAVITY_CUTOFF_HZ if bias is None else BIAS_CORRECTED_CUTOFF_HZ
    up = estimate_tilt(acc, gyr, fs, cutoff, bias, keep_frame=False).up
    walking = np.zeros(n, dtype=bool)
    in_bout = np.zeros(n, dtype=bool)
    margin = round(WALK_MARGIN_S * fs)
    for b in events.walking_bouts:
        walking[max(0, round(b.start_s * fs) - margin) : round(b.end_s * fs) + margin + 1] = True
        in_bout[round(b.start_s * fs) : round(b.end_s * fs) + 1] = True
    axes = obliquity_axes(acc, gyr, up, in_bout, fs, events.axes)
    if events.axes is not None:
        up_axis = np.asarray(events.axes.up, dtype=np.float64)
    else:
        up_axis = np.median(up, axis=0)
        up_axis /= np.linalg.norm(up_axis)
    standing = quiet_standing_mask(gyr, up, up_axis, fs, speed_dps=speed)
    if unusable is not None:
        standing &= ~np.asarray(unusable, dtype=bool)
    raw = None if axes is None else obliquity_deg(up, np.asarray(axes.left))
    return PelvisSignals(events, bias, up, axes, up_axis, walking, in_bout, speed, standing, raw)


def obliquity_axes(
    acc: np.ndarray, gyr: np.ndarray, up: np.ndarray, in_bout: np.ndarray, fs: float, fallback: BodyAxes | None
) -> BodyAxes | None:
    """Pelvis body axes for obliquity: pelvis_alignment on the walking accelerations levelled by the tilt.

    pelvis_alignment finds the antero-posterior line as the horizontal direction whose acceleration is
    coupled with the vertical one, assuming left-right symmetric walking (medio-lateral acceleration in odd
    stride harmonics only). In the sensor's own axes that fails for an asymmetric pelvic drop, the very thing
    measured: the pelvis rolls further to one side, so gravity leaks g sin(obliquity) (~1 m/s^2 for 6 deg)
    into the medio-lateral axis with even harmonics, coupled with the vertical. The forward axis then turned
    by up to 16 deg on simulated walks with 0 vs 6 deg drops, and obliquity picked up sin(16 deg) of the
    sagittal tilt (up to 0.5 deg of drop error). Levelled accelerations (tilt.level_accelerations: gravity
    fixed along the mean walking vertical) carry no such leak: heading error within 2 deg on the same walks.
    Computed at a quarter of the rate (block means of AXES_DECIMATION samples: 25 Hz at 100 Hz), which keeps
    pelvis_alignment's 0.5-3 Hz gait band (a 4-sample mean has its first zero at 25 Hz, so nothing aliases
    into that band) at a quarter of the cost. Falls back to ``fallback`` (the gait detector's axes) when the
    walking is too short. Units: acc m/s^2, gyr deg/s, fs Hz; ``in_bout`` bool (n,).
    """
    factor = AXES_DECIMATION if fs / AXES_DECIMATION >= 4 * GAIT_BAND_HZ[1] else 1
    m = int(in_bout.sum()) // factor * factor
    if fallback is None or m < 2 * fs:
        return fallback
    ups = block_means(up[in_bout][:m], factor)
    reference = np.full(ups.shape[0], 1.0 / ups.shape[0]) @ ups
    reference /= np.linalg.norm(reference)
    ups /= np.linalg.norm(ups, axis=1, keepdims=True)
    levelled = level_accelerations(block_means(acc[in_bout][:m], factor), ups, reference)
    try:
        return estimate_body_axes(levelled, block_means(gyr[in_bout][:m], factor), fs / factor)
    except InsufficientData:
        return fallback


def obliquity_deg(up: np.ndarray, left_axis: np.ndarray) -> np.ndarray:
    """Raw pelvic obliquity (deg) at each sample: elevation of the left axis; ``up`` is (n, 3) unit vectors."""
    up = check_xyz("up", up)
    left = np.asarray(left_axis, dtype=np.float64)
    if left.shape != (3,) or not np.isfinite(left).all() or np.linalg.norm(left) < 1e-9:
        raise InvalidSignal(f"left_axis must be a finite non-zero 3-vector, got {left_axis!r}")
    left = left / np.linalg.norm(left)
    return np.degrees(np.arcsin(np.clip(up @ left, -1.0, 1.0)))


def quiet_standing_mask(
    gyr_dps: np.ndarray,
    up: np.ndarray,
    pelvis_up_axis: np.ndarray,
    sampling_rate_hz: float,
    *,
    speed_dps: np.ndarray | None = None,
) -> np.ndarray:
    """Boolean mask of quiet upright standing samples (see the module docstring). ``speed_dps``: the 1 Hz
    low-passed angular speed (tilt.smoothed_angular_speed_dps of ``gyr_dps``) if the caller has it."""
    rate = check_rate(sampling_rate_hz)
    up = check_xyz("up", up)
    axis = np.asarray(pelvis_up_axis, dtype=np.float64)
    axis = axis / np.linalg.norm(axis)
    if speed_dps is None:
        speed = smoothed_angular_speed_dps(check_xyz("gyr_dps", gyr_dps), rate, 1.0)
    else:
        speed = np.asarray(speed_dps, dtype=np.float64)
        if speed.shape != (up.shape[0],):
            raise InvalidSignal(f"speed_dps must have shape ({up.shape[0]},), got {speed.shape}")
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
    left, right = sides == "left", sides == "right"  # np.isin(sides, ["left", "right"]) at a third of its cost
    bad_side = ~(left | right)
    if bad_side.any():
        raise InvalidSignal(f"side must be 'left' or 'right', got {sides[bad_side][0]!r}")
    out = np.full(start.shape, np.nan)
    valid = (start >= 0) & (end <= x.size) & (end > start)
    for on_side, signed in ((left, x), (right, -1.0 * x)):  # the other side's drop (x is 1.0 * x, NaNs included)
        pick = np.flatnonzero(valid & on_side)
        if pick.size:
            out[pick] = _window_max(signed, start[pick], end[pick])
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
