"""The pelvis detector's and the tilt's cheap paths give the numbers of the plain numpy/scipy calls they stand in
for, to the bit: np.median, scipy.signal.find_peaks, the Hamilton product, the bout and side rules as written."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from analytics.algorithms import gait_events, tilt
from analytics.algorithms.gait_events import (
    MAX_STEP_S,
    MIN_BOUT_STEPS,
    MIN_PEAK_PROMINENCE_MPS2,
    MIN_STEP_S,
    NON_ALTERNATION_COST,
    STEP_LOWPASS_HZ,
    STEP_RATIO_LIMIT,
)
from analytics.algorithms.pelvic_obliquity import pelvic_drop_deg
from analytics.errors import InvalidSignal


def _median_samples() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    fixed = ([-0.0], [-0.0, -0.0], [0.0, -0.0], [-0.0, -0.0, 1.0, -1.0], [1e308, 1e308, 1.0], [np.nan, 1.0], [3, 4])
    out = [np.array(v) for v in fixed]
    for n in range(1, 40):
        out.append(rng.normal(size=n) * 10 ** rng.uniform(-3, 3))
        out.append(np.round(rng.normal(size=n), 1))  # ties and signed zeros
        out.append(rng.integers(-5, 5, size=n))
    return out


def test_the_median_is_np_median_to_the_bit() -> None:
    for x in _median_samples():
        with np.errstate(over="ignore"):
            assert repr(gait_events._median(x)) == repr(float(np.median(x))), x
            if x.dtype.kind == "f" and not np.isnan(x).any():
                assert repr(gait_events._median_of_steps(x.tolist())) == repr(float(np.median(x))), x


def _bouts_as_written(peaks: np.ndarray, fs: float) -> list[np.ndarray]:
    if peaks.size < MIN_BOUT_STEPS:
        return []
    dt = np.diff(peaks) / fs
    bouts = []
    for run in np.split(np.arange(peaks.size), np.flatnonzero(dt > MAX_STEP_S) + 1):
        if run.size < MIN_BOUT_STEPS:
            continue
        steps = np.diff(peaks[run]) / fs
        median = float(np.median(steps))
        ok = (steps <= STEP_RATIO_LIMIT * median) & (steps >= median / STEP_RATIO_LIMIT)
        bouts += [peaks[sub] for sub in np.split(run, np.flatnonzero(~ok) + 1) if sub.size >= MIN_BOUT_STEPS]
    return bouts


def test_bouts_follow_the_rules_as_written() -> None:
    rng = np.random.default_rng(11)
    for _ in range(3000):
        n = int(rng.integers(0, 30))
        steps = rng.integers(10, 160, size=n) * rng.choice([1, 1, 1, 3], size=n)  # some pauses, some missed steps
        peaks = np.unique(np.cumsum(steps) + int(rng.integers(0, 100)))
        expected = _bouts_as_written(peaks, 100.0)
        got = gait_events._bouts(peaks, 100.0)
        assert [b.tolist() for b in got] == [b.tolist() for b in expected]


def _labels_as_written(score: np.ndarray) -> np.ndarray:
    n = score.size
    cost = np.empty((n, 2))
    back = np.zeros((n, 2), dtype=np.int8)
    cost[0] = (-score[0], score[0])
    for i in range(1, n):
        emit = (-score[i], score[i])
        for s in (0, 1):
            stay = cost[i - 1, s] + NON_ALTERNATION_COST
            swap = cost[i - 1, 1 - s]
            back[i, s] = s if stay < swap else 1 - s
            cost[i, s] = min(stay, swap) + emit[s]
    states = np.empty(n, dtype=np.int8)
    states[-1] = int(np.argmin(cost[-1]))
    for i in range(n - 1, 0, -1):
        states[i - 1] = back[i, states[i]]
    return states == 0


def test_side_labels_are_the_viterbi_pass_as_written() -> None:
    rng = np.random.default_rng(5)
    for trial in range(2000):
        score = rng.normal(size=int(rng.integers(1, 25))) * rng.choice([1e-3, 1.0, 1e3])
        if trial % 5 == 0:
            score = np.round(score)  # ties
        if trial % 17 == 0:
            score[rng.integers(0, score.size)] = np.nan
        assert gait_events._alternating_labels(score) == _labels_as_written(score).tolist()


def test_step_peaks_are_scipy_find_peaks() -> None:
    rng = np.random.default_rng(3)
    for trial in range(300):
        n = int(rng.integers(100, 1500))
        x = np.cumsum(rng.normal(size=n)) + rng.uniform(0, 5) * np.sin(np.arange(n) / rng.uniform(3, 40))
        if trial % 10 == 0:
            x = np.round(x, 1)  # plateaus
        smooth = gait_events._lowpass(x, STEP_LOWPASS_HZ, 100.0)
        expected, _ = signal.find_peaks(smooth, distance=round(MIN_STEP_S * 100.0), prominence=MIN_PEAK_PROMINENCE_MPS2)
        np.testing.assert_array_equal(gait_events._step_peaks(x, 100.0), expected)


@pytest.mark.parametrize("m", [1, 2, 3, 7, 100, tilt._MUL_AT_ONCE_UP_TO, tilt._MUL_AT_ONCE_UP_TO + 1, 1000])
def test_quaternion_products_are_the_hamilton_product_to_the_bit(m: int) -> None:
    rng = np.random.default_rng(m)
    a, b = rng.normal(size=(4, m)), rng.normal(size=(4, m))
    a[:, 0] = -0.0  # signed zeros take the same sums
    expected = tilt.multiply(a.T, b.T).T
    assert tilt._mul(a, b).tobytes() == np.ascontiguousarray(expected).tobytes()
    assert tilt._mul(a[:, :1], b).tobytes() == np.ascontiguousarray(tilt.multiply(a[:, 0], b.T).T).tobytes()


def test_pelvic_drop_keeps_nan_and_side_checks() -> None:
    x = np.array([0.0, 1.0, np.nan, -2.0, 0.5, 3.0])
    drops = pelvic_drop_deg(
        x, 1.0, np.array(["left", "right", "right"]), np.array([0.0, 3.0, 1.0]), np.array([1.0, 4.0, 2.0])
    )
    assert drops[0] == 1.0 and drops[1] == 2.0 and np.isnan(drops[2])
    with pytest.raises(InvalidSignal, match="'up'"):
        pelvic_drop_deg(x, 1.0, np.array(["left", "up"]), np.array([0.0, 1.0]), np.array([1.0, 2.0]))


def test_the_peak_searches_hold_on_the_filters_public_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """A scipy without the filter kernel the filters call directly: the filters hand back what
    `scipy.signal.sosfilt` does (not always C-ordered), and the peak searches, which call compiled steps taking
    C-ordered arrays only, must find the same contacts as with the kernel."""
    from analytics.algorithms import filters, thigh_events
    from simulator.session import simulate_session

    rec = simulate_session(seed=3, script="walk", minutes=1.0).recording
    pelvis, thigh = rec.sensors["pelvis"], rec.sensors["left_thigh"]

    def contacts() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        fs = rec.sampling_rate_hz
        events = gait_events.detect_gait_events(pelvis.acc_mps2, pelvis.gyr_dps, fs)
        swings = thigh_events.detect_thigh_events(thigh.gyr_dps[:, 1], fs)
        return (
            np.array([e.t_s for e in events.initial_contacts]),
            np.array([e.t_s for e in events.final_contacts]),
            swings.initial_contact_s,
        )

    with_kernel = contacts()
    assert all(c.size > 20 for c in with_kernel)  # a minute of walking: every detector found its contacts
    monkeypatch.setattr(filters, "_sosfilt_kernel", None)
    public = contacts()
    for a, b in zip(with_kernel, public, strict=True):
        assert a.shape == b.shape and np.allclose(a, b, rtol=0, atol=1e-9)
