"""Packet-to-publish latency of the gateway on the real clock, against a real Mosquitto.

A feeder thread plays the role of the BLE callbacks: it replays the virtual kit's packet stream (3 sensors,
100 Hz, 10 samples/packet, bursty arrival) in real time and enqueues each packet stamped with the real
monotonic clock; the production gateway loop (`Gateway.run`: wakes on each event) decodes, fits, batches,
commits to the SQLite outbox (synchronous=FULL, fsync per commit) and hands the batch to paho; an acking
worker stores and acknowledges. Two figures per batch:
- publish latency: arrival of the packet that closes the batch -> the batch handed to paho (publish()
  returned); this is the gateway's own delay (decode + fit + JSON + fsync + publish);
- batching delay: arrival of the batch's *first* packet -> publish (adds the batch length ``batch_s``).
With bundles (the default, ``GatewayConfig.bundle``) a batch waits for the window marker that follows the last
sensor's batch of its instant (or ``bundle_hold_s``): both figures include that wait.
Run: ``.venv/bin/python bench/gateway_latency.py [--seconds 30] [--batch-s 1.0 0.25 0.1] [--bundle on off]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gaitsym_common.mqtt import MqttSettings, PahoLink
from sensor_gateway.core import Gateway, GatewayConfig
from sensor_gateway.outbox import Outbox
from sensor_gateway.timing import RealHostClock
from sensor_gateway.transport import EventQueue, LinkEvent, PacketEvent
from simulator import packets
from simulator.session import simulate_session
from testing.gateway.worker_stub import AckingWorker
from testing.servers import Mosquitto


class RealTimeFeeder:
    """A transport whose 'radio' is a thread replaying packets at their arrival times on the real clock."""

    def __init__(self, items: list[tuple[float, str, bytes]], infos: dict, clock: RealHostClock) -> None:  # type: ignore[type-arg]
        self.items, self.infos, self.clock = items, infos, clock
        self.events: EventQueue | None = None
        self.done = threading.Event()

    def open(self, events: EventQueue) -> None:
        self.events = events

    def connect(self, placement: str) -> None:
        assert self.events is not None
        self.events.put(LinkEvent(placement, "connected", self.infos[placement], 90))

    def start_streaming(self, placement: str) -> None:
        if placement == "right_thigh":
            threading.Thread(target=self._play, daemon=True).start()

    def _play(self) -> None:
        assert self.events is not None
        t0 = self.clock.monotonic() + 0.2
        for arrival, placement, data in self.items:
            lag = t0 + arrival - self.clock.monotonic()
            if lag > 0:
                time.sleep(lag)
            self.events.put(PacketEvent(placement, self.clock.monotonic(), data))
        self.done.set()

    def stop_streaming(self, placement: str) -> None: ...
    def disconnect(self, placement: str) -> None: ...
    def close(self) -> None: ...
    def read_sensor_info(self, placement: str):  # type: ignore[no-untyped-def]
        return self.infos[placement]

    def read_battery(self, placement: str) -> int | None:
        return 90


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--batch-s", type=float, nargs="+", default=[1.0, 0.25, 0.1])
    ap.add_argument("--bundle", choices=("on", "off"), nargs="+", default=["on", "off"])
    args = ap.parse_args()
    session = simulate_session(seed=5, minutes=max(0.7, args.seconds / 60 + 0.05), script="walk")
    sensors = packets.simulated_sensors(session)
    items = [i for i in packets.iter_packets(session, sensors) if i[0] < args.seconds]
    infos = {p: s.info for p, s in sensors.items()}
    print("| batch_s | bundles | batches | publish latency p50 / p99 / max ms | batching delay p50 / p99 ms |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as d:
        broker = Mosquitto(Path(d) / "mosquitto").start()
        try:
            for batch_s, bundle in [(b, m) for b in args.batch_s for m in args.bundle]:
                subject = f"lat-{int(batch_s * 1000)}-{bundle}"
                worker = AckingWorker(broker.port, subject, client_id=f"w-{subject}")
                clock = RealHostClock(assume_synced=True)
                feeder = RealTimeFeeder(items, infos, clock)
                link = PahoLink(MqttSettings(port=broker.port, client_id=f"gw-{subject}"))
                outbox = Outbox(Path(d) / f"{subject}.db")
                config = GatewayConfig(subject=subject, batch_s=batch_s, bundle=bundle == "on")
                gw = Gateway(config, feeder, link, outbox, clock)  # type: ignore[arg-type]
                gw.start()
                while not link.connected:
                    time.sleep(0.01)
                stop = threading.Event()
                loop = threading.Thread(target=gw.run, args=(stop,), daemon=True)
                loop.start()
                feeder.done.wait()
                time.sleep(1.5)
                stop.set()
                loop.join()
                gw.stop()
                worker.close()
                lat = [x * 1e3 for x in gw.publish_latency_s]
                delay = [x * 1e3 for x in gw.batch_delay_s]
                print(
                    f"| {batch_s} | {bundle} | {len(lat)} | {statistics.median(lat):.2f} / {pct(lat, 0.99):.2f} / "
                    f"{max(lat):.2f} "
                    f"| {statistics.median(delay):.0f} / {pct(delay, 0.99):.0f} |"
                )
        finally:
            broker.kill()


if __name__ == "__main__":
    main()
