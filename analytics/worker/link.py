"""The worker's MQTT side behind a small interface (`WorkerLink`); paho-mqtt 2.x wired in one place.

Session: a fixed client id per worker with ``clean_session=False`` (MQTT 3.1.1) and QoS 1, so messages
handed to a worker that is down (killed, restarting) wait for it at the broker, and a delivery it had not
acknowledged is delivered again when it reconnects. Acknowledgement is manual (``manual_ack``): the
broker's PUBACK is sent by the consumer only once the message is handled (raw data durably stored, a
marker analysed or deferred, a malformed payload quarantined), never by paho when the callback returns.

paho's callbacks only convert to events (`Delivery`, `Connected`, `Disconnected` from sensor_gateway.mqtt)
and enqueue them; the consumer (`analytics.worker.worker.Worker`) does the work in its own thread.
"""

from __future__ import annotations

import ssl
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from sensor_gateway.mqtt.client import Connected, Disconnected, MqttSettings


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message from the broker. ``token`` acknowledges it (`WorkerLink.ack`); ``redelivered`` is MQTT DUP."""

    topic: str
    payload: bytes
    token: tuple[int, int]
    """(connection generation, MQTT packet id): a packet id is only valid on the connection that carried it."""
    redelivered: bool = False


WorkerEvent = Delivery | Connected | Disconnected


class WorkerLink(Protocol):
    """What the worker needs from a broker."""

    def connect(self, subscriptions: list[str]) -> None: ...
    def wait(self, timeout_s: float) -> list[WorkerEvent]:
        """Events so far, waiting up to ``timeout_s`` seconds for the first one."""
        ...

    def ack(self, token: tuple[int, int]) -> None:
        """Send the broker's PUBACK for a delivery (no-op if its connection is gone: it will be redelivered)."""
        ...

    def publish(self, topic: str, payload: bytes) -> bool: ...
    def close(self) -> None: ...
    @property
    def connected(self) -> bool: ...


class PahoWorkerLink:
    """`WorkerLink` on paho-mqtt 2.x: persistent session, QoS 1, manual PUBACK, loop in paho's thread."""

    def __init__(self, settings: MqttSettings) -> None:
        self.settings = settings
        self._events: deque[WorkerEvent] = deque()
        self._cond = threading.Condition()
        self._generation = 0
        self._connected = False
        self._subscriptions: list[tuple[str, int]] = []
        c = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            clean_session=settings.clean_session,
            protocol=paho.MQTTv311,
            manual_ack=True,
        )
        if settings.username is not None:
            c.username_pw_set(settings.username, settings.password)
        if settings.tls_ca_file is not None:
            c.tls_set(
                ca_certs=settings.tls_ca_file,
                certfile=settings.tls_cert_file,
                keyfile=settings.tls_key_file,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        c.reconnect_delay_set(int(max(1, settings.reconnect_min_s)), int(max(1, settings.reconnect_max_s)))
        c.max_inflight_messages_set(100)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        self._client = c

    # ------------------------------------------------------------------ callbacks: convert + enqueue only

    def _put(self, event: WorkerEvent) -> None:
        with self._cond:
            self._events.append(event)
            self._cond.notify()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            self._put(Disconnected(f"refused: {reason}"))
            return
        with self._cond:
            self._generation += 1
            self._connected = True
        client.subscribe(self._subscriptions)
        self._put(Connected(bool(getattr(flags, "session_present", False))))

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        with self._cond:
            self._connected = False
        self._put(Disconnected(str(reason)))

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        self._put(Delivery(msg.topic, bytes(msg.payload), (self._generation, int(msg.mid)), bool(msg.dup)))

    # ------------------------------------------------------------------ the interface

    def connect(self, subscriptions: list[str]) -> None:
        self._subscriptions = [(t, 1) for t in subscriptions]
        self._client.connect_async(self.settings.host, self.settings.port, keepalive=self.settings.keepalive_s)
        self._client.loop_start()

    def wait(self, timeout_s: float) -> list[WorkerEvent]:
        with self._cond:
            if not self._events and timeout_s > 0:
                self._cond.wait(timeout_s)
            out = list(self._events)
            self._events.clear()
        return out

    def ack(self, token: tuple[int, int]) -> None:
        generation, mid = token
        with self._cond:
            current = self._connected and generation == self._generation
        if current:
            self._client.ack(mid, 1)

    def publish(self, topic: str, payload: bytes) -> bool:
        if not self._connected:
            return False
        return self._client.publish(topic, payload, qos=1).rc == paho.MQTT_ERR_SUCCESS

    @property
    def connected(self) -> bool:
        return self._connected

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
