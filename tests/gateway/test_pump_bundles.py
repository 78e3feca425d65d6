"""The gateway sends its pending raw batches, gaps and markers as bundles: one MQTT message for a second's batches
and the window marker after them, each row still held, acknowledged and sent again on its own (UPLINK.md)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from gaitsym_common.uplink import envelope as env
from gaitsym_common.uplink.topics import topic
from sensor_gateway.core.config import GatewayConfig
from sensor_gateway.core.pump import Pump
from sensor_gateway.outbox.store import Outbox
from sensor_gateway.timing.host_clock import VirtualHostClock
from testing.gateway.loopback import InMemoryLink, unbundled
from testing.worker.hostile import raw_batch

SUBJECT = "S001"


def rig(tmp_path: Path, **config: object) -> tuple[Pump, InMemoryLink, Outbox, VirtualHostClock]:
    clock = VirtualHostClock()
    link = InMemoryLink()
    outbox = Outbox(tmp_path / "outbox.sqlite", clock=clock.utc)
    return Pump(GatewayConfig(SUBJECT, **config), link, outbox, clock), link, outbox, clock  # type: ignore[arg-type]


def put_raw(pump: Pump, seq: int, placement: str = "pelvis", n_packets: int = 10) -> str:
    batch = raw_batch(SUBJECT, seq, n_packets=n_packets, placement=placement, serial="GS-" + placement)
    pump.put(batch.msg_id, topic(SUBJECT, "raw", placement), env.encode(batch), "raw")
    return batch.msg_id


def put_window(pump: Pump, n: int) -> str:
    marker = env.Marker("marker", f"marker:w{n}", SUBJECT, "s-1", "window", None, {})
    pump.put(marker.msg_id, topic(SUBJECT, "marker"), env.encode(marker), "marker")
    return marker.msg_id


class RawLink(InMemoryLink):
    """Keeps every MQTT publish as it went out (`raw`), bundles unopened."""

    def __init__(self) -> None:
        super().__init__()
        self.raw: list[tuple[str, bytes]] = []

    def publish(self, topic_: str, payload: bytes, qos: int = 1, retain: bool = False) -> bool:
        self.raw.append((topic_, payload))
        return super().publish(topic_, payload, qos, retain)


def messages(link: RawLink) -> list[tuple[str, list[str]]]:
    """Each MQTT message published: its topic and the msg_ids it carries."""
    return [
        (name, [env.decode(body).msg_id for _, body in unbundled(name, payload)])  # type: ignore[union-attr]
        for name, payload in link.raw
    ]


def raw_rig(tmp_path: Path, **config: object) -> tuple[Pump, RawLink, Outbox, VirtualHostClock]:
    pump, _, outbox, clock = rig(tmp_path, **config)
    link = RawLink()
    pump.link = link
    return pump, link, outbox, clock


def test_a_seconds_batches_wait_for_their_window_marker_and_go_out_as_one_message(tmp_path: Path) -> None:
    pump, link, outbox, clock = raw_rig(tmp_path)
    ids = [put_raw(pump, 0, p) for p in ("left_thigh", "pelvis")]
    pump.publish_pending(clock.monotonic())
    clock.advance(0.1)
    ids.append(put_raw(pump, 0, "right_thigh"))
    pump.publish_pending(clock.monotonic())
    assert link.raw == []  # held for the marker
    ids.append(put_window(pump, 1))
    pump.publish_pending(clock.monotonic())
    assert messages(link) == [(topic(SUBJECT, "bundle"), ids)]
    assert pump.messages == 1 and pump.published == 4 and outbox.inflight_count == 4
    outbox.ack(ids[:2])  # acknowledged row by row
    assert len(outbox) == 2


def test_without_a_marker_the_batches_go_out_after_the_hold(tmp_path: Path) -> None:
    pump, link, _, clock = raw_rig(tmp_path)
    ids = [put_raw(pump, 0, p) for p in ("left_thigh", "pelvis", "right_thigh")]
    pump.publish_pending(clock.monotonic())
    clock.advance(pump.config.bundle_hold_s * 0.9)
    pump.publish_pending(clock.monotonic())
    assert link.raw == []
    clock.advance(pump.config.bundle_hold_s * 0.2)
    pump.publish_pending(clock.monotonic())
    assert messages(link) == [(topic(SUBJECT, "bundle"), ids)]


def test_flush_sends_at_once_and_a_lone_row_goes_on_its_own_topic(tmp_path: Path) -> None:
    pump, link, _, clock = raw_rig(tmp_path)
    only = put_raw(pump, 0)
    pump.publish_pending(clock.monotonic(), flush=True)
    assert messages(link) == [(topic(SUBJECT, "raw", "pelvis"), [only])]


def test_bundles_stay_under_the_payload_limit_and_a_row_too_large_to_share_goes_alone(tmp_path: Path) -> None:
    pump, link, _, clock = raw_rig(tmp_path)
    ids = [put_raw(pump, 1000 * i, n_packets=90) for i in range(8)]  # ~17 kB each: three fit in 64 KiB
    big = put_raw(pump, 100_000, n_packets=355)  # 65.4 kB: inside the limit alone, not inside a bundle
    ids.append(put_window(pump, 1))
    pump.publish_pending(clock.monotonic())
    assert all(len(payload) <= env.MAX_PAYLOAD_BYTES for _, payload in link.raw)
    got = messages(link)
    assert [i for _, carried in got for i in carried] == ids[:8] + [big] + ids[8:]  # in order, each once
    assert (topic(SUBJECT, "raw", "pelvis"), [big]) in got
    assert max(len(carried) for _, carried in got) == 3 and len(got) == 5


def test_rows_sent_again_go_out_again_bundled(tmp_path: Path) -> None:
    pump, link, outbox, clock = raw_rig(tmp_path, ack_timeout_s=5.0)
    ids = [put_raw(pump, 0, p) for p in ("left_thigh", "pelvis", "right_thigh")] + [put_window(pump, 1)]
    pump.publish_pending(clock.monotonic())
    outbox.ack([ids[1]])
    clock.advance(6.0)
    pump.resend_overdue(clock.monotonic())
    pump.publish_pending(clock.monotonic())
    assert messages(link)[1] == (topic(SUBJECT, "bundle"), [ids[0], ids[2], ids[3]])


def test_without_bundles_each_row_is_a_message_at_once(tmp_path: Path) -> None:
    pump, link, _, clock = raw_rig(tmp_path, bundle=False)
    ids = [put_raw(pump, 0, p) for p in ("left_thigh", "pelvis")]
    pump.publish_pending(clock.monotonic())
    assert messages(link) == [
        (topic(SUBJECT, "raw", p), [i]) for p, i in zip(("left_thigh", "pelvis"), ids, strict=True)
    ]


def test_each_second_is_held_for_its_own_marker_and_gaps_wait_like_batches(tmp_path: Path) -> None:
    pump, link, _, clock = raw_rig(tmp_path)
    for second in range(3):
        ids = [put_raw(pump, 100 * second, p) for p in ("left_thigh", "pelvis")]
        gap = env.Gap(
            "gap",
            env.gap_id("GS-x", 7, second),
            SUBJECT,
            None,
            "right_thigh",
            "GS-x",
            7,
            second,
            second,
            0.01,
            "packet_lost",
        )
        pump.put(gap.msg_id, topic(SUBJECT, "gap", "right_thigh"), env.encode(gap), "gap")
        pump.publish_pending(clock.monotonic())
        clock.advance(0.2)
        pump.publish_pending(clock.monotonic())
        assert len(link.raw) == second  # held: the hold starts again with each second's first row
        ids += [gap.msg_id, put_window(pump, second)]
        pump.publish_pending(clock.monotonic())
        assert messages(link)[-1] == (topic(SUBJECT, "bundle"), ids)
        clock.advance(0.8)


def test_a_bundle_takes_at_most_64_parts_and_as_many_as_fit(tmp_path: Path) -> None:
    """Each bundle as full as the payload limit and the part limit allow (sizes measured on what `envelope.encode`
    writes), in order; a row of another subject is never bundled."""
    pump, link, outbox, clock = raw_rig(tmp_path)
    ids = []
    for i in range(150):  # markers of growing ids: the limit falls between parts of different sizes
        marker = env.Marker("marker", f"marker:{i}:" + "x" * (i % 200), SUBJECT, "s-1", "window", None, {})
        pump.put(marker.msg_id, topic(SUBJECT, "marker"), env.encode(marker), "marker")
        ids.append(marker.msg_id)
    stranger = env.Marker("marker", "marker:other", "S002", "s-2", "window", None, {})
    outbox.put(stranger.msg_id, topic("S002", "marker"), env.encode(stranger), "marker")
    pump.publish_pending(clock.monotonic())
    got = messages(link)
    assert [i for _, carried in got for i in carried] == [*ids, stranger.msg_id]
    assert got[-1] == (topic("S002", "marker"), [stranger.msg_id])
    bundles = [payload for name, payload in link.raw if name.endswith("/bundle")]
    assert len(bundles) == len(got) - 1 and all(len(b) <= env.MAX_PAYLOAD_BYTES for b in bundles)
    rows = {i.msg_id: i for i in outbox.pending(limit=1000, include_inflight=True)}
    for (_, carried), (_, next_carried) in itertools.pairwise(got[:-1]):
        fuller = [env.BundlePart(rows[i].topic, rows[i].payload) for i in [*carried, next_carried[0]]]
        too_big = len(fuller) > env.MAX_BUNDLE_PARTS or _encoded_size(fuller) > env.MAX_PAYLOAD_BYTES
        assert too_big, f"a bundle of {len(carried)} parts could have taken the next row"


def _encoded_size(parts: list[env.BundlePart]) -> int:
    import json

    doc = {
        "v": 1,
        "kind": "bundle",
        "subject": SUBJECT,
        "parts": [{"topic": p.topic, "payload": p.payload.decode()} for p in parts],
    }
    return len(json.dumps(doc, separators=(",", ":")).encode())


def test_stop_sends_what_is_held_and_each_batch_gets_its_latency(tmp_path: Path) -> None:
    pump, link, _, clock = raw_rig(tmp_path)
    for p in ("left_thigh", "pelvis", "right_thigh"):
        batch = raw_batch(SUBJECT, 0, placement=p, serial="GS-" + p)
        pump.put(batch.msg_id, topic(SUBJECT, "raw", p), env.encode(batch), "raw", arrivals=(0.0, clock.monotonic()))
    pump.publish_pending(clock.monotonic())
    assert link.raw == []
    clock.advance(0.1)
    pump.publish_pending(clock.monotonic(), flush=True)  # what `Gateway.stop` asks for
    assert len(messages(link)[0][1]) == 3
    assert pump.publish_latency_s == pytest.approx([0.1, 0.1, 0.1])


def test_a_bundle_that_cannot_be_made_goes_out_row_by_row(tmp_path: Path) -> None:
    pump, link, outbox, clock = raw_rig(tmp_path)
    ids = [put_raw(pump, 0, "pelvis")]
    # a row whose topic is not one a bundle carries (kept as a marker by mistake): the bundle cannot be encoded
    status = env.encode(env.Status("status", SUBJECT, "online"))
    outbox.put("marker:bad", topic(SUBJECT, "status"), status, "marker")
    pump.publish_pending(clock.monotonic())
    assert [name for name, _ in link.raw] == [topic(SUBJECT, "raw", "pelvis"), topic(SUBJECT, "status")]
    assert link.raw[1][1] == status and pump.published == 2 and ids


def test_a_bundle_that_would_pass_the_limit_by_its_own_fields_is_not_made(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Two rows whose parts fit in the payload limit but not with the bundle's own fields (v, kind, subject): sent
    as two messages, and never as a bundle the contract refuses (logged as an error, then sent row by row)."""
    pump, link, _, clock = raw_rig(tmp_path)

    def window(pad: int) -> env.Marker:
        return env.Marker("marker", "marker:" + "x" * pad, SUBJECT, "s-1", "window", None, {})

    marker_part = env.BundlePart(topic(SUBJECT, "marker"), env.encode(window(0)))
    for n_packets in range(300, 360):  # the raw batch that leaves a marker id of 0-200 characters just too little room
        batch = raw_batch(SUBJECT, 0, n_packets=n_packets, serial="GS-pelvis")
        raw_part = env.BundlePart(topic(SUBJECT, "raw", "pelvis"), env.encode(batch))
        pad = env.MAX_PAYLOAD_BYTES + 1 - _encoded_size([raw_part, marker_part])  # one byte past the limit
        if 0 <= pad <= 200:
            break
    else:
        raise AssertionError("no batch size leaves the room asked for")
    assert _encoded_size([raw_part, env.BundlePart(marker_part.topic, env.encode(window(pad)))]) == (
        env.MAX_PAYLOAD_BYTES + 1
    )
    head = len('{"v":1,"kind":"bundle","subject":"S001","parts":[]}')
    assert _encoded_size([raw_part]) - head + len(env.encode(window(pad))) < env.MAX_PAYLOAD_BYTES  # parts alone fit
    marker = window(pad)
    pump.put(batch.msg_id, raw_part.topic, raw_part.payload, "raw")
    pump.put(marker.msg_id, topic(SUBJECT, "marker"), env.encode(marker), "marker")
    with caplog.at_level("ERROR"):
        pump.publish_pending(clock.monotonic())
    assert messages(link) == [(raw_part.topic, [batch.msg_id]), (topic(SUBJECT, "marker"), [marker.msg_id])]
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
