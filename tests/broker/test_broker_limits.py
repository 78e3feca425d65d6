"""The broker's packet limit is the uplink's payload limit plus MQTT headers, and Mosquitto enforces it: an
oversized publish is refused (the sender disconnected, nothing forwarded), the largest legitimate uplink message
passes."""

from __future__ import annotations

import threading
import time
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from gaitsym_common.uplink.envelope import MAX_PAYLOAD_BYTES
from gaitsym_common.uplink.topics import topic
from gaitsym_common.uplink.vocabulary import PLACEMENTS
from testing.servers import MOSQUITTO_CONF, Mosquitto

HEADER_ALLOWANCE = 1024
"""What mosquitto.conf adds to the payload limit for the MQTT header of a publish."""
LONGEST_TOPIC = topic("S" * 64, "raw", max(PLACEMENTS, key=len))
WAIT_S = 15.0


def conf_setting(name: str) -> str | None:
    for line in MOSQUITTO_CONF.read_text().splitlines():
        word, _, value = line.partition(" ")
        if word == name:
            return value.strip()
    return None


def mqtt_header_bytes(topic_name: str) -> int:
    """Largest header of a QoS 1 PUBLISH: fixed header (1 + up to 4 bytes of remaining length), topic (2 + its
    bytes), packet id (2), MQTT 5 properties (a length byte; the broker adds none for our subscriptions)."""
    return 1 + 4 + 2 + len(topic_name.encode()) + 2 + 1


def test_the_packet_limit_is_the_uplink_payload_limit_plus_mqtt_headers() -> None:
    assert mqtt_header_bytes(LONGEST_TOPIC) <= HEADER_ALLOWANCE
    limit = conf_setting("max_packet_size")
    assert limit is not None, "mosquitto.conf must set max_packet_size"
    assert int(limit) == MAX_PAYLOAD_BYTES + HEADER_ALLOWANCE, (
        f"max_packet_size {limit} must be the uplink payload limit ({MAX_PAYLOAD_BYTES}, UPLINK.md) + "
        f"{HEADER_ALLOWANCE}: update deploy/mosquitto/mosquitto.conf"
    )
    # message_size_limit acknowledges an oversized QoS 1 publish and drops it silently: not used
    assert conf_setting("message_size_limit") is None


class Client:
    def __init__(self, broker: Mosquitto, client_id: str, protocol: Any = paho.MQTTv311) -> None:
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
        self.lock = threading.Lock()
        self.received: list[tuple[str, int]] = []
        self.disconnects: list[str] = []
        self.connack: list[Any] = []
        self.subacks: list[Any] = []
        self.client.on_subscribe = lambda c, u, mid, reasons, p: self.subacks.append(reasons)
        self.client.on_message = self._on_message
        self.client.on_disconnect = self._on_disconnect
        self.client.on_connect = lambda c, u, f, r, p: self.connack.append(p)
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        with self.lock:
            self.received.append((msg.topic, len(msg.payload)))

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        with self.lock:
            self.disconnects.append(str(reason))

    def wait(self, what: str, done: Any) -> None:
        deadline = time.monotonic() + WAIT_S
        while not done():
            assert time.monotonic() < deadline, f"{what}: not within {WAIT_S} s"
            time.sleep(0.02)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_an_oversized_publish_is_refused_and_the_largest_uplink_message_passes(mosquitto: Mosquitto) -> None:
    limit = MAX_PAYLOAD_BYTES + HEADER_ALLOWANCE
    reader = Client(mosquitto, "reader")
    gateway = Client(mosquitto, "gateway")  # MQTT 3.1.1, as the gateway speaks
    v5 = Client(mosquitto, "v5-client", paho.MQTTv5)
    try:
        reader.wait("reader connected", lambda: reader.connack)
        reader.client.subscribe("gaitsym/#", qos=1)
        v5.wait("MQTT 5 client connected", lambda: v5.connack)
        assert v5.connack[0].MaximumPacketSize == limit  # MQTT 5 clients are told the limit
        gateway.wait("gateway connected", lambda: gateway.connack)
        reader.wait("reader subscribed", lambda: reader.subacks)
        gateway.client.publish(LONGEST_TOPIC, b"x" * MAX_PAYLOAD_BYTES, qos=1).wait_for_publish(WAIT_S)
        reader.wait("the largest legitimate message", lambda: len(reader.received) == 1)
        gateway.client.publish(LONGEST_TOPIC, b"x" * limit, qos=1)
        gateway.wait("the sender of an oversized packet disconnected", lambda: gateway.disconnects)
        gateway.client.loop_stop()  # no reconnection re-sending the oversized packet
        v5.client.publish(topic("S001", "marker"), b"after", qos=1).wait_for_publish(WAIT_S)
        reader.wait("the message sent after the oversized one", lambda: len(reader.received) == 2)
        assert reader.received == [(LONGEST_TOPIC, MAX_PAYLOAD_BYTES), (topic("S001", "marker"), 5)]
    finally:
        for c in (reader, gateway, v5):
            c.close()
    assert "disconnected due to oversize packet" in mosquitto.log_path.read_text()
