"""Stride plausibility, thigh contacts confirmed by the pelvis, and the asymmetry gate, on contact sequences
with known answers: a steady walk, a duplicate contact in a stance, a missed contact, a pivot turn."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analytics.algorithms.stride_checks import (
    MIN_STRIDES_PER_SIDE,
    PELVIS_SIDE_TIMING_ERROR_S,
    SIDE_TIMING_ERROR_FLOOR_S,
    WITHHELD_SOURCES_DISAGREE,
    WITHHELD_TOO_FEW_STRIDES,
    asymmetry_verdict,
    bout_rhythm_s,
    confirm_contacts,
    event_timing_pp,
    honest_si_interval,
    median_step_s,
    stride_problems,
    uneven_scatter_pp,
)
from analytics.errors import InvalidSignal

STRIDE_S = 1.2
STANCE_S = 0.72  # 60 % of the cycle


def _walk(n_strides: int = 8):
    """Alternating contacts (left first) of a steady walk: times, sides."""
    t = np.arange(2 * n_strides + 1) * STRIDE_S / 2
    sides = ["left" if i % 2 == 0 else "right" for i in range(t.size)]
    return t, sides


def _strides(contacts: np.ndarray, sides: list[str], stance: dict[float, float] | None = None):
    """Same-side IC-to-IC strides of a contact sequence, stance STANCE_S unless given per start time."""
    rows = []
    for i, (t, side) in enumerate(zip(contacts, sides, strict=True)):
        nxt = [u for u, s in zip(contacts[i + 1 :], sides[i + 1 :], strict=True) if s == side]
        if nxt:
            rows.append((side, float(t), float(nxt[0]), (stance or {}).get(float(t), STANCE_S)))
    return rows


def _problems(rows, contacts, sides, rhythm=STRIDE_S):
    return stride_problems(
        [r[0] for r in rows],
        [r[1] for r in rows],
        [r[2] for r in rows],
        [r[3] for r in rows],
        [rhythm] * len(rows),
        contacts,
        sides,
    )


def test_a_steady_walk_breaks_no_rule():
    t, sides = _walk()
    rows = _strides(t, sides)
    assert _problems(rows, t, sides) == [[] for _ in rows]


def test_a_duplicate_contact_in_a_stance_is_caught():
    # a second left contact 100 ms after a real one (the impact ringing of a thigh sensor on a real slow walker)
    t, sides = _walk()
    t_dup = np.insert(t, 5, t[4] + 0.10)
    sides_dup = [*sides[:5], "left", *sides[5:]]
    rows = _strides(t_dup, sides_dup, stance={float(t[4]): 0.03})
    problems = dict(zip([(r[0], r[1]) for r in rows], _problems(rows, t_dup, sides_dup), strict=True))
    short = problems[("left", float(t[4]))]  # a 100 ms "stride" with a 30 ms stance (real: 0.02-0.07 s)
    assert {"off_rhythm", "steps_not_alternating", "stance_implausible"} <= set(short)
    assert problems[("right", float(t[3]))] == ["steps_not_alternating"]  # two left contacts inside it
    # from the duplicate to the next left contact is a stride shifted by 100 ms: plausible, kept
    assert problems[("left", float(t[4] + 0.10))] == []


def test_a_missed_contact_doubles_a_stride_and_is_caught():
    t, sides = _walk()
    keep = np.ones(t.size, dtype=bool)
    keep[6] = False  # a left contact the detector missed
    t2, s2 = t[keep], [s for s, k in zip(sides, keep, strict=True) if k]
    rows = _strides(t2, s2, stance={float(t[4]): STANCE_S})
    problems = dict(zip([(r[0], r[1]) for r in rows], _problems(rows, t2, s2), strict=True))
    assert {"off_rhythm", "steps_not_alternating", "stance_implausible"} <= set(problems[("left", float(t[4]))])


def test_a_pivot_turn_stance_is_not_summarised():
    # optical capture on a real daily-living trial: a right stance of 2.03 s in a 2.9 s stride while turning
    t, sides = _walk(10)
    turn_start = float(t[9])
    rows = [r if r[1] != turn_start else (r[0], r[1], r[1] + 2.9, 2.03) for r in _strides(t, sides)]
    problems = dict(zip([(r[0], r[1]) for r in rows], _problems(rows, t, sides), strict=True))
    assert "off_rhythm" in problems[("right", turn_start)]


def test_an_inconsistent_stance_is_caught_against_the_same_legs_median():
    t, sides = _walk(10)
    odd = float(t[8])  # a left stride with 75 % stance among 60 % ones: plausible alone, not for this leg
    rows = _strides(t, sides, stance={odd: 0.90})
    problems = dict(zip([(r[0], r[1]) for r in rows], _problems(rows, t, sides), strict=True))
    assert problems[("left", odd)] == ["stance_inconsistent"]
    assert sum(bool(p) for p in problems.values()) == 1


def test_rhythm_rule_is_skipped_without_a_rhythm():
    t, sides = _walk()
    rows = _strides(t, sides)
    assert _problems(rows, t, sides, rhythm=float("nan")) == [[] for _ in rows]
    assert np.isnan(bout_rhythm_s([1.1, 1.2]))
    assert bout_rhythm_s([1.1, 1.2, 5.0]) == pytest.approx(1.2)


def test_each_pelvis_contact_confirms_one_thigh_contact_the_nearest():
    pelvis = np.array([1.00, 1.60, 2.20, 2.80])
    thigh = np.array([0.98, 1.08, 1.62, 2.45, 2.79])  # 1.08: a second contact of the first step; 2.45: no step
    step = median_step_s(pelvis)
    assert step == pytest.approx(0.6)
    assert confirm_contacts(thigh, pelvis, step).tolist() == [True, False, True, False, True]
    # the duplicate nearer to the pelvis contact wins, whichever comes first
    assert confirm_contacts([0.90, 1.03], [1.0], 0.6).tolist() == [False, True]
    assert confirm_contacts([], pelvis, step).tolist() == []
    assert confirm_contacts(thigh, [], step).tolist() == [False] * 5


def test_long_bouts_are_confirmed_without_a_contacts_squared_matrix():
    pelvis = np.arange(20_000) * 0.55
    thigh = pelvis + 0.03
    assert confirm_contacts(thigh, pelvis, 0.55).all()


@pytest.mark.parametrize(
    ("n_left", "n_right", "si", "cross", "expected"),
    [
        (MIN_STRIDES_PER_SIDE, MIN_STRIDES_PER_SIDE, 4.0, 8.0, None),
        (MIN_STRIDES_PER_SIDE - 1, 40, 4.0, 4.0, WITHHELD_TOO_FEW_STRIDES),
        (40, 40, -78.0, -3.0, WITHHELD_SOURCES_DISAGREE),
        (40, 40, 4.0, None, None),  # no second source: nothing to disagree with
        (40, 40, None, 3.0, None),
    ],
)
def test_asymmetry_verdict(n_left, n_right, si, cross, expected):
    assert asymmetry_verdict(n_left, n_right, si, cross) == expected


def test_bad_input_is_refused_with_a_typed_error():
    with pytest.raises(InvalidSignal, match="one entry per stride"):
        stride_problems(["left"], [0.0, 1.0], [1.0], [0.6], [1.0], [0.0], ["left"])
    with pytest.raises(InvalidSignal, match="NaN"):
        confirm_contacts([np.nan], [1.0], 0.6)
    with pytest.raises(InvalidSignal, match="step_s"):
        confirm_contacts([1.0], [1.0], 0.0)
    with pytest.raises(InvalidSignal, match="contact_side"):
        stride_problems(["left"], [0.0], [1.0], [0.6], [1.0], [0.0, 0.5], ["left"])


def test_a_stride_that_does_not_end_after_it_starts_is_flagged_not_refused():
    """Two contacts of one foot at one time make a zero-length stride: flagged and never summarised, while the
    session's other strides keep their verdicts (refusing the input would leave the session without results)."""
    problems = stride_problems(
        ["left", "left", "right"],
        [0.0, 1.0, 0.5],
        [1.0, 1.0, 1.5],
        [0.6, 0.6, 0.6],
        [1.0, 1.0, 1.0],
        [0.0, 0.5, 1.0, 1.5],
        ["left", "right", "left", "right"],
    )
    assert "not_a_stride" in problems[1]
    assert "not_a_stride" not in problems[0] and "not_a_stride" not in problems[2]


