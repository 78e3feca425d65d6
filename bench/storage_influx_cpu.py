"""Where InfluxDB's CPU goes under the worker's real-time raw writes, and what each part costs per subject-second.

N subjects x 3 sensors at 100 Hz, 1-s batches (the gateway's default) arriving on the real clock with their
phases spread; every ``--turn-s`` (the worker's ``turn_gather_s``, 0.1 s) the batches that arrived are written in
ONE `InfluxStore.write_raw_many` call, as the worker's raw ingest does (collision check, samples, index). Sample
values are int16 counts times the sensor's scale, as the worker decodes them (their text length is what the
server parses). A real InfluxDB 1.6.7 from the project's configuration (auth on, every write fsynced), started
here; influxd's CPU (user + system, /proc) over the run, per subject-second; its own request counters
(/debug/vars); with ``--profile`` its CPU profile (/debug/pprof/profile, Go's own symbols: the Debian binary is
stripped) summed into the parts of a request.

    .venv/bin/python bench/storage_influx_cpu.py [--subjects 20] [--seconds 30] [--profile]
        [--spread-s 0.2]           # batches close within 0.2 s of each other (the gateway's default: aligned)
        [--batch-lines 5000]       # lines per write request (InfluxConfig.batch_lines)
        [--check probe|exact|off]  # the store's check (probe, then the exact read where needed); the exact read
                                   # alone (the check before the probe); none (a measurement only)
        [--poll 0.05]              # also poll stride_live like bench/worker_latency.py's poller
        [--gogc 400]               # influxd's Go garbage collector target (GOGC), default Go's 100
        [--set KEY=VALUE]          # an influxdb.conf setting, e.g. cache-snapshot-memory-size='"5m"'
        [--without serial ...]     # raw points without that field (what a schema with fewer fields would cost)
        [--owner-ref]              # the three identity fields replaced by one integer (scope doc, variant ii)
        [--packed i2|f8]           # one point per batch, its samples packed in string fields (measurement only)
        [--raw-layout packed]      # the store's own packed layout (raw_layout=packed), its check included
    .venv/bin/python bench/storage_influx_cpu.py --sequential 100000 [--check ...]
        # one sensor's samples in 100-sample `write_raw` calls as fast as they go (bench/worker_cost.py's
        # throughput figure): points/s and influxd CPU

Prints one line per run; figures go to bench/RESULTS.md, "Storage: InfluxDB CPU under real-time raw writes".
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import os
import sys
import tempfile
import threading
import time
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analytics.stores import open_store  # noqa: E402
from analytics.stores.model import RawSamples, samples_from_arrays  # noqa: E402
from gaitsym_common.uplink.envelope import ClockMapping  # noqa: E402
from testing.influxdb_server import InfluxDB  # noqa: E402
from testing.worker.realtime import poll_query  # noqa: E402
from testing.worker.scenario import fresh_database  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
PLACEMENTS = ("pelvis", "left_thigh", "right_thigh")
ACC_SCALE = 8 / 32768.0 * 9.80665  # ±8 g
GYR_SCALE = 2000 / 32768.0  # ±2000 deg/s


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def sensor_batch(subject: str, p: int, k: int, t0_utc_s: float, rng: np.random.Generator) -> RawSamples:
    """Batch ``k`` (1 s, 100 samples) of sensor ``p`` of a subject, mapped to UTC from ``t0_utc_s``."""
    seq = np.arange(k * 100, (k + 1) * 100)
    ticks = 7_000_000 + seq * 10_000 + p * 1_234
    clock = ClockMapping(True, 7_000_000, t0_utc_s, 1.0 / (1.0 + 12.5e-6), 12.5, 0.8)
    acc = (rng.integers(-3000, 3000, (100, 3)) + [0, 0, 4096]) * ACC_SCALE
    gyr = rng.integers(-2000, 2000, (100, 3)) * GYR_SCALE
    return samples_from_arrays(
        subject=subject,
        session=f"{subject}-S1",
        placement=PLACEMENTS[p],
        serial=f"GS24-{subject}-{p}",
        boot_epoch=3,
        seq=seq,
        t_sensor_us=ticks,
        acc_mps2=acc,
        gyr_dps=gyr,
        clock=clock,
        msg_id=f"raw:{subject}:{p}:{k}",
    )


# ------------------------------------------------------------------------------------------ pprof, decoded here


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    out = shift = 0
    while True:
        b = buf[i]
        i += 1
        out |= (b & 0x7F) << shift
        if b < 0x80:
            return out, i
        shift += 7


def _fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    out: list[tuple[int, int | bytes]] = []
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            v, i = _varint(buf, i)
            out.append((num, v))
        elif wire == 2:
            n, i = _varint(buf, i)
            out.append((num, buf[i : i + n]))
            i += n
        elif wire == 1:
            out.append((num, int.from_bytes(buf[i : i + 8], "little")))
            i += 8
        elif wire == 5:
            out.append((num, int.from_bytes(buf[i : i + 4], "little")))
            i += 4
        else:
            raise ValueError(f"protobuf wire type {wire}")
    return out


def _ints(v: int | bytes) -> list[int]:
    if isinstance(v, int):
        return [v]
    out, i = [], 0
    while i < len(v):
        x, i = _varint(v, i)
        out.append(x)
    return out


def pprof_stacks(data: bytes) -> list[tuple[list[str], int]]:
    """(function names leaf first, CPU ns) per sample of a Go CPU profile (gzipped profile.proto)."""
    buf = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    strings: list[str] = []
    functions: dict[int, int] = {}
    locations: dict[int, list[int]] = {}
    samples: list[tuple[list[int], list[int]]] = []
    for num, v in _fields(buf):
        if num == 6:
            assert isinstance(v, bytes)
            strings.append(v.decode("utf-8", "replace"))
        elif num == 5:
            assert isinstance(v, bytes)
            f = dict(_fields(v))
            functions[int(f.get(1, 0))] = int(f.get(2, 0))
        elif num == 4:
            assert isinstance(v, bytes)
            loc_id, funcs = 0, []
            for n2, v2 in _fields(v):
                if n2 == 1:
                    loc_id = int(v2)  # type: ignore[arg-type]
                elif n2 == 4:
                    assert isinstance(v2, bytes)
                    funcs.append(int(dict(_fields(v2)).get(1, 0)))
            locations[loc_id] = funcs
        elif num == 2:
            assert isinstance(v, bytes)
            locs: list[int] = []
            vals: list[int] = []
            for n2, v2 in _fields(v):
                if n2 == 1:
                    locs += _ints(v2)
                elif n2 == 2:
                    vals += _ints(v2)
            samples.append((locs, vals))
    out = []
    for locs, vals in samples:
        names = [strings[functions[f]] for loc in locs for f in locations.get(loc, [])]
        out.append((names, vals[-1]))  # values: samples/count, cpu/nanoseconds
    return out


PARTS = (
    ("query (the collision check, polls)", ("serveQuery", "(*StatementExecutor).ExecuteStatement")),
    ("snapshots and compactions", ("cacheKeyIterator", "Compact", "compact", "Snapshot")),
    ("write: parse line protocol", ("models.ParsePoints", "models.parsePoints")),
    ("write: WAL (encode, fsync)", ("(*WAL).", "(*WALSegmentWriter)")),
    (
        "write: field values into cache and index",
        ("(*Engine).WritePoints", "(*Shard).WritePoints", "(*Cache).", "validateSeriesAndFields"),
    ),
    ("write: other", ("serveWrite",)),
    ("http: request, auth, gzip", ("net/http.", "(*Handler).ServeHTTP", "authenticate")),
    ("garbage collector", ("runtime.gcBgMarkWorker", "runtime.gcDrain", "runtime.bgsweep", "runtime.mallocgc")),
)


def summarise_profile(stacks: list[tuple[list[str], int]], top: int = 25) -> str:
    total = sum(ns for _, ns in stacks) or 1
    parts: dict[str, int] = defaultdict(int)
    flat: dict[str, int] = defaultdict(int)
    cum: dict[str, int] = defaultdict(int)
    for names, ns in stacks:
        if names:
            flat[names[0]] += ns
        for n in set(names):
            cum[n] += ns
        for label, keys in PARTS:  # the first part whose key is anywhere on the stack, root side first
            if any(k in n for n in names for k in keys):
                parts[label] += ns
                break
        else:
            parts["other (runtime, idle loops)"] += ns
    lines = [f"profile: {total / 1e9:.2f} s of CPU sampled"]
    lines += [f"  {label:40s} {ns / total * 100:5.1f} %" for label, ns in sorted(parts.items(), key=lambda x: -x[1])]
    lines.append("  top by cumulative:")
    lines += [f"    {ns / total * 100:5.1f} %  {n}" for n, ns in sorted(cum.items(), key=lambda x: -x[1])[:top]]
    lines.append("  top by own time:")
    lines += [f"    {ns / total * 100:5.1f} %  {n}" for n, ns in sorted(flat.items(), key=lambda x: -x[1])[:top]]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ the run


def debug_vars(server: InfluxDB) -> dict[str, Any]:
    with urllib.request.urlopen(f"{server.url}/debug/vars", timeout=10) as resp:
        doc: dict[str, Any] = json.loads(resp.read())
    for key, value in doc.items():
        if key.startswith("httpd"):
            return dict(value.get("values", {}))
    return {}


def use_check(store: Any, check: str) -> None:
    """``off``: no collision check (a measurement only, never what the store does); ``exact``: the check as it was
    before the probe (the exact read for every call: two statements of three fields per sensor and span)."""
    if check == "off":
        store._held = lambda batches, report: {}
    elif check == "exact":
        from analytics.stores.influx_codec import held_points, held_queries
        from analytics.stores.model import check_windows

        def exact(batches: Any, report: Any) -> Any:
            spans: dict[Any, list[Any]] = {}
            wide: dict[Any, list[Any]] = {}
            seqs: dict[Any, list[int]] = {}
            for b in batches:
                rp = store._raw_rp(b)
                sensor = (rp, b.subject, b.placement, b.serial, b.boot_epoch)
                for span, widened in check_windows(b):
                    spans.setdefault((rp, b.subject, b.placement), []).append(span)
                    wide.setdefault(sensor, []).append(widened)
                seqs.setdefault(sensor, []).extend((int(b.seq[0]), int(b.seq[-1])))
            found: list[Any] = []
            for q in held_queries(store.config.database, spans, wide, seqs):
                found += store.transport.select(q, "checking", report)
            return held_points(found)

        store._held = exact


def without_fields(names: list[str], owner_reference: bool = False) -> None:
    """Raw lines without these fields (a measurement of what a schema with fewer fields per point would cost the
    server; the store never writes such points). ``owner_reference``: plus one integer per point, the microseconds
    to its batch's last sample (where an owner point per batch part would stand: `docs/raw-layout-v2-scope.md`,
    variant ii; no owner points are written and nothing could read such points back)."""
    import analytics.stores.influx as influx
    from analytics.stores.raw_model import raw_lines

    drop = tuple(f"{n}=" for n in names)

    def lines(samples: RawSamples) -> list[str]:
        last = int(samples.time_us()[-1])
        out = []
        for line in raw_lines(samples):
            head, fields, ts = line.rsplit(" ", 2)  # the bench's serials and sessions hold no space
            kept = [f for f in fields.split(",") if not f.startswith(drop)]
            if owner_reference:
                kept.append(f"owner={last - int(ts)}i")
            out.append(f"{head} {','.join(kept)} {ts}")
        return out

    influx.raw_lines = lines  # type: ignore[assignment]


def packed_batches(values: str) -> None:
    """One raw point per batch instead of one per sample (a measurement of what such a layout would cost the server;
    the store never writes such points and nothing could read them back): the batch's int16 counts, sensor-clock
    steps and UTC steps as base64 string fields, its identity and length as fields, at its first sample's time."""
    import analytics.stores.influx as influx
    from analytics.stores.points import _escape_key, _escape_string
    from analytics.stores.raw_model import RAW

    def lines(samples: RawSamples) -> list[str]:
        times = samples.time_us()
        if values == "i2":
            counts = np.rint(np.column_stack([samples.acc_mps2 / ACC_SCALE, samples.gyr_dps / GYR_SCALE]))
            arrays = [counts.astype("<i2"), np.diff(samples.t_sensor_us).astype("<i4"), np.diff(times).astype("<i4")]
        else:
            steps = [np.diff(a).astype("<i8") for a in (samples.seq, samples.t_sensor_us, times)]
            arrays = [np.column_stack([samples.acc_mps2, samples.gyr_dps]).astype("<f8"), *steps]
        blob = "".join(base64.b64encode(a.tobytes()).decode("ascii") + ":" for a in arrays)
        head = f"{RAW},placement={_escape_key(samples.placement)},subject={_escape_key(samples.subject)}"
        return [
            f"{head} boot_epoch={samples.boot_epoch}i,n={len(samples)}i,samples={_escape_string(blob)},"
            f"seq={int(samples.seq[0])}i,serial={_escape_string(samples.serial)},"
            f"session={_escape_string(samples.session or '')},"
            f"t_sensor_us={int(samples.t_sensor_us[0])}i {int(times[0])}"
        ]

    influx.raw_lines = lines  # type: ignore[assignment]


