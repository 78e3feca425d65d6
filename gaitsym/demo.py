"""`gaitsym demo` (what `make demo` runs): the whole pipeline on an embedded default, in under two minutes.

    simulated kit -> gateway (production code, virtual clock) -> MQTT (Mosquitto) -> worker -> store
                                                                                          -> session report

1. starts Mosquitto on a free loopback port with the project's configuration (persistence in the run folder);
2. starts `gaitsym worker` storing into InfluxDB when ``GAITSYM_STORE`` names one (``influx://...``), else
   into the embedded store (one SQLite file in the run folder);
3. runs `gaitsym gateway --virtual-kit` for subject ``demo-001``: a simulated home session (standing, walking,
   the study's exercises per side) streamed through the production gateway, faster than real time on the
   virtual clock; progress comes from the store, i.e. what has been durably stored;
4. waits for the worker's session results and prints them as a readable report (left vs right stance time,
   stance-time asymmetry, pelvic drop, exercise quality, flags) and where they are stored;
5. writes the clinician's session report (`gaitsym report`: one HTML page) into the run folder and prints its path.

Every number printed is a measurement read back from the store; the simulator's settings are printed
apart, labelled as inputs. `gaitsym results --subject demo-001 --store PATH` reads them again later.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from gaitsym_common.redaction import redact_url

SUBJECT = "demo-001"
FLAG_CODE = re.compile(r"(?:^|,)\s*([a-z][a-z0-9_]*):")
"""A stored exercise flag is "code: message"; several are joined with commas."""
RESULTS_TIMEOUT_S = 120.0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """`gaitsym demo [--out DIR --seed N --minutes M --speed X]`."""
    demo = sub.add_parser("demo", help="run the whole pipeline on a simulated home session (what `make demo` runs)")
    demo.add_argument("--out", default="out/demo", help="working folder (default: out/demo)")
    demo.add_argument("--seed", type=int, default=1, help="simulation seed (default: 1)")
    demo.add_argument("--minutes", type=float, default=None, help="session length, min (default: the script's)")
    demo.add_argument(
        "--speed",
        type=float,
        default=12.0,
        help="times faster than real time (default: 12, what one worker keeps up with on this 2-core machine "
        "while analysing live windows; see bench/RESULTS.md)",
    )
    demo.set_defaults(handler=demo_command)


def _step(n: int, total: int, text: str) -> None:
    print(f"[{n}/{total}] {text}", flush=True)


def demo_command(args: argparse.Namespace) -> int:
    from analytics.stores import open_store
    from gaitsym_common.mqtt.local_broker import BrokerUnavailable, LocalMosquitto

    run = Path(args.out).resolve() / f"{SUBJECT}-seed{args.seed}-{time.strftime('%Y%m%dT%H%M%S')}"
    run.mkdir(parents=True, exist_ok=True)
    store_url = os.environ.get("GAITSYM_STORE") or str(run / "store.sqlite")
    # the store reaches the worker through its environment: a password in the URL never goes on a command line
    env = {**os.environ, "GAITSYM_STATE_DIR": str(run / "state"), "GAITSYM_STORE": store_url}
    gaitsym = [sys.executable, "-m", "gaitsym.cli"]
    total = 4
    t_start = time.monotonic()
    children: list[subprocess.Popen[bytes]] = []

    _step(1, total, "starting the MQTT broker (Mosquitto, loopback, the project's configuration) ...")
    try:
        broker = LocalMosquitto(run / "broker").start()
    except BrokerUnavailable as exc:
        print(f"gaitsym demo: {exc}", file=sys.stderr)
        return 2
    try:
        _step(2, total, f"starting the analytics worker, storing into {_where(store_url)} ...")
        worker_log = (run / "worker.log").open("wb")
        worker_cmd = [*gaitsym, "worker", "--mqtt", f"127.0.0.1:{broker.port}"]
        worker_cmd += ["--client-id", "demo-worker"]
        worker = subprocess.Popen(worker_cmd, stdout=worker_log, stderr=subprocess.STDOUT, env=env)
        children.append(worker)

        _step(
            3, total, f"streaming a simulated home session of {SUBJECT} through the gateway ({args.speed:g}x real time)"
        )
        gateway_cmd = [*gaitsym, "gateway", "--virtual-kit", "--subject", SUBJECT, "--broker", broker.url]
        gateway_cmd += ["--state-dir", str(run / "gateway"), "--seed", str(args.seed), "--speed", str(args.speed)]
        gateway_cmd += ["--drain-timeout-s", "300"]
        if args.minutes is not None:
            gateway_cmd += ["--minutes", str(args.minutes)]
        gateway_log = (run / "gateway.log").open("wb")
        gateway = subprocess.Popen(gateway_cmd, stdout=gateway_log, stderr=subprocess.STDOUT, env=env)
        children.append(gateway)
        store = open_store(store_url)
        try:
            code = _follow(gateway, worker, broker.url, run)
            if code != 0:
                return code
            _step(4, total, "waiting for the worker's session results ...")
            rows = _wait_for_summary(store, worker, run)
        finally:
            store.close()
        if rows is None:
            return 1
        print()
        print(session_report(rows))
        print()
        print(f"Stored in {_where(store_url)}; read again with:")
        if redact_url(store_url) == store_url:
            print(f"  gaitsym results --subject {SUBJECT} --store {store_url}")
        else:  # the URL holds a secret: name the variable that holds it instead
            print(f"  gaitsym results --subject {SUBJECT}   (with the same GAITSYM_STORE)")
        print(f"Logs and broker data: {run}   (took {time.monotonic() - t_start:.0f} s)")
        print(
            f"Simulator settings (inputs, not measurements): the default home session, seed {args.seed}; "
            f"its ground truth: `gaitsym simulate DIR --seed {args.seed}` writes truth.json."
        )
        return _clinician_report(store_url, run)
    finally:
        for child in reversed(children):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
                try:
                    child.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    child.kill()
        broker.stop()


def _clinician_report(store_url: str, run: Path) -> int:
    """Write the session's report for the clinician (`gaitsym report`) into the run folder; print its path."""
    from report.build import write_report
    from report.errors import ReportError

    try:
        path = write_report(store_url, SUBJECT, run / f"report-{SUBJECT}.html")
    except ReportError as exc:
        print(f"gaitsym demo: the session report could not be written: {exc}", file=sys.stderr)
        return 1
    print(f"Session report for the clinician (one HTML page to open, print on A4 or attach): {path}")
    return 0