def test_the_interval_shown_adds_event_timing_to_the_bootstrap():
    # the bootstrap over strides cannot see an error every stride of a side shares; with a 0.8 s stance the
    # pelvis-alone side term is 1.96 x 100 x 0.025 / 0.8 = 6.1 pp, the cross-checked floor 1.5 pp
    alone = event_timing_pp(0.0, 0.8, cross_checked=False)
    checked = event_timing_pp(0.0, 0.8, cross_checked=True)
    assert alone == pytest.approx(1.96 * 100 * PELVIS_SIDE_TIMING_ERROR_S / 0.8)
    assert checked == pytest.approx(1.96 * 100 * SIDE_TIMING_ERROR_FLOOR_S / 0.8)
    # the two sources' own disagreement counts where there is a cross-check; a common error scales with the SI
    assert event_timing_pp(0.0, 0.8, cross_checked=True, cross_check_pp=4.0) == pytest.approx(math.hypot(checked, 4.0))
    assert event_timing_pp(10.0, 0.8, cross_checked=True) > checked
    lo, hi = honest_si_interval(5.0, [4.5, 5.6], alone)
    assert lo == pytest.approx(5.0 - math.hypot(0.5, alone)) and hi == pytest.approx(5.0 + math.hypot(0.6, alone))
    # a percentile interval that misses its own estimate never shrinks
    assert honest_si_interval(5.0, [5.2, 6.0], 0.0) == [5.0, 6.0]
    with pytest.raises(InvalidSignal):
        honest_si_interval(5.0, [6.0, 4.0], 1.0)
    with pytest.raises(InvalidSignal):
        event_timing_pp(5.0, 0.0, cross_checked=False)


