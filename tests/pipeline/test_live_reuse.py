"""What a live window reuses instead of analysing again (`analytics.pipeline.live`), and the cheaper forms of the
pipeline's rules it runs, each against the rule it stands for: the same answers, counted work, never timed."""

from __future__ import annotations

import numpy as np
import pytest
from analysis_testlib import live_stream

from analytics.algorithms.gait_events import BOUT_MARGIN_S, MAX_STEP_S, candidate_walking_s, detect_gait_events
from analytics.algorithms.pelvic_obliquity import WALK_MARGIN_S
from analytics.algorithms.signal_quality import stream_quality, stream_quality_side_by_side
from analytics.algorithms.thigh_events import MAX_SWING_S, detect_thigh_events, select_swings, swing_candidates
from analytics.pipeline.live import LiveGait, LiveSettings
from analytics.pipeline.live_thighs import THIGH_BACK_S, THIGH_EDGE_S, ThighTrack
from analytics.pipeline.thighs import analyze_thighs
from analytics.recording.io import Recording
from simulator.session import simulate_session

FS = 100.0


@pytest.fixture(scope="module")
def walk() -> Recording:
    return simulate_session(seed=5, minutes=2.0, script="walk").recording


@pytest.fixture(scope="module")
def flexion(walk: Recording) -> np.ndarray:
    """The left thigh's flexion velocity about the axis the final analysis finds."""
    from analytics.pipeline.pelvis import analyze_pelvis
    from analytics.pipeline.result import Flags
    from analytics.pipeline.streams import check_streams

    flags = Flags()
    streams = check_streams(walk, FS, flags)
    thighs = analyze_thighs(walk, FS, streams, analyze_pelvis(walk, FS, streams, flags, []), flags)
    axis = np.asarray(thighs.alignment["left_thigh"]["flexion_axis"])
    return np.asarray(walk.sensors["left_thigh"].gyr_dps @ axis)


def test_the_thigh_contacts_are_the_selection_of_the_swing_candidates(flexion: np.ndarray) -> None:
    """`detect_thigh_events` is `select_swings` of `swing_candidates`, whatever the walking mask (a mask that
    removes a swing's louder neighbour lets the swing through, as before)."""
    rng = np.random.default_rng(2)
    for _ in range(30):
        a = int(rng.integers(0, flexion.size - 600))
        w = flexion[a : a + int(rng.integers(300, 3000))]
        mask = rng.random(w.size) < 0.7
        c = swing_candidates(w, FS)
        for m in (None, mask):
            want = detect_thigh_events(w, FS, m)
            got = select_swings(c, FS, None if m is None else m[c.peak])
            assert np.array_equal(want.initial_contact_s, got.initial_contact_s)
            assert np.array_equal(want.toe_off_s, got.toe_off_s)
            assert np.array_equal(want.swing_peak_s, got.swing_peak_s)


@pytest.mark.parametrize("chunk", [7, 33, 100, 250])
def test_a_thigh_track_fed_in_pieces_finds_the_contacts_of_the_whole_stretch(flexion: np.ndarray, chunk: int) -> None:
    """Each piece filters only the new samples plus `THIGH_BACK_S` and the unsettled swings (at most
    `MAX_SWING_S` + `THIGH_EDGE_S` of them), and the contacts it keeps are those of the whole stretch filtered at
    once, to a microsecond, however the samples came."""
    gyr = np.zeros((flexion.size, 3))
    gyr[:, 0] = flexion
    axis = np.array([1.0, 0.0, 0.0])
    begin, stop = 500, 6500
    track = ThighTrack(axis, begin)
    bound = round((THIGH_BACK_S + MAX_SWING_S + THIGH_EDGE_S) * FS) + 1
    for end in range(begin + chunk, stop + 1, chunk):
        before = track.end
        filtered = track.update(lambda a, b: gyr[a:b], 0, end, FS)
        if before > begin:
            assert filtered <= end - before + bound
    whole = detect_thigh_events(flexion[begin : track.end], FS)
    mine = track.events(begin, track.end, FS)
    assert whole.initial_contact_s.size > 30
    assert mine.initial_contact_s.shape == whole.initial_contact_s.shape
    assert np.abs(mine.initial_contact_s - whole.initial_contact_s).max() < 1e-6
    assert np.abs(mine.toe_off_s - whole.toe_off_s).max() < 1e-6
    # a window starting later gets the same swings with their lobes whole: those of a stretch cut at its start,
    # except the swing the cut went through
    start = 3017
    late = detect_thigh_events(flexion[start : track.end], FS).initial_contact_s
    kept = track.events(start, track.end, FS).initial_contact_s
    assert np.abs(kept[-late.size + 1 :] - late[1:]).max() < 1e-6


