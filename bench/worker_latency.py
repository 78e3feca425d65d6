"""Live-result latency on the real clock: from the last sample of a stride to the stride being queryable.

Real Mosquitto, real InfluxDB 1.6, one `gaitsym worker` process (production defaults), and N simulated
subjects whose production gateway cores run on the REAL clock (their virtual clock is advanced by the real
elapsed time every 20 ms; UTC at start = the real UTC), window markers and batches at the gateway's default
periods (`GatewayConfig.window_s`, `batch_s`). A poller queries InfluxDB every ``--poll`` s for the provisional
strides (`stride_live`) and records when each first becomes visible. Latency of a stride = first visible
(real UTC) - UTC of its last sample (point time + end_s - start_s). Resolution: the poll period (the figure
is an upper bound by up to one poll period).

Run: .venv/bin/python bench/worker_latency.py [--subjects 3] [--seconds 90] [--poll 0.05]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from worker_cost import cpu_s  # noqa: E402

from analytics.stores import open_store  # noqa: E402
from analytics.worker.decode import batch_samples  # noqa: E402
from gaitsym_common.uplink import envelope as env  # noqa: E402
from sensor_gateway.core import GatewayConfig  # noqa: E402
from testing.influxdb_server import InfluxDB  # noqa: E402
from testing.servers import Mosquitto  # noqa: E402
from testing.worker.harness import WorkerProcess, home_sessions, stop_gateways  # noqa: E402
from testing.worker.scenario import fresh_database  # noqa: E402


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subjects", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=90.0)
    ap.add_argument("--poll", type=float, default=0.05)
    ap.add_argument("--window-s", type=float, default=GatewayConfig.window_s, help="gateway window period")
    ap.add_argument("--batch-s", type=float, default=GatewayConfig.batch_s, help="gateway batch length")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gaitsym-bench-latency-"))
    os.environ["GAITSYM_STATE_DIR"] = str(tmp / "state")
    server = InfluxDB(tmp / "influxdb").start()
    broker = Mosquitto(tmp / "mosquitto").start()
    url = fresh_database(server)
    worker = WorkerProcess(broker.port, url, "worker-lat", tmp).start()
    seen: dict[tuple[str, int, str], tuple[float, float]] = {}
    stop = threading.Event()
    published: dict[tuple[str, str], list[tuple[float, float]]] = {}
    """(subject, placement) -> (real UTC when the gateway handed the raw batch to MQTT, UTC of its last sample)."""

    def tap_publish(publish: Any) -> Any:
        def tapped(topic_: str, payload: bytes, *a: Any, **k: Any) -> Any:
            if "/raw/" in topic_:
                batch = env.decode(payload)
                if isinstance(batch, env.RawBatch) and batch.clock.utc_synced:
                    last_utc = float(batch_samples(batch).time_us()[-1]) / 1e6
                    published.setdefault((batch.subject, batch.placement), []).append((time.time(), last_utc))
            return publish(topic_, payload, *a, **k)

        return tapped

    def poll() -> None:
        store = open_store(url)
        q = 'SELECT start_s, end_s, side, subject FROM "results"."stride_live" WHERE time > now() - 10m'
        while not stop.is_set():
            t_wall = time.time()
            try:
                rows = list(store.rows(q))  # type: ignore[attr-defined]
            except Exception:
                rows = []
            for r in rows:
                if "start_s" not in r or "end_s" not in r:
                    continue  # InfluxDB stores each field apart: a point being written can be read half-way
                key = (str(r["subject"]), int(r["time"]), str(r["side"]))
                if key not in seen:
                    end_utc = int(r["time"]) / 1e6 + float(r["end_s"]) - float(r["start_s"])
                    seen[key] = (t_wall, end_utc)
            stop.wait(args.poll)
        store.close()

    try:
        time.sleep(1.5)
        cfg = GatewayConfig(subject="x", window_s=args.window_s, batch_s=args.batch_s)
        t_start = time.time()
        sessions = home_sessions(
            tmp,
            broker.port,
            args.subjects,
            minutes=args.seconds / 60.0 + 0.2,
            utc0=t_start,
            window_s=cfg.window_s,
            batch_s=cfg.batch_s,
        )
        for s in sessions:  # real time: every subject's UTC is the real UTC (home_sessions staggers them)
            s.clock._utc0 = time.time() - (s.clock._t - s.clock._start)  # type: ignore[attr-defined]
            s.gateway.link.publish = tap_publish(s.gateway.link.publish)  # type: ignore[method-assign]
        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        pids = {"worker": worker.proc.pid, "influxd": server.proc.pid, "mosquitto": broker.proc.pid}  # type: ignore[union-attr]
        cpu0 = {k: cpu_s(pid) for k, pid in pids.items()}
        bench0 = time.process_time()
        last = time.monotonic()
        t_end = last + args.seconds
        while time.monotonic() < t_end:
            time.sleep(0.02)
            now = time.monotonic()
            for s in sessions:
                s.step(now - last)
            last = now
        cpu1 = {k: cpu_s(pid) for k, pid in pids.items()}
        bench_cpu = time.process_time() - bench0
        time.sleep(3.0)
        stop.set()
        poller.join()
        stop_gateways(sessions)
    finally:
        worker.stop()
        broker.kill()
        server.kill()
    lat = [wall - end for wall, end in seen.values()]
    if os.environ.get("LAT_DEBUG"):
        worst = sorted(((wall - end, end - t_start, k[0]) for k, (wall, end) in seen.items()), reverse=True)[:15]
        print("worst:", [(round(a, 2), round(b, 1), c) for a, b, c in worst])
    subject_s = args.subjects * args.seconds
    total = 0.0
    for k in cpu0:
        cpu = cpu1[k] - cpu0[k]
        total += cpu
        print(f"{k:10s} CPU {cpu:7.2f} s = {cpu / subject_s * 1000:6.2f} ms per subject-second (real time)")
    print(
        f"worker + influxd + mosquitto {total / subject_s * 1000:.2f} ms per subject-second -> 2 cores: "
        f"{2 * subject_s / total:.0f} subjects; this bench process (gateways + poller): {bench_cpu:.1f} s CPU"
    )
    stats = [line for line in worker.log().splitlines() if "stopping;" in line]
    print("worker stats:", stats[-1].split("stopping;", 1)[1].strip() if stats else "?")
    print(
        f"subjects {args.subjects}, {args.seconds:.0f} s real time, window_s {cfg.window_s}, batch_s {cfg.batch_s}, "
        f"poll {args.poll} s"
    )
    if not lat:
        print("no live strides seen; worker log:\n" + worker.log()[-3000:])
        return
    print(
        f"live strides {len(lat)}: latency p50 {statistics.median(lat):.2f} s, p99 {pct(lat, 0.99):.2f} s, "
        f"max {max(lat):.2f} s, min {min(lat):.2f} s"
    )
    # where it goes: the gateway (last sample -> every sensor's batch holding it handed to MQTT) and the rest
    # (MQTT, the worker, InfluxDB, the poll)
    gateway_part, rest = [], []
    for (subject, _t, _side), (wall, end) in seen.items():
        outs = []
        for (subj, _placement), rows in published.items():
            if subj == subject:
                outs.append(next((w for w, last in rows if last >= end - 0.005), None))
        if outs and None not in outs:
            out = max(o for o in outs if o is not None)
            gateway_part.append(out - end)
            rest.append(wall - out)
    if gateway_part:
        g50, g99 = statistics.median(gateway_part), pct(gateway_part, 0.99)
        r50, r99 = statistics.median(rest), pct(rest, 0.99)
        print(
            f"of which gateway (last sample -> all three batches published): p50 {g50:.2f} s, p99 {g99:.2f} s; "
            f"MQTT + worker + InfluxDB + poll: p50 {r50:.2f} s, p99 {r99:.2f} s ({len(rest)} strides)"
        )


if __name__ == "__main__":
    main()