def _where(store_url: str) -> str:
    return redact_url(store_url) if "://" in store_url else f"the embedded store {store_url}"


def _follow(gateway: subprocess.Popen[bytes], worker: subprocess.Popen[bytes], broker_url: str, run: Path) -> int:
    """Show the gateway's own status (retained on MQTT) until it has delivered everything and exits:
    minutes streamed per sensor, and batches in its outbox not yet confirmed stored by the worker."""
    from gaitsym_common.mqtt import Incoming, PahoLink, settings_from_url
    from gaitsym_common.uplink import envelope
    from gaitsym_common.uplink.topics import topic

    monitor = PahoLink(settings_from_url(broker_url, client_id="gaitsym-demo-monitor", clean_session=True))
    monitor.connect()
    monitor.subscribe([topic(SUBJECT, "status")])
    line = ""
    try:
        while gateway.poll() is None:
            if worker.poll() is not None:
                print(f"\ngaitsym demo: the worker stopped (see {run / 'worker.log'})", file=sys.stderr)
                return 1
            for event in monitor.events():
                if not isinstance(event, Incoming):
                    continue
                status = envelope.decode(event.payload)
                if not isinstance(status, envelope.Status) or status.state != "online":
                    continue
                streamed = ", ".join(f"{p} {s.samples_received / 100 / 60:4.1f} min" for p, s in status.sensors.items())
                waiting = int(status.outbox.get("pending", 0) + status.outbox.get("inflight", 0))
                new = f"      streamed: {streamed} | awaiting the worker's 'stored': {waiting:4d} batches"
                if new != line:
                    line = new
                    print("\r" + line, end="", flush=True)
            time.sleep(0.3)
    finally:
        monitor.close()
        print(flush=True)
    if gateway.returncode != 0:
        print(f"gaitsym demo: the gateway failed (see {run / 'gateway.log'})", file=sys.stderr)
        return 1
    return 0


