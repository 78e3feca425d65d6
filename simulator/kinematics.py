"""Body model and segment motion: where the pelvis and thighs are and how they are oriented, sample by sample.

Frames (all right-handed):

- world (local to the home): X forward (the direction the patient first faces), Y left, Z up; metres.
- segment frames, equal to the world frame in quiet standing facing +X:
  pelvis x anterior, y left (medio-lateral, pointing to the LEFT hemipelvis), z superior;
  each thigh x anterior, y left, z along the femur from knee to hip.

A motion is held per segment as unit quaternions world <- segment (scipy order x, y, z, w) and the world
position (m) of the point the sensor sits on. Activity generators (gait_model, exercises) fill slices of a
`BodyMotion` in a local frame that starts at the origin facing +X; `place` moves them to where the patient is.

Body dimensions (adult of ~1.70 m, Winter 2009 anthropometry, rounded): pelvis sensor on the sacrum (S1) at
0.95 m in standing; hip joint centres 0.10 m anterior, 0.085 m lateral and 0.08 m inferior of it; thigh
sensors strapped laterally 0.20 m below the hip joint centre, 0.07 m out from the femur axis.

Pelvic obliquity (gaitsym.result/1): elevation of the pelvis's leftward axis above the horizontal, degrees,
asin(z-component of the pelvis y axis in the world); positive when the right hemipelvis is lower.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

from firmware_protocol.sensor_info import PLACEMENTS, Placement

THIGHS = {"left": Placement.LEFT_THIGH.value, "right": Placement.RIGHT_THIGH.value}
SIDE_SIGN = {"left": 1.0, "right": -1.0}
"""+1 for left, -1 for right: the y (leftward) sign of that side, and the sign that turns obliquity into the
drop of the hemipelvis opposite that side (drop = SIDE_SIGN[side] * obliquity)."""

PELVIS_STANDING_HEIGHT_M = 0.95
HIP_OFFSET_M = {"left": np.array([0.10, 0.085, -0.08]), "right": np.array([0.10, -0.085, -0.08])}
"""Hip joint centre in the pelvis frame, relative to the pelvis sensor (m)."""
THIGH_SENSOR_OFFSET_M = {"left": np.array([0.0, 0.07, -0.20]), "right": np.array([0.0, -0.07, -0.20])}
"""Thigh sensor in the thigh frame, relative to the hip joint centre (m)."""


@dataclass
class BodyMotion:
    """Quaternions world <- segment (n, 4) and sensor-point positions (n, 3) m, per segment, on one timeline."""

    rate_hz: float
    quat: dict[str, np.ndarray]
    position_m: dict[str, np.ndarray]
    impacts_mps2: np.ndarray
    """Extra world-frame acceleration of the pelvis at heel strikes (n, 3), m/s^2 (see gait_model)."""
    heel_strikes_s: dict[str, list[float]] = field(default_factory=dict)
    """Initial contacts (s) per thigh placement: what sets soft tissue under a thigh sensor ringing."""

    @classmethod
    def empty(cls, n: int, rate_hz: float) -> BodyMotion:
        quat = {s: np.tile([0.0, 0.0, 0.0, 1.0], (n, 1)) for s in PLACEMENTS}
        pos = {s: np.zeros((n, 3)) for s in PLACEMENTS}
        return cls(rate_hz, quat, pos, np.zeros((n, 3)))

    @property
    def n_samples(self) -> int:
        return int(self.quat["pelvis"].shape[0])


@dataclass
class Pose:
    """A pelvis pose and both thigh orientations over a run of samples, in some frame (local or world)."""

    pelvis: Rotation
    pelvis_position_m: np.ndarray
    thigh: dict[str, Rotation]

    def thigh_sensor_positions(self) -> dict[str, np.ndarray]:
        """Thigh sensor points from the rigid model: hip = pelvis point + R_pelvis hip offset, etc."""
        out = {}
        for side in ("left", "right"):
            hip = self.pelvis_position_m + self.pelvis.apply(HIP_OFFSET_M[side])
            out[side] = hip + self.thigh[side].apply(THIGH_SENSOR_OFFSET_M[side])
        return out


def write_pose(motion: BodyMotion, start: int, pose: Pose, heading_rad: float, origin_m: np.ndarray) -> None:
    """Store ``pose`` (local frame) at samples start.. after turning by heading about Z and moving to origin."""
    turn = Rotation.from_euler("z", heading_rad)
    n = len(pose.pelvis)
    stop = start + n
    pelvis = turn * pose.pelvis
    pelvis_pos = turn.apply(pose.pelvis_position_m) + origin_m
    motion.quat["pelvis"][start:stop] = pelvis.as_quat()
    motion.position_m["pelvis"][start:stop] = pelvis_pos
    for side, segment in THIGHS.items():
        thigh = turn * pose.thigh[side]
        motion.quat[segment][start:stop] = thigh.as_quat()
        hip = pelvis_pos + pelvis.apply(HIP_OFFSET_M[side])
        motion.position_m[segment][start:stop] = hip + thigh.apply(THIGH_SENSOR_OFFSET_M[side])


def pose_at(motion: BodyMotion, index: int) -> Pose:
    """The stored (world) pose at one sample."""
    return Pose(
        pelvis=Rotation.from_quat(motion.quat["pelvis"][index : index + 1]),
        pelvis_position_m=motion.position_m["pelvis"][index : index + 1].copy(),
        thigh={side: Rotation.from_quat(motion.quat[seg][index : index + 1]) for side, seg in THIGHS.items()},
    )


def smootherstep(x: np.ndarray) -> np.ndarray:
    """Quintic 0 -> 1 ramp on [0, 1] with zero first and second derivatives at both ends (C2 joins)."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * x * (x * (6.0 * x - 15.0) + 10.0)


