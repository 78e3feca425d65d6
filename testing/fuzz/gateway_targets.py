"""Fuzz targets of the gateway: what arrives on its cmd and ack topics (any client on the broker can publish
there), and the packets of a buggy or hostile sensor (valid CRC, any header values, any spacing)."""

from __future__ import annotations

import itertools
import json
import random
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from testing.fuzz.poison import Payload, byte_level, edge_ints, imu_packet, retarget, structured, uplink_vectors

VECTORS = uplink_vectors()
UTC0 = 1_767_225_600.0


# ------------------------------------------------------------------------------------------ gateway inbox

GATEWAY_SUBJECT = "G001"
GATEWAY_DOCS = retarget(VECTORS, GATEWAY_SUBJECT, kinds=("cmd", "ack"))
FIXTURE_ROWS = {
    doc["msg_id"]: (topic, json.dumps(doc, separators=(",", ":")).encode())
    for topic, doc in retarget(VECTORS[:3], GATEWAY_SUBJECT, kinds=("raw", "gap"))
}
"""Outbox rows waiting for an ack (a raw batch and a gap of the gateway's own subject)."""
_FOREIGN = ["G002", "g001", "G001 ", "G001/x"]


def gateway_payloads() -> st.SearchStrategy[Payload]:
    ids = sorted(FIXTURE_ROWS)
    extra = {"subject": _FOREIGN, "msg_ids": [ids[:1], ids, [*ids, "x" * 100]]}
    return structured(GATEWAY_DOCS, extra) | byte_level(GATEWAY_DOCS)


class GatewayInbox:
    """The production `Gateway`'s handling of what arrives on its cmd and ack topics. Properties: the step never
    raises; whatever it publishes is a valid uplink payload of its own subject; a payload naming another subject
    changes nothing (no session opened or closed, no outbox row removed); an ack removes only the ids it lists."""

    def __init__(self, folder: Path) -> None:
        from sensor_gateway.core import Gateway, GatewayConfig
        from sensor_gateway.outbox import Outbox
        from sensor_gateway.timing import VirtualHostClock
        from testing.gateway.loopback import InMemoryLink, NoSensors

        self.link = InMemoryLink()
        self.outbox = Outbox(folder / "outbox.db", synchronous="NORMAL")
        self.gateway = Gateway(
            GatewayConfig(subject=GATEWAY_SUBJECT),
            NoSensors(),  # type: ignore[arg-type]
            self.link,
            self.outbox,
            VirtualHostClock(start_s=1000.0, utc_at_start_s=UTC0),
        )
        self.gateway.start()
        self.gateway.step()

    def _rows(self) -> set[str]:
        return {item.msg_id for item in self.outbox.pending(limit=10_000, include_inflight=True)}

    def check(self, p: Payload) -> None:
        from gaitsym_common.errors import UplinkError
        from gaitsym_common.mqtt.client import Incoming
        from gaitsym_common.uplink import envelope as env
        from gaitsym_common.uplink.topics import parse_topic

        for msg_id, (topic, payload) in FIXTURE_ROWS.items():  # rows an ack may name
            self.outbox.put(msg_id, topic, payload, topic.split("/")[3])
        session, rows = self.gateway.session.session, self._rows()
        self.link.published.clear()
        self.link.incoming.append(Incoming(p.topic, p.data))
        self.gateway.step()
        for topic, payload in self.link.published:
            assert parse_topic(topic).subject == GATEWAY_SUBJECT, (topic, p)
            message = env.decode(payload)
            assert getattr(message, "subject", GATEWAY_SUBJECT) == GATEWAY_SUBJECT, (message, p)
        sent: env.Message | None
        try:
            sent = env.decode(p.data)
        except UplinkError:
            sent = None
        removed = rows - self._rows()
        if sent is not None and getattr(sent, "subject", None) != GATEWAY_SUBJECT:
            assert self.gateway.session.session == session, f"a foreign subject's command was obeyed: {p!r}"
            assert not removed, f"a foreign subject's ack removed {sorted(removed)}: {p!r}"
        if isinstance(sent, env.Ack):
            assert removed <= set(sent.msg_ids), (removed, p)
        elif removed:
            raise AssertionError(f"outbox rows {sorted(removed)} removed by a non-ack: {p!r}")

    def close(self) -> None:
        self.gateway.stop(end_session=False)


# ------------------------------------------------------------------------------------------ gateway packet stream


class PacketStream:
    """What a buggy or hostile sensor sends: packets (valid CRC) with any sequence, time, flags, ranges and
    count, at any arrival spacing (seconds)."""

    __slots__ = ("packets",)

    def __init__(self, packets: tuple[tuple[float, bytes], ...]) -> None:
        self.packets = packets

    def __repr__(self) -> str:
        return "PacketStream(" + ", ".join(f"({dt}, {data.hex()})" for dt, data in self.packets) + ")"


