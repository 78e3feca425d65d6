"""Write throughput of the stores, in raw points/s: the real InfluxDB 1.6 (v1 /write, batches of 5,000 lines,
gzip, auth on, WAL fsync on every write, started here on loopback like the tests do) and the embedded SQLite
store. Raw samples: 3 placements at 100 Hz, written as the worker would
(one call per --batch samples, 5,000 by default).

    .venv/bin/python bench/storage_write.py [--minutes 10] [--batch 5000]

Prints one line per store; the figures and this command go to bench/RESULTS.md, "Storage write throughput".
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analytics.stores import Store, open_store  # noqa: E402
from analytics.stores.embedded import EmbeddedStore  # noqa: E402
from testing.influxdb_server import InfluxDB  # noqa: E402
from testing.stores.storelib import batch  # noqa: E402


def run(store: Store, minutes: float, subject: str, size: int) -> tuple[int, float, float]:
    per_sensor = int(minutes * 60 * 100)
    batches = [
        batch(subject, seq_first=s, n=min(size, per_sensor - s), placement=p, serial=f"GS-{p}")
        for p in ("pelvis", "left_thigh", "right_thigh")
        for s in range(0, per_sensor, size)
    ]
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    n = 0
    for b in batches:
        store.write_raw(b)
        n += len(b)
    wall = time.perf_counter() - t0
    return n, wall, time.process_time() - cpu0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=10.0, help="session length written per store")
    parser.add_argument("--batch", type=int, default=5000, help="samples per write call (= lines per request)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = InfluxDB(Path(tmp) / "influxdb").start()
        try:
            influx = open_store(server.store_url() + f"?quarantine_path={tmp}/q.sqlite")
            n, wall, cpu = run(influx, args.minutes, "BENCH1", args.batch)
            check = influx.count_raw("BENCH1", "pelvis", "GS-pelvis", 42, 0, 10**9)
            print(
                f"influxdb 1.6 v1 /write gzip {args.batch}-line batches: {n} points in {wall:.1f} s = {n / wall:,.0f} "
                f"points/s (client CPU {cpu:.1f} s; pelvis stored {check})"
            )
            influx.close()
        finally:
            server.kill()
        emb = EmbeddedStore(Path(tmp) / "store.sqlite")
        n, wall, cpu = run(emb, args.minutes, "BENCH1", args.batch)
        size = (Path(tmp) / "store.sqlite").stat().st_size
        print(
            f"embedded SQLite (WAL, synchronous=FULL): {n} points in {wall:.1f} s = {n / wall:,.0f} points/s "
            f"(CPU {cpu:.1f} s; file {size / n:.0f} B/sample)"
        )
        emb.close()
    print(f"numpy {np.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
