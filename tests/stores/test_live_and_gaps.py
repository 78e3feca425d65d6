"""Provisional (live) results, gaps and the batch index, on every store (embedded, InfluxDB 1.6 v1, v2 stand-in).

- Live results live in their own measurements (`stride_live`, `exercise_set_live`) and are appended: a live
  write never deletes anything, so a live window analysed at the same moment as the session's final analysis
  (another worker) can no longer remove final strides (the race of issue 6); the final replacement removes the
  session's provisional points.
- Gaps are recorded and the batch index tells which samples are stored or known missing.
"""

from __future__ import annotations

from dataclasses import replace

from analytics.stores import Store
from analytics.stores.model import (
    LIVE_OF,
    STRIDE,
    STRIDE_LIVE,
    GapRecord,
    Provenance,
    SessionResults,
    results_from_document,
)
from testing.stores.storelib import T0_UTC_S, batch, new_subject, result_doc


def _results(subject: str, version: int, n_strides: int, offset_s: float = 0.0) -> SessionResults:
    doc = result_doc(n_strides=n_strides)
    for s in doc["gait"]["strides"]:
        s["start_s"] += offset_s
        s["end_s"] += offset_s
    prov = Provenance(analysis_id=f"a-{version}-{offset_s}", result_version=version, algorithm="test 1")
    return results_from_document(doc, subject=subject, session="S1", t0_us=round(T0_UTC_S * 1e6), provenance=prov)


def _live(subject: str, offset_s: float) -> SessionResults:
    res = _results(subject, 1, 4, offset_s)
    points = tuple(replace(p, measurement=LIVE_OF[p.measurement]) for p in res.points if p.measurement in LIVE_OF)
    return replace(res, points=points)


def _final_strides(store: Store, subject: str) -> list[tuple[int, object]]:
    return [(r.time_us, r.fields["result_version"]) for r in store.read_results(subject) if r.measurement == STRIDE]


def test_live_results_are_appended_and_the_final_analysis_removes_them(store: Store) -> None:
    subject = new_subject()
    for k in range(3):  # three windows, each appending its new strides
        store.write_live(_live(subject, 0.1 * k))
    live = store.read_results(subject, live=True)
    assert {r.measurement for r in live} == {STRIDE_LIVE, "exercise_set_live"}
    assert len([r for r in live if r.measurement == STRIDE_LIVE]) == 12
    assert store.read_results(subject) == []  # dashboards of final results see nothing provisional
    final = _results(subject, 2, 6)
    store.replace_results(final)
    assert store.read_results(subject, live=True) == []
    assert len(_final_strides(store, subject)) == 6


def test_a_live_window_racing_the_final_analysis_never_removes_final_strides(store: Store) -> None:
    """The interleaving that lost final strides: worker A's live window (read before the session end) writes
    after worker B's final replacement. A live write now only appends provisional points elsewhere."""
    subject = new_subject()
    store.write_live(_live(subject, 0.0))
    final = _results(subject, 2, 8)
    store.replace_results(final)
    store.write_live(_live(subject, 0.3))  # the late live window of the other worker
    strides = _final_strides(store, subject)
    assert len(strides) == 8 and {v for _, v in strides} == {2}
    assert sorted(t for t, _ in strides) == sorted(p.time_us for p in final.points if p.measurement == STRIDE)


def test_the_sweep_removes_a_late_live_window_and_nothing_else(store: Store) -> None:
    """The worker that stored a session's final results removes its range's provisional points once more later
    (`Store.delete_live`): a live window of another worker written after the final analysis is gone, the final
    results, another subject's live points and live points after the range stay, and live writes still land."""
    subject, other = new_subject(), new_subject()
    final = _results(subject, 2, 8)
    store.replace_results(final)
    late = _live(subject, 0.3)  # the late live window of the other worker
    store.write_live(late)
    store.write_live(_live(other, 0.3))
    shift = final.end_us - final.start_us + 5_000_000  # the next session's, after the range
    late_pts = _live(subject, 0.1)
    after = replace(late_pts, points=tuple(replace(p, time_us=p.time_us + shift) for p in late_pts.points))
    store.write_live(after)

    def live_times(who: str) -> set[int]:
        return {r.time_us for r in store.read_results(who, live=True)}

    assert final.end_us < min(p.time_us for p in after.points)
    assert live_times(subject) == {p.time_us for p in (*late.points, *after.points)}
    store.delete_live(subject, final.start_us, final.end_us)
    assert live_times(subject) == {p.time_us for p in after.points}
    assert live_times(other) == {p.time_us for p in late.points}
    assert len(_final_strides(store, subject)) == 8
    store.write_live(late)  # the emptied series still take writes (InfluxDB 1.6's index)
    assert live_times(subject) == {p.time_us for p in (*late.points, *after.points)}


def test_batch_index_and_gaps_tell_what_is_stored_and_what_is_known_missing(store: Store) -> None:
    subject = new_subject()
    report = store.write_raw_many([batch(subject, seq_first=0, n=100), batch(subject, seq_first=150, n=50)])
    # points are samples, or packed parts of them (`raw_layout`): what is stored is read back at the end
    assert report.quarantined == [] and report.points_written > 0
    gap = GapRecord(subject, "S1", "pelvis", "GS24-0001", 42, 100, 149, 0.5, "link_lost", "gap:GS24-0001:42:100")
    store.write_gap(gap)
    store.write_gap(gap)  # a replayed gap overwrites itself
    index = store.raw_index(subject, "pelvis", "GS24-0001", 42, None, 199)
    assert index.batches == ((0, 99, 100), (150, 199, 50))
    assert index.gaps == ((100, 149),)
    window = store.raw_index(subject, "pelvis", "GS24-0001", 42, 120, 160)
    assert window.batches == ((150, 199, 50),) and window.gaps == ((100, 149),)
    assert store.raw_index(subject, "pelvis", "GS24-0001", 43, None, 199).batches == ()
    assert len(store.read_raw(subject, "pelvis")) == 150


def test_the_worker_sweeps_a_finalised_sessions_range_once_its_delay_has_passed() -> None:
    """Worker side of the sweep (embedded store, no broker: nothing arrives): a scheduled sweep removes the late
    live window only when due; a deferred live window finds the session's final results in the store."""
    from analytics.stores.embedded import EmbeddedStore
    from analytics.worker.worker import Worker, WorkerConfig
    from testing.worker.hostile import ScriptedLink

    now = [100.0]
    store = EmbeddedStore(":memory:")
    # nothing arrives on the link: the sweep needs no message
    worker = Worker(WorkerConfig(live_sweep_after_s=30.0), ScriptedLink(), store, clock=lambda: now[0])
    subject = new_subject()
    final = _results(subject, 2, 8)
    store.replace_results(final)
    assert not worker.jobs.final_stored(subject, "S2") and worker.jobs.final_stored(subject, "S1")
    store.write_live(_live(subject, 0.3))  # another worker's late window
    worker.jobs.sweeps.append((now[0] + 30.0, subject, final.start_us, final.end_us))
    now[0] += 29.0
    worker.step(timeout_s=0.0)
    assert store.read_results(subject, live=True) != []  # not yet due
    now[0] += 2.0
    worker.step(timeout_s=0.0)
    assert store.read_results(subject, live=True) == [] and worker.jobs.sweeps == []
    assert len(_final_strides(store, subject)) == 8
