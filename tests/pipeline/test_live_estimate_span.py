"""A window that brings many seconds at once (a worker catching up after a wait, or restarted) makes the session
estimates it owes from the same samples as a worker fed a second at a time: the samples an estimate needs are not
pushed out of the live buffer before it is made."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.pipeline.live import LiveGait, LiveSettings
from analytics.recording.io import Recording
from simulator.session import simulate_session


class Recorded(LiveGait):
    """A live analysis that notes each estimate it makes: (instant, thigh axes) in the order made."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.made: list[tuple[int, dict[str, tuple[float, ...]]]] = []

    def _estimate(self, at: int) -> bool:
        if not super()._estimate(at):
            return False
        assert self.estimates is not None
        self.made.append((self.origin + at, {s: tuple(a.tolist()) for s, a in self.estimates.flexion_axis.items()}))
        return True


@pytest.fixture(scope="module")
def walk() -> Recording:
    return simulate_session(seed=4, minutes=2.0, script="walk").recording


def feed(walk: Recording, cuts_s: list[float]) -> Recorded:
    fs = walk.sampling_rate_hz
    gait = Recorded(tuple(walk.sensors), fs, LiveSettings(), phase_s=17)
    a = 0
    for cut in [*cuts_s, walk.n_samples / fs]:
        b = min(round(cut * fs), walk.n_samples)
        if b > a:
            gait.extend({p: (d.acc_mps2[a:b], d.gyr_dps[a:b]) for p, d in walk.sensors.items()})
            gait.step()
            a = b
    return gait


def test_a_long_window_estimates_from_the_samples_a_short_one_does(walk: Recording) -> None:
    settings = LiveSettings()
    steady = feed(walk, list(np.arange(0.5, 120.0, 0.5)))
    # 0.5-s windows to 50 s, then one window of 50 s: past the refresh at 77 s by more than keep_s - estimate_span_s
    gap_s = 50.0
    assert gap_s > settings.keep_s - settings.estimate_span_s
    caught_up = feed(walk, [*np.arange(0.5, 50.0, 0.5), 50.0 + gap_s, *np.arange(100.5, 120.0, 0.5)])
    fs = walk.sampling_rate_hz
    steady_at = dict(steady.made)
    refreshed = [at for at, _ in caught_up.made if 50 * fs < at <= 100 * fs]
    assert refreshed, caught_up.made  # the refresh inside the long window was made
    assert len(steady.made) >= 2 and all(at in steady_at for at, _ in caught_up.made), (steady.made, caught_up.made)
    for at, axes in caught_up.made:
        assert axes == steady_at[at], at  # the same samples: the same axes to the bit
