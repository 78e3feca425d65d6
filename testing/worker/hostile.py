"""Helpers of the hostile-input and fairness tests (and bench/worker_fairness.py): crafted uplink payloads (valid
batches of a synthetic sensor, and poison), a plain MQTT publisher, a worker running in a thread of the test
process, home sessions of any subject and kit seed, and an in-memory `WorkerLink` for turn-level unit tests."""

from __future__ import annotations

import json
import random
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from analytics.stores import Store, open_store
from analytics.stores.errors import StoreUnavailable
from analytics.worker.link import Delivery, PahoWorkerLink, Token, WorkerEvent
from analytics.worker.worker import Worker, WorkerConfig
from firmware_protocol.packet import ImuPacket, encode_packet
from gaitsym_common.mqtt import MqttSettings, PahoLink
from gaitsym_common.uplink import envelope as env
from gaitsym_common.uplink.topics import topic
from sensor_gateway.core import Gateway, GatewayConfig
from sensor_gateway.outbox import Outbox
from sensor_gateway.timing import VirtualHostClock
from simulator.virtual_kit_source import virtual_kit
from testing.worker.harness import UTC0, HomeSession

SAMPLES_PER_PACKET = 10


def raw_batch(
    subject: str,
    seq_first: int,
    n_packets: int = 10,
    serial: str = "GS-SYN-1",
    boot_epoch: int = 7,
    placement: str = "pelvis",
    samples_per_packet: int = SAMPLES_PER_PACKET,
) -> env.RawBatch:
    """A valid raw batch of a synthetic 100-Hz sensor: ``n_packets`` x ``samples_per_packet`` samples from
    ``seq_first``, sensor time 10 ms per sample, UTC from yesterday 00:00 (inside the raw retention)."""
    packets = tuple(
        encode_packet(
            ImuPacket(
                sequence=(seq_first + k * samples_per_packet) % 2**32,
                timestamp_us=(10_000 * (seq_first + k * samples_per_packet)) % 2**32,
                acc_range_g=16,
                gyr_range_dps=2000,
                samples=tuple((k, 0, 2048, 0, 0, i) for i in range(samples_per_packet)),
            )
        )
        for k in range(n_packets)
    )
    n = n_packets * samples_per_packet
    drift_ppm = 20.0
    return env.RawBatch(
        kind="raw",
        msg_id=env.raw_batch_id(serial, boot_epoch, seq_first),
        subject=subject,
        session=None,
        placement=placement,
        sensor=env.SensorIdentity(serial, boot_epoch, 100.0, 16, 2000, "1.0.0"),
        seq_first=seq_first,
        seq_last=seq_first + n - 1,
        n_samples=n,
        t_sensor_us_first=10_000 * seq_first,
        clock=env.ClockMapping(True, 0, UTC0, 1.0 / (1.0 + drift_ppm * 1e-6), drift_ppm, 0.4),
        packets=packets,
    )


def raw_topic(subject: str, placement: str = "pelvis") -> str:
    return topic(subject, "raw", placement)


def poison(subject: str) -> dict[str, bytes]:
    """Poison payloads for one subject's raw topic, by name (each malformed in its own way)."""
    valid = json.loads(env.encode(raw_batch(subject, 1_000)))

    def edited(**changes: Any) -> bytes:
        doc = json.loads(json.dumps(valid))
        for key, value in changes.items():
            block, _, name = key.rpartition(".")
            (doc[block] if block else doc)[name] = value
        doc["msg_id"] = env.raw_batch_id(doc["sensor"]["serial"], doc["sensor"]["boot_epoch"], doc["seq_first"])
        return json.dumps(doc, separators=(",", ":")).encode()

    text = json.dumps(valid, separators=(",", ":"))
    return {
        "deep nesting": ('{"v":1,"kind":"raw","x":' + "[" * 30_000 + "]" * 30_000 + "}").encode(),
        "5000-digit integer": text.replace('"seq_first":1000', '"seq_first":' + "9" * 5_000).encode(),
        "seq_first 2**70": edited(seq_first=2**70, seq_last=2**70 + 99),
        "ref_utc_s 1e300": edited(**{"clock.ref_utc_s": 1e300}),
        "boot_epoch 2**64": edited(**{"sensor.boot_epoch": 2**64}),
        "clock far from the ticks": edited(**{"clock.ref_sensor_us": 2**52}),
    }


class Publisher:
    """A plain MQTT client (QoS 1) publishing whatever a test wants, and collecting what it subscribes to."""

    def __init__(self, port: int, client_id: str, subscribe: tuple[str, ...] = ()) -> None:
        self.received: deque[tuple[str, bytes]] = deque()
        self._client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self._client.on_message = lambda c, u, m: self.received.append((m.topic, bytes(m.payload)))
        self._client.connect("127.0.0.1", port)
        self._client.loop_start()
        for t in subscribe:
            self._client.subscribe(t, qos=1)[1]
        time.sleep(0.3)  # subscriptions in place before anything is published

    def publish(self, topic_: str, payload: bytes, wait: bool = True, qos: int = 1) -> None:
        info = self._client.publish(topic_, payload, qos=qos)
        if wait:
            info.wait_for_publish(10)

    def acked_ids(self, subject: str) -> set[str]:
        ids: set[str] = set()
        for t, payload in list(self.received):
            if t == topic(subject, "ack"):
                message = env.decode(payload)
                assert isinstance(message, env.Ack)
                ids.update(message.msg_ids)
        return ids

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()


