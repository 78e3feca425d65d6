"""The pelvis's tilt for the live gait analysis, its gyro integration carried from window to window.

A window's pelvic drop needs ``up`` over its samples as `analytics.algorithms.tilt.estimate_tilt` finds it there. That
is not settled as a window grows: the gravity low-pass (0.03-0.1 Hz, zero-phase, padded at both ends) spans the whole
window, so one more second moves ``up`` everywhere in it (up to 1-3 deg of obliquity over a 7-s window, measured on
simulated walks): nothing of it can be kept. What can be kept is the gyro frame (the prefix product of the rotation
increments, most of the cost on a window's few hundred samples) and the accelerations rotated into it: ``up`` does
not depend on which sample the frame starts at (a constant rotation commutes with the linear low-pass and is undone
on the way back), so a frame started once and carried on over each new sample serves every later window. Per window
only the low-pass and the rotation back remain; the result is `estimate_tilt`'s over the window to rounding (under
1e-8 deg: tests/pipeline/test_live_tilt.py).

Units: samples (absolute indices of the session's common grid), Hz, deg/s, m/s^2.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from analytics.algorithms.tilt import carry_gyro_frame, rotate_into_gyro_frame, up_in_sensor_frame
from analytics.errors import InvalidSignal
from analytics.pipeline.live_buffer import SampleBuffer


class TiltTrack:
    """The pelvis's gyro frame (w x y z) and accelerations rotated into it (x y z) from absolute sample ``begin`` on,
    with the gyro bias ``bias`` removed (another bias: another track), the latest ``keep`` samples of them."""

    def __init__(self, bias: np.ndarray | None, begin: int, keep: int) -> None:
        self.bias = bias
        self._buf = SampleBuffer(("frame",), keep, width=7)
        self._buf.clear(begin)

    @property
    def keep(self) -> int:
        """Samples kept at most."""
        return self._buf.keep

    @property
    def first(self) -> int:
        """Absolute index of the oldest sample whose frame is kept."""
        return self._buf.first

    @property
    def end(self) -> int:
        """Absolute index one past the newest sample whose frame is made."""
        return self._buf.end

    def update(self, rows: Callable[[int, int], np.ndarray], end: int, fs: float) -> int:
        """Carry the frame on to ``end`` (``rows(a, b)``: the pelvis's acc and gyr rows (b - a, 6) of absolute
        indices a..b); the samples integrated."""
        e = self._buf.end
        if end <= e:
            return 0
        if self._buf.n == self._buf.off:  # nothing kept: the frame starts here
            frame = carry_gyro_frame(None, rows(e, end)[:, 3:], fs, self.bias)
        else:
            carry = self._buf.rows("frame", e - 1, e)[0, :4]
            frame = carry_gyro_frame(carry, rows(e - 1, end)[:, 3:], fs, self.bias)
        rotated = rotate_into_gyro_frame(frame, rows(e, end)[:, :3])
        self._buf.append({"frame": np.concatenate([frame, rotated]).T})
        return end - e

    def up(self, start: int, end: int, fs: float, cutoff_hz: float) -> np.ndarray:
        """``up`` (end - start, 3) over absolute samples ``start..end`` (within the track), as `estimate_tilt` over
        them gives it with this track's bias and ``cutoff_hz`` (InvalidSignal under 2 s)."""
        if start < self.first or end > self.end:
            raise InvalidSignal(f"tilt of samples {start}..{end} asked from a track holding {self.first}..{self.end}")
        r = self._buf.rows("frame", start, end)
        return up_in_sensor_frame(r[:, :4].T, r[:, 4:].T, fs, cutoff_hz)


__all__ = ["TiltTrack"]
