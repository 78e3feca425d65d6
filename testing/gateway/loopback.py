"""In-memory `MqttLink` for benches and fast tests: every durable message is acknowledged on the next step,
and every published message is kept (decoded) for inspection."""

from __future__ import annotations

from gaitsym_common.mqtt.client import Connected, Incoming, MqttEvent
from gaitsym_common.uplink import envelope as env
from gaitsym_common.uplink.topics import parse_topic, topic


class LoopbackLink:
    def __init__(self, subject: str, keep: bool = True) -> None:
        self.subject = subject
        self._events: list[MqttEvent] = [Connected(False)]
        self.count = 0
        self.keep = keep
        self.messages: list[env.Message] = []

    def connect(self, will: tuple[str, bytes] | None = None) -> None: ...
    def subscribe(self, topics: list[str], qos: int = 1) -> None: ...
    def close(self, last_words: tuple[str, bytes] | None = None) -> None: ...

    @property
    def connected(self) -> bool:
        return True

    def publish(self, topic_: str, payload: bytes, qos: int = 1, retain: bool = False) -> bool:
        self.count += 1
        if parse_topic(topic_).kind in ("raw", "gap", "marker"):
            msg = env.decode(payload)
            if self.keep:
                self.messages.append(msg)
            ack = env.Ack("ack", self.subject, (msg.msg_id,))  # type: ignore[union-attr]
            self._events.append(Incoming(topic(self.subject, "ack"), env.encode(ack)))
        return True

    def events(self) -> list[MqttEvent]:
        out, self._events = self._events, []
        return out
