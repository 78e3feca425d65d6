"""The real-time bench moves a recording's UTC to now (`testing.worker.replay.shift_utc`): in a lone payload and in a
bundle's parts alike, whose quotes are escaped (a part left at the recording's UTC would be stored days away)."""

from __future__ import annotations

from gaitsym_common.uplink import envelope as env
from gaitsym_common.uplink.topics import topic
from testing.worker.hostile import raw_batch
from testing.worker.replay import shift_utc


def test_utc_is_moved_in_a_payload_and_in_a_bundles_parts() -> None:
    batch = raw_batch("S1", 0)
    window = env.Marker("marker", "m1", "S1", "s-1", "window", 1_796_428_801.5, {})
    alone = env.decode(shift_utc(env.encode(batch), 100.0))
    assert isinstance(alone, env.RawBatch) and alone.clock.ref_utc_s == batch.clock.ref_utc_s + 100.0
    parts = (
        env.BundlePart(topic("S1", "raw", "pelvis"), env.encode(batch)),
        env.BundlePart(topic("S1", "marker"), env.encode(window)),
    )
    moved = env.decode(shift_utc(env.encode(env.Bundle("bundle", "S1", parts)), 100.0))
    assert isinstance(moved, env.Bundle)
    raw, marker = (env.decode(p.payload) for p in moved.parts)
    assert isinstance(raw, env.RawBatch) and raw.clock.ref_utc_s == batch.clock.ref_utc_s + 100.0
    assert isinstance(marker, env.Marker) and marker.t_utc_s == 1_796_428_901.5
    assert raw.packets == batch.packets  # nothing else changes
