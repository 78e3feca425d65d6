"""BLE layer 2 figures: the real bleak + real BlueZ (bluetoothd 5.66, Debian kernel) in a throw-away QEMU VM,
Bumble as the virtual controller serving the virtual kit (tests/ble_vm). Prints a Markdown table.

    .venv/bin/python bench/ble_vm.py [--stream-s 5] [--samples-per-packet 2] [--json]

Needs qemu-system-x86 (Debian) and bumble (dev extras); the kernel, busybox and bluez packages are fetched with
apt-get download and cached under .cache/ble_vm. Software emulation (no KVM): ~1-2 min a run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.ble_vm.builder import CACHE, run_vm  # noqa: E402
from tests.ble_vm.central import KIT_SERIALS  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stream-s", type=float, default=5.0, help="streaming time before and after the drop, s")
    parser.add_argument("--small-mtu", type=int, default=65)
    parser.add_argument("--samples-per-packet", type=int, default=2, help="the three sensors' samples per packet")
    parser.add_argument("--json", action="store_true", help="print the raw result instead of the table")
    args = parser.parse_args()
    run = run_vm(
        CACHE / f"run-bench-{os.getpid()}",
        stream_s=args.stream_s,
        small_mtu=args.small_mtu,
        samples_per_packet=args.samples_per_packet,
    )
    r = run.result
    if args.json:
        print(json.dumps(r, indent=1))
        return 0 if r["ok"] else 1
    if not r["ok"]:
        print(f"scenario failed (logs in {run.work}):\n{r.get('error')}", file=sys.stderr)
        return 1
    vm = r["vm"]
    print(f"kernel {vm['kernel']}, bluetoothd 5.66, {r['stream_s']} s streaming before and after the drop")
    print(f"(100 Hz, {args.samples_per_packet} samples per packet)\n")
    print("| sensor | notifications received / sent | samples received / taken | gaps | decode errors | links |")
    print("|---|---|---|---|---|---|")
    for serial in KIT_SERIALS:
        s = r["sensors"][serial]
        samples = sum(x["samples"] for x in s["sessions"])
        gaps = sum(x["gaps"] for x in s["sessions"])
        errors = sum(sum(x["decode_errors"].values()) for x in s["sessions"])
        cells = [serial, f"{s['received']} / {s['sent']}", f"{samples} / {s['sensor_sequence']}", gaps, errors]
        print("| " + " | ".join(str(c) for c in [*cells, s["links"]]) + " |")
    d, m = r["drop"], r["mtu_test"]
    cut, fit = m["truncated"], m["fitted"]
    print()
    print(f"- sensor-side disconnect -> bleak disconnected_callback: {d['latency_ms']} ms")
    print(f"- reconnect + START_STREAMING again: {d['reconnect_s']} s")
    print(
        f"- MTU {m['mtu']}: {cut['received']} notifications of {m['packet_bytes_before']}-byte packets arrived cut"
        f" to {cut['lengths']} bytes, rejected as {cut['decode_errors']}"
    )
    print(
        f"- after SET_SAMPLES_PER_PACKET {m['spp_after']}: {fit['received']} packets of {fit['lengths']} bytes"
        f" decoded, {fit['gaps']} gaps"
    )
    print(f"- VM boot to stage 2: {vm['boot_to_stage2_s']} s; to the central's start: {vm['central_start_uptime_s']} s")
    print(f"- scenario: {r['t_total_s']} s; QEMU wall: {vm['qemu_wall_s']} s; preparation: {vm['prepare_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
