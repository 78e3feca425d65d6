"""Bench: the real bleak streaming from the emulated kit on bluezoo (private D-Bus) — setup time, notification
latency and loss.

    .venv/bin/python bench/ble_bluezoo_stream.py [--seconds 10] [--rate-hz 100] [--samples-per-packet 1]

Prints: stack setup time (s, dbus-daemon + bluezoo + kit processes until advertising), scan and connect times
(s), and per sensor: notifications and samples received, sequence gaps (lost samples), and notification
latency (ms) = bleak callback time - kit send time, both host CLOCK_MONOTONIC (the kit logs when it emitted
each notification; joined by sequence). Three sensors stream at once.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


from bleak import BleakClient  # noqa: E402

from firmware_protocol.control import SetSampleRate, SetSamplesPerPacket, StartStreaming, StopStreaming  # noqa: E402
from firmware_protocol.packet import decode_packet  # noqa: E402
from firmware_protocol.wire import seq_distance  # noqa: E402
from testing.ble_harness import BleStack  # noqa: E402
from testing.ble_harness.central import CENTRAL, ControlChannel, NotificationQueue, scan_sensors, start_imu  # noqa: E402


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def bench(stack: BleStack, seconds: float, rate_hz: int, spp: int) -> int:
    t0 = time.monotonic()
    found = await scan_sensors(expected=len(stack.placements), timeout_s=5.0)
    scan_s = time.monotonic() - t0
    print(f"scan: {len(found)} sensors in {scan_s:.3f} s")
    clients: dict[str, BleakClient] = {}
    queues: dict[str, NotificationQueue] = {}
    placement_of = {}
    controls: dict[str, ControlChannel] = {}
    try:
        for serial, (device, _adv) in sorted(found.items()):
            t0 = time.monotonic()
            client = BleakClient(device, bluez=CENTRAL)
            await client.connect()
            connect_s = time.monotonic() - t0
            clients[serial] = client
            queues[serial] = NotificationQueue()
            await start_imu(client, queues[serial])
            control = controls[serial] = ControlChannel(client)
            await control.start()
            await control.command(SetSampleRate(rate_hz))
            await control.command(SetSamplesPerPacket(spp))
            placement_of[serial] = next(p for p, a in stack.sensor_addresses.items() if a == device.address)
            print(f"connect {serial} ({placement_of[serial]}): {connect_s * 1000:.1f} ms (incl. services)")
        for control in controls.values():
            await control.command(StartStreaming())
        await asyncio.sleep(seconds)
        for control in controls.values():
            await control.command(StopStreaming())
        await asyncio.sleep(0.1)
        failures = 0
        all_latency_ms: list[float] = []
        async with stack.kit_control() as kit:
            for serial, queue in queues.items():
                notes = queue.drain()
                packets = [(decode_packet(n.data), n.received_ns) for n in notes]
                sent = dict(await kit.send_log(placement_of[serial]))
                gaps = [seq_distance(a.next_sequence, b.sequence) for (a, _), (b, _) in itertools.pairwise(packets)]
                lost = sum(g for g in gaps if g > 0)
                latency_ms = [(rx - sent[p.sequence]) / 1e6 for p, rx in packets if p.sequence in sent]
                all_latency_ms += latency_ms
                samples = sum(p.sample_count for p, _ in packets)
                not_received = len(sent) - len(packets)
                print(
                    f"{serial}: {len(packets)} notifications, {samples} samples "
                    f"({samples / seconds:.1f} samples/s), lost samples {lost}, sent-not-received {not_received}, "
                    f"latency ms p50 {statistics.median(latency_ms):.2f} p99 {_pct(latency_ms, 99):.2f} "
                    f"max {max(latency_ms):.2f}"
                )
                failures += lost > 0 or not_received != 0
        print(
            f"all: latency ms p50 {statistics.median(all_latency_ms):.2f} p99 {_pct(all_latency_ms, 99):.2f} "
            f"max {max(all_latency_ms):.2f} over {len(all_latency_ms)} notifications; "
            f"{'NO LOSS' if not failures else 'LOSS'}"
        )
        return 1 if failures else 0
    finally:
        for client in clients.values():
            await client.disconnect()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="streaming window, s")
    parser.add_argument("--rate-hz", type=int, default=100, help="sample rate per sensor, Hz")
    parser.add_argument("--samples-per-packet", type=int, default=1)
    args = parser.parse_args()
    with BleStack() as stack:
        print(f"setup: {stack.setup_s:.3f} s (dbus-daemon + bluezoo + kit, until advertising)")
        return asyncio.run(bench(stack, args.seconds, args.rate_hz, args.samples_per_packet))


if __name__ == "__main__":
    sys.exit(main())
