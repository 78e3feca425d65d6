"""The gateway sends its pending raw batches, gaps and markers as bundles: one MQTT message for a second's batches
and the window marker after them, each row still held, acknowledged and sent again on its own (UPLINK.md)."""

from __future__ import annotations

from pathlib import Path

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
