"""BLE layer 2 figures: THE GATEWAY (pairing, BleTransport, core, outbox, paho + Mosquitto in the VM) on the real
BlueZ (bluetoothd 5.66, Debian kernel) in a throw-away QEMU VM, Bumble as the virtual controller serving the
virtual kit (testing/ble_vm, run by tests/ble_vm). Prints a Markdown summary.

    .venv/bin/python bench/ble_vm.py [--stream-s 16] [--samples-per-packet 2] [--json]

Needs qemu-system-x86 (Debian) and bumble (dev extras); the kernel, busybox and bluez packages are fetched with
apt-get download and cached under .cache/ble_vm. Software emulation (no KVM): ~2-3 min a run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from testing.ble_vm.builder import CACHE, run_vm  # noqa: E402
from testing.ble_vm.central import KIT_SERIALS  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--stream-s", type=float, default=16.0, help="streaming time from the first packet, s")
    parser.add_argument("--small-mtu", type=int, default=65)
    parser.add_argument("--samples-per-packet", type=int, default=2, help="the gateway's batch size setting")
    parser.add_argument("--json", action="store_true", help="print the raw result instead of the summary")
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
    print(f"kernel {vm['kernel']}, bluetoothd 5.66, gateway streaming {r['stream_s']} s from the first packet")
    print(f"(100 Hz, {args.samples_per_packet} samples per packet)\n")
    print("| sensor | samples delivered (worker) / taken (kit) | gap samples (Gap messages) | unaccounted | links |")
    print("|---|---|---|---|---|")
    for serial in KIT_SERIALS:
        s = r["sensors"][serial]
        w, k = s["worker"], s["kit"]
        cells = [serial, f"{w['delivered']} / {k['sequence']}", f"{w['gap_samples']} {w['gaps']}", w["unaccounted"]]
        print("| " + " | ".join(str(c) for c in [*cells, k["links"]]) + " |")
    d = r["drop"]
    fit, tiny = r["mtu_test"]["fitted"], r["mtu_test"]["too_small"]
    print()
    print(
        f"- sensor-side disconnect -> bleak disconnected_callback {d['disconnect_to_callback_ms']} ms, -> 'lost' "
        f"event {d['disconnect_to_lost_event_ms']} ms, -> 'connected' again {d['disconnect_to_connected_ms']} ms, "
        f"-> first packet {d['disconnect_to_first_packet_ms']} ms (same link task: {d['same_link_task']})"
    )
    print(
        f"- MTU {fit['transport']['mtu']}: SET_SAMPLES_PER_PACKET {fit['spp_before']} -> "
        f"{fit['transport']['samples_per_packet']}; {fit['ledger']['packets']} packets of "
        f"{fit['ledger']['max_packet_bytes']} bytes decoded, {fit['ledger']['delivered']} / "
        f"{fit['kit_after']['sequence']} samples, malformed {fit['ledger']['malformed']}"
    )
    print(f"- MTU {tiny['transport']['mtu']}: {tiny['ledger']['reasons']} (attempts {tiny['transport']['attempts']})")
    print(
        f"- boot to stage 2 {vm['boot_to_stage2_s']} s; gateway process start {vm['central_start_uptime_s']} s, "
        f"kit ready {vm['kit_ready_uptime_s']} s (uptime); pairing {r['t_pair_s']} s; all three streaming "
        f"{r['t_all_streaming_s']} s after the gateway started; serve() {r['t_serve_s']} s"
    )
    print(f"- scenario {r['t_total_s']} s; QEMU wall {vm['qemu_wall_s']} s; preparation {vm['prepare_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
