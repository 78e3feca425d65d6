"""The live gait analysis (`analytics.pipeline.live.LiveGait`) against the session's final analysis, and the work
each of its windows does (counted, never timed)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from analysis_testlib import live_stream

from analytics.algorithms.stride_checks import STRIDE_FLAGS
from analytics.errors import InvalidSignal
from analytics.pipeline import analyze_recording
from analytics.pipeline.events import events_per_bout
from analytics.pipeline.live import LiveEstimates, LiveGait, LiveSettings
from analytics.pipeline.pelvis import analyze_pelvis
from analytics.pipeline.result import Flags
from analytics.pipeline.streams import check_streams
from analytics.pipeline.strides import gait_strides, summarise_gait
from analytics.pipeline.thighs import analyze_thighs
from analytics.recording.io import Recording
from simulator.session import simulate_session

STEP_S = 0.33
"""Samples arrive in steps like a real-time worker sees them (three sensors' 1-s batches, staggered)."""


def stream(
    rec: Recording, gait: LiveGait, step_s: float = STEP_S
) -> tuple[list[dict[str, object]], list[dict[str, int]]]:
    return live_stream(rec, gait, step_s)


def same_contacts(live: dict[str, object], final: dict[str, object], fs: float) -> bool:
    """Same stride to within one sample: start, end and final contact (stance)."""
    tol = 1.0 / fs + 1e-9
    return (
        live["side"] == final["side"]
        and abs(float(live["start_s"]) - float(final["start_s"])) <= tol  # type: ignore[arg-type]
        and abs(float(live["end_s"]) - float(final["end_s"])) <= tol  # type: ignore[arg-type]
        and abs(float(live["stance_time_s"]) - float(final["stance_time_s"])) <= 2 * tol  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def walk() -> Recording:
    return simulate_session(seed=3, minutes=2.0, script="walk").recording


@pytest.mark.parametrize(("step_s", "phase_s"), [(STEP_S, 0), (1.0, 0), (STEP_S, 37)])
def test_every_final_stride_is_given_out_live_once_with_the_same_contacts(
    walk: Recording, step_s: float, phase_s: int
) -> None:
    """Every plausible stride of the final analysis comes out live, once, with its contacts within one sample,
    whatever the session's estimate phase; a live stride the final analysis does not have is at a bout's end (seen
    before the bout's end was known); no stride a plausibility rule flags is given out."""
    fs = walk.sampling_rate_hz
    final = analyze_recording(walk, exercise_analyzer=None)["gait"]["strides"]
    live, _ = stream(walk, LiveGait(tuple(walk.sensors), fs, phase_s=phase_s), step_s)
    assert len(final) > 100
    assert not any(set(s["flags"]) & set(STRIDE_FLAGS) for s in live)  # type: ignore[arg-type]
    for f in final:
        if set(f["flags"]) & set(STRIDE_FLAGS):
            continue
        matches = [s for s in live if s["side"] == f["side"] and abs(float(s["start_s"]) - f["start_s"]) < 0.3]  # type: ignore[arg-type]
        assert len(matches) == 1, f
        assert same_contacts(matches[0], f, fs), (matches[0], f)
    assert len(live) - len(final) <= 4
    assert all("start_s" in s and s["end_s"] > s["start_s"] for s in live)  # type: ignore[operator]


def test_a_window_analyses_the_new_samples_and_context_never_the_session_again(walk: Recording) -> None:
    """The work of each window follows the new samples: what a window analyses is its new samples plus the
    context (never the session so far), a window without a stride to give out analyses nothing, and the
    session estimates are made a handful of times, not per window."""
    fs = walk.sampling_rate_hz
    settings = LiveSettings()
    gait = LiveGait(tuple(walk.sensors), fs, settings)
    live, deltas = stream(walk, gait)
    context = round((settings.context_s + settings.settle_s) * fs)
    established = False
    for d in deltas:
        if d["estimates"] or not established:
            # the first window with estimates looks back over the walking so far, once; so may a refresh's
            established = established or d["strides_out"] > 0
            continue
        if d["windows"]:
            # the samples since the last window (``samples_new``) plus the context before them, however long the
            # session so far
            assert d["samples_analysed"] <= d["samples_new"] + context, d
    ran = [d for d in deltas if d["windows"]]
    idle = [d for d in deltas if not d["windows"] and not d["windows_still"]]
    assert idle and all(d["samples_analysed"] == 0 for d in idle)  # no stride could be ready: nothing analysed
    assert len(ran) < len(deltas)
    c = gait.counters
    assert c.strides_out == len(live)
    # every sample is new to one window at most; all windows together analyse a bounded multiple of the session
    assert c.samples_new <= walk.n_samples
    assert c.samples_analysed <= 12 * walk.n_samples
    assert 2 <= c.estimates <= 6


def test_a_window_finds_the_pelvis_events_with_the_session_axes_once_estimated(walk: Recording) -> None:
    """Once the session estimates exist, no window estimates the pelvis's body axes again (its events are found
    with the estimates' axes); before them, windows do (the counter counts)."""
    gait = LiveGait(tuple(walk.sensors), walk.sampling_rate_hz)
    _, deltas = stream(walk, gait)
    made = before = after = 0
    for d in deltas:
        made += d["estimates"]  # estimates made in a step are used by that step's window
        if made:
            after += d["windows_axes_estimated"]
        else:
            before += d["windows_axes_estimated"]
    assert made >= 2 and gait.counters.windows > 100
    assert before > 0
    assert after == 0


@pytest.mark.parametrize("sides_trusted", [True, False])
def test_the_strides_alone_are_the_strides_of_the_gait_block(walk: Recording, sides_trusted: bool) -> None:
    """`gait_strides` (what a live window keeps of step 5) gives every stride exactly as `summarise_gait` does,
    flags, ``included``, step time and pelvic drop included, without the summaries."""
    fs = walk.sampling_rate_hz
    flags = Flags()
    streams = check_streams(walk, fs, flags)
    pelvis = analyze_pelvis(walk, fs, streams, flags, [])
    thighs = analyze_thighs(walk, fs, streams, pelvis, flags)
    events = events_per_bout(walk.n_samples, fs, streams, pelvis, thighs, flags)
    mine = gait_strides(fs, streams, pelvis, copy.deepcopy(events), sides_trusted)
    theirs = summarise_gait(fs, streams, pelvis, events, sides_trusted, flags, [], include_obliquity=False)
    assert len(mine) > 100
    assert mine == theirs.gait.strides


def test_two_analyses_fed_the_same_session_differently_give_out_the_same_contacts(walk: Recording) -> None:
    """Two workers serving one session see its samples in different steps (shared subscriptions hand them the
    windows in turn): their estimates are made at the same instants, so each stride they both give out has the
    same contacts to the microsecond and lands on the same point."""
    fs = walk.sampling_rate_hz
    one, _ = stream(walk, LiveGait(tuple(walk.sensors), fs), 0.25)
    other, _ = stream(walk, LiveGait(tuple(walk.sensors), fs), 0.7)
    by_start = {(s["side"], round(float(s["start_s"]), 1)): s for s in other}  # type: ignore[arg-type]
    both = 0
    for s in one:
        o = by_start.get((s["side"], round(float(s["start_s"]), 1)))  # type: ignore[arg-type]
        if o is None:
            continue
        both += 1
        assert abs(float(s["start_s"]) - float(o["start_s"])) < 1e-6  # type: ignore[arg-type]
        assert abs(float(s["end_s"]) - float(o["end_s"])) < 1e-4  # type: ignore[arg-type]
    assert both > 0.9 * len(one)


def test_a_sessions_estimates_are_made_at_its_own_phase_and_every_feed_agrees(walk: Recording) -> None:
    """A session's estimates are refreshed at whole multiples of ``refresh_every_s`` plus its phase (so a clinic's
    sessions do not all refresh at once), and two analyses fed differently with the same phase still make them at
    the same instants and give out the same contacts."""
    fs = walk.sampling_rate_hz
    settings = LiveSettings(refresh_every_s=20.0)
    period_us = 1e6 / fs

    def instants(gait: LiveGait, step_s: float, begin: int = 0) -> tuple[list[int], list[dict[str, object]]]:
        """The instants (µs since 1970) estimates were made at, each in the step that brought it, and the strides;
        the walk fed from sample ``begin`` (the analysis's origin: sample 0 is ``begin`` periods after 1970)."""
        k = round(step_s * fs)
        made, out = [], []
        for end in range(begin + k, walk.n_samples + k, k):
            end = min(end, walk.n_samples)
            b, before = begin + gait.end, gait.counters.estimates
            gait.extend({p: (d.acc_mps2[b:end], d.gyr_dps[b:end]) for p, d in walk.sensors.items()})
            out.extend(gait.step())
            if gait.counters.estimates > before:
                at = gait.estimated_at_us(period_us)
                assert at is not None
                if made:  # a refresh is made by the first window after its instant (one runs at least every 4 s)
                    assert 0 <= end * period_us - at <= 5e6, (b, at, end)
                made.append(at)
        return made, out

    for phase_s in (0, 7, 13):
        made, one = instants(LiveGait(tuple(walk.sensors), fs, settings, phase_s=phase_s), 0.25)
        assert len(made) >= 4  # the first ones, then refreshed
        refreshed = made[1:]
        assert all((at - phase_s * 1_000_000) % 20_000_000 == 0 for at in refreshed), (phase_s, made)
        again, other = instants(LiveGait(tuple(walk.sensors), fs, settings, phase_s=phase_s), 0.7)
        assert again == made
        # an analysis that starts later, its sample 0 not on a whole second of 1970 (its first estimates lack the
        # session's quiet standing: it tries again on the backoff grids): once complete, its refreshes are the same
        # instants since 1970 as the other's, not counted from its own start
        late, _ = instants(LiveGait(tuple(walk.sensors), fs, settings, origin=1234, phase_s=phase_s), 0.25, 1234)
        assert len(late) >= 4 and set(late[-3:]) <= set(made), (phase_s, late, made)
        ends = {(s["side"], round(float(s["start_s"]), 2)): float(s["end_s"]) for s in other}  # type: ignore[arg-type]
        shared = [(s, ends.get((s["side"], round(float(s["start_s"]), 2)))) for s in one]  # type: ignore[arg-type]
        assert sum(e is not None for _, e in shared) > 0.9 * len(one)
        assert all(abs(float(s["end_s"]) - e) < 1e-4 for s, e in shared if e is not None)  # type: ignore[arg-type]


def test_every_estimates_made_is_handed_out_once_also_several_in_one_call(walk: Recording) -> None:
    """A window catching up (a worker that received a long stretch at once) makes the estimates of every instant
    due in it: each is handed out once (`take_made`, what the worker logs for comparing workers), oldest first; an
    analysis fed second by second hands out each of its own once too."""
    fs = walk.sampling_rate_hz
    settings = LiveSettings(refresh_every_s=20.0)
    period_us = 1e6 / fs
    steady = LiveGait(tuple(walk.sensors), fs, settings, phase_s=7)
    seen: dict[int, LiveEstimates] = {}
    for end in range(round(fs), walk.n_samples + 1, round(fs)):
        b = steady.end
        steady.extend({p: (d.acc_mps2[b:end], d.gyr_dps[b:end]) for p, d in walk.sensors.items()})
        steady.step()
        for at, est in steady.take_made(period_us):
            assert at not in seen
            seen[at] = est
    assert len(seen) >= 4 and steady.take_made(period_us) == []
    late = LiveGait(tuple(walk.sensors), fs, settings, phase_s=7)
    late.extend({p: (d.acc_mps2, d.gyr_dps) for p, d in walk.sensors.items()})  # the whole walk in one call
    late.step()
    made = late.take_made(period_us)
    assert len(made) >= 3 and [at for at, _ in made] == sorted(at for at, _ in made)
    assert made[-1][1] is late.estimates and late.take_made(period_us) == []
    assert len({id(est) for _, est in made}) == len(made)  # each one made, not the one in force repeated


def test_live_samples_must_match_the_session_placements_and_be_finite() -> None:
    gait = LiveGait(("left_thigh", "pelvis", "right_thigh"), 100.0)
    ok = np.zeros((5, 3))
    with pytest.raises(InvalidSignal, match="expected"):
        gait.extend({"pelvis": (ok, ok)})
    with pytest.raises(InvalidSignal, match="NaN"):
        bad = ok.copy()
        bad[2, 1] = np.nan
        gait.extend({"pelvis": (bad, ok), "left_thigh": (ok, ok), "right_thigh": (ok, ok)})
    with pytest.raises(InvalidSignal, match="unequal"):
        gait.extend({"pelvis": (ok, ok), "left_thigh": (ok[:4], ok[:4]), "right_thigh": (ok, ok)})
    with pytest.raises(InvalidSignal, match="pelvis"):
        LiveGait(("left_thigh",), 100.0)
    assert gait.end == 0  # nothing refused was kept
