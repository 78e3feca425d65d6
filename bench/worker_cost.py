"""Worker cost and InfluxDB write throughput on this machine (real Mosquitto, real InfluxDB 1.6, live results on).

1. N simulated subjects (3 sensors at 100 Hz each, walking) stream through the production gateway core, a real
   Mosquitto and ONE `gaitsym worker` process into a real InfluxDB 1.6, faster than real time. The worker's
   CPU time (user + system, from /proc) divided by the subject-seconds of data it stored and analysed gives
   CPU-seconds per subject-second; its inverse is the number of subjects one worker core keeps up with.
   influxd's and mosquitto's CPU over the same run give the whole chain's cost per subject-second.
2. Raw write throughput: `InfluxStore.write_raw` of 100-sample batches (one gateway batch of one sensor is
   1 s = 100 samples) and of 5,000-sample batches, points/s, to the same server.

Run: .venv/bin/python bench/worker_cost.py [--subjects 5] [--minutes 1.2]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from testing.influxdb_server import InfluxDB  # noqa: E402
from testing.servers import Mosquitto  # noqa: E402
from testing.worker.scenario import fresh_database, run_scenario  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def psutil_children() -> list[tuple[int, str]]:
    """(pid, command line) of this process's children (from /proc)."""
    me = str(os.getpid())
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if fields[1] == me:
                cmd = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                out.append((int(stat.parent.name), cmd))
        except OSError:
            continue
    return out


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def write_throughput(server: InfluxDB, n_samples: int, batch: int) -> float:
    import numpy as np

    from analytics.stores import open_store
    from analytics.stores.model import samples_from_arrays
    from gaitsym_common.uplink.envelope import ClockMapping

    store = open_store(fresh_database(server))
    t0 = float(int(time.time()) // 86400 * 86400 - 86400)
    clock = ClockMapping(True, 0, t0, 1.0, 0.0, 0.5)
    rng = np.random.default_rng(1)
    batches = []
    for i in range(0, n_samples, batch):
        seq = np.arange(i, i + batch)
        batches.append(
            samples_from_arrays(
                subject="BENCH",
                session="b",
                placement="pelvis",
                serial="GS24-B",
                boot_epoch=1,
                seq=seq,
                t_sensor_us=seq * 10_000,
                acc_mps2=np.round(rng.normal(0, 1, (batch, 3)), 4),
                gyr_dps=np.round(rng.normal(0, 5, (batch, 3)), 3),
                clock=clock,
                msg_id=f"raw:GS24-B:1:{i}",
            )
        )
    start = time.perf_counter()
    points = sum(store.write_raw(b).points_written for b in batches)
    elapsed = time.perf_counter() - start
    store.close()
    return points / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subjects", type=int, default=5)
    ap.add_argument("--minutes", type=float, default=1.2)
    ap.add_argument("--no-live", action="store_true", help="worker without live results (session ends only)")
    ap.add_argument("--window-s", type=float, default=5.0, help="gateway window marker period (default 5.0)")
    ap.add_argument("--batch-s", type=float, default=1.0, help="gateway batch length (default 1.0)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gaitsym-bench-worker-"))
    os.environ["GAITSYM_STATE_DIR"] = str(tmp / "state")
    server = InfluxDB(tmp / "influxdb").start()
    broker = Mosquitto(tmp / "mosquitto").start()
    samples: dict[str, float] = {}

    try:
        # CPU marks: before the first sample (once the worker has imported everything and connected), then at
        # the end, before it stops: every subject-second of the run is counted, nothing else
        import testing.worker.scenario as sc

        original_sessions = sc.home_sessions

        def home_sessions(*a: Any, **k: Any) -> Any:
            deadline = time.monotonic() + 60.0
            log = tmp / "worker-1.log"
            while time.monotonic() < deadline and "MQTT connected" not in (log.read_text() if log.exists() else ""):
                time.sleep(0.1)
            proc = [p for p in psutil_children() if "worker-1" in p[1]]
            samples["worker0"] = cpu_s(proc[0][0])
            samples["influx0"] = cpu_s(server.proc.pid)  # type: ignore[union-attr]
            samples["mosq0"] = cpu_s(broker.proc.pid)  # type: ignore[union-attr]
            return original_sessions(*a, **k)

        sc.home_sessions = home_sessions  # type: ignore[assignment]

        original_stop = sc.WorkerProcess.stop

        def stop(self: sc.WorkerProcess) -> None:
            if self.proc is not None and self.proc.poll() is None and "worker1" not in samples:
                samples["worker1"] = cpu_s(self.proc.pid)
                samples["influx1"] = cpu_s(server.proc.pid)  # type: ignore[union-attr]
                samples["mosq1"] = cpu_s(broker.proc.pid)  # type: ignore[union-attr]
            original_stop(self)

        sc.WorkerProcess.stop = stop  # type: ignore[method-assign]
        wall0 = time.monotonic()
        out = run_scenario(
            tmp,
            broker.port,
            fresh_database(server),
            n_workers=1,
            n_subjects=args.subjects,
            minutes=args.minutes,
            extra=("--no-live",) if args.no_live else (),
            gateway={"window_s": args.window_s, "batch_s": args.batch_s},
        )
        wall = time.monotonic() - wall0
        n_raw = sum(v[2] for v in out.raw.values())
        subject_s = n_raw / 3 / 100.0
        strides = sum(1 for rows in out.results.values() for r in rows if r[0] == "stride")
        worker = samples["worker1"] - samples["worker0"]
        influx = samples["influx1"] - samples["influx0"]
        mosq = samples["mosq1"] - samples["mosq0"]
        measured_s = subject_s
        print(f"subjects {args.subjects}, session {args.minutes} min, raw samples stored {n_raw}, strides {strides}")
        print(f"wall {wall:.1f} s; subject-seconds: {measured_s:.0f}")
        for name, cpu in (("worker", worker), ("influxd", influx), ("mosquitto", mosq)):
            print(f"{name:10s} CPU {cpu:7.2f} s  = {cpu / measured_s * 1000:6.2f} ms per subject-second")
        live = "off" if args.no_live else "on"
        print(f"one worker core keeps up with {measured_s / worker:.0f} subjects (live results {live})")
        stats = [line for line in out.worker_logs.splitlines() if "stopping;" in line]
        print("worker stats:", stats[-1].split("stopping;", 1)[1].strip() if stats else "?")
        found = re.search(r"segments_analysed=(\d+).*analysis_cpu_s=([0-9.]+)", stats[-1]) if stats else None
        if found:  # the pipeline's share varies with how many live windows coalesce (the worker is saturated)
            n_analyses, analysis = int(found.group(1)), float(found.group(2))
            print(
                f"of which analyses ({n_analyses}, analyze_recording) {analysis:.2f} s = "
                f"{analysis / measured_s * 1000:.2f} ms per subject-second; the worker without them "
                f"{(worker - analysis) / measured_s * 1000:.2f} ms per subject-second"
            )
        total = worker + influx + mosq
        print(
            f"worker + influxd + mosquitto: {total / measured_s * 1000:.2f} ms/subject-s -> 2 cores: "
            f"{2 * measured_s / total:.0f} subjects (gateway simulation excluded)"
        )
        for n, b in ((100_000, 100), (200_000, 5000)):
            print(f"raw write throughput, {b}-sample batches: {write_throughput(server, n, b):,.0f} points/s")
    finally:
        broker.kill()
        server.kill()


if __name__ == "__main__":
    main()
