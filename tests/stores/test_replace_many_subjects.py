"""Replacing results of several subjects, as live window analyses do, never hides another subject's results.

Regression test of the live-results loss on InfluxDB 1.6.7 (inmem index; docs/influxdb-index-loss.md): a series
emptied by a DELETE and written again, then *another* series of the same measurement emptied by a DELETE,
left the measurement's series out of the in-memory index: every re-written series was invisible to queries
(and to later DELETEs) until influxd restarted. Runs on every store (embedded, v1, v2 stand-in)."""

from __future__ import annotations

import itertools
from typing import Any

from analytics.stores import Store
from analytics.stores.model import STRIDE, Provenance, SessionResults, results_from_document
from testing.stores.storelib import T0_UTC_S, new_subject, result_doc

_ids = itertools.count(1)


def _window(subject: str, version: int, start_s: float, n: int, offset_s: float = 0.0) -> SessionResults:
    """Strides of one window (no summary), as a live segment stores them, replacing [start_s, start_s + 5 s]."""
    doc: dict[str, Any] = result_doc(n_strides=n)
    for i, stride in enumerate(doc["gait"]["strides"]):
        stride["start_s"] = start_s + offset_s + 0.55 * i
        stride["end_s"] = stride["start_s"] + 1.1
    t0 = round(T0_UTC_S * 1e6)
    prov = Provenance(analysis_id=f"w-{next(_ids)}", result_version=version, algorithm="test 1")
    res = results_from_document(doc, subject=subject, session="S1", t0_us=t0, provenance=prov)
    points = tuple(p for p in res.points if p.measurement == STRIDE)
    return SessionResults(subject, "S1", t0 + round(start_s * 1e6), t0 + round((start_s + 5.0) * 1e6), version, points)


def _strides(store: Store, subject: str) -> list[tuple[int, str, object]]:
    return [
        (r.time_us, r.tags["side"], r.fields["analysis_id"])
        for r in store.read_results(subject)
        if r.measurement == STRIDE
    ]


def _expected(res: SessionResults) -> list[tuple[int, str, object]]:
    return sorted((p.time_us, dict(p.tags)["side"], p.fields["analysis_id"]) for p in res.points)


def test_a_subject_rewritten_after_a_full_delete_stays_visible_when_another_subject_is_replaced(
    store: Store,
) -> None:
    a, b = new_subject(), new_subject()
    store.replace_results(_window(a, 1, 10.0, 4))
    store.replace_results(_window(b, 1, 20.0, 4))
    a2 = _window(a, 1, 10.0, 4, offset_s=0.2)  # every stride of A moves: A's series are emptied, then re-written
    store.replace_results(a2)
    assert _strides(store, a) == _expected(a2)
    b2 = _window(b, 1, 20.0, 4, offset_s=0.2)  # the same for B: on 1.6 this hid A's re-written strides
    store.replace_results(b2)
    assert _strides(store, a) == _expected(a2)
    assert _strides(store, b) == _expected(b2)


def test_live_windows_of_five_subjects_then_final_results_all_visible_nothing_stale(store: Store) -> None:
    subjects = [new_subject() for _ in range(5)]
    for w in range(4):  # windows every 5 s, each replacing its range with strides at shifted times
        for k, s in enumerate(subjects):
            store.replace_results(_window(s, 1, 30.0 * k + 5.0 * w, 6, offset_s=0.1 * w))
    finals = {}
    for k, s in enumerate(subjects):
        final = _window(s, 2, 30.0 * k, 10, offset_s=0.05)
        final = SessionResults(s, "S1", final.start_us, final.start_us + 25_000_000, 2, final.points)
        store.replace_results(final)
        finals[s] = final
    for s, final in finals.items():
        assert _strides(store, s) == _expected(final), s
