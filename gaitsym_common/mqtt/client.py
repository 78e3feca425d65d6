"""MQTT behind five methods (connect, publish, subscribe, events, close); paho-mqtt 2.x wired in one place.

paho runs its network loop in its own thread; its callbacks only convert to `MqttEvent`s and enqueue them
(bounded, thread-safe); the gateway drains them in its own loop. paho's in-memory QoS 1 queue is never
relied on: the gateway publishes only while connected and its durable outbox re-sends whatever the worker
has not acknowledged (paho keeps unacknowledged QoS 1 messages in memory only: its `max_queued_messages_set`
documentation; nothing survives a restart).

Session: a fixed client id with ``clean_session=False``, so acks and commands sent while the gateway is
offline wait for it at the broker (and survive a broker restart with persistence on). The last will is the
retained ``offline`` status.

TLS and credentials: one rule for every gaitsym MQTT client (gateway, worker, session command), in
`apply_tls_and_credentials`: the broker URL's scheme decides (``mqtts://`` TLS, ``mqtt://`` plain); a CA file
only chooses whom to trust (default: the system's CA store), and TLS files given with a plain URL are refused
(`MqttSettings` raises), never silently ignored nor taken as a reason to switch TLS on.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gaitsym_common.errors import CommonError
from gaitsym_common.redaction import redact_url

log = logging.getLogger(__name__)


class MqttError(CommonError):
    """Root of the MQTT link's errors."""


class MqttRefused(MqttError):
    """The broker refused us (bad credentials, not authorised): retrying the same will not help."""


def is_retryable(exc: BaseException) -> bool:
    """Pure retry-or-drop rule: refused credentials are not retried; network trouble is."""
    if isinstance(exc, MqttRefused):
        return False
    return isinstance(exc, MqttError | OSError | TimeoutError | ConnectionError)


@dataclass(frozen=True)
class MqttSettings:
    """Where and how to reach the broker. Build it with `settings_from_url` (the scheme sets ``tls``)."""

    host: str = "127.0.0.1"
    port: int = 1883
    client_id: str = "gaitsym-gateway"
    username: str | None = None
    password: str | None = None
    tls_ca_file: str | None = None
    """CA certificate(s) the broker's certificate is verified against (TLS only; default the system's store)."""
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    tls: bool = False
    """TLS on (``mqtts://``); off (``mqtt://``) whatever else is set."""
    keepalive_s: int = 30
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    clean_session: bool = False
    session_expiry_s: int | None = None
    """MQTT 5 session expiry interval, s, for clients that speak MQTT 5 (the worker); None: not used."""

    def __post_init__(self) -> None:
        tls_files = [
            name
            for name, value in (
                ("tls_ca_file", self.tls_ca_file),
                ("tls_cert_file", self.tls_cert_file),
                ("tls_key_file", self.tls_key_file),
            )
            if value is not None
        ]
        if tls_files and not self.tls:
            raise MqttError(
                f"{', '.join(tls_files)} given for a plain broker connection: TLS is chosen by the broker URL "
                "(mqtts://HOST[:PORT]), the CA file only chooses whom to trust"
            )
        if self.tls_key_file is not None and self.tls_cert_file is None:
            raise MqttError("tls_key_file given without tls_cert_file (the key of which client certificate?)")
        if self.session_expiry_s is not None and not 0 <= self.session_expiry_s <= 0xFFFFFFFE:
            raise MqttError(f"session_expiry_s {self.session_expiry_s}: expected 0 to 4294967294 s")


def apply_tls_and_credentials(client: paho.Client, settings: MqttSettings) -> None:
    """The one rule for TLS and credentials of every gaitsym paho client: user name/password when given; TLS
    exactly when ``settings.tls`` (the ``mqtts://`` scheme), verifying the broker's certificate and host name
    against ``tls_ca_file`` (else the system's CA store), with the client certificate when given."""
    if settings.username is not None:
        client.username_pw_set(settings.username, settings.password)
    if settings.tls:
        client.tls_set(
            ca_certs=settings.tls_ca_file,
            certfile=settings.tls_cert_file,
            keyfile=settings.tls_key_file,
            cert_reqs=ssl.CERT_REQUIRED,
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )


MQTT_SUCCESS = paho.MQTT_ERR_SUCCESS
"""What paho's ``publish(...).rc`` and ``disconnect()`` return when the message or packet was handed over."""

Callback = Callable[..., None]


def make_paho_client(
    settings: MqttSettings,
    *,
    mqtt5: bool = False,
    manual_ack: bool = False,
    reconnecting: bool = False,
    max_inflight: int | None = None,
    on_connect: Callback | None = None,
    on_disconnect: Callback | None = None,
    on_subscribe: Callback | None = None,
    on_message: Callback | None = None,
) -> paho.Client:
    """A paho 2.x client (VERSION2 callbacks) for ``settings.client_id``, TLS and credentials by
    `apply_tls_and_credentials`, with the given callbacks. MQTT 3.1.1 with ``clean_session=settings.clean_session``,
    or MQTT 5 (``mqtt5``), whose clean start and session expiry travel with the CONNECT instead
    (`connect_properties`, ``clean_start=`` of ``connect_async``). ``manual_ack``: PUBACK only on ``client.ack``.
    ``reconnecting``: a long-lived client, reconnecting by itself within ``settings.reconnect_min_s`` ..
    ``reconnect_max_s`` (whole seconds, at least 1). ``max_inflight``: unacknowledged QoS 1 publishes at once."""
    if mqtt5:
        c = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=settings.client_id, protocol=paho.MQTTv5, manual_ack=manual_ack
        )
    else:
        c = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            clean_session=settings.clean_session,
            protocol=paho.MQTTv311,
            manual_ack=manual_ack,
        )
    apply_tls_and_credentials(c, settings)
    if reconnecting:
        c.reconnect_delay_set(int(max(1, settings.reconnect_min_s)), int(max(1, settings.reconnect_max_s)))
    if max_inflight is not None:
        c.max_inflight_messages_set(max_inflight)
    if on_connect is not None:
        c.on_connect = on_connect
    if on_disconnect is not None:
        c.on_disconnect = on_disconnect
    if on_subscribe is not None:
        c.on_subscribe = on_subscribe
    if on_message is not None:
        c.on_message = on_message
    return c


