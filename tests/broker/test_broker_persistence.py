"""The broker the tests and the demo start keeps its persistence: QoS 1 messages queued for offline persistent
sessions (a gateway's MQTT 3.1.1 session, a worker's MQTT 5 session with an expiry) survive a graceful restart;
after a SIGKILL, Mosquitto comes back with its last save (older than what it had), and the gateway's outbox
replays what that lost, so nothing is lost end to end."""

from __future__ import annotations

import threading
import time
from typing import Any

import paho.mqtt.client as paho
from gateway.test_gateway_e2e import SUBJECT, _check_exactly_once, _drain, _setup
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gaitsym_common.uplink import envelope as env
from sensor_gateway.core import run_for
from testing.gateway.worker_stub import AckingWorker
from testing.servers import Mosquitto

WAIT_S = 15.0


def saved_cleanly(broker: Mosquitto) -> None:
    assert broker.persistence_path.is_file(), "Mosquitto wrote no persistence file"
    log = broker.log_path.read_text()
    assert "Permission denied" not in log and "Error saving" not in log, log[-2000:]


class Subscriber:
    """A persistent subscriber: MQTT 3.1.1 clean session off (as the gateway) or MQTT 5 clean start off with a
    session expiry (as the worker)."""

    def __init__(self, broker: Mosquitto, client_id: str, v5: bool) -> None:
        self.broker, self.client_id, self.v5 = broker, client_id, v5
        self.lock = threading.Lock()
        self.received: list[bytes] = []
        self.session_present: list[bool] = []
        self.subscribed = threading.Event()

    def connect(self) -> Subscriber:
        if self.v5:
            c = paho.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=paho.MQTTv5)
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 600
            c.connect("127.0.0.1", self.broker.port, clean_start=False, properties=props)
        else:
            c = paho.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=False)
            c.connect("127.0.0.1", self.broker.port)
        c.on_connect = self._on_connect
        c.on_message = self._on_message
        c.on_subscribe = lambda *_: self.subscribed.set()
        self.client = c
        c.loop_start()
        return self

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self.session_present.append(bool(flags.session_present))

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        with self.lock:
            self.received.append(bytes(msg.payload))

    def subscribe(self, name: str) -> None:
        self.client.subscribe(name, qos=1)
        assert self.subscribed.wait(WAIT_S)

    def disconnect(self) -> None:  # a plain DISCONNECT: the session stays (MQTT 5: for its expiry interval)
        self.client.disconnect()
        self.client.loop_stop()

    def wait_for(self, n: int) -> list[bytes]:
        deadline = time.monotonic() + WAIT_S
        while len(self.received) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.received


def test_queued_qos1_messages_for_persistent_sessions_survive_a_graceful_broker_restart(mosquitto: Mosquitto) -> None:
    gateway_like = Subscriber(mosquitto, "gw-S001", v5=False).connect()
    gateway_like.subscribe("gaitsym/v1/S001/ack")
    worker_like = Subscriber(mosquitto, "worker-1", v5=True).connect()
    worker_like.subscribe("$share/gaitsym-workers/gaitsym/v1/+/raw/+")
    gateway_like.disconnect()
    worker_like.disconnect()
    publisher = paho.Client(CallbackAPIVersion.VERSION2, client_id="publisher")
    publisher.connect("127.0.0.1", mosquitto.port)
    publisher.loop_start()
    acks = [f"ack {i}".encode() for i in range(20)]
    batches = [f"batch {i}".encode() for i in range(20)]
    for a, b in zip(acks, batches, strict=True):
        publisher.publish("gaitsym/v1/S001/ack", a, qos=1).wait_for_publish(WAIT_S)
        publisher.publish("gaitsym/v1/S001/raw/pelvis", b, qos=1).wait_for_publish(WAIT_S)
    publisher.disconnect()
    publisher.loop_stop()

    mosquitto.stop()  # graceful: Mosquitto saves its sessions and their queues
    saved_cleanly(mosquitto)
    mosquitto.start()

    gateway_like.connect()
    worker_like.connect()
    try:
        assert gateway_like.wait_for(len(acks)) == acks
        assert worker_like.wait_for(len(batches)) == batches
        assert gateway_like.session_present[-1] and worker_like.session_present[-1]
    finally:
        gateway_like.disconnect()
        worker_like.disconnect()


def test_a_broker_killed_after_its_last_save_loses_nothing_end_to_end(tmp_path: Any, mosquitto: Mosquitto) -> None:
    """Save (graceful restart), stream while the worker is away (its queue grows), SIGKILL: the broker restarts
    from the save, without what it queued since; the gateway re-sends every unacknowledged batch (ack timeout
    5 s), the worker de-duplicates, and every sample arrives exactly once."""
    duration = 30.0
    worker = AckingWorker(mosquitto.port, SUBJECT)
    sensors, clock, transport, gw = _setup(tmp_path, mosquitto, duration)
    gw.start()
    try:
        run_for(gw, transport, clock, 8.0, speed=10.0)
        mosquitto.stop()
        saved_cleanly(mosquitto)
        saved_at = mosquitto.persistence_path.stat().st_mtime_ns
        mosquitto.start()
        run_for(gw, transport, clock, 6.0, speed=10.0)
        worker.client.disconnect()  # the worker away: its persistent session queues the gateway's batches
        worker.client.loop_stop()
        run_for(gw, transport, clock, 6.0, speed=10.0)
        mosquitto.kill()
        assert mosquitto.persistence_path.stat().st_mtime_ns == saved_at  # what was queued since is gone
        mosquitto.start()
        worker.client.reconnect()
        worker.client.loop_start()
        _drain(gw, transport, clock)
        time.sleep(0.5)
        _check_exactly_once(worker, sensors, duration)
        assert any(isinstance(m, env.Marker) and m.type == "session_start" for m in worker.messages)
    finally:
        gw.stop()
        worker.close()
    mosquitto.stop()
    saved_cleanly(mosquitto)
