"""Step 3 of the analysis: the thighs. Axes from standing and walking (thigh_alignment), whether each sensor
is on a thigh and on its named side (side_check), toe offs and initial contacts per leg (thigh_events)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analytics.algorithms.side_check import SEGMENT_EXCURSION_DEG, check_thigh_sides
from analytics.algorithms.thigh_alignment import estimate_thigh_axes
from analytics.algorithms.thigh_events import ThighEvents, detect_thigh_events
from analytics.errors import InsufficientData
from analytics.pipeline.pelvis import PelvisStep, excursion_deg
from analytics.pipeline.result import LOW_CONFIDENCE, Flags, Record
from analytics.pipeline.streams import StreamCheck
from analytics.recording.io import Recording

THIGHS = {"left": "left_thigh", "right": "right_thigh"}


@dataclass(frozen=True)
class ThighStep:
    """``events``: per side ("left"/"right"), the contacts of each usable thigh. ``sides_trusted``: False when
    left/right labels cannot be trusted (side-labelled numbers withheld). ``alignment``: placement -> block."""

    events: dict[str, ThighEvents]
    sides_trusted: bool
    alignment: dict[str, Record]


def analyze_thighs(
    recording: Recording, fs: float, streams: StreamCheck, pelvis: PelvisStep, flags: Flags
) -> ThighStep:
    walking, standing = pelvis.signals.walking, pelvis.signals.standing
    bad = streams.stuck
    alignment: dict[str, Record] = {}
    flexion: dict[str, np.ndarray] = {}
    for side, placement in THIGHS.items():
        if placement not in recording.sensors:
            flags.add(
                "thigh_missing",
                "warning",
                f"no {placement} sensor: events of walking bouts come from the pelvis alone (less accurate)",
                placement=placement,
            )
            continue
        data = recording.sensors[placement]
        if walking.sum() < 10:
            continue
        excursion = excursion_deg(data.acc_mps2, data.gyr_dps, fs, walking & ~bad[placement])
        if excursion is not None and excursion < SEGMENT_EXCURSION_DEG:
            flags.add(
                "wrong_segment",
                "warning",
                f"{placement}: it swings only {excursion:.0f} deg per stride about a horizontal axis while walking;"
                f" a thigh sweeps over {SEGMENT_EXCURSION_DEG:.0f}: not used (is it on the thigh?)",
                placement=placement,
            )
            continue
        try:
            axes = estimate_thigh_axes(data.acc_mps2, data.gyr_dps, fs, walking & ~bad[placement], standing)
        except InsufficientData as exc:
            flags.add("thigh_unusable", "warning", f"{placement}: {exc}", placement=placement)
            continue
        flexion[side] = axes.flexion_velocity_dps(data.gyr_dps)
        alignment[placement] = {
            "confidence": float(np.clip(axes.confidence, 0.0, 1.0)),
            "long_axis": list(axes.long_axis),
            "flexion_axis": list(axes.flexion_axis),
            "forward": list(axes.forward),
            "long_axis_source": axes.long_axis_source,
            "axis_confidence": axes.axis_confidence,
            "sign_confidence": axes.sign_confidence,
        }
        if axes.confidence < LOW_CONFIDENCE:
            flags.add(
                "low_alignment_confidence",
                "warning",
                f"{placement}: alignment confidence {axes.confidence:.2f}"
                + (" (no quiet standing: long axis from walking)" if axes.long_axis_source == "walking" else ""),
                placement=placement,
            )
    sides_trusted = _sides_trusted(recording, fs, pelvis, flexion, alignment, flags)
    events = {side: detect_thigh_events(w, fs, walking & ~bad[THIGHS[side]]) for side, w in flexion.items()}
    return ThighStep(events, sides_trusted, alignment)


def _sides_trusted(
    recording: Recording,
    fs: float,
    pelvis: PelvisStep,
    flexion: dict[str, np.ndarray],
    alignment: dict[str, Record],
    flags: Flags,
) -> bool:
    """Whether the left/right labels hold: the thighs checked against the pelvis rotation, or the pelvis's own
    side confidence without a usable thigh; never when the pelvis sensor is not on the pelvis."""
    walking, events = pelvis.signals.walking, pelvis.signals.events
    sides_trusted = True
    if flexion and walking.sum() >= 4 * fs:
        pelvis_yaw = recording.sensors["pelvis"].gyr_dps @ pelvis.signals.up_axis
        check = check_thigh_sides(pelvis_yaw, flexion, fs, walking)
        for side in flexion:
            alignment[THIGHS[side]]["side_check_score"] = check.score
        if check.swapped is True:
            sides_trusted = False
            flags.add(
                "thigh_sides_swapped",
                "withheld",
                "the thigh sensors seem to be on the opposite legs to their names (pelvis rotation runs with "
                f"the other thigh, score {check.score:.2f}): side-labelled numbers withheld",
            )
        elif check.swapped is None:
            flags.add(
                "thigh_sides_unconfirmed",
                "warning",
                f"the thigh sensors' sides could not be confirmed against the pelvis (score {check.score:.2f})",
            )
    elif not flexion and events.walking_bouts:
        flags.add(
            "sides_from_pelvis",
            "warning",
            f"no usable thigh sensor: left/right from the pelvis alone (side confidence {events.side_confidence:.2f})",
        )
        if events.side_confidence < LOW_CONFIDENCE:
            sides_trusted = False
            flags.add(
                "sides_uncertain",
                "withheld",
                f"left/right labels from the pelvis are uncertain (confidence {events.side_confidence:.2f}): "
                "side-labelled numbers withheld",
            )
    return sides_trusted and pelvis.on_pelvis