def connect_properties(session_expiry_s: int, receive_maximum: int) -> Properties:
    """MQTT 5 CONNECT properties: how long the broker keeps the session after the connection dies, s, and how
    many unacknowledged QoS 1 deliveries it may have in flight to this client."""
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = session_expiry_s
    properties.ReceiveMaximum = receive_maximum
    return properties


def end_session_properties() -> Properties:
    """MQTT 5 DISCONNECT properties that end the session at once (session expiry 0)."""
    properties = Properties(PacketTypes.DISCONNECT)
    properties.SessionExpiryInterval = 0
    return properties


@dataclass(frozen=True, slots=True)
class Connected:
    session_present: bool


@dataclass(frozen=True, slots=True)
class Disconnected:
    reason: str


@dataclass(frozen=True, slots=True)
class Incoming:
    topic: str
    payload: bytes


MqttEvent = Connected | Disconnected | Incoming


class MqttLink(Protocol):
    def connect(self, will: tuple[str, bytes] | None = None) -> None: ...
    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> bool: ...
    def subscribe(self, topics: list[str], qos: int = 1) -> None: ...
    def events(self) -> list[MqttEvent]: ...
    def close(self, last_words: tuple[str, bytes] | None = None) -> None: ...
    @property
    def connected(self) -> bool: ...


class PahoLink:
    """`MqttLink` on paho-mqtt 2.x (VERSION2 callbacks, MQTT 3.1.1, loop in paho's thread)."""

    def __init__(self, settings: MqttSettings, max_events: int = 100_000, wake: Any = None) -> None:
        self.settings = settings
        self._events: deque[MqttEvent] = deque()
        self._max_events = max_events
        self._lock = threading.Lock()
        self._wake = wake  # optional callable to nudge the gateway loop
        self._subscriptions: list[tuple[str, int]] = []
        self._connected = False
        self.dropped_events = 0
        self._client = make_paho_client(
            settings,
            reconnecting=True,
            max_inflight=100,
            on_connect=self._on_connect,
            on_disconnect=self._on_disconnect,
            on_message=self._on_message,
        )

    # -------------------------------------------------------------------- callbacks: convert + enqueue

    def _enqueue(self, event: MqttEvent) -> None:
        with self._lock:
            if len(self._events) >= self._max_events:
                self.dropped_events += 1
                return
            self._events.append(event)
        if self._wake is not None:
            self._wake()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            self._enqueue(Disconnected(f"refused: {reason}"))
            return
        self._connected = True
        if self._subscriptions:
            client.subscribe(self._subscriptions)
        self._enqueue(Connected(bool(getattr(flags, "session_present", False))))

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self._connected = False
        self._enqueue(Disconnected(str(reason)))

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        self._enqueue(Incoming(msg.topic, bytes(msg.payload)))

    # -------------------------------------------------------------------- the interface

    def connect(self, will: tuple[str, bytes] | None = None) -> None:
        if will is not None:
            self._client.will_set(will[0], will[1], qos=1, retain=True)
        self._client.connect_async(self.settings.host, self.settings.port, keepalive=self.settings.keepalive_s)
        self._client.loop_start()

    def subscribe(self, topics: list[str], qos: int = 1) -> None:
        self._subscriptions = [(t, qos) for t in topics]
        if self._connected:
            self._client.subscribe(self._subscriptions)

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> bool:
        """Hand a message to paho; False when not connected (nothing queued: the outbox keeps it)."""
        if not self._connected:
            return False
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        return info.rc == MQTT_SUCCESS

    def events(self) -> list[MqttEvent]:
        with self._lock:
            out = list(self._events)
            self._events.clear()
        return out

    @property
    def connected(self) -> bool:
        return self._connected

    def close(self, last_words: tuple[str, bytes] | None = None) -> None:
        if last_words is not None and self._connected:
            self._client.publish(last_words[0], last_words[1], qos=1, retain=True).wait_for_publish(2.0)
        self._client.disconnect()
        self._client.loop_stop()


def settings_from_url(url: str, **overrides: Any) -> MqttSettings:
    """MqttSettings from ``mqtt://HOST[:PORT]`` (plain, 1883) or ``mqtts://HOST[:PORT]`` (TLS, 8883; the system's
    CA store unless ``tls_ca_file`` is given). The scheme alone decides TLS (no ``tls`` override). MqttError
    naming the URL when it is not one of those, or when TLS files come with a plain URL."""
    from urllib.parse import urlsplit

    if "tls" in overrides:
        raise TypeError("settings_from_url: TLS follows the URL scheme (mqtts://), not a `tls` argument")
    parts = urlsplit(url)
    shown = redact_url(url)  # never echo a password
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise MqttError(f"broker URL {shown!r}: expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]")
    if "@" in parts.netloc or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise MqttError(
            f"broker URL {shown!r}: expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT] (user name and password "
            "are settings of their own)"
        )
    tls = parts.scheme == "mqtts"
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError as exc:
        raise MqttError(f"broker URL {shown!r}: {exc}") from exc
    fields: dict[str, Any] = {"host": parts.hostname, "port": port, "tls": tls}
    fields.update({k: v for k, v in overrides.items() if v is not None})
    return MqttSettings(**fields)
