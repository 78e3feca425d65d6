"""The medians the stride rules and step times take without np.median's per-call cost give np.median's value to
the bit (a rule's verdict or a step time may sit on a bound), signed zeros included."""

from __future__ import annotations

import numpy as np

from analytics.algorithms.stride_checks import bout_rhythm_s, median_step_s
from analytics.results.summary import _median as summary_median


def _samples() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    out = [np.array(v) for v in ([-0.0], [-0.0, -0.0], [0.0, -0.0], [-0.0, -0.0, 1.0, -1.0], [1e308, 1e308, 1.0])]
    for n in range(1, 40):
        out.append(rng.normal(size=n) * 10 ** rng.uniform(-3, 3))
        out.append(np.round(rng.normal(size=n), 1))  # ties and signed zeros
    return out


def test_the_rhythm_is_np_median_to_the_bit() -> None:
    for x in _samples():
        if x.size >= 3:
            assert repr(bout_rhythm_s(x)) == repr(float(np.median(x))), x


def test_the_median_step_is_np_median_of_the_steps_to_the_bit() -> None:
    for x in _samples():
        with np.errstate(over="ignore"):
            t = np.cumsum(np.abs(x))
        if not np.isfinite(t).all():
            continue  # contact times are finite (refused otherwise)
        steps = np.diff(np.sort(t))
        steps = steps[steps > 0]
        want = float(np.median(steps)) if t.size >= 3 and steps.size else None
        assert repr(median_step_s(t)) == repr(want), t


def test_the_step_times_median_is_np_median_to_the_bit() -> None:
    for x in _samples():
        assert repr(summary_median(x.tolist())) == repr(float(np.median(x))), x
    assert np.isnan(summary_median([1.0, float("nan"), 2.0]))
