"""Step 2 of the analysis: the pelvis chain (pelvic_obliquity.pelvis_signals, computed once and shared with the
exercise analysis), its standing reference of obliquity, its alignment and whether it is on the pelvis at all."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from analytics.algorithms.gait_events import GaitEvents
from analytics.algorithms.pelvic_obliquity import PelvisSignals, StandingReference, pelvis_signals, standing_reference
from analytics.algorithms.pelvis_alignment import BodyAxes
from analytics.algorithms.side_check import SEGMENT_EXCURSION_DEG, rotation_excursion_deg
from analytics.errors import InsufficientData
from analytics.pipeline.result import LOW_CONFIDENCE, Flags, Record
from analytics.pipeline.streams import StreamCheck
from analytics.recording.io import Recording


@dataclass(frozen=True)
class PelvisStep:
    """``signals``: the shared pelvis chain. ``reference``: quiet standing's obliquity (None: no standing, pelvic
    drop withheld). ``on_pelvis``: False when the sensor swings like a thigh (every gait number withheld).
    ``alignment``: its quality.alignment block."""

    signals: PelvisSignals
    reference: StandingReference | None
    on_pelvis: bool
    alignment: Record


def excursion_deg(acc: np.ndarray, gyr: np.ndarray, fs: float, walking: np.ndarray) -> float | None:
    """rotation_excursion_deg over the walking samples, None when there is too little walking to judge."""
    try:
        return rotation_excursion_deg(acc, gyr, fs, walking)
    except InsufficientData:
        return None


def analyze_pelvis(
    recording: Recording,
    fs: float,
    streams: StreamCheck,
    flags: Flags,
    withheld: list[str],
    events: GaitEvents | None = None,
) -> PelvisStep:
    """The pelvis chain; adds to ``withheld`` what a missing standing reference withholds. ``events``: the pelvis's
    `detect_gait_events` of this recording when the caller has them already (not detected again)."""
    pelvis = recording.sensors["pelvis"]
    ps = pelvis_signals(pelvis.acc_mps2, pelvis.gyr_dps, fs, events=events, unusable=streams.stuck["pelvis"])
    reference = None
    if ps.events.axes is None:
        flags.add("no_walking", "warning", "no walking bout found: no gait events, strides or pelvic drop")
    else:
        assert ps.obliquity_raw_deg is not None
        try:
            reference = standing_reference(ps.obliquity_raw_deg, ps.standing, fs)
        except InsufficientData as exc:
            flags.add("no_standing_reference", "withheld", f"pelvic drop withheld: {exc}")
            withheld.append("gait.summary.pelvic_drop_deg")
    excursion = excursion_deg(pelvis.acc_mps2, pelvis.gyr_dps, fs, ps.walking)
    on_pelvis = excursion is None or excursion < SEGMENT_EXCURSION_DEG
    alignment = _pelvis_alignment(ps.events, ps.axes, ps.standing, fs, flags)
    alignment["gyro_bias_dps"] = None if ps.gyro_bias_dps is None else [float(x) for x in ps.gyro_bias_dps]
    if not on_pelvis:
        flags.add(
            "wrong_segment",
            "withheld",
            f"pelvis: it swings like a thigh while walking ({excursion:.0f} deg per stride about a horizontal "
            f"axis, a pelvis stays below {SEGMENT_EXCURSION_DEG:.0f}): it is not on the pelvis; all gait numbers "
            "withheld",
            placement="pelvis",
        )
        alignment["confidence"] = 0.0
    return PelvisStep(ps, reference, on_pelvis, alignment)


def _pelvis_alignment(
    events: GaitEvents, axes: BodyAxes | None, standing: np.ndarray, fs: float, flags: Flags
) -> dict[str, Any]:
    if axes is None:
        return {"confidence": 0.0, "standing_s": float(standing.sum() / fs)}
    confidence = axes.confidence
    has_standing = bool(standing.any())
    if not has_standing:
        confidence *= 0.5
        flags.add(
            "no_standing",
            "warning",
            "no quiet standing of at least 2 s: the pelvis has no standing calibration (confidence halved)",
            placement="pelvis",
        )
    if confidence < LOW_CONFIDENCE:
        flags.add(
            "low_alignment_confidence", "warning", f"pelvis: alignment confidence {confidence:.2f}", placement="pelvis"
        )
    return {
        "confidence": float(np.clip(confidence, 0.0, 1.0)),
        "up": list(axes.up),
        "forward": list(axes.forward),
        "left": list(axes.left),
        "up_confidence": axes.up_confidence,
        "ap_line_confidence": axes.ap_line_confidence,
        "forward_confidence": axes.forward_confidence,
        "side_confidence": events.side_confidence,
        "standing_s": float(standing.sum() / fs),
    }
