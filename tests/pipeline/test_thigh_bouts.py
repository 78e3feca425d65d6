"""Thigh bouts with the pelvis's stand-ins (analytics.pipeline.events._thigh_bouts): where a bout breaks, and
which toe offs come with a stand-in."""

from __future__ import annotations

import numpy as np

from analytics.algorithms.thigh_events import ThighEvents
from analytics.pipeline.events import MAX_STEP_S, _thigh_bouts


def _legs(contacts: list[tuple[float, str]], stance_share: float = 0.62) -> dict[str, ThighEvents]:
    """Each leg's swings ending at its ``contacts``: toe off at the stance's end after the leg's previous contact
    (a leg's first swing starts one stride before its first contact)."""
    out = {}
    for side in ("left", "right"):
        ic = np.array(sorted(t for t, s in contacts if s == side))
        stride = float(np.median(np.diff(ic)))
        previous = np.concatenate([[ic[0] - stride], ic[:-1]])
        to = previous + stance_share * stride
        out[side] = ThighEvents(to, ic, 0.5 * (to + ic))
    return out


def _walk(step_s: float, n: int) -> list[tuple[float, str]]:
    return [(round(k * step_s, 6), "left" if k % 2 == 0 else "right") for k in range(n)]


def test_a_stand_in_in_the_gap_a_lost_contact_left_does_not_join_two_bouts():
    # 75 steps/min: two steps (1.6 s) are longer than MAX_STEP_S, so the lost contact splits the walk; the bouts'
    # extents are the thighs', and the pelvis's contact in the gap belongs to neither (docs/thigh_events.md, Limits)
    step = 60.0 / 75.0
    assert 2 * step > MAX_STEP_S
    walk = _walk(step, 14)
    lost = walk[7]
    thighs = _legs([c for c in walk if c != lost])
    bouts = _thigh_bouts(thighs, -1.0, 20.0, [(lost[0] + 0.03, lost[1], lost[0] - 0.5)])
    assert [(b[0], b[1]) for b in bouts] == [(walk[0][0], walk[6][0]), (walk[8][0], walk[-1][0])]
    for _, _, (ics, fcs) in bouts:
        assert not [c for c in ics if c.get("source") == "pelvis"]
        assert lost[0] - 0.5 not in [c["t_s"] for c in fcs]


def test_a_stand_in_inside_a_bout_joins_it():
    step = 60.0 / 100.0  # two steps (1.2 s) within MAX_STEP_S: the lost contact leaves the bout whole
    walk = _walk(step, 14)
    lost = walk[7]
    thighs = _legs([c for c in walk if c != lost])
    (bout,) = _thigh_bouts(thighs, -1.0, 20.0, [(lost[0] + 0.03, lost[1], None)])
    start, end, (ics, _) = bout
    assert (start, end) == (walk[0][0], walk[-1][0])
    assert [c for c in ics if c.get("source") == "pelvis"] == [
        {"t_s": lost[0] + 0.03, "side": lost[1], "source": "pelvis"}
    ]
    assert len(ics) == len(walk)


def test_without_a_stand_in_the_slow_walk_breaks_where_the_contact_was_lost():
    step = 60.0 / 75.0
    walk = _walk(step, 14)
    thighs = _legs([c for c in walk if c != walk[7]])
    assert [(b[0], b[1]) for b in _thigh_bouts(thighs, -1.0, 20.0)] == [
        (walk[0][0], walk[6][0]),
        (walk[8][0], walk[-1][0]),
    ]


def test_a_stand_in_left_at_a_bouts_end_is_dropped_with_its_toe_off():
    # 50 steps/min: a stand-in 1.3 s after the bout's last thigh contact and 1.6 s before the next bout's first
    # belongs to neither bout (their extents are the thighs'); the toe off of its swing must not enter a bout
    first = _walk(1.2, 4)
    second = [(t + 6.5, s) for t, s in _walk(1.2, 4)]
    thighs = _legs(first + second)
    toe_off = first[-1][0] - 0.05
    bouts = _thigh_bouts(thighs, -2.0, 12.0, [(first[-1][0] + 1.3, "left", toe_off)])
    assert [(b[0], b[1]) for b in bouts] == [(first[0][0], first[-1][0]), (second[0][0], second[-1][0])]
    for _, _, (ics, fcs) in bouts:
        assert not [c for c in ics if c.get("source") == "pelvis"]
        assert toe_off not in [c["t_s"] for c in fcs]


def test_a_stand_in_kept_brings_its_toe_off():
    step = 60.0 / 100.0
    walk = _walk(step, 14)
    lost = walk[7]
    thighs = _legs([c for c in walk if c != lost])
    toe_off = lost[0] - 0.4 * 2 * step
    (bout,) = _thigh_bouts(thighs, -1.0, 20.0, [(lost[0], lost[1], toe_off)])
    assert {"t_s": toe_off, "side": lost[1]} in bout[2][1]
