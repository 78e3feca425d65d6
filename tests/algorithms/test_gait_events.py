"""Gait events on synthetic walking with analytic answers, and bad input."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from gait_testlib import FC_DELAY_S, make_walk, mirror

from analytics.algorithms.gait_events import GaitEvents, detect_gait_events
from analytics.errors import AnalyticsError, InsufficientData, InvalidSignal

STEP_S = 0.55


def _ic(ev: GaitEvents) -> tuple[np.ndarray, list[str]]:
    return np.array([e.t_s for e in ev.initial_contacts]), [e.side for e in ev.initial_contacts]


@pytest.mark.parametrize("seed", [None, 0, 1, 2, 3])
def test_synthetic_contacts_sides_and_stance_in_any_orientation(seed: int | None) -> None:
    walk = make_walk(step_s=STEP_S, rotation_seed=seed)
    ev = detect_gait_events(walk.acc_mps2, walk.gyr_dps, 100.0)
    t, sides = _ic(ev)
    assert t.shape == walk.ic_t_s.shape
    assert np.abs(t - walk.ic_t_s).max() <= 0.0101  # one sample
    assert sides == ["left" if x else "right" for x in walk.ic_left]
    fc_t = np.array([e.t_s for e in ev.final_contacts])
    assert np.abs(fc_t - walk.fc_t_s).max() <= 0.015
    assert [e.side for e in ev.final_contacts] == ["right" if x else "left" for x in walk.ic_left]
    # stance = IC to the same foot's FC, which follows the contralateral IC: step + FC delay
    assert len(ev.strides) == t.size - 2
    for s in ev.strides:
        assert s.stride_time_s == pytest.approx(2 * STEP_S, abs=0.011)
        # FC lands ~10 ms late here: the loading bump's tail still falls at the unloading dip
        assert s.stance_time_s == pytest.approx(STEP_S + FC_DELAY_S, abs=0.025)
        assert s.swing_time_s == pytest.approx(STEP_S - FC_DELAY_S, abs=0.025)
    assert [s.side for s in ev.strides[:2]] == ["left", "right"]
    assert ev.side_confidence > 0.9
    assert ev.axes is not None and ev.axes.confidence > 0.8


def test_two_bouts_separated_by_standing() -> None:
    walk = make_walk(bouts=[(3.0, 10), (14.0, 12)], rotation_seed=5)
    ev = detect_gait_events(walk.acc_mps2, walk.gyr_dps, 100.0)
    assert len(ev.walking_bouts) == 2
    for bout, (start, end) in zip(ev.walking_bouts, walk.bouts, strict=True):
        assert bout.start_s == pytest.approx(start, abs=0.011)
        assert bout.end_s == pytest.approx(end, abs=0.011)
    assert [b.n_steps for b in ev.walking_bouts] == [10, 12]
    # no stride spans the pause
    assert all(s.end_s < 9.0 or s.start_s > 13.0 for s in ev.strides)


@pytest.mark.parametrize("step_s", [0.45, 0.7, 0.9])
def test_cadence_range(step_s: float) -> None:
    """Fast (133 steps/min) to slow (67 steps/min) walking."""
    walk = make_walk(bouts=[(3.0, 12)], step_s=step_s, rotation_seed=9)
    ev = detect_gait_events(walk.acc_mps2, walk.gyr_dps, 100.0)
    t, sides = _ic(ev)
    assert t.shape == walk.ic_t_s.shape
    assert np.abs(t - walk.ic_t_s).max() <= 0.0101
    assert sides == ["left" if x else "right" for x in walk.ic_left]


def test_mirrored_walker_swaps_sides() -> None:
    walk = make_walk(rotation_seed=4)
    ev = detect_gait_events(walk.acc_mps2, walk.gyr_dps, 100.0)
    m_acc, m_gyr = mirror(walk.acc_mps2, walk.gyr_dps, axis=0)
    mirrored = detect_gait_events(m_acc, m_gyr, 100.0)
    t, sides = _ic(ev)
    mt, msides = _ic(mirrored)
    assert np.allclose(t, mt)
    assert msides == ["right" if s == "left" else "left" for s in sides]


def test_standing_only_gives_no_events() -> None:
    rng = np.random.default_rng(1)
    acc = np.array([0.3, -9.7, 1.2]) + rng.normal(0, 0.05, (3000, 3))
    gyr = rng.normal(0, 0.5, (3000, 3))
    ev = detect_gait_events(acc, gyr, 100.0)
    assert ev.walking_bouts == () and ev.initial_contacts == () and ev.strides == ()
    assert ev.axes is None and ev.side_confidence == 0.0


def test_results_are_frozen() -> None:
    walk = make_walk()
    ev = detect_gait_events(walk.acc_mps2, walk.gyr_dps, 100.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ev.initial_contacts[0].side = "right"  # type: ignore[misc]


def test_other_sampling_rate() -> None:
    """The same walk at 200 Hz (constants are in seconds and Hz, not samples)."""
    walk = make_walk(rotation_seed=2)
    t100 = np.arange(walk.acc_mps2.shape[0]) / 100.0
    t200 = np.arange(2 * walk.acc_mps2.shape[0] - 1) / 200.0
    acc = np.column_stack([np.interp(t200, t100, walk.acc_mps2[:, k]) for k in range(3)])
    gyr = np.column_stack([np.interp(t200, t100, walk.gyr_dps[:, k]) for k in range(3)])
    t, sides = _ic(detect_gait_events(acc, gyr, 200.0))
    assert t.shape == walk.ic_t_s.shape
    assert np.abs(t - walk.ic_t_s).max() <= 0.011
    assert sides == ["left" if x else "right" for x in walk.ic_left]


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (lambda a, g, f: (a, g, 0.0), InvalidSignal, "sampling_rate_hz must be finite and positive"),
        (lambda a, g, f: (a, g, -100.0), InvalidSignal, "sampling_rate_hz must be finite and positive"),
        (lambda a, g, f: (a, g, float("nan")), InvalidSignal, "sampling_rate_hz must be finite and positive"),
        (lambda a, g, f: (a, g, True), InvalidSignal, "sampling_rate_hz must be a number"),
        (lambda a, g, f: (a, g, "100"), InvalidSignal, "sampling_rate_hz must be a number"),
        (lambda a, g, f: (a[:, :2], g, f), InvalidSignal, r"acc_mps2 must have shape \(n, 3\)"),
        (lambda a, g, f: (a, g.T, f), InvalidSignal, r"gyr_dps must have shape \(n, 3\)"),
        (lambda a, g, f: (a[:, 0], g, f), InvalidSignal, r"acc_mps2 must have shape \(n, 3\)"),
        (lambda a, g, f: (a, g[:-1], f), InvalidSignal, "same number of samples"),
        (
            lambda a, g, f: (np.where(np.arange(a.shape[0])[:, None] == 7, np.nan, a), g, f),
            InvalidSignal,
            "acc_mps2 has a NaN or infinite value at sample 7",
        ),
        (
            lambda a, g, f: (a, np.where(np.arange(g.shape[0])[:, None] == 9, np.inf, g), f),
            InvalidSignal,
            "gyr_dps has a NaN or infinite value at sample 9",
        ),
        (lambda a, g, f: (a.astype(str).astype(object) + "x", g, f), InvalidSignal, "acc_mps2 must be a numeric"),
        (lambda a, g, f: (a[:150], g[:150], f), InsufficientData, "too short"),
    ],
)
def test_bad_input_raises_typed_errors(change, error, message) -> None:
    walk = make_walk()
    acc, gyr, fs = change(walk.acc_mps2, walk.gyr_dps, 100.0)
    with pytest.raises(error, match=message) as info:
        detect_gait_events(acc, gyr, fs)
    assert isinstance(info.value, AnalyticsError)