def test_the_stream_checks_side_by_side_are_those_of_each_sensor() -> None:
    """One pass over several sensors' channels finds each sensor's saturated and stuck samples exactly as
    `stream_quality` of that sensor alone."""
    rng = np.random.default_rng(4)
    for t in range(200):
        n, k = int(rng.integers(1, 500)), int(rng.integers(1, 4))
        x = np.round(rng.normal(size=(n, 6 * k)) * 3, 0 if t % 2 else 6)
        if n > 80 and t % 3 == 0:  # a sensor dropped out: its last sample repeated
            a = int(rng.integers(0, n - 70))
            x[a : a + 60, :6] = x[a, :6]
        if n > 10 and t % 5 == 0:  # a channel at full scale
            c, a = int(rng.integers(0, 6 * k)), int(rng.integers(0, n - 5))
            x[a : a + 4, c] = 90.0
        if t % 7 == 0:
            x[:, 2] = 0.0  # a channel that never moves
        for j, got in enumerate(stream_quality_side_by_side(x, FS)):
            want = stream_quality(x[:, 6 * j : 6 * j + 3], x[:, 6 * j + 3 : 6 * j + 6], FS)
            assert np.array_equal(got.saturated, want.saturated) and np.array_equal(got.stuck, want.stuck), (t, j)


def test_the_first_pass_rules_out_only_spans_the_detector_finds_too_little_walking_in() -> None:
    """The session estimates skip an instant on the pelvis detector's first pass alone only when the detector
    itself would find less walking there than they need: the same instants kept, on a session with standing,
    walking bouts and exercises."""
    rec = simulate_session(seed=2, minutes=12.0, script="home").recording
    p = rec.sensors["pelvis"]
    need = LiveSettings().min_walking_s
    allowance = 2 * (WALK_MARGIN_S - BOUT_MARGIN_S) + MAX_STEP_S + 1.0
    ruled_out = kept = 0
    for at in range(3000, rec.n_samples, 700):
        acc, gyr = p.acc_mps2[at - 3000 : at], p.gyr_dps[at - 3000 : at]
        kept_s, bouts = candidate_walking_s(acc, FS)
        events = detect_gait_events(acc, gyr, FS)
        walking = np.zeros(3000, dtype=bool)
        margin = round(WALK_MARGIN_S * FS)
        for b in events.walking_bouts:
            walking[max(0, round(b.start_s * FS) - margin) : round(b.end_s * FS) + margin + 1] = True
        if kept_s + bouts * allowance < need:
            ruled_out += 1
            assert walking.sum() < need * FS, at
        else:
            kept += 1
    assert ruled_out > 5 and kept > 5


def test_a_window_filters_each_thigh_sample_about_once_not_its_whole_span(walk: Recording) -> None:
    """Per step, each thigh's contact rule filters the new samples plus a bounded look-back (`THIGH_BACK_S`, the
    unsettled swings' `MAX_SWING_S` and the filter's `THIGH_EDGE_S`): the readiness check and the window share it,
    and neither filters the window's whole span again (before, ~5x the new samples per thigh). Only a step whose
    estimates are new (another flexion axis) starts the thighs over from its window."""
    settings = LiveSettings()
    gait = LiveGait(tuple(walk.sensors), FS, settings)
    live, deltas = live_stream(walk, gait, 0.5)
    bound = round((THIGH_BACK_S + MAX_SWING_S + THIGH_EDGE_S) * FS) + 1
    thighs, established, checked = 2, False, 0
    for d in deltas:
        if d["estimates"] or not established:
            established = established or d["strides_out"] > 0
            continue
        assert d["samples_thigh"] <= thighs * (d["new"] + bound), d
        checked += d["windows"]
    assert checked > 80 and len(live) > 100
    c = gait.counters
    # under half of what filtering each thigh over every window's span and every readiness check's look-back
    # would cost (how the windows found the contacts before)
    assert c.samples_thigh < (thighs * c.samples_analysed + c.samples_checked) / 2
