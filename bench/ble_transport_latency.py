"""Bench: the gateway's BLE transport (`sensor_gateway.ble`, real bleak) on the bluezoo stack, 3 sensors at
100 Hz: notification-to-event latency and transport CPU.

    .venv/bin/python bench/ble_transport_latency.py [--seconds 30] [--samples-per-packet 1]

Latency (ms), joined by (placement, sequence) with the kit's send log (host CLOCK_MONOTONIC at the
notification's PropertiesChanged emission):
- "callback": kit send -> `PacketEvent.arrival_s` (stamped in bleak's notification callback);
- "event": kit send -> the consumer drained the event from the gateway's EventQueue (polling every <= 50 ms
  with a condition variable, as `Gateway.step` would be woken).
CPU: the transport thread ("ble-transport": bleak, dbus-fast, the callbacks) from /proc/self/task/<tid>/stat,
and the whole gateway process (transport + the consumer decoding into a StreamLedger), in % of one core over
the window; the emulated stack's processes (bluezoo, dbus-daemon, kit) for context.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from firmware_protocol.packet import decode_packet  # noqa: E402
from gaitsym_common.uplink.vocabulary import PLACEMENTS  # noqa: E402
from sensor_gateway.ble import BleConfig, make_ble_transport, pair  # noqa: E402
from sensor_gateway.transport.base import PacketEvent, TransportEvent  # noqa: E402
from testing.ble_harness import BleStack  # noqa: E402
from testing.ble_harness.standin import GatewayStandIn, kit_call  # noqa: E402

_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_s(stat_path: str) -> float:
    fields = Path(stat_path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def bench(seconds: float, spp: int | None) -> int:
    with BleStack() as stack, tempfile.TemporaryDirectory() as state:
        config = BleConfig(state_dir=Path(state), adapter="hci0", samples_per_packet=spp)
        asyncio.run(pair(config, scan_s=1.0))
        gw = GatewayStandIn(make_ble_transport(config))
        recording = False
        arrivals: dict[tuple[str, int], tuple[float, float]] = {}

        def on_event(event: TransportEvent) -> None:
            if recording and isinstance(event, PacketEvent):
                drained = time.monotonic()
                seq = decode_packet(event.data).sequence
                arrivals[(event.placement, seq)] = (event.arrival_s, drained)

        gw.on_event = on_event
        gw.open(PLACEMENTS)
        try:
            if not gw.wait_until(lambda: all(gw.streaming(p) for p in PLACEMENTS), 30.0):
                print("not all streaming", file=sys.stderr)
                return 1
            gw.run_for(1.0)
            assert gw.transport._thread is not None
            tid = gw.transport._thread.native_id
            stack_pids = {name: proc.pid for name, proc in stack._procs}
            t_cpu0 = _cpu_s(f"/proc/self/task/{tid}/stat")
            p_cpu0 = time.process_time()
            s_cpu0 = {n: _cpu_s(f"/proc/{pid}/stat") for n, pid in stack_pids.items()}
            wall0 = time.monotonic()
            recording = True
            gw.run_for(seconds)
            recording = False
            wall = time.monotonic() - wall0
            t_cpu = _cpu_s(f"/proc/self/task/{tid}/stat") - t_cpu0
            p_cpu = time.process_time() - p_cpu0
            s_cpu = {n: _cpu_s(f"/proc/{pid}/stat") - s_cpu0[n] for n, pid in stack_pids.items()}
            gw.stop_all(PLACEMENTS)
            cb_ms: list[float] = []
            ev_ms: list[float] = []
            for placement in PLACEMENTS:
                for seq, t_ns in kit_call(stack, "send_log", placement):
                    got = arrivals.get((placement, seq))
                    if got is not None:
                        cb_ms.append((got[0] - t_ns / 1e9) * 1e3)
                        ev_ms.append((got[1] - t_ns / 1e9) * 1e3)
            spp_now = gw.ledger.ledger("pelvis").info.samples_per_packet
            print(f"window {wall:.1f} s, 3 sensors x 100 Hz, {spp_now} sample(s)/packet, {len(cb_ms)} joined")
            for name, values in (("callback", cb_ms), ("event", ev_ms)):
                print(
                    f"latency kit send -> {name:8}: median {_pct(values, 50):.2f} ms, p95 {_pct(values, 95):.2f} ms, "
                    f"p99 {_pct(values, 99):.2f} ms, max {max(values):.2f} ms"
                )
            print(f"CPU transport thread: {100 * t_cpu / wall:.1f} % of one core; process: {100 * p_cpu / wall:.1f} %")
            print("CPU emulated stack: " + ", ".join(f"{n} {100 * c / wall:.1f} %" for n, c in s_cpu.items()))
            print(
                f"gaps: {len(gw.ledger.gaps)}, malformed: {gw.ledger.malformed or 0}, drops: {gw.events.dropped or 0}"
            )
            return 0
        finally:
            gw.transport.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--samples-per-packet", type=int, default=None, help="default: the most the MTU allows")
    args = parser.parse_args()
    return bench(args.seconds, args.samples_per_packet)


if __name__ == "__main__":
    sys.exit(main())
