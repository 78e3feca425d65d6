"""The thigh left/right check (each thigh's own ICs against the pelvis yaw rate) on synthetic walks with known
timing and on the real lower-back recordings (reference ICs standing in for thigh ICs)."""

from __future__ import annotations

import numpy as np
import pytest
from gait_testlib import TRIALS, load_reference, load_trial

from analytics.algorithms.side_check import (
    MAX_P_VALUE,
    MIN_CONTACTS,
    check_thigh_sides,
    decide,
    ic_yaw_votes,
)
from analytics.errors import InsufficientData, InvalidSignal

FS = 100.0
STRIDE_S = 1.1
YAW_DEG = 4.0  # pelvic rotation amplitude (deg)


def _walk(
    n_strides: int = 30, yaw_timing: str = "measured", noise_dps: float = 3.0, turn_deg: float = 0.0, seed: int = 0
):
    """(pelvis yaw rate, {"left", "right"} thigh flexion velocities, walking mask); left IC at phase 0.

    Thigh flexion angle 20 cos(2 pi (p - 0.893)) deg (peak flexion at 89.3 % of the leg's cycle, the phase
    thigh_events uses), the right leg half a stride later. Pelvis yaw: "measured" = yaw RATE most negative at
    left IC (the real lower-back recordings), "textbook" = yaw ANGLE extreme at IC (rate crossing zero there).
    """
    t = np.arange(round((n_strides + 2) * STRIDE_S * FS)) / FS
    p_left = t / STRIDE_S
    w = 2 * np.pi / STRIDE_S
    flex = {
        side: -20.0 * np.degrees(w) * np.sin(2 * np.pi * (p - 0.893)) * np.pi / 180
        for side, p in (("left", p_left), ("right", p_left - 0.5))
    }
    amp = YAW_DEG * np.degrees(w) * np.pi / 180  # yaw rate amplitude, deg/s
    measured = yaw_timing == "measured"
    yaw = -amp * np.cos(2 * np.pi * p_left) if measured else amp * np.sin(2 * np.pi * p_left)
    # a turn of turn_deg over 2 s in the middle (raised-cosine rate profile)
    mid = t[-1] / 2
    inside = np.abs(t - mid) < 1.0
    yaw = yaw + np.where(inside, turn_deg / 2.0 * (1 + np.cos(np.pi * (t - mid))), 0.0)
    yaw = yaw + np.random.default_rng(seed).normal(0.0, noise_dps, t.size)
    return yaw, flex, np.ones(t.size, dtype=bool)


def test_correctly_named_thighs_are_confirmed():
    yaw, flex, walking = _walk()
    check = check_thigh_sides(yaw, flex, FS, walking)
    assert check.swapped is False
    assert check.score > 0.8 and check.agreement > 0.95 and check.n_contacts >= 50
    assert check.confidence > 1 - MAX_P_VALUE


def test_swapped_thighs_are_detected():
    yaw, flex, walking = _walk()
    check = check_thigh_sides(yaw, {"left": flex["right"], "right": flex["left"]}, FS, walking)
    assert check.swapped is True and check.score < -0.8 and check.agreement < 0.05


@pytest.mark.parametrize("side", ["left", "right"])
def test_one_thigh_on_either_side(side):
    yaw, flex, walking = _walk()
    other = "right" if side == "left" else "left"
    assert check_thigh_sides(yaw, {side: flex[side]}, FS, walking).swapped is False
    assert check_thigh_sides(yaw, {side: flex[other]}, FS, walking).swapped is True


def test_turns_do_not_decide_the_sides():
    yaw, flex, walking = _walk(turn_deg=180.0)
    assert check_thigh_sides(yaw, flex, FS, walking).swapped is False
    assert check_thigh_sides(yaw, {"left": flex["right"], "right": flex["left"]}, FS, walking).swapped is True


