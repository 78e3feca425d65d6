"""Gateway CPU per sensor at 100 Hz, transport excluded (sensor_gateway.core with the real outbox on disk).

Packets of a 3-sensor kit (100 Hz, 5 samples/packet) are generated first (not measured), then replayed
through the production gateway (decode, clock fit, batching, JSON envelope, SQLite outbox with
synchronous=FULL, acknowledgement handling) on a virtual clock as fast as possible, with an in-memory MQTT
link that acknowledges every message at once. CPU% of one core = process CPU seconds / streamed seconds.
Run: ``.venv/bin/python bench/gateway_cpu.py [--seconds 300]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from gateway.packet_source import kit, merge

from sensor_gateway.core import Gateway, GatewayConfig, run_for
from sensor_gateway.mqtt.client import Connected, Incoming, MqttEvent
from sensor_gateway.outbox import Outbox
from sensor_gateway.timing import VirtualHostClock
from sensor_gateway.transport import VirtualKitTransport
from sensor_gateway.uplink import envelope as env
from sensor_gateway.uplink.topics import parse_topic, topic


class LoopbackLink:
    """In-memory MqttLink: every durable message is acknowledged on the next step."""

    def __init__(self, subject: str) -> None:
        self.subject = subject
        self._events: list[MqttEvent] = [Connected(False)]
        self.count = 0

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
            ack = env.Ack("ack", self.subject, (msg.msg_id,))  # type: ignore[union-attr]
            self._events.append(Incoming(topic(self.subject, "ack"), env.encode(ack)))
        return True

    def events(self) -> list[MqttEvent]:
        out, self._events = self._events, []
        return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=300.0)
    args = ap.parse_args()
    sensors = kit(spp=5)
    packets = [(a - 1000.0, p, d) for a, p, d, _, _ in merge(*(s.packets(args.seconds) for s in sensors))]
    with tempfile.TemporaryDirectory() as d:
        clock = VirtualHostClock(start_s=1000.0)
        transport = VirtualKitTransport(packets, {s.placement: s.info() for s in sensors}, clock)
        link = LoopbackLink("P001")
        gw = Gateway(GatewayConfig(subject="P001"), transport, link, Outbox(Path(d) / "o.db"), clock)
        gw.start()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        run_for(gw, transport, clock, args.seconds + 2, tick_s=0.02)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        gw.stop()
    pct = 100 * cpu / args.seconds
    print(
        f"{len(packets)} packets, {args.seconds:.0f} s of 3 sensors at 100 Hz: CPU {cpu:.2f} s "
        f"(wall {wall:.2f} s), {link.count} publishes"
    )
    print(f"gateway CPU: {pct:.2f} % of one core for 3 sensors, {pct / 3:.2f} % per sensor")


if __name__ == "__main__":
    main()