def _wait_for_summary(store: Any, worker: subprocess.Popen[bytes], run: Path) -> list[Any] | None:
    deadline = time.monotonic() + RESULTS_TIMEOUT_S
    while time.monotonic() < deadline:
        rows = store.read_results(SUBJECT)
        if any(r.measurement == "session_summary" for r in rows):
            return list(rows)
        if worker.poll() is not None:
            break
        time.sleep(0.5)
    print(
        f"gaitsym demo: no session results after {RESULTS_TIMEOUT_S:.0f} s (see {run / 'worker.log'})", file=sys.stderr
    )
    return None


def _num(value: Any, digits: int = 2, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}{unit}"


def _metric(key: str, value: Any) -> str:
    name = key.removesuffix("_deg").removesuffix("_pct").replace("_", " ")
    unit = " deg" if key.endswith("_deg") else " %"
    return f"{name} {_num(value, 1, unit)}"


def session_report(rows: list[Any]) -> str:
    """A readable report of one subject's stored results: gait left vs right, asymmetry, exercises, flags."""
    latest = max((r.fields.get("session", "") for r in rows if r.measurement == "session_summary"), default="")
    rows = [r for r in rows if r.fields.get("session", "") == latest]
    summary = {r.tags.get("side"): r.fields for r in rows if r.measurement == "session_summary"}
    left, right, both = summary.get("left", {}), summary.get("right", {}), summary.get("none", {})

    def row(label: str, key: str, digits: int, asym: str) -> str:
        return f"  {label:<24} {_num(left.get(key), digits):>8}   {_num(right.get(key), digits):>8}     {asym}"

    stance_asym = f"SI {_num(both.get('stance_si_pct'), 1, ' %')}, ratio {_num(both.get('stance_ratio'), 3)}"
    out = [
        f"Session {latest} of {SUBJECT}: {_num(both.get('duration_s', 0) / 60, 1)} min",
        "",
        "Walking                        left      right     asymmetry",
        f"  {'strides (summarised)':<24} {left.get('n_strides', 0):>8}   {right.get('n_strides', 0):>8}",
        row("stance time, s", "stance_time_s", 3, stance_asym),
        row("step time, s", "step_time_s", 3, f"SI {_num(both.get('step_time_s_si_pct'), 1, ' %')}"),
        row("pelvic drop, deg", "pelvic_drop_deg", 2, f"L-R {_num(both.get('pelvic_drop_deg_diff'), 2, ' deg')}"),
        "  (pelvic drop: the opposite hemipelvis during each side's stance, relative to quiet standing)",
    ]
    sets = sorted((r for r in rows if r.measurement == "exercise_set"), key=lambda r: r.time_us)
    shown = [r for r in sets if r.tags.get("exercise") not in ("stand", "walk")]
    if shown:
        out += ["", "Exercises                      side    set  reps  quality"]
        for r in shown:
            f = r.fields
            metrics = ", ".join(_metric(k, v) for k, v in sorted(f.items()) if k.endswith(("_deg", "_pct")))
            head = f"  {r.tags.get('exercise', ''):<28} {r.tags.get('side', ''):<6} {f.get('set', ''):>4}"
            out.append(f"{head} {_num(f.get('reps'), 0):>5}  {metrics}")
    session_flags = sorted(c for c in str(both.get("flags", "")).split(",") if c)
    set_flags = sorted({code for r in shown for code in FLAG_CODE.findall(str(r.fields.get("flags", "")))})
    out += ["", f"Session flags: {', '.join(session_flags) or 'none'}"]
    out += [f"Exercise flags: {', '.join(set_flags) or 'none'} (details: gaitsym results --json)"]
    return "\n".join(out)