def ramp(t: np.ndarray, t0: float, t1: float) -> np.ndarray:
    """smootherstep from 0 at t0 to 1 at t1 (t in s)."""
    return smootherstep((t - t0) / max(t1 - t0, 1e-9))


def transition(start: Pose, end: Pose, n: int) -> Pose:
    """Move from one resting pose (one sample) to another over n samples, C2-smooth in time (slerp)."""
    s = smootherstep(np.linspace(0.0, 1.0, n))

    def slerp(a: Rotation, b: Rotation) -> Rotation:
        delta = (a.inv() * b).as_rotvec()[0]
        return a * Rotation.from_rotvec(np.outer(s, delta))

    return Pose(
        pelvis=slerp(start.pelvis, end.pelvis),
        pelvis_position_m=start.pelvis_position_m + np.outer(s, end.pelvis_position_m[0] - start.pelvis_position_m[0]),
        thigh={side: slerp(start.thigh[side], end.thigh[side]) for side in ("left", "right")},
    )


def with_obliquity(rotation: Rotation, obliquity_deg: np.ndarray) -> Rotation:
    """Raise the pelvis's left (y) axis by ``obliquity_deg`` above where it is, about the horizontal axis y x Z.

    Exact for any posture whose y axis is horizontal (standing, supine, four-point kneeling): the result's
    obliquity is the given angle.
    """
    y_axis = rotation.apply([0.0, 1.0, 0.0])
    axis = np.cross(y_axis, [0.0, 0.0, 1.0])
    norm = np.linalg.norm(axis, axis=-1, keepdims=True)
    axis = axis / np.maximum(norm, 1e-12)
    return Rotation.from_rotvec(axis * np.radians(np.asarray(obliquity_deg))[:, None]) * rotation


def obliquity_deg(pelvis_quat: np.ndarray) -> np.ndarray:
    """Pelvic obliquity (deg) of world <- pelvis quaternions (n, 4): asin of the y axis's vertical component."""
    x, y, z, w = pelvis_quat.T
    y_up = 2.0 * (y * z + w * x)  # third row, second column of the rotation matrix
    return np.degrees(np.arcsin(np.clip(y_up, -1.0, 1.0)))


def axis_elevation_deg(quat: np.ndarray, axis: int) -> np.ndarray:
    """Elevation (deg) above the horizontal of a segment axis (0 = x, 1 = y, 2 = z) of quaternions (n, 4)."""
    x, y, z, w = quat.T
    row = (2.0 * (x * z - w * y), 2.0 * (y * z + w * x), 1.0 - 2.0 * (x * x + y * y))
    return np.degrees(np.arcsin(np.clip(row[axis], -1.0, 1.0)))


def sway(t: np.ndarray, rng: np.random.Generator, amplitude: float, f_lo: float, f_hi: float, k: int = 4):
    """Band-limited random sway: the sum of k sinusoids, random frequencies in [f_lo, f_hi] Hz and phases."""
    freqs = rng.uniform(f_lo, f_hi, k)
    phases = rng.uniform(0, 2 * np.pi, k)
    weights = rng.uniform(0.5, 1.0, k)
    weights = weights / np.sqrt((weights**2).sum() / 2.0)  # unit RMS
    return amplitude * (weights[None, :] * np.sin(2 * np.pi * t[:, None] * freqs + phases)).sum(1)


def standing_pose(n: int, standing_obliquity_deg: float = 0.0) -> Pose:
    """Quiet standing facing +X at the origin, both thighs vertical (n identical samples)."""
    pelvis = with_obliquity(Rotation.identity(n), np.full(n, standing_obliquity_deg))
    return Pose(
        pelvis=pelvis,
        pelvis_position_m=np.tile([0.0, 0.0, PELVIS_STANDING_HEIGHT_M], (n, 1)),
        thigh={"left": Rotation.identity(n), "right": Rotation.identity(n)},
    )
