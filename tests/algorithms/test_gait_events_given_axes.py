"""`detect_gait_events` given body axes already estimated (what a live window does with its session's estimates)."""

from __future__ import annotations

import dataclasses

import numpy as np

from analytics.algorithms.gait_events import detect_gait_events
from simulator.session import simulate_session


def test_events_found_with_the_axes_the_detector_itself_estimates_are_its_events() -> None:
    """Given the axes it would estimate, the detector finds exactly its own events (the argument skips the
    estimation, nothing else); given another sensor's axes, it uses them."""
    p = simulate_session(seed=2, minutes=1.0, script="walk").recording.sensors["pelvis"]
    own = detect_gait_events(p.acc_mps2, p.gyr_dps, 100.0)
    assert own.axes is not None and len(own.initial_contacts) > 40
    again = detect_gait_events(p.acc_mps2, p.gyr_dps, 100.0, axes=own.axes)
    assert again == own
    flipped = dataclasses.replace(own.axes, up=tuple(-np.asarray(own.axes.up)))  # type: ignore[arg-type]
    other = detect_gait_events(p.acc_mps2, p.gyr_dps, 100.0, axes=flipped)
    assert other.axes == flipped and other != own
