"""Mounting-free signals every exercise analysis needs, computed once per recording (vectorised).

Sensors are strapped on at any rotation, so nothing here reads a sensor axis as a body axis:

- ``up`` per placement: the earth vertical in that sensor's frame (analytics.algorithms.tilt, ~0.1 deg).
- pelvis body axes (forward, left, up in the pelvis sensor frame) and walking bouts from the session's
  walking (analytics.algorithms.gait_events / pelvis_alignment), unless the caller passes its GaitEvents.
- raw pelvic obliquity asin(left . up) and elevation of the pelvis's anterior axis asin(forward . up), deg.
- gyroscope bias per sensor (deg/s): the median rate over still samples (smoothed angular speed below
  ``STILL_DPS``), subtracted before any integration; 0 with ``bias_known=False`` when fewer than
  ``MIN_STILL_S`` of still samples exist.
- quiet-standing reference: the first quiet upright standing period of at least ``REFERENCE_MIN_S`` (the
  calibration stand at the start of a session; README "What gaitsym cannot measure"): median raw obliquity
  and the median vertical of each thigh (the thighs' standing orientation for the standing exercises).

Units: deg, deg/s, s, Hz. Movement angles: ``angle_from_deg`` is the angle (deg) between a segment's vertical
at each sample and a reference vertical, i.e. how far the segment has tilted from a rest posture; it is exact
for rotations about horizontal axes (hip flexion, abduction in side-lying, bridging) and blind to rotations
about the vertical. Validated on simulation only until real exercise recordings exist.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

from analytics.algorithms.exercise_reps import runs
from analytics.algorithms.gait_events import GaitEvents, detect_gait_events
from analytics.algorithms.pelvic_obliquity import quiet_standing_mask
from analytics.algorithms.pelvis_alignment import BodyAxes
from analytics.algorithms.tilt import estimate_tilt, prefix_product
from analytics.errors import InsufficientData

PLACEMENTS = ("pelvis", "left_thigh", "right_thigh")
STILL_DPS = 4.0
"""Smoothed angular speed (deg/s) below which a segment counts as still (sway is ~1-3 deg/s)."""
MIN_STILL_S = 5.0
"""Still time (s) needed to trust a gyroscope bias estimate."""
REFERENCE_MIN_S = 3.0
"""Shortest quiet standing (s, after pelvic_obliquity's trimming) accepted as the session's reference."""
SPEED_LOWPASS_HZ = 1.0


@dataclass(frozen=True)
class StandingPosture:
    """The session's quiet-standing reference: raw obliquity (deg), each segment's vertical, and where."""

    obliquity_deg: float
    up: dict[str, np.ndarray]
    start_s: float
    end_s: float


@dataclass(frozen=True)
class ExerciseSignals:
    """Per-recording signals (see the module docstring); arrays have one row per sample."""

    rate_hz: float
    up: dict[str, np.ndarray]
    gyr_dps: dict[str, np.ndarray]
    """Bias-corrected gyroscope rates (deg/s), sensor frame."""
    bias_known: dict[str, bool]
    speed_dps: dict[str, np.ndarray]
    """1 Hz low-passed angular speed (deg/s) per placement."""
    axes: BodyAxes | None
    obliquity_raw_deg: np.ndarray | None
    forward_elevation_deg: np.ndarray | None
    standing: StandingPosture | None
    walking: np.ndarray
    """Bool mask of samples inside walking bouts (with a 1.5 s margin)."""

    @property
    def n_samples(self) -> int:
        return int(self.up["pelvis"].shape[0])


def angle_from_deg(up: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Angle (deg) between unit vectors ``up`` (n, 3) and one reference unit vector (3,): atan2(|u x r|, u . r)."""
    ref = np.asarray(reference, dtype=np.float64)
    ref = ref / np.linalg.norm(ref)
    return np.degrees(np.arctan2(np.linalg.norm(np.cross(up, ref), axis=1), up @ ref))


def mean_direction(up: np.ndarray) -> np.ndarray:
    """Normalised median of unit vectors (n, 3): a robust mean direction."""
    m = np.median(up, axis=0)
    return m / np.linalg.norm(m)


def twist_deg(gyr_dps: np.ndarray, rate_hz: float, axis: np.ndarray) -> float:
    """Rotation (deg) about ``axis`` (sensor frame at the first sample) accumulated over the samples, from
    bias-corrected rates: swing-twist decomposition of the integrated rotation, 2 atan2(v . axis, w)."""
    if gyr_dps.shape[0] < 2:
        return 0.0
    omega = np.radians(gyr_dps[:-1])
    angle = np.linalg.norm(omega, axis=1) / rate_hz
    unit = omega / np.maximum(np.linalg.norm(omega, axis=1, keepdims=True), 1e-12)
    dq = np.column_stack([np.cos(angle / 2.0), unit * np.sin(angle / 2.0)[:, None]])
    q = prefix_product(dq)[-1]
    u = np.asarray(axis, dtype=np.float64)
    u = u / np.linalg.norm(u)
    return float(np.degrees(2.0 * np.arctan2(float(q[1:] @ u), float(q[0]))))


def _speed(gyr: np.ndarray, rate: float) -> np.ndarray:
    sos = signal.butter(2, SPEED_LOWPASS_HZ, btype="low", fs=rate, output="sos")
    return np.asarray(signal.sosfiltfilt(sos, np.sqrt((gyr * gyr).sum(axis=1))))


def compute_signals(
    acc_mps2: dict[str, np.ndarray],
    gyr_dps: dict[str, np.ndarray],
    rate_hz: float,
    *,
    gait_events: GaitEvents | None = None,
) -> ExerciseSignals:
    """All per-recording exercise signals from the three sensors' raw arrays (see the module docstring).

    ``gait_events``: the pelvis's gait events if the caller already has them (their walking bouts and body
    axes are used; saves ~0.18 s on a 30-min session). Raises InsufficientData when a placement is missing;
    bad arrays raise InvalidSignal (from tilt).
    """
    missing = [p for p in PLACEMENTS if p not in acc_mps2 or p not in gyr_dps]
    if missing:
        raise InsufficientData(f"exercise analysis needs the pelvis and both thigh sensors; missing: {missing}")
    rate = float(rate_hz)
    up, gyr, known, speed = {}, {}, {}, {}
    for p in PLACEMENTS:
        up[p] = estimate_tilt(acc_mps2[p], gyr_dps[p], rate).up
        raw = np.asarray(gyr_dps[p], dtype=np.float64)
        sp = _speed(raw, rate)
        still = sp < STILL_DPS
        known[p] = bool(still.sum() >= MIN_STILL_S * rate)
        bias = np.median(raw[still], axis=0) if known[p] else np.zeros(3)
        gyr[p] = raw - bias
        speed[p] = sp
    n = up["pelvis"].shape[0]
    walking = np.zeros(n, dtype=bool)
    events = gait_events or detect_gait_events(acc_mps2["pelvis"], gyr_dps["pelvis"], rate)
    margin = round(1.5 * rate)
    for bout in events.walking_bouts:
        walking[max(0, round(bout.start_s * rate) - margin) : round(bout.end_s * rate) + margin + 1] = True
    axes = events.axes
    obliquity = forward = None
    standing = None
    if axes is not None:
        obliquity = np.degrees(np.arcsin(np.clip(up["pelvis"] @ np.asarray(axes.left), -1.0, 1.0)))
        forward = np.degrees(np.arcsin(np.clip(up["pelvis"] @ np.asarray(axes.forward), -1.0, 1.0)))
        quiet = quiet_standing_mask(gyr["pelvis"], up["pelvis"], np.asarray(axes.up), rate)
        quiet &= speed["left_thigh"] < STILL_DPS
        quiet &= speed["right_thigh"] < STILL_DPS
        starts, ends = runs(quiet)
        long_enough = np.flatnonzero(ends - starts >= REFERENCE_MIN_S * rate)
        if long_enough.size:
            s, e = int(starts[long_enough[0]]), int(ends[long_enough[0]])
            standing = StandingPosture(
                obliquity_deg=float(np.median(obliquity[s:e])),
                up={p: mean_direction(up[p][s:e]) for p in PLACEMENTS},
                start_s=s / rate,
                end_s=e / rate,
            )
    return ExerciseSignals(rate, up, gyr, known, speed, axes, obliquity, forward, standing, walking)