def test_textbook_pelvis_is_not_called_swapped():
    """A pelvis whose yaw ANGLE peaks at IC gives no rate cue at IC: the check must withhold, not accuse."""
    yaw, flex, walking = _walk(yaw_timing="textbook")
    for names in (flex, {"left": flex["right"], "right": flex["left"]}):
        check = check_thigh_sides(yaw, names, FS, walking)
        assert check.swapped is None, check


def test_unrelated_yaw_cannot_tell():
    yaw, flex, walking = _walk()
    t = np.arange(yaw.size) / FS
    check = check_thigh_sides(20.0 * np.sin(2 * np.pi * 0.37 * t), flex, FS, walking)
    assert check.swapped is None
    noise = np.random.default_rng(1).normal(0.0, 20.0, yaw.size)
    assert check_thigh_sides(noise, flex, FS, walking).swapped is None


def test_noisy_yaw_degrades_to_cannot_tell_not_to_swapped():
    for seed in range(5):
        yaw, flex, walking = _walk(noise_dps=150.0, seed=seed)  # white noise, ~20 deg/s in the stride band
        assert check_thigh_sides(yaw, flex, FS, walking).swapped in (False, None)


def test_decision_needs_enough_agreeing_contacts():
    agree_18_of_20 = np.r_[np.ones(18), -np.ones(2)]
    assert decide(agree_18_of_20).swapped is False
    assert decide(-agree_18_of_20).swapped is True
    assert decide(np.r_[np.ones(17), -np.ones(3)]).swapped is None  # p = 0.0013
    assert decide(np.r_[np.full(20, 0.4)]).swapped is None  # consistent but small: phase ~66 deg off
    assert decide(np.ones(MIN_CONTACTS - 1)).swapped is None
    empty = decide(np.zeros(0))
    assert empty.swapped is None and empty.n_contacts == 0


def test_bad_input_is_rejected():
    yaw, flex, walking = _walk(n_strides=10)
    with pytest.raises(InvalidSignal, match="left"):
        check_thigh_sides(yaw, {"middle": flex["left"]}, FS, walking)
    with pytest.raises(InvalidSignal, match="differ"):
        check_thigh_sides(yaw, {"left": flex["left"][:-1]}, FS, walking)
    with pytest.raises(InsufficientData, match="4 s"):
        check_thigh_sides(yaw, flex, FS, np.zeros(yaw.size, dtype=bool))
    with pytest.raises(InvalidSignal, match="initial_contacts_s"):
        ic_yaw_votes(yaw, FS, {"up": np.zeros(1)})


def _real_votes(system: str, shift_s: float, exchanged: bool) -> np.ndarray:
    votes = []
    for trial in TRIALS:
        acc, gyr, fs = load_trial(trial)
        ref = load_reference(trial, system)
        walking = np.zeros(acc.shape[0], dtype=bool)
        for b in ref["walking_bouts"]:
            walking[max(0, round((b["start_s"] - 1.5) * fs)) : round((b["end_s"] + 1.5) * fs) + 1] = True
        up = np.median(acc[walking], axis=0)
        up /= np.linalg.norm(up)
        ics = {
            side: [c["t_s"] + shift_s for c in ref["initial_contacts"] if c["side"] == side]
            for side in ("left", "right")
        }
        if exchanged:
            ics = {"left": ics["right"], "right": ics["left"]}
        votes.append(ic_yaw_votes(gyr @ up, fs, {k: np.array(v) for k, v in ics.items()}, walking))
    return np.concatenate(votes)


@pytest.mark.parametrize("system", ["stereophoto", "indip"])
@pytest.mark.parametrize("shift_s", [-0.1, 0.0, 0.1])
def test_real_lower_back_yaw_rate_names_the_ic_side(system, shift_s):
    """Reference ICs (sides known) of the real recordings, moved by a thigh detector's plausible timing error."""
    named = decide(_real_votes(system, shift_s, exchanged=False))
    assert named.swapped is False and named.agreement >= 0.85 and named.n_contacts >= 50
    exchanged = decide(_real_votes(system, shift_s, exchanged=True))
    assert exchanged.swapped is True