def sequential(args: argparse.Namespace, server: InfluxDB, url: str, tmp: Path) -> None:
    """One sensor's samples in 100-sample `write_raw` calls, back to back: InfluxDB 1.6 keeps a series' fields in
    memory until its cache is snapshotted (25 MB: minutes of one sensor), and the check reads those columns."""
    store: Any = open_store(url + f"?quarantine_path={tmp}/q.sqlite&raw_layout={args.raw_layout}")
    use_check(store, args.check)
    rng = np.random.default_rng(1)
    t0 = time.time() - 86_400
    batches = [sensor_batch("SEQ", 0, k, t0, rng) for k in range(args.sequential // 100)]
    assert server.proc is not None
    cpu0 = cpu_s(server.proc.pid)
    start = time.perf_counter()
    points = sum(store.write_raw(b).points_written for b in batches)
    wall = time.perf_counter() - start
    influx = cpu_s(server.proc.pid) - cpu0
    print(
        f"sequential, check {args.check}: {points} points, 100-sample write_raw calls: {points / wall:,.0f} points/s, "
        f"influxd {influx:.1f} s CPU ({influx / len(batches) * 1000:.2f} ms per call)"
    )
    store.close()


def run(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="gaitsym-bench-influx-cpu-"))
    os.environ["GAITSYM_STATE_DIR"] = str(tmp / "state")
    if args.gogc:
        os.environ["GOGC"] = str(args.gogc)  # inherited by influxd
    overrides = {"pprof-enabled": "true"} if args.profile else {}
    overrides.update(dict(kv.split("=", 1) for kv in args.set))
    server = InfluxDB(tmp / "influxdb", http_overrides=overrides).start()
    try:
        url = fresh_database(server)
        if args.packed:
            packed_batches(args.packed)
        elif args.owner_ref:
            without_fields([*args.without, "serial", "boot_epoch", "session"], owner_reference=True)
        elif args.without:
            without_fields(args.without)
        if args.sequential:
            sequential(args, server, url, tmp)
            return
        store: Any = open_store(url + f"?quarantine_path={tmp}/q.sqlite&raw_layout={args.raw_layout}")
        if args.batch_lines:
            store = store.with_config(batch_lines=args.batch_lines)
        use_check(store, args.check)
        rng = np.random.default_rng(7)
        subjects = [f"RT{i:03d}" for i in range(args.subjects)]
        t_start = time.time() + 1.0
        # sensor p of subject s closes batch k at t_start + k + 1 + phase: --spread-s 1 gateways not in step,
        # --spread-s 0.2 the gateway's default (every sensor closes at the whole second, arrivals spread by the air)
        phase = {(s, p): float(rng.uniform(0, args.spread_s)) for s in range(args.subjects) for p in range(3)}
        events = sorted(
            (t_start + k + 1 + phase[(s, p)], s, p, k)
            for s in range(args.subjects)
            for p in range(3)
            for k in range(int(args.seconds))
        )
        stop = threading.Event()
        poller = None
        if args.poll:

            def poll() -> None:
                reader: Any = open_store(url)
                q = poll_query()
                while not stop.is_set():
                    reader.query(q)
                    stop.wait(args.poll)
                reader.close()

            poller = threading.Thread(target=poll, daemon=True)
        # warm up: the shard, series and fields exist before the measurement (as in a running clinic)
        store.write_raw_many(
            [sensor_batch(subject, p, 10_000, t_start - 20_000, rng) for subject in subjects for p in range(3)]
        )
        profile: dict[str, bytes] = {}
        if args.profile:
            secs = max(1, int(args.seconds) - 2)

            def fetch() -> None:
                with urllib.request.urlopen(f"{server.url}/debug/pprof/profile?seconds={secs}", timeout=secs + 60) as r:
                    profile["data"] = r.read()

            prof_thread = threading.Thread(target=fetch, daemon=True)
        while time.time() < t_start:
            time.sleep(0.01)
        assert server.proc is not None
        vars0 = debug_vars(server)
        cpu0 = cpu_s(server.proc.pid)
        client0 = time.process_time()
        load0 = os.getloadavg()
        if poller:
            poller.start()
        if args.profile:
            prof_thread.start()
        i = 0
        calls = 0
        points = 0
        turn = t_start
        while i < len(events):
            turn += args.turn_s
            now = time.time()
            if turn > now:
                time.sleep(turn - now)
            due = []
            while i < len(events) and events[i][0] <= turn:
                _, s, p, k = events[i]
                due.append(sensor_batch(subjects[s], p, k, t_start, rng))
                i += 1
            if due:
                report = store.write_raw_many(due)
                calls += 1
                points += report.points_written
        wall = time.time() - t_start
        cpu1 = cpu_s(server.proc.pid)
        client = time.process_time() - client0
        load1 = os.getloadavg()
        vars1 = debug_vars(server)
        stop.set()
        if poller:
            poller.join()
        if args.profile:
            prof_thread.join()
        subject_s = args.subjects * int(args.seconds)
        influx = cpu1 - cpu0
        d = {k: vars1.get(k, 0) - vars0.get(k, 0) for k in vars1}
        print(
            f"subjects {args.subjects}, {int(args.seconds)} s, spread {args.spread_s} s, check {args.check}, "
            f"batch_lines {store.config.batch_lines}, gogc {args.gogc or 'default'}, "
            f"without {','.join(args.without) or '-'}{', owner reference' if args.owner_ref else ''}"
            f"{f', one point per batch ({args.packed})' if args.packed else ''}, raw layout {args.raw_layout}, "
            f"settings {' '.join(args.set) or '(deploy/influxdb/influxdb.conf)'}, "
            f"poll {args.poll or 'off'}: influxd {influx:.2f} s CPU = {influx / subject_s * 1000:.2f} ms per "
            f"subject-second; {calls} write calls ({calls / wall:.1f}/s), {points} points; requests: "
            f"{d.get('writeReq', 0)} writes, {d.get('queryReq', 0)} queries; this process {client:.1f} s CPU; "
            f"load {load0[0]:.2f} -> {load1[0]:.2f}"
        )
        if d.get("queryReq"):
            write_ms = d.get("writeReqDurationNs", 0) / max(1, d.get("writeReq", 1)) / 1e6
            query_ms = d.get("queryReqDurationNs", 0) / d["queryReq"] / 1e6
            print(f"  server time per request: write {write_ms:.2f} ms, query {query_ms:.2f} ms (wall, not CPU)")
        if profile.get("data"):
            (tmp / "influxd.pprof").write_bytes(profile["data"])
            print(summarise_profile(pprof_stacks(profile["data"]), args.top))
            print(f"  profile kept: {tmp / 'influxd.pprof'}")
        store.close()
    finally:
        server.kill()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subjects", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--turn-s", type=float, default=0.1, help="the worker's turn_gather_s")
    ap.add_argument(
        "--spread-s", type=float, default=1.0, help="batch closes spread over this (0.2: the gateway's aligned batches)"
    )
    ap.add_argument("--batch-lines", type=int, default=0, help="the store's batch_lines (default: InfluxConfig's)")
    ap.add_argument(
        "--check",
        choices=("probe", "exact", "off"),
        default="probe",
        help="probe: the store's; exact: before the probe",
    )
    ap.add_argument("--poll", type=float, default=0.0, help="also poll stride_live every this many s")
    ap.add_argument("--profile", action="store_true", help="influxd's CPU profile over the run")
    ap.add_argument("--top", type=int, default=20)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="an influxdb.conf setting")
    ap.add_argument("--without", action="append", default=[], help="leave this raw field out (measurement only)")
    ap.add_argument(
        "--owner-ref",
        action="store_true",
        help="serial, boot_epoch and session replaced by one integer field (measurement only)",
    )
    ap.add_argument(
        "--packed",
        choices=("i2", "f8"),
        default=None,
        help="one raw point per batch, its samples in string fields: int16 counts or float64 (measurement only)",
    )
    ap.add_argument(
        "--raw-layout",
        choices=("points", "packed"),
        default="points",
        help="the store's own raw layout (`raw_layout`: points per sample, or packed parts, check included)",
    )
    ap.add_argument("--gogc", type=int, default=None, help="influxd's GOGC (Go's default: 100)")
    ap.add_argument("--sequential", type=int, default=0, help="one sensor's N samples in 100-sample write_raw calls")
    run(ap.parse_args())


if __name__ == "__main__":
    main()
