"""How fast the dashboards' panels answer: every clinic-overview and patient-trend query (and their variables'
queries) of dashboards.queries on the real InfluxDB 1.6 (auth on, started here on loopback like the tests do)
seeded with results only (session_summary, exercise_set, stride, exercise_plan; no raw) for --subjects subjects x
--days days of one session a day: the results of real analyses of simulated sessions (testing.dashboard_seed:
mostly home sessions with every exercise and ~94 strides, some asymmetric walks and withheld ones), written as line
protocol at their dates.

    .venv/bin/python bench/dashboard_queries.py [--subjects 500] [--days 180] [--repeats 20] [--workdir DIR]

Each query runs as Grafana runs it (variables, $timeFilter and $__interval substituted; POST /query, epoch=ms, as
the read-only user), after two warm-up runs, --repeats times; the time is the request until the whole answer is
read (the answer is not parsed). Dashboard state: clinic overview over its default 90 days (--clinic-days), every
subject; the patient over its default 180 days, one subject. Prints one row per query (p50, p95, rows answered) for
bench/RESULTS.md, "Dashboard queries". --workdir keeps the seeded InfluxDB between runs (seeding takes minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analytics.stores.influx import InfluxConfig, InfluxStore  # noqa: E402
from analytics.stores.model import point_line  # noqa: E402
from analytics.stores.plans import make_plan  # noqa: E402
from analytics.stores.quarantine import Quarantine  # noqa: E402
from dashboards import queries  # noqa: E402
from testing.dashboard_seed import DAY_US, analysed, session_results  # noqa: E402
from testing.grafana_queries import ALL, GrafanaInflux, Variable, substitute  # noqa: E402
from testing.influxdb_server import ADMIN_PASSWORD, ADMIN_USER, WORKER_PASSWORD, WORKER_USER, InfluxDB  # noqa: E402

GRAFANA_USER, GRAFANA_PASSWORD = "grafana", "grafana-bench-pw"
BATCH_LINES = 5000


def templates(kind: str) -> list[tuple[str, str, int]]:
    """One session's lines split around its subject, session and time: (head, body, time offset µs)."""
    results = session_results(analysed(kind).doc, "SUBJECTX", "SESSIONX", 0)
    out = []
    for point in results.points:
        head, body, t = point_line(point).rsplit(" ", 2)
        out.append((head, body, int(t)))
    return out


def seed(store: InfluxStore, subjects: int, days: int, now_us: int) -> int:
    kinds = {k: templates(k) for k in ("home", "asymmetric", "withheld")}
    lines: list[str] = []
    written = 0

    def flush() -> None:
        nonlocal written, lines
        if lines:
            store.transport.write_lines(store.config.results_rp, lines, "bench seed", store.quarantine)
            written += len(lines)
            lines = []

    for s in range(subjects):
        subject = f"p{s:04d}"
        for day in range(1, days + 1):
            kind = "home"
            if s % 10 == 3 and day <= 14:
                kind = "asymmetric"
            elif (s * 7 + day) % 29 == 0:
                kind = "withheld"
            t0 = now_us - day * DAY_US - (s % 12) * 3_600_000_000
            session = f"s{day:03d}"
            for head, body, offset in kinds[kind]:
                named = body.replace("SESSIONX", session).replace("SUBJECTX", subject)
                lines.append(f"{head.replace('SUBJECTX', subject)} {named} {t0 + offset}")
            if len(lines) >= BATCH_LINES:
                flush()
        for exercise, side in (("clam", "left"), ("clam", "right"), ("single_leg_bridge", "left")):
            store.write_plan(make_plan(subject, exercise, side, 3, 10, now_us - 60 * DAY_US))
    flush()
    return written


