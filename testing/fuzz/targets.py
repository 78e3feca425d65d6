"""The fuzz targets: every decoder of untrusted input, each with the property it must keep, and the strategy that
feeds it. The tests in this folder run each target briefly (derandomised per seed); bench/fuzz_campaign.py runs
them for longer and counts the payloads.

Untrusted input: MQTT payloads (any client on the broker, a neighbour's gateway, a buggy third-party one), a
sensor's BLE notifications, advertised names and hex typed by a user, recording folders from anywhere. The rule
for each: a typed error naming what is wrong (UplinkError, MalformedMessage, ProtocolError, RecordingError) or a
clean result; never another exception (RecursionError, ValueError, OverflowError, MemoryError, TypeError,
UnicodeEncodeError ...), never a worker or gateway loop that stops or keeps a message for retry forever.
"""

from __future__ import annotations

import itertools
import json
import random
import shutil
import struct
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import strategies as st

from testing.fuzz.poison import (
    Payload,
    byte_level,
    byte_mutations,
    edge_ints,
    imu_packet,
    raw_batches,
    retarget,
    structured,
    uplink_vectors,
)

VECTORS = uplink_vectors()
UTC0 = 1_767_225_600.0


# ------------------------------------------------------------------------------------------ uplink envelope

ENVELOPE_DOCS = [(v["topic"], json.loads(v["payload"])) for v in VECTORS]


def envelope_payloads() -> st.SearchStrategy[Payload]:
    return structured(ENVELOPE_DOCS) | byte_level(ENVELOPE_DOCS) | raw_batches()


def check_envelope(p: Payload) -> None:
    """`envelope.decode`: UplinkError or a message that writes back to a payload decoding to the same message."""
    from gaitsym_common.errors import UplinkError
    from gaitsym_common.uplink import envelope as env

    try:
        message = env.decode(p.data)
    except UplinkError:
        return
    assert env.decode(env.encode(message)) == message, p


# ------------------------------------------------------------------------------------------ worker decode

WORKER_DOCS = retarget(VECTORS, "H001", kinds=("raw", "gap", "marker"))


def worker_payloads() -> st.SearchStrategy[Payload]:
    return structured(WORKER_DOCS) | byte_level(WORKER_DOCS) | raw_batches() | raw_batches()


def check_worker_decode(p: Payload) -> None:
    """`decode_message` + `batch_samples` + the store keys (`RawSamples.time_us`): MalformedMessage, or samples
    whose store keys are distinct and in order (the store keys raw samples by subject, placement and time:
    two samples of one batch on one key would overwrite each other). numpy's overflow warnings are errors here:
    a cast that overflowed is a wrong number stored without a word."""
    from analytics.worker.decode import batch_samples, decode_message
    from analytics.worker.errors import MalformedMessage
    from gaitsym_common.uplink import envelope as env

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        try:
            message = decode_message(p.topic, p.data)
            if not isinstance(message, env.RawBatch):
                return
            samples = batch_samples(message, p.topic)
        except MalformedMessage:
            return
        keys = samples.time_us()
    assert len(samples) == message.n_samples, p
    assert bool((np.diff(samples.seq) > 0).all()), p
    assert bool((np.diff(keys) > 0).all()), f"store keys not distinct and in order: {keys[:5]}... {p!r}"


# ------------------------------------------------------------------------------------------ worker turn


class InProcessLink:
    """The worker's broker side in process (`analytics.worker.link.WorkerLink`): deliveries are handed in by
    the test, acknowledgements and publishes are recorded."""

    def __init__(self) -> None:
        from analytics.worker.link import Delivery

        self.inbox: list[Delivery] = []
        self.acked: set[tuple[int, int]] = set()
        self.published: list[tuple[str, bytes]] = []

    def connect(self, subscriptions: list[str]) -> None: ...

    def wait(self, timeout_s: float) -> list[Any]:
        out, self.inbox = self.inbox, []
        return out

    def ack(self, token: tuple[int, int]) -> None:
        self.acked.add(token)

    def publish(self, topic: str, payload: bytes) -> bool:
        self.published.append((topic, payload))
        return True

    def close(self) -> None: ...

    @property
    def connected(self) -> bool:
        return True


