"""The three sensors' batches close at the same instants, and one window marker follows each set of them: a
stride's samples from every sensor reach the worker together (its analysis waits for the last sensor), and the
worker gets one marker per batch period instead of one per sensor's batch."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from gaitsym_common.uplink import envelope as env
from sensor_gateway.core.ingest import batch_closes_at
from testing.worker.replay import Published, record_sessions


def _clusters(raws: list[Published], apart_s: float) -> list[list[Published]]:
    """Raw batches grouped by publishing time: a new group after a pause longer than ``apart_s``."""
    groups: list[list[Published]] = []
    for p in sorted(raws, key=lambda p: p.t_s):
        if groups and p.t_s - groups[-1][-1].t_s <= apart_s:
            groups[-1].append(p)
        else:
            groups.append([p])
    return groups


def test_batches_close_on_whole_multiples_of_the_batch_period() -> None:
    assert batch_closes_at(12.3, 1.0) == 13.0
    assert batch_closes_at(13.0, 1.0) == 14.0  # opened right on an instant: the next one
    assert batch_closes_at(0.74, 0.5) == 1.0


@pytest.mark.parametrize("batch_s", [1.0, 0.5])
def test_every_sensor_publishes_at_the_same_instants_and_one_window_follows(tmp_path: Path, batch_s: float) -> None:
    recorded = record_sessions(1, 26.0, window_s=0.25, batch_s=batch_s, cache_dir=tmp_path)
    published = recorded.subjects["S001"]
    raws = [p for p in published if p.raw_end is not None]
    # packets bring 10 samples (0.1 s) each, the sensors' packets at their own phases: one set of batches spans
    # at most a packet interval plus a gateway step; sets are a batch period apart
    groups = _clusters(raws, apart_s=0.2)[1:-1]  # the first and last may be cut by the start and the end
    assert len(groups) >= 26.0 / batch_s - 8
    for group in groups:
        assert sorted(p.raw_end[0] for p in group if p.raw_end) == ["left_thigh", "pelvis", "right_thigh"], [
            (round(p.t_s, 2), p.raw_end) for p in group
        ]
    windows = [
        (p.t_s, m) for p in published if isinstance(m := env.decode(p.payload), env.Marker) and m.type == "window"
    ]
    in_session = [g for g in groups if g[0].t_s > windows[0][0]]  # windows come while a session is open
    assert len(in_session) >= 8.0 / batch_s
    for group, following in itertools.pairwise(in_session):
        last = max(p.t_s for p in group)
        after = [m for t, m in windows if last <= t < following[0].t_s]
        assert len(after) == 1, (last, [round(t, 2) for t, _ in windows])
        assert set(after[0].last_seq) == {"left_thigh", "pelvis", "right_thigh"}
