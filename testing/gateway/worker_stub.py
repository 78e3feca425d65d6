"""A minimal acknowledging subscriber playing the worker's role until the worker exists: stores (records)
every durable message, de-duplicates samples by (serial, boot epoch, seq) and acknowledges each msg_id."""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from firmware_protocol.packet import decode_packet
from gaitsym_common.uplink import envelope as env
from gaitsym_common.uplink.topics import topic


class AckingWorker:
    def __init__(self, port: int, subject: str, client_id: str = "test-worker") -> None:
        self.subject = subject
        self.lock = threading.Lock()
        self.samples: dict[tuple[str, int], list[int]] = defaultdict(list)  # in arrival order, with repeats
        self.messages: list[env.Message] = []
        self.msg_ids: list[str] = []
        self.statuses: list[env.Status] = []
        self.replies: list[env.CommandReply] = []
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        c.on_connect = self._on_connect
        c.on_message = self._on_message
        c.reconnect_delay_set(1, 2)
        c.connect_async("127.0.0.1", port, keepalive=10)
        self.client = c
        c.loop_start()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        s = self.subject
        client.subscribe(
            [
                (f"gaitsym/v1/{s}/raw/+", 1),
                (f"gaitsym/v1/{s}/gap/+", 1),
                (topic(s, "marker"), 1),
                (topic(s, "bundle"), 1),
                (topic(s, "status"), 1),
                (topic(s, "cmd/reply"), 1),
            ]
        )

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        from testing.gateway.loopback import unbundled

        ids = []
        for _, body in unbundled(msg.topic, msg.payload):
            m = env.decode(body)
            with self.lock:
                if isinstance(m, env.Status):
                    self.statuses.append(m)
                    continue
                if isinstance(m, env.CommandReply):
                    self.replies.append(m)
                    continue
                self.messages.append(m)
                assert isinstance(m, env.RawBatch | env.Gap | env.Marker)
                self.msg_ids.append(m.msg_id)
                ids.append(m.msg_id)
                if isinstance(m, env.RawBatch):
                    key = (m.sensor.serial, m.sensor.boot_epoch)
                    for data in m.packets:
                        p = decode_packet(data)
                        self.samples[key].extend(range(p.sequence, p.sequence + p.sample_count))
        if ids:
            ack = env.Ack("ack", self.subject, tuple(ids), "test-worker")
            client.publish(topic(self.subject, "ack"), env.encode(ack), qos=1)

    def unique_samples(self) -> dict[tuple[str, int], list[int]]:
        """After de-duplication by (serial, boot epoch, seq), in sequence order."""
        with self.lock:
            return {k: sorted(set(v)) for k, v in self.samples.items()}

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