class WorkerTurn:
    """The production `Worker` with an embedded store, one delivery at a time. Each delivery must end stored,
    quarantined or shed (all three acknowledged to the broker) or waiting as a segment, within a few turns; no
    turn may raise, and nothing may be kept for a retry (a payload that failed once fails the same way forever:
    retrying it blocks every later message, every subject's, behind it)."""

    def __init__(self, folder: Path) -> None:
        from analytics.stores.embedded import EmbeddedStore
        from analytics.worker.worker import Worker, WorkerConfig

        self.link = InProcessLink()
        self.store = EmbeddedStore(folder / "store.sqlite")
        self.now = 1000.0
        self.worker = Worker(
            WorkerConfig(worker_id="fuzz", quarantine_path=str(folder / "quarantine.sqlite")),
            self.link,  # type: ignore[arg-type]
            self.store,
            clock=lambda: self.now,
        )
        self.tokens = itertools.count(1)

    def check(self, p: Payload) -> None:
        from analytics.worker.link import Delivery
        from gaitsym_common.uplink import envelope as env

        token = (1, next(self.tokens))
        self.link.inbox.append(Delivery(p.topic, p.data, token))
        self.link.published.clear()
        for _ in range(3):
            self.now += 5.0  # budgets refill, waiting segments come due: a turn is about the delivery itself
            self.worker.step(timeout_s=0.0)
            if token in self.link.acked:
                break
        waiting = any(getattr(q, "token", None) == token for q in self.worker.jobs.pending)
        # whatever failed stays queued for a retry (the queue's name depends on the worker's version): cleared,
        # so that the next example starts from an empty queue and is judged on its own
        for queue in ("_retry", "_carry"):
            if getattr(self.worker, queue, None):
                setattr(self.worker, queue, [])
        assert token in self.link.acked or waiting, f"kept for a retry that fails the same way forever: {p!r}"
        for _, payload in self.link.published:
            env.decode(payload)  # an ack the gateway can read

    def close(self) -> None:
        self.worker.close()


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


class NoSensors:
    """A transport whose sensors never connect: the gateway's MQTT side alone is under test."""

    def open(self, events: Any) -> None: ...
    def connect(self, placement: str) -> None: ...
    def disconnect(self, placement: str) -> None: ...
    def start_streaming(self, placement: str) -> None: ...
    def stop_streaming(self, placement: str) -> None: ...
    def close(self) -> None: ...


class GatewayLink:
    """The gateway's `MqttLink` in process: the test hands in messages; publishes are kept."""

    def __init__(self) -> None:
        from gaitsym_common.mqtt.client import Connected

        self.incoming: list[Any] = [Connected(False)]
        self.published: list[tuple[str, bytes]] = []

    def connect(self, will: tuple[str, bytes] | None = None) -> None: ...
    def subscribe(self, topics: list[str], qos: int = 1) -> None: ...
    def close(self, last_words: tuple[str, bytes] | None = None) -> None: ...

    @property
    def connected(self) -> bool:
        return True

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> bool:
        self.published.append((topic, payload))
        return True

    def events(self) -> list[Any]:
        out, self.incoming = self.incoming, []
        return out