def time_query(grafana: GrafanaInflux, text: str) -> tuple[float, int]:
    """Seconds until the whole answer is read, and the answer's size (bytes)."""
    t = time.perf_counter()
    body = grafana.answer(text)
    return time.perf_counter() - t, len(body)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subjects", type=int, default=500)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument(
        "--clinic-days", type=int, default=90, help="the clinic overview's time range (its default: 90)"
    )
    parser.add_argument("--workdir", type=Path, help="keep the seeded InfluxDB here (reused when seeded alike)")
    args = parser.parse_args()
    tmp = None
    if args.workdir is None:
        tmp = tempfile.TemporaryDirectory()
        workdir = Path(tmp.name)
    else:
        workdir = args.workdir
        workdir.mkdir(parents=True, exist_ok=True)
    marker = workdir / "seeded.json"
    wanted = {"subjects": args.subjects, "days": args.days}
    server = InfluxDB(workdir / "influxdb").start()
    try:
        admin = InfluxStore(
            InfluxConfig(url=server.url, username=ADMIN_USER, password=ADMIN_PASSWORD),
            Quarantine(workdir / "admin-quarantine.sqlite"),
        )
        config = InfluxConfig(url=server.url, username=WORKER_USER, password=WORKER_PASSWORD, timeout_s=120.0)
        store = InfluxStore(config, Quarantine(workdir / "quarantine.sqlite"))
        seeded = json.loads(marker.read_text()) if marker.is_file() else {}
        if {k: seeded.get(k) for k in wanted} != wanted:
            admin.query(f"CREATE USER \"{GRAFANA_USER}\" WITH PASSWORD '{GRAFANA_PASSWORD}'")
            admin.query(f'GRANT READ ON "gaitsym" TO "{GRAFANA_USER}"')
            now_us = (time.time_ns() // 1000 // DAY_US) * DAY_US
            t = time.perf_counter()
            n = seed(store, args.subjects, args.days, now_us)
            seeded = {**wanted, "now_us": now_us, "points": n, "seed_s": round(time.perf_counter() - t, 1)}
            marker.write_text(json.dumps(seeded))
        print(
            f"store: {seeded['points']:,} result points ({args.subjects} subjects x {args.days} days; seeded in "
            f"{seeded['seed_s']} s)"
        )
        grafana = GrafanaInflux(server.url, "gaitsym", GRAFANA_USER, GRAFANA_PASSWORD, timeout_s=120.0)
        now_ms = int(seeded["now_us"]) // 1000
        everyone = Variable(ALL, multi=True, include_all=True, all_value=".*")
        states = {
            "clinic": ({"subject": everyone, "band": Variable("10"), "worse_pp": Variable("3"),
                        "worse_deg": Variable("1")}, now_ms - args.clinic_days * 86_400_000),
            "patient": ({"subject": Variable("p0003"), "band": Variable("10"), "exercise": everyone,
                         "side": everyone}, now_ms - 180 * 86_400_000),
        }  # fmt: skip
        load = os.getloadavg()
        print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        print(f"{'query':<32} {'p50 ms':>8} {'p95 ms':>8} {'rows':>7} {'answer':>9}")
        worst = 0.0
        for key, q in queries.Q.items():
            dashboard = {"var.subject": "clinic", "var.exercise": "patient"}.get(key, key.split(".")[0])
            if dashboard not in states:
                continue
            variables, from_ms = states[dashboard]
            text = substitute(q.query, variables, from_ms=from_ms, to_ms=now_ms)
            n_rows = sum(len(s.get("values", [])) for s in grafana.run(text))
            for _ in range(2):
                time_query(grafana, text)
            times, size = [], 0
            for _ in range(args.repeats):
                seconds, size = time_query(grafana, text)
                times.append(seconds * 1000)
            times.sort()
            p50 = statistics.median(times)
            p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
            worst = max(worst, p95)
            print(f"{key:<32} {p50:8.1f} {p95:8.1f} {n_rows:7d} {size / 1024:7.1f} KiB")
        load = os.getloadavg()
        print(f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; slowest p95 {worst:.1f} ms")
        store.close()
        admin.close()
    finally:
        server.stop()
        if tmp is not None:
            tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