@st.composite
def packet_streams(draw: st.DrawFn) -> PacketStream:
    seq, ts = draw(edge_ints()) % 2**32, draw(edge_ints()) % 2**32
    out = []
    for _ in range(draw(st.integers(1, 40))):
        n = draw(st.sampled_from((10, 10, 10, 1, 19, draw(st.integers(1, 19)))))
        jump = draw(st.sampled_from((0, 0, 0, 0, 1, 7, -3, -10, 2**31, 2**32 - 1, draw(st.integers(0, 2**32 - 1)))))
        tjump = draw(st.sampled_from((0, 0, 0, 17, -5_000, 2**31, draw(st.integers(0, 2**32 - 1)))))
        seq, ts = (seq + jump) % 2**32, (ts + tjump) % 2**32
        flags = draw(st.sampled_from((0, 0, 0, 4, 1, 7)))
        ranges = draw(st.sampled_from((0x43, 0x43, 0x43, 0x32, 0x40)))
        dt = draw(st.sampled_from((0.0, 0.001, 0.045, 0.1, 0.1, 2.0, 15.0, 2200.0)))
        out.append((dt, imu_packet(seq, ts, draw(st.binary(min_size=12 * n, max_size=12 * n)), ranges, flags)))
        seq, ts = (seq + n) % 2**32, (ts + n * 10_000) % 2**32
    return PacketStream(tuple(out))


class _OneSensor:
    """A transport with one connected sensor whose packets the test hands in."""

    def __init__(self, info: Any) -> None:
        self.info = info
        self.events: Any = None

    def open(self, events: Any) -> None:
        self.events = events

    def connect(self, placement: str) -> None:
        from sensor_gateway.transport.base import LinkEvent

        self.events.put(LinkEvent(placement, "connected", info=self.info, battery_pct=90))

    def disconnect(self, placement: str) -> None:
        from sensor_gateway.transport.base import LinkEvent

        self.events.put(LinkEvent(placement, "lost", reason="recycled"))

    def start_streaming(self, placement: str) -> None: ...
    def stop_streaming(self, placement: str) -> None: ...
    def close(self) -> None: ...


def check_gateway_packet_stream(stream: PacketStream) -> None:
    """The production gateway fed a buggy sensor's packets: the steps never raise; every raw batch it publishes
    is one the worker accepts (the gateway never forwards what the worker would quarantine); no sample identity
    (serial, boot, seq) is published twice, nor both published and reported missing; between the first and the
    last sample published, every sequence number is published or reported missing (SPEC.md §5: a sequence jump
    is a loss to report)."""
    from analytics.worker.decode import batch_samples
    from firmware_protocol.sensor_info import Placement, SensorInfo
    from gaitsym_common.uplink import envelope as env
    from sensor_gateway.core import Gateway, GatewayConfig
    from sensor_gateway.outbox import Outbox
    from sensor_gateway.timing import VirtualHostClock
    from sensor_gateway.transport.base import PacketEvent
    from testing.gateway.loopback import InMemoryLink

    info = SensorInfo(
        placement=Placement.PELVIS,
        sample_rate_hz=100,
        acc_range_g=16,
        gyr_range_dps=2000,
        samples_per_packet=10,
        firmware_version=(1, 0, 0),
        boot_epoch=7,
        serial="GS-FUZZ",
    )
    clock = VirtualHostClock(start_s=1000.0, utc_at_start_s=UTC0)
    link = InMemoryLink()
    with tempfile.TemporaryDirectory() as folder:
        gateway = Gateway(
            GatewayConfig(subject="F001", placements=("pelvis",), batch_s=0.2, time_sync_every_s=0.0),
            _OneSensor(info),  # type: ignore[arg-type]
            link,
            Outbox(Path(folder) / "outbox.db", synchronous="NORMAL"),
            clock,
        )
        gateway._rng = random.Random(0)  # reconnect backoffs: the same example always runs the same way
        gateway.start()
        gateway.step()
        for dt, data in stream.packets:
            clock.advance(dt)
            gateway.events.put(PacketEvent("pelvis", clock.monotonic(), data))
            gateway.step()
        clock.advance(5.0)
        gateway.stop(end_session=False)
    unique: dict[str, tuple[str, bytes]] = {}
    for topic, payload in link.published:
        if "/raw/" in topic or "/gap/" in topic:
            msg_id = json.loads(payload)["msg_id"]
            # the outbox re-sends what no worker acknowledged (none does here): the same bytes under the same id
            assert unique.setdefault(msg_id, (topic, payload)) == (topic, payload), f"{msg_id} re-sent changed"
    spans: list[tuple[int, int, str]] = []  # (first, last, "raw" | "gap") of every distinct message
    for topic, payload in unique.values():
        message = env.decode(payload)
        if isinstance(message, env.RawBatch):
            seqs = batch_samples(message, topic).seq
            spans += [(int(q), int(q), "raw") for q in seqs]
        elif isinstance(message, env.Gap):
            spans.append((message.seq_first_missing, message.seq_last_missing, "gap"))
    spans.sort()
    for (_, a1, kind_a), (b0, b1, kind_b) in itertools.pairwise(spans):
        assert b0 > a1, f"seq {b0}..{min(a1, b1)} published as {kind_a} and again as {kind_b}: {stream!r}"
        # within one boot the sequence names every sample the sensor took: any hole is a loss to report
        assert b0 == a1 + 1, f"seq {a1 + 1}..{b0 - 1} neither published nor a gap: {stream!r}"
