"""Time-sync error of the gateway's clock mapping (sensor_gateway.timing) on simulated kits.

Three sensors at 100 Hz with random drifts of 20-50 ppm (random sign), random clock offsets and u32 start
values, bursty BLE arrival (connection events every 48.75 ms, at most 4 packets per event, 15 % of events
skipped, exponential host-stack latency of mean 0.7 ms). After ``--duration`` s of streaming each sensor's
current mapping is applied to its latest packet; the error is mapped minus true host time. Reported: the
worst pairwise misalignment between the three sensors (what the 2 ms goal is about) and the absolute error,
over ``--trials`` kits. Run: ``.venv/bin/python bench/gateway_timesync.py``.
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from gateway.packet_source import kit, merge

from firmware_protocol.packet import decode_packet
from sensor_gateway.timing import SensorStream


def trial(seed: int, duration_s: float, spp: int, interval_ms: float) -> tuple[float, float, float]:
    rng = random.Random(seed)
    drifts = tuple(rng.choice([-1, 1]) * rng.uniform(20, 50) for _ in range(3))
    sensors = kit(drifts, spp=spp, interval_ms=interval_ms)  # type: ignore[arg-type]
    for s in sensors:
        s.seed += 100 * seed
        s.boot_host_s += rng.uniform(-30, 30)
        s.ts0_us = rng.randrange(0, 2**32)
        s.__post_init__()
    streams = {s.placement: SensorStream(s.boot_epoch, s.rate_hz) for s in sensors}
    last: dict[str, int] = {}
    for arrival, placement, data, _, _ in merge(*(s.packets(duration_s) for s in sensors)):
        pkt = decode_packet(data)
        last[placement] = (
            streams[placement].observe(pkt.sequence, pkt.timestamp_us, pkt.sample_count, arrival).t_sensor_us
        )
    err = [
        (streams[s.placement].fit().host_s(last[s.placement]) - s.true_host_s(last[s.placement])) * 1e3 for s in sensors
    ]
    drift_err = max(abs(streams[s.placement].fit().drift_ppm - s.drift_ppm) for s in sensors)
    return max(abs(a - b) for a, b in itertools.combinations(err, 2)), max(abs(e) for e in err), drift_err


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--duration", type=float, default=60.0)
    args = ap.parse_args()
    print(f"time-sync error after {args.duration:.0f} s, {args.trials} simulated 3-sensor kits, 100 Hz")
    print(
        "| samples/packet | conn. interval ms | pairwise p50 ms | pairwise p95 ms | pairwise max ms "
        "| abs max ms | drift err max ppm |"
    )
    print("|---|---|---|---|---|---|---|")
    for spp, interval in ((5, 48.75), (10, 48.75), (19, 48.75), (10, 30.0), (5, 45.0)):
        rows = [trial(seed, args.duration, spp, interval) for seed in range(args.trials)]
        pair = sorted(r[0] for r in rows)
        print(
            f"| {spp} | {interval} | {statistics.median(pair):.2f} | {pair[int(0.95 * (len(pair) - 1))]:.2f} "
            f"| {pair[-1]:.2f} | {max(r[1] for r in rows):.2f} | {max(r[2] for r in rows):.1f} |"
        )


if __name__ == "__main__":
    main()
