"""What a clinic's server sees while its patients stream: worker, InfluxDB and Mosquitto CPU per subject-second
and the live-result latency, in one real-time run.

Real Mosquitto (the project's configuration), real InfluxDB 1.6, one `gaitsym worker` process with production
defaults, N simulated subjects streaming on the REAL clock with the gateway's default window and batch periods
(`testing.worker.realtime`: by default the production gateway cores' messages recorded beforehand and published at
their instants, UTC moved to now; ``--load gateways`` steps the gateway cores themselves in this process, exact but
~12 ms of this process's CPU per subject-second). InfluxDB is polled every ``--poll`` s for the provisional strides
(``stride_live``); a stride's latency is the instant it was first seen minus the UTC of its last sample (an upper
bound by up to one poll). Printed: CPU per subject-second of each server process and the subjects it allows, the
latency distribution (all strides, and those after each session's first ``--steady-after`` s of strides: a live
session's estimates need about 6 s of walking first), split into the gateway's part and the rest, the worker's
counters, the machine's load average. With ``--cpu-after S`` (a run longer than S) the CPU of every session's first
S seconds (cold start, first estimates: every session of this bench starts at once) and of the rest are also
given apart, with what a session's start costs beyond the rest's rate: a clinic's sessions last 10-30 minutes and
start at different times, so most of its subject-seconds are past their start. The subjects' gateways start at
instants spread over one batch, as gateways booted at unrelated times close their batches at unrelated phases of
the second (`testing.worker.replay.gateway_phases`); ``--aligned`` has every batch close on the same instant, the
worst case.

The replay bench (bench/worker_cost.py: faster than real time, live windows coalescing) is not this: it bounds how
fast a worker catches up after an outage.

Run: .venv/bin/python bench/worker_latency.py [--subjects 20] [--seconds 60] [--poll 0.05] [--load replay|gateways]
     [--worker-arg=--turn-gather-s=0.3 ...] [--seconds 180 --cpu-after 60] [--workers 2] [--aligned]
     [--seconds 100 --by-minute] [--raw-layout points|packed]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from testing.worker.realtime import RealTimeBench  # noqa: E402


def by_minute(seen: dict[object, tuple[float, float]]) -> str:
    """Latency of the strides by the second of the minute (UTC) they ended in, 5-s bins."""
    rows = ["| stride ended at second | strides | p50 | p99 | max (s) |", "|---|---|---|---|---|"]
    pairs = list(seen.values())
    for lo in range(0, 60, 5):
        lat = sorted(t - end for t, end in pairs if lo <= int(end) % 60 < lo + 5)
        if lat:
            p50, p99 = lat[int(0.5 * (len(lat) - 1))], lat[int(0.99 * (len(lat) - 1))]
            rows.append(f"| {lo:02d}-{lo + 4:02d} | {len(lat)} | {p50:.2f} | {p99:.2f} | {lat[-1]:.2f} |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subjects", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--poll", type=float, default=0.05, help="s between queries for new provisional strides")
    ap.add_argument("--load", choices=("replay", "gateways"), default="replay")
    ap.add_argument("--window-s", type=float, default=None, help="gateway window period (default: the gateway's)")
    ap.add_argument("--batch-s", type=float, default=None, help="gateway batch length (default: the gateway's)")
    ap.add_argument("--steady-after", type=float, default=15.0, help="s of each session's strides left out of 'steady'")
    ap.add_argument(
        "--cpu-after",
        type=float,
        default=None,
        help="also report CPU of the sessions' first CPU_AFTER s and of the rest apart (a run longer than that)",
    )
    ap.add_argument("--workers", type=int, default=1, help="worker processes sharing the subscriptions")
    ap.add_argument(
        "--aligned",
        action="store_true",
        help="every subject's batches close on the same instants (the worst case; default: gateways started at "
        "instants spread over one batch, as gateways booted at unrelated times are)",
    )
    ap.add_argument(
        "--by-minute",
        action="store_true",
        help="also the latency by the second of the minute (UTC) the stride ended in, in 5-s bins (a run of 100 s "
        "or more crosses a whole minute)",
    )
    ap.add_argument("--worker-arg", action="append", default=[], help="extra `gaitsym worker` argument (repeatable)")
    ap.add_argument(
        "--raw-layout",
        choices=("auto", "points", "packed"),
        default="auto",
        help="the store's raw layout: as the database's marker says (auto: a new database is packed), one point per "
        "sample, or one per batch part (docs/raw-layout-packed.md)",
    )
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gaitsym-bench-latency-"))
    bench = RealTimeBench(
        tmp,
        args.subjects,
        args.seconds,
        poll_s=args.poll,
        window_s=args.window_s,
        batch_s=args.batch_s,
        worker_args=tuple(args.worker_arg),
        load=args.load,
        steady_after_s=args.steady_after,
        cpu_after_s=args.cpu_after,
        workers=args.workers,
        aligned=args.aligned,
        raw_layout=args.raw_layout,
    )
    with bench.started():
        result = bench.run()
    print(result.report())
    if args.by_minute:
        print(by_minute(bench.seen))
    print(
        f"load {args.load}{' (aligned)' if args.aligned or args.load == 'gateways' else ' (phases spread)'}, "
        f"window_s {bench.window_s}, "
        f"batch_s {bench.batch_s}, poll {args.poll} s, "
        f"worker args {' '.join(args.worker_arg) or '(defaults)'}, raw layout {args.raw_layout}"
    )


if __name__ == "__main__":
    main()
