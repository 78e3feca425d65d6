"""Gateway CPU per sensor at 100 Hz, transport excluded (sensor_gateway.core with the real outbox on disk).

The virtual kit's packets (3 sensors, 100 Hz, 10 samples/packet, simulated walking session) are generated
first (not measured), then replayed through the production gateway (decode, clock fit with TIME_SYNC round
trips, batching, JSON envelope, SQLite outbox with synchronous=FULL, acknowledgement handling) on a virtual
clock as fast as possible, stepping on every packet arrival as the real loop does, with an in-memory MQTT
link that acknowledges every message at once. CPU% of one core = process CPU seconds / streamed seconds.
Run: ``.venv/bin/python bench/gateway_cpu.py [--seconds 300] [--batch-s 1.0]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from sensor_gateway.core import Gateway, GatewayConfig, run_for
from sensor_gateway.outbox import Outbox
from sensor_gateway.timing import VirtualHostClock
from sensor_gateway.transport import SyncLink, VirtualKitTransport
from simulator import packets
from simulator.session import simulate_session
from simulator.virtual_kit_source import _clock_of
from testing.gateway.loopback import LoopbackLink


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=300.0)
    ap.add_argument("--batch-s", type=float, default=1.0)
    args = ap.parse_args()
    session = simulate_session(seed=7, minutes=args.seconds / 60 + 0.1, script="walk")
    sensors = packets.simulated_sensors(session)
    items = [i for i in packets.iter_packets(session, sensors) if i[0] < args.seconds]
    with tempfile.TemporaryDirectory() as d:
        clock = VirtualHostClock(start_s=1000.0)
        transport = VirtualKitTransport(
            items,
            {p: s.info for p, s in sensors.items()},
            clock,
            sync_links={p: SyncLink(s.connection_interval_s, _clock_of(s)) for p, s in sensors.items()},
        )
        link = LoopbackLink("P001", keep=False)
        config = GatewayConfig(subject="P001", batch_s=args.batch_s)
        gw = Gateway(config, transport, link, Outbox(Path(d) / "o.db"), clock)
        gw.start()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        run_for(gw, transport, clock, args.seconds + 2, tick_s=0.02)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        gw.stop()
    pct = 100 * cpu / args.seconds
    print(
        f"{len(items)} packets, {args.seconds:.0f} s of 3 sensors at 100 Hz, batch {args.batch_s} s: CPU {cpu:.2f} s "
        f"(wall {wall:.2f} s), {link.count} publishes"
    )
    print(f"gateway CPU: {pct:.2f} % of one core for 3 sensors, {pct / 3:.2f} % per sensor")


if __name__ == "__main__":
    main()