class GatewayInbox:
    """The production `Gateway`'s handling of what arrives on its cmd and ack topics. Properties: the step never
    raises; whatever it publishes is a valid uplink payload of its own subject; a payload naming another subject
    changes nothing (no session opened or closed, no outbox row removed); an ack removes only the ids it lists."""

    def __init__(self, folder: Path) -> None:
        from sensor_gateway.core import Gateway, GatewayConfig
        from sensor_gateway.outbox import Outbox
        from sensor_gateway.timing import VirtualHostClock

        self.link = GatewayLink()
        self.outbox = Outbox(folder / "outbox.db", synchronous="NORMAL")
        self.gateway = Gateway(
            GatewayConfig(subject=GATEWAY_SUBJECT),
            NoSensors(),  # type: ignore[arg-type]
            self.link,  # type: ignore[arg-type]
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


# ------------------------------------------------------------------------------------------ recording folder

CSV_POISON = (
    "inf",
    "-inf",
    "nan",
    "NaN",
    "",
    "1e400",
    "-1e400",
    "1e-400",
    "9" * 400,
    "1" * 5000,
    "0x10",
    "1_000",
    "--1",
    "1,2",
    '"',
    '"1"',
    "\x00",
    "é",
    " ",
    "True",
    "None",
)
EVENT_POISON = ("inf", "-inf", "1e400", "nan", "-1", "0", "1.5", "9" * 400, "", "True", "start", "walk", "left")


def _base_recording(folder: Path) -> None:
    from analytics.recording.io import ExerciseMarker, Recording, SensorData, write_recording

    n = 120
    rng = np.random.default_rng(5)
    t = np.arange(n) / 100.0
    sensors = {}
    for placement in ("pelvis", "left_thigh", "right_thigh"):
        acc = np.column_stack([rng.normal(0, 0.3, n), rng.normal(0, 0.3, n), 9.81 + rng.normal(0, 0.3, n)])
        sensors[placement] = SensorData(placement, acc, rng.normal(0, 20.0, (n, 3)))
    markers = (
        ExerciseMarker(0.2, "start", "clam", "left", 1),
        ExerciseMarker(1.0, "end", "clam", "left", 1),
    )
    write_recording(folder, Recording(100.0, t, sensors, {"id": "R001"}, "home", markers))


@st.composite
def _csv_cells(draw: st.DrawFn, text: str, poison: tuple[str, ...]) -> tuple[bytes, str]:
    lines = text.split("\n")
    how = []
    for _ in range(draw(st.integers(1, 3))):
        row = draw(st.integers(0, len(lines) - 2))
        cells = lines[row].split(",")
        op = draw(st.sampled_from(("cell", "cell", "cell", "drop cell", "add cell", "drop line", "dup line")))
        col = draw(st.integers(0, len(cells) - 1))
        if op == "cell":
            cells[col] = draw(st.sampled_from(poison))
        elif op == "drop cell":
            del cells[col]
        elif op == "add cell":
            cells.insert(col, draw(st.sampled_from(poison)))
        if op == "drop line":
            del lines[row]
        elif op == "dup line":
            lines.insert(row, lines[row])
        else:
            lines[row] = ",".join(cells)
        how.append(f"{op} row {row} col {col}")
    return "\n".join(lines).encode("utf-8"), "; ".join(how)


@st.composite
def recording_mutations(draw: st.DrawFn, base: dict[str, bytes]) -> Payload:
    """One file of a valid recording folder mutated: recording.json structure-aware, a CSV cell by cell or
    byte by byte."""
    name = draw(st.sampled_from(sorted(base)))
    if name == "recording.json":
        p = draw(structured([(name, json.loads(base[name]))]))
        return Payload(name, p.data, p.how)
    text = base[name].decode()
    if draw(st.integers(0, 3)) == 0:
        data, flips = draw(byte_mutations(base[name]))
        return Payload(name, data, "bytes " + ",".join(flips))
    data, how = draw(_csv_cells(text, EVENT_POISON if name == "events.csv" else CSV_POISON))
    return Payload(name, data, how)


class RecordingFolder:
    """`analytics.recording.io.read_recording` on a valid folder with one file mutated: RecordingError or a
    recording, never another exception."""

    def __init__(self, folder: Path) -> None:
        self.base_dir = folder / "base"
        _base_recording(self.base_dir)
        self.base = {p.name: p.read_bytes() for p in self.base_dir.iterdir()}
        self.work = folder / "work"

    def payloads(self) -> st.SearchStrategy[Payload]:
        return recording_mutations(self.base)

    def check(self, p: Payload) -> None:
        from analytics.errors import RecordingError
        from analytics.recording.io import read_recording

        shutil.rmtree(self.work, ignore_errors=True)
        shutil.copytree(self.base_dir, self.work)
        (self.work / p.topic).write_bytes(p.data)
        try:
            read_recording(self.work)
        except RecordingError:
            return

    def close(self) -> None: ...


# ------------------------------------------------------------------------------------------ firmware protocol


def check_any_buffer(data: bytes) -> None:
    """bleak hands notifications over as bytearray: every decoder gives the same answer for bytes, bytearray
    and memoryview (or the same error class and field)."""
    from firmware_protocol.control import decode_control, decode_reply
    from firmware_protocol.errors import ProtocolError
    from firmware_protocol.packet import decode_packet
    from firmware_protocol.sensor_info import decode_sensor_info

    for decode in (decode_packet, decode_sensor_info, decode_control, decode_reply):
        answers: list[object] = []
        for buffer in (bytes(data), bytearray(data), memoryview(data)):
            try:
                answers.append(decode(buffer))  # type: ignore[arg-type]
            except ProtocolError as exc:
                answers.append((type(exc), exc.field))
        assert answers[0] == answers[1] == answers[2], (decode.__name__, data.hex(), answers)


def check_packet_header(data: bytes) -> None:
    """The worker's fast packet check accepts exactly what `decode_packet` accepts, with the same header."""
    from firmware_protocol.errors import ProtocolError
    from firmware_protocol.packet import decode_packet
    from firmware_protocol.packet_arrays import packet_header

    try:
        p = decode_packet(data)
        verdict: Any = (p.sample_count, p.sequence, p.timestamp_us, p.acc_scale_mps2, p.gyr_scale_dps)
    except ProtocolError:
        verdict = None
    assert packet_header(data) == verdict, data.hex()


def check_advertised_name(name: str) -> None:
    """A name heard on the air: None, or a serial the sensor info could carry (1..16 printable ASCII)."""
    from firmware_protocol.gatt import serial_from_advertised_name

    serial = serial_from_advertised_name(name)
    assert serial is None or (1 <= len(serial) <= 16 and all(0x20 <= ord(c) <= 0x7E for c in serial)), name


def check_protocol_cli(text: str) -> None:
    """`gaitsym protocol decode HEX`: bad hex is a ValueError (the CLI's BadHex); any bytes give a JSON-ready
    answer, never an exception."""
    from firmware_protocol.cli import decode_hex, parse_hex

    try:
        data = parse_hex(text)
    except ValueError:
        return
    for kind in ("auto", "imu", "sensor-info", "control", "control-reply"):
        result, _ = decode_hex(data, kind)
        json.dumps(result)


def framed_packets() -> st.SearchStrategy[bytes]:
    """IMU packets with the right length and CRC and any header value (flags, ranges, counts that disagree)."""

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        n = draw(st.integers(0, 21))
        body = bytes([draw(st.sampled_from((1, 1, 1, 0, 2, 255))), draw(st.integers(0, 255))])
        body += bytes([draw(st.sampled_from((n, n, draw(st.integers(0, 255))))), draw(st.integers(0, 255))])
        body += draw(st.binary(min_size=8 + 12 * n, max_size=8 + 12 * n))
        data = body + struct.pack("<H", _crc(body))
        return data[: draw(st.sampled_from((len(data), len(data), draw(st.integers(0, len(data))))))]

    return build()


def framed_sensor_infos() -> st.SearchStrategy[bytes]:
    """30-byte sensor infos with any field value (placement, rate, ranges, samples per packet, serial bytes)."""

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        serial = draw(st.binary(min_size=16, max_size=16) | st.sampled_from((b"GS-1" + bytes(12), b"\x7f" * 16)))
        return (
            struct.pack(
                "<BBHBB3BBI",
                draw(st.sampled_from((1, 1, 0, 2))),
                draw(st.integers(0, 255)),
                draw(st.sampled_from((0, 1, 100, 1000, 1001, 65535))),
                draw(st.integers(0, 255)),
                draw(st.integers(0, 255)),
                *draw(st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255))),
                draw(st.sampled_from((0, 0, 1, 255))),
                draw(st.sampled_from((0, 2**32 - 1))),
            )
            + serial
        )

    return build()