@contextmanager
def worker_thread(port: int, store_path: Path, quarantine_path: Path, **config: Any) -> Iterator[Worker]:
    """A production `Worker` on a real broker and the embedded store, run in a thread of this process."""
    worker = Worker(
        WorkerConfig(worker_id="worker-t", quarantine_path=str(quarantine_path), **config),
        PahoWorkerLink(MqttSettings(port=port, client_id="worker-t", reconnect_max_s=1)),
        open_store(str(store_path)),
    )
    stop = threading.Event()
    worker.start()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    time.sleep(1.0)  # connected and subscribed before data flows
    try:
        yield worker
        assert thread.is_alive(), "the worker's thread died"
    finally:
        stop.set()
        thread.join(10)
        worker.close()


def kit_session(
    tmp: Path, port: int, subject: str, seed: int, minutes: float = 0.5, utc0: float = UTC0, **gw: Any
) -> HomeSession:
    """One subject's home session (production gateway core, virtual kit of ``seed``: the same seed means the same
    sensor serials, boot epochs and sequence numbers, as two kits with the default seed, or one kit handed from
    one patient to the next)."""
    clock = VirtualHostClock(start_s=1000.0, utc_at_start_s=utc0)
    kit = virtual_kit(clock, seed=seed, minutes=minutes, script="walk")
    link = PahoLink(MqttSettings(port=port, client_id=f"gw-{subject}", reconnect_max_s=1))
    config = GatewayConfig(subject=subject, **{"ack_timeout_s": 60.0, "window_s": 5.0, "still_timeout_s": 600.0, **gw})
    gateway = Gateway(config, kit.transport, link, Outbox(tmp / f"outbox-{subject}.db", synchronous="NORMAL"), clock)
    gateway._rng = random.Random(seed)
    gateway.start()
    return HomeSession(subject, kit, clock, gateway)


def assert_every_sample_stored(store_path: Path, sessions: list[HomeSession], at_least: int = 2_000) -> None:
    """Every sample each session's sensors produced is in the embedded store at ``store_path`` (more than
    ``at_least`` per sensor: the session streamed)."""
    store = open_store(str(store_path))
    try:
        for s in sessions:
            for placement, (first, last, n) in stored_range(store, s).items():
                assert n == last - first + 1 > at_least, (s.subject, placement, first, last, n)
    finally:
        store.close()


class DownStore:
    """A real store whose raw writes are refused while ``down`` (a database restarting)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.down = True

    def write_raw_many(self, batches: list[Any]) -> Any:
        if self.down:
            raise StoreUnavailable("the server is restarting")
        return self.store.write_raw_many(batches)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def stored_range(store: Store, session: HomeSession) -> dict[str, tuple[int, int, int]]:
    """placement -> (first seq the sensor produced, last, samples stored in that range) for one home session."""
    out = {}
    for placement, sensor in session.gateway.sensors.items():
        assert sensor.info is not None and sensor.stream is not None and sensor.stream.last_seq is not None
        info = sensor.info
        first = session.kit.sensors[placement].sequence_start
        last = sensor.stream.last_seq
        n = store.count_raw(session.subject, placement, info.serial, info.boot_epoch, first, last)
        out[placement] = (first, last, n)
    return out


@dataclass
class ScriptedLink:
    """An in-memory `WorkerLink` for turn-level unit tests: ``wait`` hands out what a test queued; acks and
    publishes are recorded."""

    queued: list[WorkerEvent] = field(default_factory=list)
    acked: list[Token] = field(default_factory=list)
    published: list[tuple[str, bytes]] = field(default_factory=list)
    _next: int = 0

    def deliver(self, topic_: str, payload: bytes) -> tuple[int, int]:
        self._next += 1
        token = (1, self._next)
        self.queued.append(Delivery(topic_, payload, token))
        return token

    def connect(self, subscriptions: list[str]) -> None:
        pass

    def wait(self, timeout_s: float) -> list[WorkerEvent]:
        out, self.queued = self.queued, []
        return out

    def ack(self, token: Token) -> None:
        self.acked.append(token)

    def publish(self, topic_: str, payload: bytes) -> bool:
        self.published.append((topic_, payload))
        return True

    def close(self) -> None:
        pass

    @property
    def connected(self) -> bool:
        return True

    def acked_ids(self, subject: str) -> list[str]:
        ids: list[str] = []
        for t, payload in self.published:
            if t == topic(subject, "ack"):
                message = env.decode(payload)
                assert isinstance(message, env.Ack)
                ids.extend(message.msg_ids)
        return ids


class Clock:
    """A worker's monotonic clock that a test moves by hand, s."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def turn_config(quarantine_path: str, **config: Any) -> WorkerConfig:
    """A worker configuration for turn-level tests: live segments off unless asked, each step handling what was
    delivered, storing its raw batches before it returns and publishing its acks (no gathering: the clock moves
    only when a test moves it)."""
    steps = {"live_segments": False, "turn_gather_s": 0.0, "ack_every_s": 0.0, "raw_write_async": False}
    return WorkerConfig(quarantine_path=quarantine_path, **{**steps, **config})


def make_worker(tmp_path: Path, store: Store, link: ScriptedLink, clock: Clock | None = None, **config: Any) -> Worker:
    """A worker on a scripted link and a real store (`turn_config`)."""
    return Worker(
        turn_config(str(tmp_path / "quarantine.sqlite"), **config),
        link,  # type: ignore[arg-type]
        store,
        clock=clock or Clock(),
    )
