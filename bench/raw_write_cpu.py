"""CPU of the worker's raw writes, turn by turn, part by part: `InfluxStore.write_raw_many` on the turns a worker
makes in real time, against a real InfluxDB 1.6 (started here, on loopback, set up as a new clinic's: packed).

The turns are real gateway output: N subjects' production gateway cores recorded beforehand
(`testing.worker.replay.record_sessions`, the bench cache), each bundle's raw batches decoded as the worker decodes
them (`analytics.worker.decode.batch_samples`), and the batches of one second of every subject written in one call,
as a worker's turn writes them. The figure is the writing thread's CPU (`time.thread_time`: the waits on InfluxDB
are not in it) per turn, and, for the parts that cost most, their share of it (each part timed inclusively around
its call, so the parts overlap: the check's request is inside the check). No worker, no broker: what a change to
the write path costs in seconds instead of a real-time run (`bench/worker_latency.py` is what a clinic sees).

Run: .venv/bin/python bench/raw_write_cpu.py [--subjects 15] [--seconds 60] [--tree DIR]
     (--tree: the source tree to measure, e.g. a `git archive` of another commit; run two trees alternately)
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def timed(owner: Any, name: str, totals: dict[str, float]) -> None:
    """Replace ``owner.name`` by a wrapper adding its thread CPU to ``totals[name]``."""
    inner: Callable[..., Any] = getattr(owner, name)

    @functools.wraps(inner)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.thread_time()
        try:
            return inner(*args, **kwargs)
        finally:
            totals[name] = totals.get(name, 0.0) + time.thread_time() - t0

    setattr(owner, name, wrapper)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subjects", type=int, default=15, help="subjects per turn (a real-time turn at 100: ~16)")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--tree", type=Path, default=ROOT)
    args = ap.parse_args()
    sys.path.insert(0, str(args.tree.resolve()))
    from analytics.stores import influx, influx_check, influx_packed, open_store
    from analytics.stores import influx_transport as transport
    from analytics.worker.decode import batch_samples
    from gaitsym_common.uplink import envelope as env
    from testing.gateway.loopback import unbundled
    from testing.influxdb_server import InfluxDB
    from testing.worker.replay import record_sessions

    recorded = record_sessions(args.subjects, args.seconds, window_s=0.25, batch_s=1.0)
    by_second: dict[int, list[Any]] = {}
    for published in recorded.subjects.values():
        for p in published:
            for topic, payload in unbundled(p.topic, p.payload):
                batch = env.decode(payload)
                if isinstance(batch, env.RawBatch):
                    by_second.setdefault(round(p.t_s), []).append(batch_samples(batch, topic))
    turns = [by_second[k] for k in sorted(by_second)][2:-2]  # whole seconds of every subject
    with tempfile.TemporaryDirectory() as tmp:
        server = InfluxDB(Path(tmp)).start()
        try:
            store = open_store(server.store_url())
            store.write_raw_many(turns[0])
            totals: dict[str, float] = {}
            timed(influx_check, "held", totals)
            timed(transport.InfluxTransport, "select", totals)
            timed(transport.InfluxTransport, "send", totals)
            timed(influx_packed, "pack", totals)
            timed(influx_packed, "display_lines", totals)
            timed(influx, "plan_raw_writes", totals)
            timed(influx, "not_stored_yet", totals)
            cpu0 = time.thread_time()
            for turn in turns[1:]:
                store.write_raw_many(turn)
            cpu = time.thread_time() - cpu0
            layout = store.layout.writes()  # type: ignore[attr-defined]
            store.close()
        finally:
            server.kill()
    n = len(turns) - 1
    batches = sum(len(t) for t in turns[1:]) / n
    print(
        f"{n} turns of {batches:.0f} batches ({args.subjects} subjects, raw layout {layout}): "
        f"{cpu / n * 1e3:.1f} ms of CPU a turn, {cpu / n / batches * 1e6:.0f} us a batch; tree {args.tree}"
    )
    names = {
        "held": "write check (`influx_check.held`)",
        "select": "  its request (`InfluxTransport.select`)",
        "pack": "packing (`raw_packed.pack`)",
        "display_lines": "display points (`raw_display.display_lines`)",
        "send": "the writes' requests (`InfluxTransport.send`)",
        "not_stored_yet": "`raw_plan.not_stored_yet`",
        "plan_raw_writes": "`raw_plan.plan_raw_writes`",
    }
    for key, label in names.items():
        print(f"  {label:48s} {totals.get(key, 0.0) / n * 1e3:6.2f} ms a turn")


if __name__ == "__main__":
    main()
