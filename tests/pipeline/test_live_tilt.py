"""The live analysis's pelvis tilt with its gyro frame carried from window to window (`analytics.pipeline.live_tilt`),
against `estimate_tilt` over each window (what a window computed before): the same ``up`` and pelvic drop to rounding,
each new sample integrated once (counted, never timed)."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.algorithms.tilt import BIAS_CORRECTED_CUTOFF_HZ, estimate_tilt
from analytics.pipeline.live import LiveGait, LiveSettings
from analytics.pipeline.live_tilt import TiltTrack
from analytics.recording.io import Recording
from simulator.session import simulate_session

FS = 100.0


@pytest.fixture(scope="module")
def walk() -> Recording:
    return simulate_session(seed=5, minutes=2.0, script="walk").recording


def test_a_carried_frame_gives_the_tilt_of_each_window_alone(walk: Recording) -> None:
    """Fed in pieces, the track integrates each sample once, and ``up`` over any window within it is
    `estimate_tilt`'s over that window alone (whose frame starts at the window's first sample) to 1e-9."""
    p = walk.sensors["pelvis"]
    rows = np.hstack([p.acc_mps2, p.gyr_dps])
    bias = np.array([0.4, -0.3, 0.2])
    rng = np.random.default_rng(3)
    track = TiltTrack(bias, 200, 1500)
    end, integrated, checked = 200, 0, 0
    while end < walk.n_samples - 200:
        end += int(rng.integers(1, 150))
        integrated += track.update(lambda a, b: rows[a:b], end, FS)
        start = max(track.first, end - int(rng.integers(200, 1400)))
        if end - start < 2 * FS:
            continue
        want = estimate_tilt(p.acc_mps2[start:end], p.gyr_dps[start:end], FS, BIAS_CORRECTED_CUTOFF_HZ, bias).up
        got = track.up(start, end, FS, BIAS_CORRECTED_CUTOFF_HZ)
        assert np.abs(got - want).max() < 1e-9
        checked += 1
    assert checked > 50
    assert integrated == end - 200  # each sample once


class WindowTilt(LiveGait):
    """The live analysis with each window's tilt estimated over the window alone (`estimate_tilt`)."""

    def _pelvis_up(self, bias: np.ndarray | None, start: int, end: int, cutoff_hz: float) -> np.ndarray:
        p = self._buf.rows("pelvis", start, end)
        return estimate_tilt(p[:, :3], p[:, 3:], self.fs, cutoff_hz, bias, keep_frame=False).up


@pytest.mark.parametrize("pause_s", [0.0, 25.0])
def test_live_strides_keep_their_pelvic_drop_with_each_sample_integrated_once(walk: Recording, pause_s: float) -> None:
    """The strides given out, pelvic drop included, are those of windows that estimate their tilt alone (drop to
    1e-8 deg), also after a pause in the windows (``pause_s`` of samples at once: a window longer than the frame
    kept); the pelvis's gyro frame is integrated over each sample about once (a track begun again with new
    estimates, or for a longer window, integrates its window), instead of over every summarised window's span."""
    settings = LiveSettings()
    step = round(0.5 * FS)
    mine, theirs = LiveGait(tuple(walk.sensors), FS, settings), WindowTilt(tuple(walk.sensors), FS, settings)
    out_mine: list[dict[str, object]] = []
    out_theirs: list[dict[str, object]] = []
    ends = list(range(step, walk.n_samples + step, step))
    if pause_s:
        ends = [e for e in ends if not 6000 < e < 6000 + pause_s * FS]
    for end in ends:
        for gait, out in ((mine, out_mine), (theirs, out_theirs)):
            b = gait.end
            gait.extend({k: (d.acc_mps2[b:end], d.gyr_dps[b:end]) for k, d in walk.sensors.items()})
            out.extend(gait.step())
    assert len(out_mine) == len(out_theirs) > 100
    drops = 0
    for a, b in zip(out_mine, out_theirs, strict=True):
        da, db = a.pop("pelvic_drop_deg"), b.pop("pelvic_drop_deg")
        assert a == b
        if db is not None:
            drops += 1
            assert da is not None and abs(float(da) - float(db)) < 1e-8  # type: ignore[arg-type]
    assert drops > 100
    c = mine.counters
    window = round((settings.context_s + 2.0 + pause_s) * FS)
    assert c.samples_tilt_framed <= walk.n_samples + (c.estimates + (pause_s > 0)) * window
    # a window's span each time before: the context and the new samples of every summarised window
    assert c.samples_tilt_framed < c.samples_analysed * c.windows_summarised / max(1, c.windows) / 3
