"""Soak: the BLE transport (real bleak) streaming from the emulated kit on bluezoo for a long time, with one
link dropped every ``--drop-every-s`` seconds (placements in turn); at the end every sample the sensors took
must be delivered or recorded as a gap.

    .venv/bin/python bench/ble_soak.py [--minutes 10] [--drop-every-s 60] [--samples-per-packet N]

Prints per sensor: samples taken (kit counter), delivered, in gaps, unaccounted (must be 0), link losses,
reconnect time (s, "lost" event -> "connected" event), event-queue drops. Exit status 1 if any sample is
unaccounted for.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from gaitsym_common.uplink.vocabulary import PLACEMENTS  # noqa: E402
from sensor_gateway.ble import BleConfig, make_ble_transport, pair  # noqa: E402
from sensor_gateway.transport.base import LinkEvent, TransportEvent  # noqa: E402
from testing.ble_harness import BleStack  # noqa: E402
from testing.ble_harness.standin import GatewayStandIn, kit_call  # noqa: E402


def soak(minutes: float, drop_every_s: float, spp: int | None) -> int:
    with BleStack() as stack, tempfile.TemporaryDirectory() as state:
        config = BleConfig(state_dir=Path(state), adapter="hci0", samples_per_packet=spp)
        asyncio.run(pair(config, scan_s=1.0))
        gw = GatewayStandIn(make_ble_transport(config))
        lost_at: dict[str, float] = {}
        reconnect_s: dict[str, list[float]] = {p: [] for p in PLACEMENTS}

        def on_event(event: TransportEvent) -> None:
            if isinstance(event, LinkEvent):
                if event.state == "lost":
                    lost_at[event.placement] = time.monotonic()
                elif event.state == "connected" and event.placement in lost_at:
                    reconnect_s[event.placement].append(time.monotonic() - lost_at.pop(event.placement))

        gw.on_event = on_event
        gw.open(PLACEMENTS)
        try:
            if not gw.wait_until(lambda: all(gw.streaming(p) for p in PLACEMENTS), 30.0):
                print("not all sensors streaming after 30 s", file=sys.stderr)
                return 1
            t0 = time.monotonic()
            end = t0 + minutes * 60.0
            drops = 0
            next_drop = t0 + drop_every_s
            while time.monotonic() < end:
                gw.run_for(min(1.0, max(0.0, end - time.monotonic())))
                if time.monotonic() >= next_drop and time.monotonic() < end:
                    placement = PLACEMENTS[drops % len(PLACEMENTS)]
                    n = kit_call(stack, "drop_link", placement)
                    drops += 1
                    next_drop += drop_every_s
                    print(f"{time.monotonic() - t0:7.1f} s: dropped {placement} ({n} link)", flush=True)
            gw.wait_until(lambda: all(gw.transport.connected(p) for p in PLACEMENTS), 30.0)
            gw.run_for(2.0)
            gw.stop_all(PLACEMENTS, settle_s=1.0)
            elapsed = time.monotonic() - t0
            print(
                f"\nstreamed {elapsed / 60:.1f} min at 100 Hz, {drops} links dropped; stack setup {stack.setup_s:.2f} s"
            )
            print(f"{'sensor':12} {'taken':>8} {'delivered':>9} {'in gaps':>8} {'gaps':>5} {'unacct':>7} "
                  f"{'losses':>6} {'reconnect s (median/max)':>25} {'spp':>4}")  # fmt: skip
            bad = 0
            stats = gw.transport.stats()
            for placement in PLACEMENTS:
                state = kit_call(stack, "state", placement)
                ledger = gw.ledger.ledger(placement)
                gaps = [g for g in gw.ledger.gaps_of(placement) if g.boot_epoch == state["boot_epoch"]]
                in_gaps = sum(g.samples for g in gaps)
                unaccounted = state["sequence"] - ledger.delivered - in_gaps
                bad += abs(unaccounted)
                rc = reconnect_s[placement]
                rc_text = f"{statistics.median(rc):.2f} / {max(rc):.2f}" if rc else "-"
                print(
                    f"{placement:12} {state['sequence']:8d} {ledger.delivered:9d} {in_gaps:8d} {len(gaps):5d} "
                    f"{unaccounted:7d} {stats[placement].losses:6d} {rc_text:>25} {ledger.info.samples_per_packet:4d}"
                )
            print(f"event queue drops: {gw.events.dropped or 0}; malformed: {gw.ledger.malformed or 0}")
            print("RESULT:", "every sample accounted for" if bad == 0 else f"{bad} samples unaccounted")
            return 0 if bad == 0 else 1
        finally:
            gw.transport.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--drop-every-s", type=float, default=60.0)
    parser.add_argument("--samples-per-packet", type=int, default=None, help="default: the most the MTU allows")
    args = parser.parse_args()
    return soak(args.minutes, args.drop_every_s, args.samples_per_packet)


if __name__ == "__main__":
    sys.exit(main())
