"""The three sensors' batches close at the same instants, and one window marker follows each set of them: a
stride's samples from every sensor reach the worker together (its analysis waits for the last sensor), and the
worker gets one marker per batch period instead of one per sensor's batch. In a session, a set of batches and the
window marker after it go out as one MQTT message (a bundle): the worker and the broker pay per message."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from analytics.worker.decode import batch_samples
from gaitsym_common.uplink import envelope as env
from sensor_gateway.core.ingest import batch_closes_at
from testing.gateway.loopback import unbundled
from testing.worker.replay import Published, record_sessions


def _parts(published: list[Published]) -> list[tuple[float, int, env.Message]]:
    """Every message published (a bundle's parts one by one): when it went out, the index of its MQTT message, it."""
    return [(p.t_s, i, env.decode(body)) for i, p in enumerate(published) for _, body in unbundled(p.topic, p.payload)]


def _end_s(batch: env.RawBatch) -> float:
    """UTC of a raw batch's last sample, s."""
    return float(batch_samples(batch).time_us()[-1]) / 1e6


def _clusters(raws: list[tuple[float, int, env.Message]], apart_s: float) -> list[list[tuple[float, int, env.Message]]]:
    """Raw batches grouped by publishing time: a new group after a pause longer than ``apart_s``."""
    groups: list[list[tuple[float, int, env.Message]]] = []
    for p in sorted(raws, key=lambda p: p[0]):
        if groups and p[0] - groups[-1][-1][0] <= apart_s:
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
    parts = _parts(recorded.subjects["S001"])
    # grouped by the UTC of each batch's last sample: packets bring 10 samples (0.1 s) each, the sensors' packets
    # at their own phases, so the batches closed at one instant end within a packet interval; sets are a batch
    # period apart
    raws = [(_end_s(m), i, m) for _, i, m in parts if isinstance(m, env.RawBatch)]
    groups = _clusters(raws, apart_s=0.2)[1:-1]  # the first and last may be cut by the start and the end
    assert len(groups) >= 26.0 / batch_s - 8
    windows = [(t, i, m) for t, i, m in parts if isinstance(m, env.Marker) and m.type == "window"]
    sent_s = {i: t for t, i, _ in parts}
    # windows come while a session is open (its start closes the batches open then: not a set of three)
    in_session = [g for g in groups if min(sent_s[i] for _, i, _ in g) > windows[0][0]]
    assert len(in_session) >= 8.0 / batch_s
    for group in in_session:
        assert sorted(m.placement for _, _, m in group) == ["left_thigh", "pelvis", "right_thigh"], [  # type: ignore[union-attr]
            (round(t, 2), m.placement)  # type: ignore[union-attr]
            for t, _, m in group
        ]
    for group, following in itertools.pairwise(in_session):
        last = max(sent_s[i] for _, i, _ in group)
        after = [(i, m) for t, i, m in windows if last <= t < min(sent_s[i] for _, i, _ in following)]
        assert len(after) == 1, (last, [round(t, 2) for t, _, _ in windows])
        assert set(after[0][1].last_seq) == {"left_thigh", "pelvis", "right_thigh"}
        # the set's batches and its window in one MQTT message
        assert {i for _, i, _ in group} == {after[0][0]}
