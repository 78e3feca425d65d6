"""The thigh contact rule's, the tilt's and the stride rules' cheap paths give the numbers of the plain numpy/scipy
calls they stand in for, to the bit: scipy.signal.find_peaks with a height, the numpy levels of the quaternion scan,
the stride rules over arrays, and a swing's times whichever candidates are timed."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from analytics.algorithms import stride_checks, thigh_events, tilt
from analytics.algorithms.stride_checks import (
    MIN_CONSISTENCY_STRIDES,
    STANCE_CONSISTENCY,
    STANCE_FRACTION_LIMITS,
    STEP_PHASE_LIMITS,
    STRIDE_RATIO_LIMIT,
)
from analytics.algorithms.thigh_events import MIN_SWING_PEAK_DPS


def test_swing_peaks_are_scipy_find_peaks_with_a_height() -> None:
    rng = np.random.default_rng(5)
    for trial in range(200):
        n = int(rng.integers(1, 800))
        x = np.cumsum(rng.normal(size=n)) * 10 + 100 * np.sin(np.arange(n) / rng.uniform(3, 30))
        if trial % 5 == 0:
            x = np.round(x, -1)  # plateaus, some of them at the height
        expected, _ = signal.find_peaks(x, height=MIN_SWING_PEAK_DPS)
        np.testing.assert_array_equal(thigh_events._peaks_above(x, MIN_SWING_PEAK_DPS), expected)


@pytest.mark.parametrize("n", [*range(1, 30), 100, 257])
def test_the_scan_in_python_floats_is_the_numpy_scan_to_the_bit(n: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(n)
    q = rng.normal(size=(4, n))
    q[:, 0] = (1.0, -0.0, 0.0, -0.0)  # signed zeros take the same sums
    fast = tilt._scan(q.copy())
    monkeypatch.setattr(tilt, "_SCAN_IN_PYTHON_UP_TO", 1)
    assert fast.tobytes() == tilt._scan(q.copy()).tobytes()


def test_swing_times_do_not_depend_on_which_candidates_are_timed() -> None:
    rng = np.random.default_rng(11)
    for _ in range(60):
        n = int(rng.integers(100, 900))
        w = np.cumsum(rng.normal(size=n)) * 20 + 120 * np.sin(np.arange(n) / rng.uniform(8, 20))
        full = thigh_events.swing_candidates(w, 100.0)
        for times_from in (-1, 0, int(rng.integers(0, n)), n):
            part = thigh_events.swing_candidates(w, 100.0, times_from=times_from)
            later = full.peak >= times_from
            for name in ("toe_off_s", "initial_contact_s", "swing_peak_s"):
                got, expected = getattr(part, name), getattr(full, name)
                assert got[later].tobytes() == expected[later].tobytes()
                assert np.isnan(got[~later]).all()
            for name in ("peak", "height", "lobe_start", "lobe_end", "excursion_ok", "swing"):
                np.testing.assert_array_equal(getattr(part, name), getattr(full, name))


def _problems_as_arrays(
    side: list[str],
    start: np.ndarray,
    end: np.ndarray,
    stance: np.ndarray,
    rhythm: np.ndarray,
    contacts: np.ndarray,
    contact_side: list[str],
) -> list[list[str]]:
    """The stride rules over arrays, as `stride_problems` states them."""
    n = start.size
    sides, csides = np.asarray(side), np.asarray(contact_side)
    stride = end - start
    degenerate = ~(stride > 0)
    stride = np.where(degenerate, np.nan, stride)
    fraction = stance / stride
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = stride / rhythm
    off_rhythm = np.isfinite(ratio) & (rhythm > 0) & ((ratio > STRIDE_RATIO_LIMIT) | (ratio < 1 / STRIDE_RATIO_LIMIT))
    count = np.zeros(n, dtype=np.int64)
    first = np.full(n, np.nan)
    for leg in ("left", "right"):
        mine = sides == leg
        other = np.sort(contacts[csides != leg])
        lo = np.searchsorted(other, start[mine], side="right")
        count[mine] = np.searchsorted(other, end[mine], side="left") - lo
        first[mine] = other[np.minimum(lo, other.size - 1)] if other.size else np.nan
    phase = (first - start) / stride
    not_alternating = count != 1
    uneven = ~not_alternating & ((phase < STEP_PHASE_LIMITS[0]) | (phase > STEP_PHASE_LIMITS[1]))
    implausible = (fraction < STANCE_FRACTION_LIMITS[0]) | (fraction > STANCE_FRACTION_LIMITS[1])
    broken = degenerate | off_rhythm | not_alternating | uneven | implausible
    inconsistent = np.zeros(n, dtype=bool)
    for leg in ("left", "right"):
        mine = (sides == leg) & ~broken
        if mine.sum() >= MIN_CONSISTENCY_STRIDES:
            inconsistent |= mine & (np.abs(fraction - np.median(fraction[mine])) > STANCE_CONSISTENCY)
    rules = (degenerate, off_rhythm, not_alternating, uneven, implausible, inconsistent)
    codes = list(stride_checks.STRIDE_FLAGS)[:6]
    return [[code for code, hit in zip(codes, rules, strict=True) if hit[k]] for k in range(n)]


def test_stride_rules_stride_by_stride_are_the_rules_over_arrays() -> None:
    assert list(stride_checks.STRIDE_FLAGS)[:6] == [
        "not_a_stride",
        "off_rhythm",
        "steps_not_alternating",
        "uneven_steps",
        "stance_implausible",
        "stance_inconsistent",
    ]
    rng = np.random.default_rng(2)
    seen: set[str] = set()
    for trial in range(1500):
        n = int(rng.integers(0, 14))
        t = np.cumsum(rng.uniform(0.3, 0.7, size=2 * n + 3)) + rng.normal(size=2 * n + 3) * (0.01, 0.2)[trial % 2]
        k = rng.integers(0, 2 * n + 1, size=n)
        start, end = t[k], t[k + 2] + rng.normal(size=n) * (0.0, 0.3)[trial % 3 == 0]
        stance = (end - start) * rng.uniform(0.4, 0.85, size=n)
        if trial % 13 == 0 and n:
            start[0] = end[0] = -0.0
        rhythm = rng.choice([0.0, -1.0, np.inf, np.nan, 1.1, float(np.median(end - start)) if n else 1.0], size=n)
        side = rng.choice(["left", "right", "x"] if trial % 11 == 0 else ["left", "right"], size=n).tolist()
        contact_side = rng.choice(["left", "right"], size=t.size).tolist()
        got = stride_checks.stride_problems(side, start, end, stance, rhythm, t, contact_side)
        assert got == _problems_as_arrays(side, start, end, stance, rhythm, t, contact_side)
        seen.update(code for codes in got for code in codes)
    assert "stance_inconsistent" in seen and "uneven_steps" in seen and "off_rhythm" in seen