def test_one_leg_scattering_over_two_toe_off_cues_widens_the_interval():
    rng = np.random.default_rng(1)
    tight = 0.64 + 0.005 * rng.standard_normal(40)
    two_cues = np.where(np.arange(40) % 3 == 0, 0.56, 0.63) + 0.005 * rng.standard_normal(40)
    assert uneven_scatter_pp(tight, tight + 0.001, 1.4, 0.9) < 0.5
    assert uneven_scatter_pp(tight, two_cues, 1.4, 0.9) > 5.0  # 0.07 of a 1.4 s stride, a third of the strides
    assert uneven_scatter_pp(tight[:4], two_cues[:4], 1.4, 0.9) == 0.0  # too few strides to judge


@pytest.mark.parametrize(
    ("side", "rhythm", "contact_side", "what"),
    [
        (["left"], np.array([[1.1]]), ["left"], "rhythm_stride_s must be a 1-D array"),
        (["left", "left"], np.array([[1.1], [1.1]]), ["left"], "rhythm_stride_s must be a 1-D array"),
        ([["left"]], [1.1], ["left"], "side and contact_side must be one"),
        (["left"], [1.1], [["left"]], "side and contact_side must be one"),
        (["left"], ["fast"], ["left"], "rhythm_stride_s must be numbers"),
    ],
)
def test_strides_of_the_wrong_shape_are_refused_by_name(
    side: object, rhythm: object, contact_side: object, what: str
) -> None:
    n = len(side)  # type: ignore[arg-type]
    with pytest.raises(InvalidSignal, match=what):
        stride_problems(side, [0.0] * n, [1.1] * n, [0.7] * n, rhythm, [0.5], contact_side)  # type: ignore[arg-type]
