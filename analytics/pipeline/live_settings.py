"""What the live gait analysis (`analytics.pipeline.live.LiveGait`) is told, what it establishes about a session's
sensors, and the work it counts: plain records, so that the worker's configuration and the tests read them without
the analysis."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analytics.algorithms.pelvic_obliquity import StandingReference
from analytics.algorithms.pelvis_alignment import BodyAxes
from analytics.pipeline.result import Record


@dataclass(frozen=True)
class LiveSettings:
    """How much `LiveGait` looks at, s. Defaults: see the module docstring."""

    context_s: float = 6.0
    """Samples before the first one no stride was looked for in, analysed with it: a stride (up to ~1.5 s),
    the bout's earlier contacts its rules look at, and the filters' settling."""
    settle_s: float = 0.05
    """A stride is given out once its last contact lies this far before the newest sample."""
    min_step_s: float = 0.0
    """A window runs only once this much new data arrived since the last one (0: whenever a stride can be ready;
    more trades latency for fewer windows), s."""
    quiet_step_s: float = 1.0
    """Without usable thighs (or their estimates), a window runs once this much new data arrived."""
    max_window_s: float = 40.0
    """Longest stretch one window analyses (after a pause in the markers, a restart): older strides are left to
    the final analysis."""
    estimate_span_s: float = 30.0
    """Samples the session estimates come from (the latest ones)."""
    min_walking_s: float = 6.0
    """Walking (samples within `WALK_MARGIN_S` of a pelvis bout) the estimates must come from: a thigh's axis
    needs 4 s of it, and axes from less than ~5 s moved contacts by more than a sample (simulated sessions)."""
    estimate_every_s: float = 1.0
    """Estimates are made at instants that are whole multiples of this (on the 1970 grid plus the session's phase,
    `LiveGait`'s ``phase_s``, so every worker picks the same instants and, from the same samples, the same
    estimates) while there are none, or none complete (every 2, 4, 8 ... times this after incomplete ones: a thigh
    unusable, no quiet standing yet)."""
    refresh_every_s: float = 60.0
    """Complete estimates are made again at whole multiples of this (plus the session's phase)."""
    keep_s: float = 45.0
    """Samples kept in memory (at least ``estimate_span_s`` and ``max_window_s``)."""


@dataclass(frozen=True)
class LiveEstimates:
    """What the session's walking so far says about its sensors (see the module docstring)."""

    flexion_axis: dict[str, np.ndarray]
    """Per usable thigh side ("left"/"right"): its flexion axis in the sensor frame."""
    sides_trusted: bool
    on_pelvis: bool
    pelvis_axes: BodyAxes | None
    """The pelvis's axes for obliquity (`PelvisSignals.axes`)."""
    event_axes: BodyAxes | None
    """The pelvis's axes its gait events were found with over the estimates' span (`GaitEvents.axes`): a window
    finds its pelvis events with them instead of estimating them again from its few seconds."""
    up_axis: np.ndarray
    gyro_bias_dps: np.ndarray | None
    reference: StandingReference | None
    """The quiet-standing reference, None without quiet standing so far."""
    alignment: dict[str, Record]


@dataclass
class LiveCounters:
    """Work done so far (samples are sample instants of the common grid, all placements together)."""

    windows: int = 0
    """Windows analysed past the pelvis's first pass (walking found)."""
    windows_summarised: int = 0
    """Windows whose strides went through step 5 (a stride was ready to give out)."""
    windows_still: int = 0
    """Windows that stopped after the pelvis's first pass (no walking)."""
    samples_analysed: int = 0
    """Sample instants the windows analysed (new samples plus context)."""
    samples_new: int = 0
    """Sample instants no earlier window had seen."""
    samples_checked: int = 0
    """Samples of a thigh the readiness check looked at (a window not due analyses nothing else; what it filtered
    is in ``samples_thigh``)."""
    samples_thigh: int = 0
    """Samples of a thigh its contact rule filtered, for the readiness checks and the windows together: the new
    samples plus `live_thighs.THIGH_BACK_S` and the unsettled swings' seconds per call (the swings settled before
    are kept, `live_thighs.ThighTrack`), never a window's whole span again."""
    samples_tilt_framed: int = 0
    """Samples of the pelvis whose gyro frame the tilt integrated (`live_tilt.TiltTrack`): each new sample once, not
    every window's span again (a track begun again, with new estimates' gyro bias, integrates its window once)."""
    windows_axes_estimated: int = 0
    """Windows whose pelvis gait events estimated the body axes themselves (only while there are no estimates:
    then the estimates' axes are used)."""
    estimates: int = 0
    samples_estimated: int = 0
    """Sample instants the session estimates were made from (every time they were made)."""
    strides_out: int = 0
