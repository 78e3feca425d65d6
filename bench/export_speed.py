"""Export speed (samples/s) and peak memory per format, on embedded stores holding 1, 10 and 30 sessions of
30 min (3 sensors at 100 Hz, 540,000 samples a session; raw retention lengthened to 10 years), seeded directly
through the store API; and one session from a real InfluxDB 1.6 (started here on loopback), with its raw read
timed alone to show where that path is limited. Each export runs in a fresh process (its peak RSS is the
export's own) on one core; the subject-year (about 180 sessions, 100 million samples) is extrapolated from the
30-session rate, not measured.

    .venv/bin/python bench/export_speed.py [--sessions 1,10,30] [--formats parquet,csv,bids] [--influx-sessions 1]

Prints one line per run; the figures and this command go to bench/RESULTS.md, "Research export: speed and memory".
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analytics.stores import Store, open_store  # noqa: E402
from analytics.stores.embedded import EmbeddedStore  # noqa: E402
from analytics.stores.model import samples_from_arrays  # noqa: E402
from gaitsym_common.uplink.envelope import ClockMapping, SensorIdentity  # noqa: E402
from testing.influxdb_server import InfluxDB  # noqa: E402

SUBJECT = "BENCH01"
SESSION_S = 30 * 60
RATE_HZ = 100
BATCH_S = 60
PLACEMENTS = ("pelvis", "left_thigh", "right_thigh")
TEN_YEARS_S = 10 * 365 * 86400.0

CHILD = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
from pathlib import Path
from analytics.stores import open_store
from analytics.stores.embedded import EmbeddedStore
from export.run import ExportRequest, run_export
url = {store!r}
store = open_store(url) if "://" in url else EmbeddedStore(url, raw_retention_s={retention!r})
t0 = time.perf_counter(); c0 = time.process_time()
if {read_only!r}:
    n = 0
    for s in store.raw_sessions(0, 4_102_444_800_000_000, subject={subject!r}):
        for p in s.sensors:
            for chunk in store.raw_chunks({subject!r}, p, start_us=s.first_us, end_us=s.last_us, session=s.session):
                n += chunk.num_rows
else:
    n = run_export(store, ExportRequest(({subject!r},), {fmt!r}, Path({out!r}))).samples
wall = time.perf_counter() - t0
print(json.dumps({{"samples": n, "wall_s": wall, "cpu_s": time.process_time() - c0,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def seed_session(store: Store, index: int, t0_s: float) -> int:
    """One 30-min session: each sensor its own drifting clock, values quantised as the sensors send them."""
    rng = np.random.default_rng(index)
    n_batch = BATCH_S * RATE_HZ
    session = f"{SUBJECT}-{index:04d}"
    written = 0
    for i, placement in enumerate(PLACEMENTS):
        drift = (i - 1) * 12.0
        clock = ClockMapping(True, 0, t0_s, 1.0 / (1.0 + drift * 1e-6), drift, 0.5)
        serial, boot = f"GS-B{i}", 100 + index * 3 + i
        batches = []
        for k in range(SESSION_S // BATCH_S):
            seq = np.arange(k * n_batch, (k + 1) * n_batch, dtype=np.int64)
            counts = rng.integers(-3000, 3000, size=(n_batch, 6))
            batches.append(
                samples_from_arrays(
                    subject=SUBJECT,
                    session=session,
                    placement=placement,
                    serial=serial,
                    boot_epoch=boot,
                    seq=seq,
                    t_sensor_us=seq * 10_000,
                    acc_mps2=counts[:, :3] * (9.80665 * 16 / 32768),
                    gyr_dps=counts[:, 3:] * (2000 / 32768),
                    clock=clock,
                    sensor=SensorIdentity(serial, boot, 100.0, 16, 2000, "1.0.0"),
                )
            )
        for j in range(0, len(batches), 5):
            store.write_raw_many(batches[j : j + 5])
        written += len(batches) * n_batch
    return written


def child(store_url: str, fmt: str, out: Path, read_only: bool = False) -> dict[str, float]:
    code = CHILD.format(
        root=str(ROOT), store=store_url, subject=SUBJECT, fmt=fmt, out=str(out), read_only=read_only,
        retention=TEN_YEARS_S,
    )  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=ROOT)
    if done.returncode:
        raise SystemExit(f"export child failed: {done.stderr[-2000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def line(what: str, r: dict[str, float]) -> str:
    return (
        f"{what}: {r['samples']:,.0f} samples in {r['wall_s']:.1f} s = {r['samples'] / r['wall_s']:,.0f} samples/s "
        f"(CPU {r['cpu_s']:.1f} s = {r['samples'] / r['cpu_s']:,.0f} per CPU-second), peak RSS "
        f"{r['peak_rss_mb']:.0f} MB, load average {os.getloadavg()[0]:.1f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", default="1,10,30")
    parser.add_argument("--formats", default="parquet,csv,bids")
    parser.add_argument("--influx-sessions", type=int, default=1)
    args = parser.parse_args()
    sizes = [int(x) for x in args.sessions.split(",")]
    formats = args.formats.split(",")
    t_first = float(int(time.time()) // 86400 * 86400 - 200 * 86400)  # sessions a day apart, within retention
    rates: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        path = tmp / "store.sqlite"
        store = EmbeddedStore(path, raw_retention_s=TEN_YEARS_S)
        have = 0
        for size in sizes:
            t0 = time.perf_counter()
            n = sum(seed_session(store, i, t_first + i * 86400.0) for i in range(have, size))
            print(f"seeded {size - have} sessions ({n:,} samples) in {time.perf_counter() - t0:.0f} s", flush=True)
            have = size
            for fmt in ["read", *formats]:
                out = tmp / f"out-{fmt}-{size}"
                r = child(str(path), fmt, out, read_only=fmt == "read")
                print(line(f"embedded, {size} sessions, {fmt}", r), flush=True)
                rates[fmt] = r["samples"] / r["wall_s"]
                if out.exists():
                    subprocess.run(["rm", "-rf", str(out)], check=True)
        store.close()
        os.environ.setdefault("GAITSYM_STATE_DIR", str(tmp / "state"))
        for fmt in ["read", *formats]:
            year_s = 100e6 / rates[fmt]
            print(f"subject-year (100 M samples), {fmt}: extrapolated {year_s / 60:.1f} min at the 30-session rate")
        if args.influx_sessions:
            server = InfluxDB(tmp / "influxdb").start()
            try:
                url = server.store_url() + f"?quarantine_path={tmp}/q.sqlite&raw_retention=3650d"
                influx = open_store(url)
                t0 = time.perf_counter()
                # within the server's own raw retention policy (the test server keeps 30 days): recent days
                recent = float(int(time.time()) // 86400 * 86400 - (args.influx_sessions + 1) * 86400)
                n = sum(seed_session(influx, i, recent + i * 86400.0) for i in range(args.influx_sessions))
                print(f"influx seeded {n:,} samples in {time.perf_counter() - t0:.0f} s", flush=True)
                influx.close()
                for fmt in ["read", "parquet"]:
                    r = child(url, fmt, tmp / f"influx-{fmt}", read_only=fmt == "read")
                    print(line(f"influxdb 1.6, {args.influx_sessions} sessions, {fmt}", r), flush=True)
            finally:
                server.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
