"""The live analysis's session estimates: steps 1-3 of the pipeline (stream checks, pelvis, thighs) over the
seconds before an instant, kept only when they hold enough walking (`analytics.pipeline.live`).

Pure: a recording of the span in, estimates out. Times in s, rates in Hz.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from analytics.algorithms.gait_events import BOUT_MARGIN_S, MAX_STEP_S, candidate_walking_s, detect_gait_events
from analytics.algorithms.pelvic_obliquity import WALK_MARGIN_S
from analytics.errors import AnalyticsError
from analytics.pipeline.live_settings import LiveEstimates
from analytics.pipeline.pelvis import analyze_pelvis
from analytics.pipeline.result import Flags
from analytics.pipeline.streams import check_streams
from analytics.pipeline.thighs import THIGHS, analyze_thighs
from analytics.recording.io import Recording


def walking_mask(events: Any, n: int, fs: float) -> np.ndarray:
    """Samples within WALK_MARGIN_S of a pelvis walking bout (as `pelvis_signals` marks them)."""
    walking = np.zeros(n, dtype=bool)
    margin = round(WALK_MARGIN_S * fs)
    for b in events.walking_bouts:
        walking[max(0, round(b.start_s * fs) - margin) : round(b.end_s * fs) + margin + 1] = True
    return walking


def walking_events(rec: Recording, fs: float, min_walking_s: float) -> Any | None:
    """The pelvis's gait events of the span when it holds at least ``min_walking_s`` of walking, else None.

    The detector's first pass rules most spans out alone: every walking sample lies within WALK_MARGIN_S of a bout
    whose contacts lie in the samples that pass keeps (BOUT_MARGIN_S around its bouts of step candidates); a bout
    of contacts spanning several of those bridges gaps under MAX_STEP_S (+ the search before a loading peak,
    < 1 s). So the walking is at most what it keeps plus, per bout, twice (WALK_MARGIN_S - BOUT_MARGIN_S) and one
    bridged gap: the same spans are kept as by the whole detector, at a fraction of its cost."""
    pelvis = rec.sensors["pelvis"]
    kept_s, bouts = candidate_walking_s(pelvis.acc_mps2, fs)
    if kept_s + bouts * (2 * (WALK_MARGIN_S - BOUT_MARGIN_S) + MAX_STEP_S + 1.0) < min_walking_s:
        return None
    events = detect_gait_events(pelvis.acc_mps2, pelvis.gyr_dps, fs)
    if walking_mask(events, rec.n_samples, fs).sum() < min_walking_s * fs:
        return None
    return events


def session_estimates(
    rec: Recording, fs: float, events: Any, placements: tuple[str, ...], min_walking_s: float, before: Any
) -> tuple[LiveEstimates, bool] | None:
    """Steps 1-3 over the span (its pelvis ``events`` from `walking_events`): the estimates, and whether they are
    complete (every thigh placed has its axis, and a standing reference is known; ``before``: the estimates in
    force, whose reference is kept when the span has none). None when the span's walking does not suffice."""
    flags = Flags()
    try:
        streams = check_streams(rec, fs, flags)
        pelvis = analyze_pelvis(rec, fs, streams, flags, [], events)
        thighs = analyze_thighs(rec, fs, streams, pelvis, flags)
    except AnalyticsError:
        return None
    ps = pelvis.signals
    if ps.events.axes is None or ps.walking.sum() < min_walking_s * fs:
        return None
    axes = {
        side: np.asarray(thighs.alignment[placement]["flexion_axis"], dtype=np.float64)
        for side, placement in THIGHS.items()
        if side in thighs.events and placement in thighs.alignment
    }
    reference = pelvis.reference
    if reference is None and before is not None:
        reference = before.reference
    wanted = {side for side, placement in THIGHS.items() if placement in placements}
    estimates = LiveEstimates(
        flexion_axis=axes,
        sides_trusted=thighs.sides_trusted,
        on_pelvis=pelvis.on_pelvis,
        pelvis_axes=ps.axes,
        event_axes=ps.events.axes,
        up_axis=np.asarray(ps.up_axis, dtype=np.float64),
        gyro_bias_dps=None if ps.gyro_bias_dps is None else np.asarray(ps.gyro_bias_dps, dtype=np.float64),
        reference=reference,
        alignment={"pelvis": pelvis.alignment, **thighs.alignment},
    )
    return estimates, set(axes) == wanted and reference is not None
