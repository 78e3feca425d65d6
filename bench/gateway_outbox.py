"""Outbox write and replay throughput (sensor_gateway.outbox), synchronous=FULL and NORMAL.

A message is a raw batch of one sensor-second: 100 samples in 5-sample packets base64'd in JSON, ~2.0 kB.
Write: one commit per message (the gateway's worst case) and 10 per commit. Replay: read pending in pages
of 200 and acknowledge them (what reconnecting after an outage does). Run:
``.venv/bin/python bench/gateway_outbox.py [--dir /path/on/the/target/disk]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from sensor_gateway.outbox import Outbox

PAYLOAD = bytes(2000)


def run(folder: Path, sync: str, n: int, per_commit: int) -> tuple[float, float]:
    path = folder / f"bench-{sync}-{per_commit}.db"
    box = Outbox(path, synchronous=sync)
    t0 = time.perf_counter()
    for i in range(0, n, per_commit):
        box.put_many([(f"raw:S:1:{(i + k) * 100}", "t", PAYLOAD, "raw") for k in range(per_commit)])
    write = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    done = 0
    while True:
        page = box.pending(limit=200)
        if not page:
            break
        box.mark_inflight(page, 0.0)
        done += box.ack([p.msg_id for p in page])
    replay = done / (time.perf_counter() - t0)
    box.close()
    return write, replay


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", type=Path, default=None)
    ap.add_argument("-n", type=int, default=3000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        print("| synchronous | messages/commit | write msg/s | write MB/s | replay (read+ack) msg/s |")
        print("|---|---|---|---|---|")
        for sync in ("FULL", "NORMAL"):
            for per in (1, 10):
                w, r = run(Path(d), sync, args.n, per)
                print(f"| {sync} | {per} | {w:,.0f} | {w * len(PAYLOAD) / 1e6:.1f} | {r:,.0f} |")


if __name__ == "__main__":
    main()
