"""In-memory stand-ins for the gateway's outside world, for benches and fast tests: its MQTT link (what the
gateway publishes is kept; `LoopbackLink` also acknowledges every durable message on the next step) and a
transport with no sensors."""

from __future__ import annotations

from gaitsym_common.mqtt.client import Connected, Incoming, MqttEvent
from gaitsym_common.uplink import envelope as env
from gaitsym_common.uplink.topics import DURABLE_KINDS, parse_topic, topic
from sensor_gateway.transport.base import EventQueue


def unbundled(topic_: str, payload: bytes) -> list[tuple[str, bytes]]:
    """The messages one MQTT publish carries: a bundle's parts (topic, payload), or the publish itself."""
    if parse_topic(topic_).kind != "bundle":
        return [(topic_, payload)]
    bundle = env.decode(payload)
    assert isinstance(bundle, env.Bundle)
    return [(p.topic, p.payload) for p in bundle.parts]


class InMemoryLink:
    """An always-connected `MqttLink` in memory: it keeps what the gateway publishes (`published`: topic,
    payload, a bundle's parts one by one; unless ``keep`` is False) and hands the gateway what the test queues in
    `incoming`. With ``acknowledge`` (a subject), every durable message of it is acknowledged on the next step, as
    a worker that stored it would, and kept decoded in `messages` (unless ``keep`` is False)."""

    def __init__(self, acknowledge: str | None = None, keep: bool = True) -> None:
        self.incoming: list[MqttEvent] = [Connected(False)]
        self.published: list[tuple[str, bytes]] = []
        self.messages: list[env.Message] = []
        self.count = 0
        """MQTT messages published (a bundle counts once)."""
        self.bundles = 0
        """Of ``count``: bundles."""
        self.acknowledge = acknowledge
        self.keep = keep

    def connect(self, will: tuple[str, bytes] | None = None) -> None: ...
    def subscribe(self, topics: list[str], qos: int = 1) -> None: ...
    def close(self, last_words: tuple[str, bytes] | None = None) -> None: ...

    @property
    def connected(self) -> bool:
        return True

    def publish(self, topic_: str, payload: bytes, qos: int = 1, retain: bool = False) -> bool:
        self.count += 1
        parts = unbundled(topic_, payload)
        self.bundles += parts[0][0] != topic_
        for name, body in parts:
            if self.keep:
                self.published.append((name, body))
            if self.acknowledge is not None and parse_topic(name).kind in DURABLE_KINDS:
                msg = env.decode(body)
                if self.keep:
                    self.messages.append(msg)
                ack = env.Ack("ack", self.acknowledge, (msg.msg_id,))  # type: ignore[union-attr]
                self.incoming.append(Incoming(topic(self.acknowledge, "ack"), env.encode(ack)))
        return True

    def events(self) -> list[MqttEvent]:
        out, self.incoming = self.incoming, []
        return out


class LoopbackLink(InMemoryLink):
    """An `InMemoryLink` that acknowledges `subject`'s durable messages."""

    def __init__(self, subject: str, keep: bool = True) -> None:
        super().__init__(acknowledge=subject, keep=keep)


class NoSensors:
    """A transport whose sensors never connect: the gateway's MQTT side alone is under test."""

    def open(self, events: EventQueue) -> None: ...
    def connect(self, placement: str) -> None: ...
    def disconnect(self, placement: str) -> None: ...
    def start_streaming(self, placement: str) -> None: ...
    def stop_streaming(self, placement: str) -> None: ...
    def close(self) -> None: ...
