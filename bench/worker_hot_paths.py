"""The worker's per-message and per-window overhead, part by part: decoding a raw batch, admitting it, feeding a
live window (everything around the live analysis itself).

Run:  .venv/bin/python bench/worker_hot_paths.py [--tree DIR]
``--tree``: import the project from another checkout (e.g. ``git archive HEAD`` unpacked in /tmp) to compare two
versions on the same machine; run the two alternately, the machine is shared.

Prints microseconds per call, the minimum over repeats (decode, admit) or the 10th percentile and median of 150
windows (feed):
- ``env.decode``, ``decode_message``: one raw batch payload (10 packets of 10 samples, JSON with base64 packets);
- ``decode_packets``: its packets to arrays; ``batch_samples``: to `RawSamples` (packets, checks, times);
- ``admit``: `Worker._admit` per raw delivery (30 subjects x 3 sensors a call; budget, decode, `RawIngest.take`);
- ``feed``: `LiveWindows._feed` of a one-second window of three sensors (the cache reads, `check_complete`, the
  grid; not the analysis), with the window's batches stored here (``stored``) or taken and not yet written
  (``in flight``, as a worker admits a window behind its batches).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

PLACEMENTS = ("left_thigh", "pelvis", "right_thigh")


def best_us(func: Callable[[], object], number: int = 2000, repeat: int = 7) -> float:
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            func()
        runs.append((time.perf_counter() - t0) / number * 1e6)
    return min(runs)


def decode_figures() -> dict[str, float]:
    import numpy as np

    from analytics.worker.decode import batch_samples, decode_message
    from firmware_protocol.packet import ImuPacket, encode_packet
    from firmware_protocol.packet_arrays import decode_packets
    from gaitsym_common.uplink import envelope as env
    from gaitsym_common.uplink.topics import topic

    rng = np.random.default_rng(1)
    packets = []
    for k in range(10):
        seq = 12_345 + 10 * k
        samples = tuple(tuple(int(v) for v in row) for row in rng.integers(-2000, 2000, size=(10, 6)))
        packet = ImuPacket(sequence=seq, timestamp_us=seq * 10_000, acc_range_g=16, gyr_range_dps=2000, samples=samples)  # type: ignore[arg-type]
        packets.append(encode_packet(packet))
    sensor = env.SensorIdentity("GS24-A0001", 7, 100.0, 16, 2000, "1.0.0")
    clock = env.ClockMapping(True, 123_456, 1_764_000_000.123456, 1.0000123, -12.3, 0.4)
    batch = env.RawBatch(
        "raw",
        env.raw_batch_id("GS24-A0001", 7, 12_345),
        "S001",
        "S1-1",
        "pelvis",
        sensor,
        12_345,
        12_444,
        100,
        123_450_000,
        clock,
        tuple(packets),
    )
    payload, where = env.encode(batch), topic("S001", "raw", "pelvis")
    message = decode_message(where, payload)
    assert isinstance(message, env.RawBatch)
    return {
        "env.decode": best_us(lambda: env.decode(payload)),
        "decode_message": best_us(lambda: decode_message(where, payload)),
        "decode_packets": best_us(
            lambda: decode_packets(
                message.packets, seq_first=12_345, timestamp_us_first=123_450_000, sample_rate_hz=100.0
            )
        ),
        "batch_samples": best_us(lambda: batch_samples(message, where)),
    }


def admit_figure() -> float:
    from analytics.stores import open_store
    from analytics.worker.link import Delivery
    from gaitsym_common.uplink import envelope as env
    from testing.worker.hostile import ScriptedLink, make_worker, raw_batch, raw_topic

    tmp = Path(tempfile.mkdtemp())
    link = ScriptedLink()
    worker = make_worker(tmp, open_store(str(tmp / "store.sqlite")), link, live_segments=True)

    def second(first: int) -> list[Delivery]:
        out = []
        for s in range(30):
            subject = f"S{s:03d}"
            for p in PLACEMENTS:
                b = replace(raw_batch(subject, first, serial=f"GS-{subject}-{p}", placement=p), session=f"{subject}-1")
                out.append(Delivery(raw_topic(subject, p), env.encode(b), link.deliver("", b"")))
        return out

    link.queued.clear()
    seconds = [second(100 * i) for i in range(40)]
    per: list[float] = []
    for deliveries in seconds:
        t0 = time.perf_counter()
        worker._admit(deliveries)
        per.append((time.perf_counter() - t0) / len(deliveries) * 1e6)
        # the turn that would write them: not measured here
        worker._carry.clear()
        worker.ingest._taken.clear()
        worker.ingest._in_flight.clear()
    return min(per)


def feed_figures(in_flight: bool, windows_n: int = 150) -> tuple[float, float]:
    from analytics.stores import open_store
    from analytics.worker.config import SubjectLog, WorkerConfig, WorkerStats
    from analytics.worker.link import Delivery
    from analytics.worker.live_windows import LiveWindows
    from analytics.worker.raw_ingest import RawIngest, StreamKey, stream_key
    from analytics.worker.segments import Segment
    from gaitsym_common.uplink import envelope as env
    from testing.worker.hostile import raw_batch, raw_topic

    subject, session = "S1", "S1-1"
    tokens = iter(range(1, 1 << 30))

    def second(first: int) -> list[tuple[Delivery, env.RawBatch]]:
        out = []
        for p in PLACEMENTS:
            b = replace(raw_batch(subject, first, serial=f"GS-{p}", placement=p), session=session)
            out.append((Delivery(raw_topic(subject, p), b"", (1, next(tokens))), b))
        return out

    def marker(last: int) -> Segment:
        return Segment(
            subject, session, "window", f"w{last}", {p: env.SensorPosition(f"GS-{p}", 7, last) for p in PLACEMENTS}
        )

    store = open_store(str(Path(tempfile.mkdtemp()) / "store.sqlite"))
    log = SubjectLog("w", 10.0, time.monotonic)
    ingest = RawIngest(WorkerConfig(), store, WorkerStats(), time.monotonic, log, lambda *_: None, lambda _: None)
    carried: dict[StreamKey, list[tuple[int, int]]] = {}
    ingest.waiting = lambda key: carried.get(key, [])
    windows = LiveWindows(store, ingest, time.monotonic)
    for first in range(0, 3000, 100):
        ingest.finish_batches(ingest.start_batches(second(first)))
    live, _ = windows.window(marker(2999), "alg")
    seconds = [second(3000 + 100 * i) for i in range(windows_n)]
    took: list[float] = []
    for i, batches in enumerate(seconds):
        if in_flight:
            for d, b in batches:
                ingest.take(d, b)
                carried.setdefault(stream_key(b), []).append((b.seq_first, b.seq_last))
        else:
            ingest.finish_batches(ingest.start_batches(batches))
        segment = marker(3000 + 100 * i + 99)
        t0 = time.perf_counter()
        windows._feed(live, segment)
        took.append((time.perf_counter() - t0) * 1e6)
        if in_flight:
            carried.clear()
            ingest.finish_batches(ingest.start_batches(batches))
        if i % 10 == 9:
            live.gait.step()
    assert all(f.seq == 3000 + 100 * windows_n - 1 for f in live.feeds.values())
    took.sort()
    return took[len(took) // 10], took[len(took) // 2]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", help="import the project from this directory instead")
    args = parser.parse_args(argv)
    # the project's root (``testing`` is not installed), or the other checkout to compare
    sys.path.insert(0, str(Path(args.tree).resolve() if args.tree else Path(__file__).resolve().parents[1]))
    for name, us in decode_figures().items():
        print(f"{name:16s} {us:7.1f} us")
    print(f"{'admit (raw)':16s} {admit_figure():7.1f} us per delivery")
    for in_flight in (False, True):
        runs: list[Any] = [feed_figures(in_flight) for _ in range(3)]
        p10, median = min(r[0] for r in runs), min(r[1] for r in runs)
        label = "feed in flight" if in_flight else "feed stored"
        print(f"{label:16s} {p10:7.1f} us (p10), {median:.1f} us (median) per window")


if __name__ == "__main__":
    main()
