"""Step 1 of the analysis: the quality of each sensor's stream (signal_quality)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analytics.algorithms.signal_quality import spans_s, stream_quality
from analytics.pipeline.result import Flags
from analytics.recording.io import Recording


@dataclass(frozen=True)
class StreamCheck:
    """``stuck``: per placement, the samples of a dropped-out stream (no events from them);
    ``saturated_any``: samples where any sensor was at full scale (strides overlapping them are excluded)."""

    stuck: dict[str, np.ndarray]
    saturated_any: np.ndarray


def check_streams(recording: Recording, fs: float, flags: Flags) -> StreamCheck:
    """Saturated and stuck spans of every stream, each flagged with its placement and span."""
    stuck: dict[str, np.ndarray] = {}
    saturated_any = np.zeros(recording.n_samples, dtype=bool)
    for placement, data in recording.sensors.items():
        q = stream_quality(data.acc_mps2, data.gyr_dps, fs)
        stuck[placement] = q.stuck
        saturated_any |= q.saturated
        for start, end in spans_s(q.saturated, fs):
            flags.add(
                "saturation",
                "warning",
                f"{placement}: accelerometer or gyroscope at full scale; strides overlapping it are excluded",
                placement=placement,
                start_s=start,
                end_s=end,
            )
        for start, end in spans_s(q.stuck, fs):
            flags.add(
                "sensor_dropout",
                "warning",
                f"{placement}: the stream repeats one sample (sensor dropped out); no events from it here",
                placement=placement,
                start_s=start,
                end_s=end,
            )
    return StreamCheck(stuck, saturated_any)
