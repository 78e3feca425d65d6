"""Ground truth of a simulated session as a gaitsym.result/1 document (source "simulator").

Every number is measured on the simulated motion with the schema's definitions, so it is true by construction:

- pelvis.obliquity_deg: obliquity (kinematics.obliquity_deg) of the true pelvis orientation minus the median of
  the calibration stand from 3 s in (standing_baseline_deg: the pelvis's own standing obliquity; sensor
  mounting is not in it, truth knows the body axes), at the recording rate, rounded to 0.01 deg.
- gait events (s from the first sample, rounded to 1 us) come from the bout plans; a stride runs from a foot's
  initial contact to its next one; pelvic_drop_deg is the peak, over the stance samples (IC..FC), of the
  opposite hemipelvis's drop computed from that rounded obliquity trajectory; included / step_time_s / summary
  use analytics.results.summary (mark_included, add_step_times, summarize_gait without bootstrap).
- exercises: one entry per marked set (stand and walk included), metrics per the schema, over the COMPLETE
  repetitions only. A repetition is partial (not counted in ``reps``, no hold, no metric) when its movement
  amplitude is below 50 % of the set's typical amplitude, the median amplitude of the set's repetitions that
  reach at least half of its largest one (exercises.py draws partial ones at 15-35 % of the full movement and
  complete ones at 90-110 %, so the model's ``Repetition.complete`` is that rule). Reference posture (schema):
  quiet standing (the calibration stand, as above) for single_leg_stance and lunge; for the lying and kneeling
  exercises (single_leg_bridge, clam, pelvic_tilt, quadruped_leg_raise) the median obliquity of the pelvis at
  rest in the second before the set's first repetition (complete or partial).
  holds -> pelvic_drop_mean_deg / pelvic_drop_peak_deg (over all hold samples) and time_level_pct
  (|obliquity| <= 2 deg); pelvic_tilt -> obliquity_abs_mean_deg / obliquity_abs_peak_deg / time_level_pct;
  clam -> thigh_rotation_amplitude_deg (peak rotation of the working thigh from its orientation at the start of
  the repetition, world frame, mean over reps) and pelvic_rollback_deg (peak rise of the pelvis's anterior axis
  from the start of the repetition, mean over reps); lunge -> thigh_internal_rotation_deg (the model's per-rep
  peak internal rotation of the front thigh about its long axis, reached at the bottom of the lunge, mean) and
  pelvic_drop_deg (mean of per-rep peak drops of the hemipelvis opposite the front leg).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from analytics.results import RESULT_SCHEMA, add_step_times, mark_included, summarize_gait
from firmware_protocol.sensor_info import PLACEMENTS

from .exercises import ExerciseBlock
from .gait_model import BoutPlan
from .kinematics import SIDE_SIGN, THIGHS, BodyMotion, axis_elevation_deg, obliquity_deg

GENERATOR_NAME = "gaitsym.virtual_kit"
GENERATOR_VERSION = "1.0.0"
LEVEL_DEG = 2.0
BASELINE_SETTLE_S = 3.0
LYING_EXERCISES = ("single_leg_bridge", "clam", "pelvic_tilt", "quadruped_leg_raise")
"""Exercises whose obliquity reference is the pelvis at rest before the set (schema), not quiet standing."""
REST_REFERENCE_S = 1.0


@dataclass(frozen=True)
class MarkedSet:
    """A marked activity in the session timeline (s from the first sample)."""

    exercise: str
    side: str
    set: int
    start_s: float
    end_s: float
    block: ExerciseBlock | None
    """The exercise block (None for walks)."""


def relative_obliquity(motion: BodyMotion, calibration: tuple[float, float]) -> tuple[np.ndarray, float]:
    """Obliquity relative to the calibration stand (deg, rounded to 0.01) and the standing baseline (deg)."""
    raw = obliquity_deg(motion.quat["pelvis"])
    i0 = round((calibration[0] + BASELINE_SETTLE_S) * motion.rate_hz)
    i1 = round(calibration[1] * motion.rate_hz)
    baseline = float(np.median(raw[i0:i1]))
    return np.round(raw - baseline, 2), baseline


def _window(values: np.ndarray, rate_hz: float, t0: float, t1: float) -> np.ndarray:
    return values[int(np.ceil(t0 * rate_hz - 1e-9)) : int(np.floor(t1 * rate_hz + 1e-9)) + 1]


def gait_truth(bouts: list[BoutPlan], obliquity: np.ndarray, rate_hz: float) -> dict[str, Any]:
    ics: list[dict[str, Any]] = []
    fcs: list[dict[str, Any]] = []
    strides: list[dict[str, Any]] = []
    bout_docs = []
    for b, bout in enumerate(bouts):
        t0 = bout.start_s
        for t, side in zip(bout.ic_s, bout.ic_side, strict=True):
            ics.append({"t_s": round(t0 + float(t), 6), "side": side})
        for side, t in bout.initiation_toe_off_s.items():
            fcs.append({"t_s": round(t0 + t, 6), "side": side})
        for t, stance, side in zip(bout.ic_s, bout.stance_s, bout.ic_side, strict=True):
            if np.isfinite(stance):
                fcs.append({"t_s": round(t0 + float(t + stance), 6), "side": side})
        n_strides = 0
        for s in bout.strides():
            start, end, stance = float(s["start_s"]), float(s["end_s"]), float(s["stance_time_s"])
            side = str(s["side"])
            drop = SIDE_SIGN[side] * _window(obliquity, rate_hz, start, start + stance)
            strides.append(
                {
                    "side": side,
                    "start_s": round(start, 6),
                    "end_s": round(end, 6),
                    "stance_time_s": round(stance, 6),
                    "swing_time_s": round(end - start - stance, 6),
                    "step_time_s": None,
                    "pelvic_drop_deg": round(float(drop.max()), 2),
                    "bout": b,
                    "included": True,
                }
            )
            n_strides += 1
        bout_docs.append(
            {
                "start_s": round(t0 + float(bout.ic_s[0]), 6),
                "end_s": round(t0 + float(bout.ic_s[-1]), 6),
                "n_strides": n_strides,
                "source": "simulator",
            }
        )
    strides.sort(key=lambda s: s["start_s"])
    for stride, included in zip(strides, mark_included(strides), strict=True):
        stride["included"] = included
    add_step_times(strides)
    for stride in strides:
        if stride["step_time_s"] is not None:
            stride["step_time_s"] = round(stride["step_time_s"], 6)
    ics.sort(key=lambda c: c["t_s"])
    fcs.sort(key=lambda c: c["t_s"])
    return {
        "initial_contacts": ics,
        "final_contacts": fcs,
        "bouts": bout_docs,
        "strides": strides,
        "summary": summarize_gait(strides, bootstrap=False),
    }


def _hold_metrics(values: np.ndarray) -> dict[str, float | None]:
    if values.size == 0:
        return {}
    return {
        "pelvic_drop_mean_deg": round(float(values.mean()), 3),
        "pelvic_drop_peak_deg": round(float(values.max()), 3),
    }


def exercise_truth(marked: MarkedSet, motion: BodyMotion, obliquity: np.ndarray) -> dict[str, Any]:
    rate = motion.rate_hz
    entry: dict[str, Any] = {
        "exercise": marked.exercise,
        "side": marked.side,
        "set": marked.set,
        "start_s": round(marked.start_s, 6),
        "end_s": round(marked.end_s, 6),
        "reps": None,
        "holds_s": [],
        "segmented_by": "simulator",
        "metrics": {},
        "flags": [],
    }
    block = marked.block
    if marked.exercise == "stand":
        entry["holds_s"] = [round(marked.end_s - marked.start_s, 6)]
    if block is None or not block.reps:
        return entry
    t0 = marked.start_s
    ex = marked.exercise
    if ex in LYING_EXERCISES:  # reference: the pelvis at rest in the second before the first repetition
        first = t0 + block.reps[0].start_s
        obliquity = obliquity - float(np.median(_window(obliquity, rate, first - REST_REFERENCE_S, first)))
    reps = [r for r in block.reps if r.complete]
    entry["reps"] = len(reps)
    holds = [r.hold for r in reps if r.hold is not None]
    entry["holds_s"] = [round(h1 - h0, 6) for h0, h1 in holds]
    held = np.concatenate([_window(obliquity, rate, t0 + h0, t0 + h1) for h0, h1 in holds]) if holds else np.zeros(0)
    metrics: dict[str, float | None] = {}
    if ex in ("single_leg_bridge", "single_leg_stance", "quadruped_leg_raise"):
        metrics.update(_hold_metrics(SIDE_SIGN[marked.side] * held))
        metrics["time_level_pct"] = round(100.0 * float(np.mean(np.abs(held) <= LEVEL_DEG)), 3)
    elif ex == "pelvic_tilt":
        metrics["obliquity_abs_mean_deg"] = round(float(np.abs(held).mean()), 3)
        metrics["obliquity_abs_peak_deg"] = round(float(np.abs(held).max()), 3)
        metrics["time_level_pct"] = round(100.0 * float(np.mean(np.abs(held) <= LEVEL_DEG)), 3)
    elif ex == "clam":
        thigh = motion.quat[THIGHS[marked.side]]
        pelvis_x = axis_elevation_deg(motion.quat["pelvis"], 0)
        rotation, rollback = [], []
        for r in reps:
            i0, i1 = round((t0 + r.start_s) * rate), round((t0 + r.end_s) * rate) + 1
            rel = Rotation.from_quat(thigh[i0]).inv() * Rotation.from_quat(thigh[i0:i1])
            rotation.append(float(np.degrees(np.linalg.norm(rel.as_rotvec(), axis=1)).max()))
            rollback.append(float((pelvis_x[i0:i1] - pelvis_x[i0]).max()))
        metrics["thigh_rotation_amplitude_deg"] = round(float(np.mean(rotation)), 3)
        metrics["pelvic_rollback_deg"] = round(float(np.mean(rollback)), 3)
    elif ex == "lunge":
        peaks = [
            float((SIDE_SIGN[marked.side] * _window(obliquity, rate, t0 + r.start_s, t0 + r.end_s)).max()) for r in reps
        ]
        metrics["thigh_internal_rotation_deg"] = round(float(np.mean(block.model["thigh_internal_rotation_deg"])), 3)
        metrics["pelvic_drop_deg"] = round(float(np.mean(peaks)), 3)
    entry["metrics"] = metrics
    return entry


def build_truth(
    *,
    settings: dict[str, Any],
    motion: BodyMotion,
    bouts: list[BoutPlan],
    marked: list[MarkedSet],
    calibration: tuple[float, float],
    subject: str | None,
    task: str,
) -> dict[str, Any]:
    obliquity, baseline = relative_obliquity(motion, calibration)
    return {
        "schema": RESULT_SCHEMA,
        "source": "simulator",
        "generator": {"name": GENERATOR_NAME, "version": GENERATOR_VERSION, "settings": settings},
        "recording": {
            "duration_s": motion.n_samples / motion.rate_hz,
            "sampling_rate_hz": motion.rate_hz,
            "placements": list(PLACEMENTS),
            "subject": subject,
            "task": task,
        },
        "gait": gait_truth(bouts, obliquity, motion.rate_hz),
        "pelvis": {
            "obliquity_deg": obliquity.tolist(),
            "rate_hz": motion.rate_hz,
            "t0_s": 0.0,
            "standing_baseline_deg": round(baseline, 4),
        },
        "exercises": [exercise_truth(m, motion, obliquity) for m in marked],
        "quality": {"flags": []},
    }
