"""CPU of admitting deliveries into a large carry: what a worker catching up a backlog pays per delivery for the
carry's per-subject views (`analytics.worker.carry.Carry.in_order`, `ranges`), as the carry grows.

A worker behind (a store outage, a restart with a broker backlog) holds tens of thousands of admitted deliveries
in its carry (bounded by ``max_carry_work``: 1M samples of work, about 10,000 raw batches and their markers). Each
window marker's admission asks whether the subject has markers or gaps waiting ahead (`in_order`), and a live
window asks which raw ranges of a sensor wait here (`ranges`). This bench appends N subjects' deliveries in
arrival order (per subject-second three raw batches, then its window marker), asking at each marker whether its
subject has markers waiting (its admission) and its three sensors' waiting ranges (its window's feed), and prints
the CPU per delivery. No broker, no store.

Run: .venv/bin/python bench/carry_admit.py [--subjects 100] [--seconds 30] [--tree DIR]
     (--tree: the source tree to measure, e.g. a `git archive` of another commit; run two trees alternately)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subjects", type=int, default=100)
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--tree", type=Path, default=ROOT)
    args = ap.parse_args()
    sys.path.insert(0, str(args.tree.resolve()))
    from analytics.worker.carry import Admitted, Carry
    from analytics.worker.link import Delivery
    from gaitsym_common.uplink import envelope as env
    from testing.worker.hostile import raw_batch

    placements = ("pelvis", "left_thigh", "right_thigh")
    deliveries: list[env.Message] = []
    for second in range(args.seconds):
        for i in range(args.subjects):
            subject = f"S{i:03d}"
            for placement in placements:
                deliveries.append(raw_batch(subject, second * 100, placement=placement))
            position = {"pelvis": env.SensorPosition("GS-SYN-1", 7, second * 100 + 99)}
            deliveries.append(
                env.Marker("marker", f"marker:{subject}:window:{second}", subject, "s1", "window", None, position)
            )
    carry = Carry(10**9, 10**12)
    cpu0 = time.thread_time()
    for k, message in enumerate(deliveries):
        subject = message.subject
        carry.append(Admitted(Delivery("t", b"x", (1, k + 1)), message, subject, 100, float(k)))
        if not isinstance(message, env.RawBatch):  # a window marker: its admission, then its window's feed
            carry.in_order().get(subject)
            for placement in placements:
                carry.ranges((subject, placement, "GS-SYN-1", 7))
    cpu = time.thread_time() - cpu0
    print(
        f"{len(deliveries)} deliveries ({args.subjects} subjects x {args.seconds} s) admitted into one carry: "
        f"{cpu:.2f} s of CPU, {cpu / len(deliveries) * 1e6:.1f} us a delivery; tree {args.tree}"
    )


if __name__ == "__main__":
    main()
