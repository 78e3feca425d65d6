"""Synthetic pelvis IMU walking with known contact times (body frame built analytically, then rotated).

Each step k (IC at t_k, sides alternating, the first one left) adds to the vertical acceleration a
loading bump A exp(-(tau - s)^2 / 2 s^2) (steepest rise exactly at the IC, tau = t - t_k) and an unloading
dip -B exp(-(tau - d)^2 / 2 sd^2) at the trailing foot's final contact tau = d. Forward acceleration follows
the inverted pendulum (minus the vertical velocity); medio-lateral acceleration points away from the stance
foot; the yaw rate is negative at left ICs (McCamley 2012). Units: m/s^2, deg/s, s, Hz.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from analytics.validation.matching import match_events
from tests.datasets import MOBGAP_LAB

FS_HZ = 100.0
G = 9.81
LOAD_SIGMA_S = 0.05
FC_DELAY_S = 0.16


@dataclass(frozen=True)
class SyntheticWalk:
    acc_mps2: np.ndarray
    gyr_dps: np.ndarray
    ic_t_s: np.ndarray
    ic_left: np.ndarray  # bool per IC
    fc_t_s: np.ndarray  # FC of the foot opposite to ic_left, FC_DELAY_S after each IC
    bouts: list[tuple[float, float]]
    body_to_sensor: np.ndarray  # columns: forward, left, up in the sensor frame


def make_walk(
    bouts: list[tuple[float, int]] = [(3.0, 16)],  # noqa: B006 - read-only default
    step_s: float = 0.55,
    duration_s: float | None = None,
    rotation_seed: int | None = None,
    noise_seed: int = 0,
) -> SyntheticWalk:
    """Bouts given as (first IC time s, number of steps); standing elsewhere."""
    last = max(t0 + (k - 1) * step_s for t0, k in bouts)
    duration = duration_s if duration_s is not None else last + 3.0
    t = np.arange(round(duration * FS_HZ)) / FS_HZ
    ics, lefts, bout_spans = [], [], []
    for t0, k in bouts:
        times = t0 + step_s * np.arange(k)
        ics.append(times)
        lefts.append(np.arange(k) % 2 == 0)
        bout_spans.append((float(times[0]), float(times[-1])))
    ic = np.concatenate(ics)
    left = np.concatenate(lefts)

    a_up = np.zeros_like(t)
    a_left = np.zeros_like(t)
    yaw = np.zeros_like(t)
    for tk, lk in zip(ic, left, strict=True):
        tau = t - tk
        a_up += 3.0 * np.exp(-((tau - LOAD_SIGMA_S) ** 2) / (2 * LOAD_SIGMA_S**2))
        a_up -= 1.5 * np.exp(-((tau - FC_DELAY_S) ** 2) / (2 * 0.03**2))
        # stance on the left foot -> trunk accelerates to the right (negative left), for one step
        in_step = (tau >= 0) & (tau < step_s)
        a_left += np.where(in_step, -1.0 if lk else 1.0, 0.0) * np.sin(np.pi * np.clip(tau / step_s, 0, 1))
        # yaw rate: a half-cosine per step, negative around left ICs
        yaw += np.where(np.abs(tau) < step_s / 2, (-20.0 if lk else 20.0) * np.cos(np.pi * tau / step_s), 0.0)
    v_up = np.cumsum(a_up - a_up.mean()) / FS_HZ
    v_up -= np.convolve(v_up, np.ones(101) / 101, mode="same")  # remove drift (~1 s moving mean)
    a_fwd = -2.0 * v_up / max(np.abs(v_up).max(), 1e-9)

    acc_body = np.column_stack([a_fwd, a_left, a_up + G])
    gyr_body = np.column_stack([np.zeros_like(t), np.zeros_like(t), yaw])
    q = np.eye(3) if rotation_seed is None else Rotation.random(random_state=rotation_seed).as_matrix()
    rng = np.random.default_rng(noise_seed)
    acc = acc_body @ q.T + rng.normal(0, 0.05, acc_body.shape)
    gyr = gyr_body @ q.T + rng.normal(0, 0.5, gyr_body.shape)
    return SyntheticWalk(acc, gyr, ic, left, ic + FC_DELAY_S, bout_spans, q)


# --- real recordings (mobgap lab example data) ---------------------------------------------------------

VALIDATION_DIR = str(MOBGAP_LAB)
TRIALS = ("HA-001_Test11_Trial1", "HA-001_Test5_Trial1", "HA-001_Test5_Trial2")


def load_trial(trial: str) -> tuple[np.ndarray, np.ndarray, float]:
    """(acc m/s^2, gyr deg/s, rate Hz) of a validation recording's pelvis sensor (sensor frame)."""
    from analytics.recording.io import read_recording

    rec = read_recording(f"{VALIDATION_DIR}/{trial}")
    sensor = rec.sensors["pelvis"]
    return sensor.acc_mps2, sensor.gyr_dps, rec.sampling_rate_hz


def load_reference(trial: str, system: str) -> dict:
    import json
    from pathlib import Path

    return json.loads(Path(f"{VALIDATION_DIR}/{trial}/reference_{system}.json").read_text("utf-8"))


def match(ref: list[float], det: list[float], tol_s: float) -> list[tuple[int, int]]:
    """Greedy one-to-one matching of the nearest (reference, detected) pairs within tol_s (s)."""
    return match_events(ref, det, tol_s)


def stance_si(strides) -> float:
    """Stance-time SI (%) over strides with a stance time, first and last stride of each bout dropped."""
    left, right = [], []
    by_bout: dict[int, list] = {}
    bout = 0
    prev_end = -np.inf
    for s in sorted(strides, key=lambda s: s.start_s):
        if s.start_s - prev_end > 2.0:  # a new bout: strides of one bout overlap or touch
            bout += 1
        prev_end = max(prev_end, s.end_s)
        by_bout.setdefault(bout, []).append(s)
    for items in by_bout.values():
        for s in items[1:-1]:
            if s.stance_time_s is not None:
                (left if s.side == "left" else right).append(s.stance_time_s)
    m_l, m_r = float(np.mean(left)), float(np.mean(right))
    return 100.0 * (m_l - m_r) / (0.5 * (m_l + m_r))


def mirror(acc: np.ndarray, gyr: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """The physically mirrored movement across the plane normal to sensor ``axis``.

    A reflection M flips that acceleration component; angular velocity is a pseudovector, so it becomes
    det(M) M w = -M w: the two other gyro components flip. The result is what a right-handed sensor would
    record on the walker's mirror image.
    """
    m = np.eye(3)
    m[axis, axis] = -1.0
    return acc @ m.T, -(gyr @ m.T)
