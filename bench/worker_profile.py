"""Where the worker's CPU goes: the worker process under cProfile, in real time (``--real-time``: the
`bench/worker_latency.py` run, what a clinic sees) or in the `worker_cost` scenario (faster than real time).

N simulated subjects stream through the production gateway core and a real Mosquitto into ONE `gaitsym worker`
(under cProfile with a CPU-time timer) and a real InfluxDB 1.6; then the profile's
cumulative times are grouped into the worker's stages (decode, raw writes, completeness checks, segment reads,
analysis, result writes, acks). CPU time of the process (``time.process_time``): waiting for InfluxDB or for
messages costs nothing; the MQTT thread's CPU is charged to what the main thread was doing; cProfile's own
overhead inflates Python-heavy stages (compare stages with each other, take absolute costs from worker_cost.py).
Use ``--wall`` for wall-clock time instead (waits for InfluxDB and for messages included), or
``--thread`` for the main thread's own CPU time (``time.thread_time``: the MQTT thread's CPU is then not charged
to whatever the main thread was waiting in, e.g. an InfluxDB request; the MQTT and other threads' CPU is printed
apart as the process CPU minus the main thread's).

Run: .venv/bin/python bench/worker_profile.py --real-time [--subjects 20] [--minutes 1] [--top 25] [--thread]
     .venv/bin/python bench/worker_profile.py [--subjects 5] [--minutes 1.2] [--top 25] [--wall | --thread]
     [--window-s 5] [--batch-s 1]
     [--extra=--no-live]
"""

from __future__ import annotations

import argparse
import os
import pstats
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from testing.influxdb_server import InfluxDB  # noqa: E402
from testing.servers import Mosquitto  # noqa: E402
from testing.worker import harness  # noqa: E402
from testing.worker.scenario import fresh_database, run_scenario  # noqa: E402

STAGES = {
    "decode (envelope JSON, base64, packets)": ("decode_message", "batch_samples"),
    "live windows: feed (checks, samples onto the grid)": ("_feed", "_cold"),
    "live windows: readiness checks": ("_due",),
    "live windows: analyses": ("_strides",),
    "live windows: session estimates": ("_estimate",),
    "raw write (line protocol / SQLite)": ("write_raw_many",),
    "completeness check": ("check_complete",),
    "segment read (store -> arrays, resample)": ("load_segment",),
    "analysis (analyze_recording)": ("analyze_recording",),
    "result write (replace/append results)": ("replace_results", "write_live"),
    "already-stored check": ("_already_stored",),
    "acks (publish)": ("send_due",),
}
"""Stage -> functions whose cumulative times add up (none calls another). Before issue 6's changes the raw write
was ``write_raw`` (one call per batch): that name is used when ``write_raw_many`` does not exist."""


def stage_times(stats: pstats.Stats) -> dict[str, float]:
    raw = stats.stats  # type: ignore[attr-defined]
    cum: dict[str, float] = {}
    for (_filename, _line, func), (_cc, _nc, _tt, ct, _callers) in raw.items():
        cum[func] = max(cum.get(func, 0.0), ct)
    out = {}
    for name, keys in STAGES.items():
        if keys == ("write_raw_many",) and "write_raw_many" not in cum:
            keys = ("write_raw",)
        out[name] = sum(cum.get(k, 0.0) for k in keys)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subjects", type=int, default=5)
    ap.add_argument("--minutes", type=float, default=1.2)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--window-s", type=float, default=5.0, help="gateway window marker period (as worker_cost.py)")
    ap.add_argument("--batch-s", type=float, default=1.0, help="gateway batch length (as worker_cost.py)")
    ap.add_argument("--extra", nargs="*", default=[], help="extra `gaitsym worker` arguments")
    ap.add_argument("--wall", action="store_true", help="wall-clock timer (waits included)")
    ap.add_argument("--thread", action="store_true", help="main thread's CPU time only (time.thread_time)")
    ap.add_argument("--real-time", action="store_true", help="the real-time run of bench/worker_latency.py")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gaitsym-bench-profile-"))
    os.environ["GAITSYM_STATE_DIR"] = str(tmp / "state")
    prof = tmp / "worker.prof"
    original_init = harness.WorkerProcess.__init__
    timer = "time.perf_counter" if args.wall else "time.thread_time" if args.thread else "time.process_time"

    def init(self: harness.WorkerProcess, *a: object) -> None:
        original_init(self, *a)  # type: ignore[arg-type]
        i = self.args.index("-m")
        # CPU time of the whole process (every thread's CPU, attributed to the main thread's current call)
        code = (
            "import cProfile, sys, time\n"
            "from gaitsym.cli import main\n"
            f"sys.argv = ['gaitsym', *{self.args[i + 2 :]!r}]\n"
            f"p = cProfile.Profile({timer})\n"
            "c0, m0 = time.process_time(), time.thread_time()\n"
            "p.enable()\n"
            "try:\n    main(sys.argv[1:])\n"
            f"finally:\n    p.disable()\n    p.dump_stats({str(prof)!r})\n"
            "    c, m = time.process_time() - c0, time.thread_time() - m0\n"
            f"    open({str(prof) + '.cpu'!r}, 'w').write(f'{{c}} {{m}}')\n"
        )
        self.args[i:] = ["-c", code]

    harness.WorkerProcess.__init__ = init  # type: ignore[method-assign,assignment]
    if args.real_time:
        from testing.worker.realtime import RealTimeBench

        bench = RealTimeBench(tmp, args.subjects, args.minutes * 60.0, worker_args=tuple(args.extra))
        with bench.started():
            result = bench.run()
        print(result.report())
        report(prof, args.subjects * args.minutes * 60.0, args.top)
        return
    server = InfluxDB(tmp / "influxdb").start()
    broker = Mosquitto(tmp / "mosquitto").start()
    try:
        out = run_scenario(
            tmp,
            broker.port,
            fresh_database(server),
            n_workers=1,
            n_subjects=args.subjects,
            minutes=args.minutes,
            extra=tuple(args.extra),
            gateway={"window_s": args.window_s, "batch_s": args.batch_s},
        )
    finally:
        broker.kill()
        server.kill()
    n_raw = sum(v[2] for v in out.raw.values())
    report(prof, n_raw / 300.0, args.top)


def report(prof: Path, subject_s: float, top: int) -> None:
    """The profile's stages per subject-second, then its top functions."""
    stats = pstats.Stats(str(prof))
    total = max(ct for (_f, _l, func), (_cc, _nc, _tt, ct, _c) in stats.stats.items() if func == "run")  # type: ignore[attr-defined]
    print(f"{subject_s:.0f} subject-seconds; worker loop (Worker.run) {total:.2f} s")
    print("| stage | s | ms per subject-second |\n|---|---|---|")
    for name, t in stage_times(stats).items():
        print(f"| {name} | {t:.2f} | {t / subject_s * 1000:.2f} |")
    print(f"| whole loop | {total:.2f} | {total / subject_s * 1000:.2f} |")
    cpu_file = Path(str(prof) + ".cpu")
    if cpu_file.exists():
        process_cpu, main_cpu = (float(v) for v in cpu_file.read_text().split())
        print(
            f"process CPU {process_cpu:.2f} s, main thread {main_cpu:.2f} s, other threads (MQTT, ...) "
            f"{process_cpu - main_cpu:.2f} s = {(process_cpu - main_cpu) / subject_s * 1000:.2f} ms per subject-second"
            " (profiler overhead included; imports included)"
        )
    stats.sort_stats("cumulative").print_stats(top)


if __name__ == "__main__":
    main()
