"""The worker's MQTT side behind a small interface (`WorkerLink`), on the paho client that
`gaitsym_common.mqtt.client.make_paho_client` builds (the one module importing paho-mqtt).

Session: MQTT 5, a fixed client id per worker, ``clean_start=False`` and a bounded session expiry interval
(``MqttSettings.session_expiry_s``, default `SESSION_EXPIRY_S`), QoS 1. Messages handed to a worker that died
(killed, crashed) wait for it at the broker, and a delivery it had not acknowledged is delivered again, if it
comes back within the expiry interval. After that the broker forgets the session and its place in the shared
subscription, so the surviving workers get the whole load: a dead worker never keeps taking its round-robin
share (the gateways re-send what the forgotten session held, as for any unacknowledged message). A clean stop
(`close`) ends the session at once (DISCONNECT with session expiry 0) for the same reason. The worker speaks
MQTT 5 only for this; the global ``persistent_client_expiration`` of the broker is not the tool, it would also
drop the gateways' queued acks and commands. Receive Maximum 100 asks the broker for at most 100
unacknowledged deliveries in flight to one worker (what ``max_inflight_messages`` does for MQTT 3.1.1 clients).
Debian's Mosquitto 2.0.11 keeps to it only while nothing is acknowledged: once PUBACKs flow it sends past it
(measured: a subscriber acknowledging each message 1 s after it came held 750 unacknowledged at 280 messages a
second, 1,130 at 2 s; upstream fixed its in-flight quota accounting in 2.0.13). Nothing depends on the bound for
correctness, nor for memory: what waits for a turn is bounded by the consumer's carry (`carry`, which sheds past
it), and this queue holds what arrives between two of the consumer's steps (or, after a restart, what the broker
kept for the session: at most a session expiry's worth).

Acknowledgement is manual (``manual_ack``): the
broker's PUBACK is sent by the consumer only once the message is handled (raw data durably stored, a
marker analysed or deferred, a malformed payload quarantined), never by paho when the callback returns.

paho's callbacks only convert to events (`Delivery`, `Connected`, `Disconnected` from gaitsym_common.mqtt)
and enqueue them; the consumer (`analytics.worker.worker.Worker`) does the work in its own thread.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

from gaitsym_common.mqtt.client import (
    MQTT_SUCCESS,
    Connected,
    Disconnected,
    MqttSettings,
    connect_properties,
    end_session_properties,
    make_paho_client,
)

SESSION_EXPIRY_S = 30
"""How long the broker keeps a worker's session after its connection dies, s: long enough for a crashed worker
restarted by systemd (a few seconds) to find its unacknowledged deliveries again, short enough that a dead
worker's round-robin share returns to the others within about one gateway ack timeout."""
RECEIVE_MAXIMUM = 100


Token = tuple[int, ...]
"""(connection generation, MQTT packet id), and for a part of a bundle its index (`bundles`)."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message from the broker. ``token`` acknowledges it (`WorkerLink.ack`); ``redelivered`` is MQTT DUP."""

    topic: str
    payload: bytes
    token: Token
    """(connection generation, MQTT packet id): a packet id is only valid on the connection that carried it; a
    bundle's part adds its index (`bundles.PartAcks` acknowledges the bundle once every part is)."""
    redelivered: bool = False


WorkerEvent = Delivery | Connected | Disconnected


class WorkerLink(Protocol):
    """What the worker needs from a broker."""

    def connect(self, subscriptions: list[str]) -> None: ...
    def wait(self, timeout_s: float) -> list[WorkerEvent]:
        """Events so far, waiting up to ``timeout_s`` seconds for the first one."""
        ...

    def ack(self, token: Token) -> None:
        """Send the broker's PUBACK for a delivery (no-op if its connection is gone: it will be redelivered)."""
        ...

    def publish(self, topic: str, payload: bytes) -> bool: ...
    def close(self) -> None: ...
    @property
    def connected(self) -> bool: ...


class PahoWorkerLink:
    """`WorkerLink` on paho-mqtt 2.x: MQTT 5 session with a bounded expiry, QoS 1, manual PUBACK, loop in
    paho's thread."""

    def __init__(self, settings: MqttSettings) -> None:
        self.settings = settings
        self._events: deque[WorkerEvent] = deque()
        self._cond = threading.Condition()
        self._generation = 0
        self.dropped_qos0 = 0
        """Deliveries published at QoS 0 (no gateway does), dropped unread."""
        self._connected = False
        self._subscriptions: list[tuple[str, int]] = []
        self.session_expiry_s = SESSION_EXPIRY_S if settings.session_expiry_s is None else settings.session_expiry_s
        self._client = make_paho_client(
            settings,
            mqtt5=True,
            manual_ack=True,
            reconnecting=True,
            max_inflight=100,
            on_connect=self._on_connect,
            on_disconnect=self._on_disconnect,
            on_message=self._on_message,
        )

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
            self._cond.notify_all()
        self._put(Disconnected(str(reason)))

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        if msg.qos == 0:
            # the uplink is QoS 1; a QoS 0 publish escapes the broker's in-flight limit (Receive Maximum), so
            # queueing it would let one client grow this queue without bound: dropped unread, counted
            self.dropped_qos0 += 1
            return
        self._put(Delivery(msg.topic, bytes(msg.payload), (self._generation, int(msg.mid)), bool(msg.dup)))

    # ------------------------------------------------------------------ the interface

    def connect(self, subscriptions: list[str]) -> None:
        self._subscriptions = [(t, 1) for t in subscriptions]
        properties = connect_properties(self.session_expiry_s, RECEIVE_MAXIMUM)
        # clean_start False on every connection, the first included: a restarted worker resumes its session
        self._client.connect_async(
            self.settings.host,
            self.settings.port,
            keepalive=self.settings.keepalive_s,
            clean_start=self.settings.clean_session,
            properties=properties,
        )
        self._client.loop_start()

    def wait(self, timeout_s: float) -> list[WorkerEvent]:
        with self._cond:
            if not self._events and timeout_s > 0:
                self._cond.wait(timeout_s)
            out = list(self._events)
            self._events.clear()
        return out

    def wake(self) -> None:
        """Make a `wait` in progress return now (another thread finished something the consumer waits for)."""
        with self._cond:
            self._cond.notify_all()

    def ack(self, token: Token) -> None:
        generation, mid = token[0], token[1]
        with self._cond:
            current = self._connected and generation == self._generation
        if current:
            self._client.ack(mid, 1)

    def publish(self, topic: str, payload: bytes) -> bool:
        if not self._connected:
            return False
        return self._client.publish(topic, payload, qos=1).rc == MQTT_SUCCESS

    @property
    def connected(self) -> bool:
        return self._connected

    def close(self) -> None:
        """Disconnect and end the session at once: the broker stops routing this worker's share to it."""
        properties = end_session_properties()
        with self._cond:
            connected = self._connected
        if connected and self._client.disconnect(properties=properties) == MQTT_SUCCESS:
            # paho's thread sends the DISCONNECT: wait for it before stopping that thread, or the broker sees a
            # dropped connection and keeps the session for its expiry interval
            with self._cond:
                self._cond.wait_for(lambda: not self._connected, timeout=5.0)
        else:
            self._client.disconnect()
        self._client.loop_stop()
