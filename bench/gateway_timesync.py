"""Time-sync error of the production gateway on the virtual kit's packet stream.

Per trial: a simulated walking session (`simulator`, seeded) whose three sensors drift by
20-50 ppm (random sign), with the simulator's bursty BLE arrival (connection interval 30-50 ms per sensor,
40 % of events missed, up to 6 packets per event, packets ready 1-3 ms after their last sample). The gateway
(decode, clock fit, batching, outbox) runs on a virtual clock, asking TIME_SYNC round trips (modelled by the
virtual-kit transport) unless ``--no-sync``. Each raw batch's published clock mapping is applied to its first
sample and compared with the simulator's truth; at each second from 60 s to the end the three sensors'
errors are compared ("pairwise" = worst disagreement, what the 2 ms goal is about).
Run: ``.venv/bin/python bench/gateway_timesync.py [--trials 10] [--duration 120] [--no-sync]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from testing.gateway.kit_timing import run_timing


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--duration", type=float, default=120.0)
    ap.add_argument("--no-sync", action="store_true", help="arrival envelope only (no TIME_SYNC round trips)")
    ap.add_argument("--sync-every", type=float, default=0.25, help="GatewayConfig.time_sync_every_s")
    args = ap.parse_args()
    every = 0.0 if args.no_sync else args.sync_every
    print(f"virtual kit, {args.trials} seeds, {args.duration:.0f} s, time sync every {every} s (0 = off)")
    print(
        "| samples/packet | pairwise at 60 s p50 / max ms | pairwise 60 s..end p50 / max ms "
        "| abs max ms | drift err max ppm |"
    )
    print("|---|---|---|---|---|")
    for spp in (5, 10, 19):
        rows = [run_timing(seed, spp, args.duration, 60.0, every) for seed in range(1, args.trials + 1)]
        at = [r.pairwise_at_ms for r in rows]
        after = [r.pairwise_max_ms for r in rows]
        print(
            f"| {spp} | {statistics.median(at):.2f} / {max(at):.2f} "
            f"| {statistics.median(after):.2f} / {max(after):.2f} "
            f"| {max(r.abs_max_ms for r in rows):.2f} | {max(r.drift_err_max_ppm for r in rows):.1f} |"
        )


if __name__ == "__main__":
    main()
