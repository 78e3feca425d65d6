"""Real-time runs of one worker for the benches: what a clinic's server sees while its patients stream.

`RealTimeBench` starts a real InfluxDB 1.6 and a real Mosquitto (the project's configurations), one `gaitsym worker`
process (production defaults unless ``worker_args`` say otherwise), a poller that queries InfluxDB for the
provisional strides (``stride_live``) every ``poll_s`` and records when each one first becomes visible, then
streams N subjects **on the real clock** for ``seconds``, and reports (`RealTimeResult`) the CPU of the worker,
influxd and mosquitto over the run, per subject-second, and each stride's latency: first visible (real UTC) - UTC of
its last sample, split into the gateway's part (last sample -> the batches of every sensor holding it handed to
MQTT) and the rest (MQTT, the worker, InfluxDB, the poll: an upper bound by up to one poll).

Two ways to stream the subjects (``load``):

- ``"gateways"``: each subject's production gateway core (`testing.worker.harness.home_sessions`: virtual kit,
  SQLite outbox, its own MQTT connection) stepped on the real clock in this process. Exact, but the gateways cost
  this process about 12 ms of CPU per subject-second, more than the machine can spare beyond ~30 subjects;
- ``"replay"`` (default): the same gateway cores run beforehand, faster than real time, on a link that records
  what they publish and acknowledges it at once (`record_sessions`, cached on disk), then each subject's messages
  are published at their recorded instants on the real clock, UTC moved to now, over one MQTT connection per
  subject subscribed like a gateway (`Replay`). The worker, the broker and InfluxDB see the same messages at the
  same cadence; the gateways' own work (and their re-sends, never needed here) is left out. About 0.1 ms of CPU
  per subject-second: 250 subjects fit beside the servers.

Used by bench/worker_latency.py, bench/worker_fairness.py and bench/worker_profile.py ``--real-time``.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analytics.stores import open_store
from gaitsym_common.uplink import envelope as env
from testing.influxdb_server import InfluxDB
from testing.servers import Mosquitto
from testing.worker.harness import WorkerProcess
from testing.worker.proc_cpu import cpu_s, peak_rss_mb, thread_cpu_s, thread_split
from testing.worker.replay import Recorded, Replay, gateway_phases, record_sessions
from testing.worker.scenario import fresh_database

POLL_WINDOW_S = 12.0
"""The poller asks for provisional strides starting this recently: a stride visible later than about this minus
its own length after its end is counted as late (`RealTimeResult.late`), never as fast."""


def poll_query(window_s: float = POLL_WINDOW_S) -> str:
    """The poller's question: each provisional stride of the last ``window_s``, its length as one number (its end
    is its time plus that) and its series' tags. Measured on 100 subjects' 12 s of strides, InfluxDB answers it
    with 15-25 % less CPU than the two fields themselves, and ``GROUP BY`` the tags would cost it about twice as
    much (a series object each)."""
    return (
        'SELECT "end_s" - "start_s" AS "stride_s", "side", "subject" FROM "results"."stride_live" '
        f"WHERE time > now() - {round(window_s * 1000)}ms"
    )


def stride_ends(series: list[dict[str, Any]]) -> Iterator[tuple[tuple[str, int, str], float]]:
    """(subject, point time µs, side) -> UTC of the stride's end, s, from the answer to `poll_query`. A row without
    a length is a point read half-written (InfluxDB stores each field apart): not yet visible."""
    for s in series:
        columns = s["columns"]
        at = {c: columns.index(c) for c in ("time", "stride_s", "side", "subject")}
        for row in s.get("values") or []:
            t, stride_s = row[at["time"]], row[at["stride_s"]]
            if stride_s is not None:
                yield (str(row[at["subject"]]), int(t), str(row[at["side"]])), int(t) / 1e6 + float(stride_s)


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


# ---------------------------------------------------------------------------------------------- the bench


@dataclass
class RealTimeResult:
    subjects: int
    seconds: float
    cpu_s: dict[str, float]
    """Process name -> CPU over the streaming, s."""
    latencies: list[float]
    """Per provisional stride seen: first visible - UTC of its last sample, s."""
    steady: list[float]
    """The same, of strides ending more than ``steady_after_s`` after their subject's first stride ended."""
    late: int
    """Provisional strides stored but never seen by the poller within ``POLL_WINDOW_S``."""
    gateway_part: list[float]
    rest: list[float]
    worker_stats: str
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    bench_cpu_s: float
    worker_log: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    cpu_after_s: float | None = None
    """When set: the CPU over the streaming's first ``cpu_after_s`` seconds is also kept apart (`cpu_start_s`)."""
    cpu_start_s: dict[str, float] = field(default_factory=dict)
    """Process name -> CPU over the first ``cpu_after_s`` seconds of the streaming, s (every session's start)."""

    @property
    def subject_s(self) -> float:
        return self.subjects * self.seconds

    def per_subject_second_ms(self, name: str) -> float:
        return self.cpu_s[name] / self.subject_s * 1000.0

    def _start_and_after(self) -> list[str]:
        """The CPU of the sessions' first ``cpu_after_s`` seconds and of the rest apart: every session of the
        bench starts with it, while a clinic's sessions (10-30 minutes, starting at different times) spend most
        of their time past their start."""
        after = self.cpu_after_s
        if after is None or not self.cpu_start_s or not 0 < after < self.seconds:
            return []
        names: list[str] = [n for n in ("worker", "influxd", "mosquitto") if n in self.cpu_s and n in self.cpu_start_s]
        first = {n: self.cpu_start_s[n] for n in names}
        later = {n: self.cpu_s[n] - self.cpu_start_s[n] for n in names}
        n_first, n_later = self.subjects * after, self.subjects * (self.seconds - after)

        def row(cpu: dict[str, float], subject_s: float) -> str:
            parts = ", ".join(f"{n} {cpu[n] / subject_s * 1000:.2f}" for n in names)
            return f"{parts}; chain {sum(cpu.values()) / subject_s * 1000:.2f} ms per subject-second"

        start_cost = {n: first[n] - later[n] / n_later * n_first for n in names}
        return [
            f"  sessions' first {after:g} s: {row(first, n_first)}",
            f"  sessions past their first {after:g} s (what a clinic's long sessions mostly are): "
            f"{row(later, n_later)}",
            "  a session's start costs beyond that: "
            + ", ".join(f"{n} {start_cost[n] / self.subjects:.3f} s" for n in names)
            + " of CPU",
        ]

    def report(self) -> str:
        """The figures as lines of text (the benches print them)."""
        lines = []
        chain = 0.0
        for name in ("worker", "influxd", "mosquitto"):
            if name in self.cpu_s:
                chain += self.cpu_s[name]
                lines.append(
                    f"{name:10s} CPU {self.cpu_s[name]:7.2f} s = {self.per_subject_second_ms(name):6.2f} ms per "
                    "subject-second (real time)"
                )
        for name in sorted(set(self.cpu_s) - {"worker", "influxd", "mosquitto"}):
            lines.append(f"{name:10s} CPU {self.cpu_s[name]:7.2f} s")
        lines.append(
            f"worker + influxd + mosquitto {chain / self.subject_s * 1000:.2f} ms per subject-second -> 2 cores: "
            f"{2 * self.subject_s / chain:.0f} subjects; worker alone -> one core: "
            f"{self.subject_s / self.cpu_s['worker']:.0f} subjects; this bench process: {self.bench_cpu_s:.1f} s CPU"
        )
        lines.extend(self._start_and_after())
        threads = self.extra.get("worker_threads_s")
        if threads:
            lines.append(
                "worker by thread (the first worker): "
                + ", ".join(f"{k} {v / self.subject_s * 1000:.2f}" for k, v in threads.items())
                + " ms per subject-second"
            )
        workers = self.extra.get("workers", 1)
        if workers > 1:
            lines.append(f"{workers} workers (one shared subscription): 'worker' is their CPU together")
        rss = self.extra.get("peak_rss_mb")
        if rss:
            lines.append("peak memory (VmHWM): " + ", ".join(f"{k} {v:.0f} MB" for k, v in rss.items()))
        lines.append(f"worker stats: {self.worker_stats}")
        lines.append(
            f"subjects {self.subjects}, {self.seconds:.0f} s real time; load average before "
            f"{self.load_before[0]:.2f} {self.load_before[1]:.2f} {self.load_before[2]:.2f}, after "
            f"{self.load_after[0]:.2f} {self.load_after[1]:.2f} {self.load_after[2]:.2f}"
        )
        if not self.latencies:
            lines.append("no live strides seen; worker log:\n" + self.worker_log[-3000:])
            return "\n".join(lines)
        lat = self.latencies
        lines.append(
            f"live strides {len(lat)} (+{self.late} seen only after {POLL_WINDOW_S:g} s): latency p50 "
            f"{statistics.median(lat):.2f} s, p90 {pct(lat, 0.9):.2f} s, p99 {pct(lat, 0.99):.2f} s, "
            f"max {max(lat):.2f} s"
        )
        if self.steady:
            st = self.steady
            lines.append(
                f"  after each session's first {self.extra.get('steady_after_s', 0):g} s of strides ({len(st)}): "
                f"p50 {statistics.median(st):.2f} s, p99 {pct(st, 0.99):.2f} s, max {max(st):.2f} s"
            )
        if self.gateway_part:
            g, r = self.gateway_part, self.rest
            lines.append(
                f"  gateway (last sample -> all three batches handed to MQTT): p50 {statistics.median(g):.2f} s, p99 "
                f"{pct(g, 0.99):.2f} s; MQTT + worker + InfluxDB + poll: p50 {statistics.median(r):.2f} s, p99 "
                f"{pct(r, 0.99):.2f} s"
            )
        return "\n".join(lines)