def _crc(data: bytes) -> int:
    import binascii

    return binascii.crc_hqx(data, 0xFFFF)


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
    link = GatewayLink()
    with tempfile.TemporaryDirectory() as folder:
        gateway = Gateway(
            GatewayConfig(subject="F001", placements=("pelvis",), batch_s=0.2, time_sync_every_s=0.0),
            _OneSensor(info),  # type: ignore[arg-type]
            link,  # type: ignore[arg-type]
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


# ------------------------------------------------------------------------------------------ the catalogue


@dataclass(frozen=True)
class Target:
    """One decoder under fuzz: ``open(folder)`` returns (strategy, check, close)."""

    name: str
    open: Callable[[Path], tuple[st.SearchStrategy[Any], Callable[[Any], None], Callable[[], None]]]


def _stateless(strategy: Callable[[], st.SearchStrategy[Any]], check: Callable[[Any], None]) -> Any:
    return lambda folder: (strategy(), check, lambda: None)


def _worker_turn(folder: Path) -> tuple[st.SearchStrategy[Any], Callable[[Any], None], Callable[[], None]]:
    turn = WorkerTurn(folder)
    return worker_payloads(), turn.check, turn.close


def _gateway_inbox(folder: Path) -> tuple[st.SearchStrategy[Any], Callable[[Any], None], Callable[[], None]]:
    inbox = GatewayInbox(folder)
    return gateway_payloads(), inbox.check, inbox.close


def _recording(folder: Path) -> tuple[st.SearchStrategy[Any], Callable[[Any], None], Callable[[], None]]:
    rec = RecordingFolder(folder)
    return rec.payloads(), rec.check, rec.close


TARGETS = (
    Target("uplink envelope decode", _stateless(envelope_payloads, check_envelope)),
    Target("worker decode_message + batch_samples", _stateless(worker_payloads, check_worker_decode)),
    Target("worker turn (decode, store, quarantine, ack)", _worker_turn),
    Target("gateway cmd and ack handling", _gateway_inbox),
    Target("recording folder reader", _recording),
    Target(
        "firmware decoders on bytes/bytearray/memoryview", _stateless(lambda: st.binary(max_size=260), check_any_buffer)
    ),
    Target("worker packet_header vs decode_packet", _stateless(framed_packets, check_packet_header)),
    Target("firmware sensor info fields", _stateless(framed_sensor_infos, check_any_buffer)),
    Target(
        "advertised name",
        _stateless(
            lambda: st.text(max_size=40) | st.just("gaitsym-") | st.text().map(lambda t: "gaitsym-" + t),
            check_advertised_name,
        ),
    ),
    Target(
        "protocol decode CLI hex",
        _stateless(lambda: st.text(alphabet="0123456789abcdefABCDEFx: \n\t-é", max_size=120), check_protocol_cli),
    ),
    Target("gateway on a buggy sensor's packets", _stateless(packet_streams, check_gateway_packet_stream)),
)
