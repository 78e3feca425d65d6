"""Pelvis contacts standing in for steps the thigh contacts miss (stride_checks.pelvis_stand_ins): only the step
the walking rhythm is missing, between two thigh contacts, on the foot that keeps the feet alternating."""

from __future__ import annotations

import pytest

from analytics.algorithms.stride_checks import confirm_contacts, pelvis_stand_ins
from analytics.errors import InvalidSignal

STEP = 0.7
"""Median step (s) of the walks below."""


def _thigh(n: int = 8, missing: tuple[int, ...] = ()) -> tuple[list[float], list[str]]:
    """Alternating contacts one step apart, left first, without the ones at the ``missing`` indices."""
    keep = [k for k in range(n) if k not in missing]
    return [k * STEP for k in keep], ["left" if k % 2 == 0 else "right" for k in keep]


def test_the_missing_step_of_a_gap_is_filled_by_the_pelvis():
    thigh, sides = _thigh(missing=(3,))  # a right contact the thighs lost: left, left around it
    kept = pelvis_stand_ins(thigh, sides, [3 * STEP + 0.12], ["right"], STEP)
    assert kept.tolist() == [True]


def test_two_missing_steps_are_filled_by_a_chain_that_alternates():
    thigh, sides = _thigh(missing=(3, 4))
    kept = pelvis_stand_ins(thigh, sides, [3 * STEP - 0.1, 4 * STEP + 0.1], ["right", "left"], STEP)
    assert kept.tolist() == [True, True]


def test_a_pelvis_double_count_between_alternating_thigh_contacts_is_never_taken():
    thigh, sides = _thigh()
    extra = [2 * STEP + 0.35, 2 * STEP + 0.35]
    assert not pelvis_stand_ins(thigh, sides, extra, ["left", "right"], STEP).any()


def test_a_pelvis_contact_on_the_wrong_foot_is_not_taken():
    thigh, sides = _thigh(missing=(3,))
    assert not pelvis_stand_ins(thigh, sides, [3 * STEP], ["left"], STEP).any()


def test_a_pelvis_contact_off_the_rhythm_is_not_taken():
    # 0.3 of a step after the left contact: a step a factor 3 short (sqrt(2) is the bound)
    thigh, sides = _thigh(missing=(3,))
    assert not pelvis_stand_ins(thigh, sides, [2 * STEP + 0.3 * STEP], ["right"], STEP).any()


def test_two_pelvis_contacts_that_fit_one_step_equally_are_both_refused():
    thigh, sides = _thigh(missing=(3,))
    both = [3 * STEP - 0.1, 3 * STEP + 0.1]
    assert not pelvis_stand_ins(thigh, sides, both, ["right", "right"], STEP).any()


def test_nothing_is_added_before_the_first_or_after_the_last_thigh_contact():
    thigh, sides = _thigh(n=6)
    outside = [-STEP, 6 * STEP]
    assert not pelvis_stand_ins(thigh, sides, outside, ["right", "left"], STEP).any()
    assert pelvis_stand_ins([], [], outside, ["right", "left"], STEP).tolist() == [False, False]


def test_bad_input_is_refused_with_what_was_wrong():
    with pytest.raises(InvalidSignal, match="one entry per contact"):
        pelvis_stand_ins([0.0, 0.7], ["left"], [0.3], ["right"], STEP)
    with pytest.raises(InvalidSignal, match="step_s"):
        pelvis_stand_ins([0.0, 1.4], ["left", "left"], [0.7], ["right"], 0.0)
    with pytest.raises(InvalidSignal, match="NaN"):
        pelvis_stand_ins([0.0, 1.4], ["left", "left"], [float("nan")], ["right"], STEP)


@pytest.mark.parametrize(
    ("thigh_side", "pelvis_side", "field"),
    [(["left", "left"], ["banana"], "pelvis_side"), (["L", "left"], ["right"], "thigh_side")],
)
def test_a_side_that_is_not_left_or_right_is_refused_by_name(thigh_side, pelvis_side, field):
    with pytest.raises(InvalidSignal, match=f"{field}.*'left' or 'right'"):
        pelvis_stand_ins([0.0, 1.4], thigh_side, [0.7], pelvis_side, STEP)


@pytest.mark.parametrize("step", ["0.7", True, None, float("inf"), -0.7])
def test_a_step_that_is_not_a_positive_number_is_refused_by_name(step):
    with pytest.raises(InvalidSignal, match="step_s"):
        pelvis_stand_ins([0.0, 1.4], ["left", "left"], [0.7], ["right"], step)
    with pytest.raises(InvalidSignal, match="step_s"):
        confirm_contacts([0.0, 1.4], [0.7], step)