class RealTimeBench:
    """Servers, one worker process and a poller (module docstring); `run` streams the subjects."""

    def __init__(
        self,
        tmp: Path,
        subjects: int,
        seconds: float,
        *,
        poll_s: float = 0.05,
        window_s: float | None = None,
        batch_s: float | None = None,
        worker_args: tuple[str, ...] = (),
        load: str = "replay",
        steady_after_s: float = 15.0,
        cpu_after_s: float | None = None,
        workers: int = 1,
        aligned: bool = False,
        raw_layout: str = "auto",
    ) -> None:
        from sensor_gateway.core import GatewayConfig

        defaults = GatewayConfig(subject="x")
        self.tmp = tmp
        self.subjects = subjects
        self.seconds = seconds
        self.poll_s = poll_s
        self.window_s = defaults.window_s if window_s is None else window_s
        self.batch_s = defaults.batch_s if batch_s is None else batch_s
        self.worker_args = worker_args
        self.raw_layout = raw_layout
        if load not in ("replay", "gateways"):
            raise ValueError(f"load must be replay or gateways, got {load!r}")
        self.load = load
        self.steady_after_s = steady_after_s
        self.cpu_after_s = cpu_after_s
        self.n_workers = workers
        self.aligned = aligned
        """Every subject's batches close on the same instants (the worst case); otherwise their gateways' start
        instants are spread over one batch, as gateways booted at unrelated times are (`gateway_phases`)."""
        self.more_workers: list[WorkerProcess] = []
        """Workers beside ``worker`` (``workers`` > 1): the broker's shared subscription hands each message to one."""
        self.server: InfluxDB | None = None
        self.broker: Mosquitto | None = None
        self.worker: WorkerProcess | None = None
        self.url = ""
        self.seen: dict[tuple[str, int, str], tuple[float, float]] = {}
        """(subject, point time, side) -> (real UTC first seen, UTC of the stride's last sample)."""
        self.recorded: Recorded | None = None
        self.on_publish: Callable[[str, bytes], None] | None = None
        """Called with every message a gateway hands to MQTT (``load="gateways"`` only)."""

    @contextmanager
    def started(self) -> Iterator[RealTimeBench]:
        """The servers and the worker (after recording the subjects' gateways, for a replay)."""
        if self.load == "replay" and self.recorded is None:
            self.recorded = record_sessions(self.subjects, self.seconds, window_s=self.window_s, batch_s=self.batch_s)
        os.environ["GAITSYM_STATE_DIR"] = str(self.tmp / "state")
        self.server = InfluxDB(self.tmp / "influxdb").start()
        self.broker = Mosquitto(self.tmp / "mosquitto").start()
        try:
            self.url = fresh_database(self.server)
            if self.raw_layout != "auto":  # the store's raw layout, the database's marker aside (`influx_layout`)
                self.url += f"?raw_layout={self.raw_layout}"
            self.worker = WorkerProcess(self.broker.port, self.url, "worker-rt", self.tmp, *self.worker_args).start()
            for i in range(2, self.n_workers + 1):
                own = self.tmp / f"worker-{i}"
                own.mkdir(exist_ok=True)
                self.more_workers.append(
                    WorkerProcess(self.broker.port, self.url, f"worker-rt-{i}", own, *self.worker_args).start()
                )
            deadline = time.monotonic() + 60.0
            for w in (self.worker, *self.more_workers):
                while "MQTT connected" not in w.log() and time.monotonic() < deadline:
                    time.sleep(0.1)
            time.sleep(0.5)
            yield self
        finally:
            for running in [self.worker, *self.more_workers]:
                if running is not None:
                    running.stop()
            self.broker.kill()
            self.server.kill()

    def _poll(self, stop: threading.Event) -> None:
        store = open_store(self.url)
        q = poll_query()
        while not stop.is_set():
            t_wall = time.time()
            try:
                series = store.query(q)  # type: ignore[attr-defined]
            except Exception:
                series = []
            for key, end_s in stride_ends(series):
                if key not in self.seen:
                    self.seen[key] = (t_wall, end_s)
            stop.wait(self.poll_s)
        store.close()

    def run(self, extra_pids: dict[str, int] | None = None) -> RealTimeResult:
        """Stream every subject on the real clock for ``seconds``; the result (module docstring)."""
        assert self.worker is not None and self.server is not None and self.broker is not None
        recorded = self.recorded
        stop = threading.Event()
        poller = threading.Thread(target=self._poll, args=(stop,), daemon=True)
        pids = {"worker": self.worker.proc.pid, "influxd": self.server.proc.pid, "mosquitto": self.broker.proc.pid}  # type: ignore[union-attr]
        pids.update({f"worker-{i}": w.proc.pid for i, w in enumerate(self.more_workers, 2)})  # type: ignore[union-attr]
        pids.update(extra_pids or {})
        published: dict[tuple[str, str], list[tuple[float, float]]] = {}
        replay = None
        sessions: list[Any] = []
        if self.load == "replay":
            assert recorded is not None
            phases = None if self.aligned else gateway_phases(list(recorded.subjects), self.batch_s)
            replay = Replay(recorded, self.broker.port, self.seconds, phases)
            time.sleep(1.0)  # connected and subscribed
        else:
            sessions = self._gateways(published)
        load0 = os.getloadavg()
        poller.start()
        cpu0 = {k: cpu_s(pid) for k, pid in pids.items()}
        threads0 = thread_cpu_s(pids["worker"])
        bench0 = time.process_time()
        at_start: dict[str, float] = {}
        timer = None
        if self.cpu_after_s is not None:
            timer = threading.Timer(
                self.cpu_after_s, lambda: at_start.update({k: cpu_s(pid) - cpu0[k] for k, pid in pids.items()})
            )
            timer.start()
        try:
            if replay is not None:
                replay.run()
                published = replay.published
            else:
                last = time.monotonic()
                t_end = last + self.seconds
                while time.monotonic() < t_end:
                    time.sleep(0.02)
                    now = time.monotonic()
                    for s in sessions:
                        s.step(now - last)
                    last = now
            cpu1 = {k: cpu_s(pid) for k, pid in pids.items()}
            threads1 = thread_cpu_s(pids["worker"])
            peak_rss = {k: peak_rss_mb(pid) for k, pid in pids.items()}
            bench_cpu = time.process_time() - bench0
            load1 = os.getloadavg()
            time.sleep(3.0)
        finally:
            stop.set()
            poller.join()
            if timer is not None:
                timer.cancel()
            if replay is not None:
                replay.close()
            from testing.worker.harness import stop_gateways

            stop_gateways(sessions)
        late = self._late()
        stats = []
        for w in (self.worker, *self.more_workers):
            w.stop()
            stopping = [line for line in w.log().splitlines() if "stopping;" in line]
            stats.append(stopping[-1].split("stopping;", 1)[1].strip() if stopping else "?")
        log = self.worker.log()
        cpu = {k: cpu1[k] - cpu0[k] for k in cpu0}
        for i in range(2, self.n_workers + 1):  # the workers together, as one clinic server runs them
            cpu["worker"] += cpu.pop(f"worker-{i}")
            at_start["worker"] = at_start.get("worker", 0.0) + at_start.pop(f"worker-{i}", 0.0)
        result = self._result(
            cpu,
            published,
            late,
            " | ".join(stats),
            load0,
            load1,
            bench_cpu,
            log,
        )
        result.cpu_after_s, result.cpu_start_s = self.cpu_after_s, at_start
        result.extra["workers"] = self.n_workers
        result.extra["peak_rss_mb"] = peak_rss
        result.extra["worker_threads_s"] = thread_split(
            pids["worker"], threads0, threads1, cpu1["worker"] - cpu0["worker"]
        )
        return result

    def _gateways(self, published: dict[tuple[str, str], list[tuple[float, float]]]) -> list[Any]:
        from analytics.worker.decode import batch_samples
        from testing.worker.harness import home_sessions

        assert self.broker is not None
        sessions = home_sessions(
            self.tmp,
            self.broker.port,
            self.subjects,
            minutes=self.seconds / 60.0 + 0.2,
            utc0=time.time(),
            window_s=self.window_s,
            batch_s=self.batch_s,
        )

        def tap(publish: Any) -> Any:
            def tapped(topic_: str, payload: bytes, *a: Any, **k: Any) -> Any:
                if self.on_publish is not None:
                    self.on_publish(topic_, payload)
                if "/raw/" in topic_:
                    batch = env.decode(payload)
                    if isinstance(batch, env.RawBatch) and batch.clock.utc_synced:
                        last_utc = float(batch_samples(batch).time_us()[-1]) / 1e6
                        published.setdefault((batch.subject, batch.placement), []).append((time.time(), last_utc))
                return publish(topic_, payload, *a, **k)

            return tapped

        for s in sessions:  # real time: every subject's UTC is the real UTC (home_sessions staggers them)
            s.clock._utc0 = time.time() - (s.clock._t - s.clock._start)  # type: ignore[attr-defined]
            s.gateway.link.publish = tap(s.gateway.link.publish)  # type: ignore[method-assign]
        return sessions

    def _late(self) -> int:
        """Provisional strides in the store that the poller never saw (visible too late for its window)."""
        store = open_store(self.url)
        try:
            rows = list(store.rows('SELECT start_s, side, subject FROM "results"."stride_live"'))  # type: ignore[attr-defined]
        finally:
            store.close()
        keys = {(str(r["subject"]), int(r["time"]), str(r["side"])) for r in rows if "start_s" in r}
        return len(keys - set(self.seen))

    def _result(
        self,
        cpu: dict[str, float],
        published: dict[tuple[str, str], list[tuple[float, float]]],
        late: int,
        stats: str,
        load0: tuple[float, float, float],
        load1: tuple[float, float, float],
        bench_cpu: float,
        log: str,
    ) -> RealTimeResult:
        lat = [wall - end for wall, end in self.seen.values()]
        first_end: dict[str, float] = {}
        for (subject, _t, _side), (_wall, end) in self.seen.items():
            first_end[subject] = min(first_end.get(subject, end), end)
        steady = [
            wall - end
            for (subject, _t, _s), (wall, end) in self.seen.items()
            if end - first_end[subject] > self.steady_after_s
        ]
        gateway_part, rest = [], []
        for (subject, _t, _side), (wall, end) in self.seen.items():
            outs = []
            for (subj, _placement), rows in published.items():
                if subj == subject:
                    outs.append(next((w for w, last in rows if last >= end - 0.005), None))
            if outs and None not in outs:
                out = max(o for o in outs if o is not None)
                gateway_part.append(out - end)
                rest.append(wall - out)
        return RealTimeResult(
            self.subjects,
            self.seconds,
            cpu,
            lat,
            steady,
            late,
            gateway_part,
            rest,
            stats,
            load0,
            load1,
            bench_cpu,
            log,
            {"steady_after_s": self.steady_after_s},
        )


__all__ = [
    "POLL_WINDOW_S",
    "RealTimeBench",
    "RealTimeResult",
    "cpu_s",
    "pct",
    "poll_query",
    "stride_ends",
]
