"""Gateway CPU per sensor at 100 Hz, transport excluded (sensor_gateway.core with the real outbox on disk).

The virtual kit's packets (3 sensors, 100 Hz, 10 samples/packet, simulated walking session) are generated
first (not measured), then replayed through the production gateway (decode, clock fit with TIME_SYNC round
trips, batching, JSON envelope, SQLite outbox with synchronous=FULL, acknowledgement handling) on a virtual
clock as fast as possible, stepping on every packet arrival as the real loop does, with an in-memory MQTT
link that acknowledges every message at once. CPU% of one core = process CPU seconds / streamed seconds.
Run: ``.venv/bin/python bench/gateway_cpu.py [--seconds 300] [--batch-s 1.0]``.

``--process``: the production gateway as it runs at home, measured from outside: `gaitsym gateway --ble` (the
real bleak transport, outbox, paho to a real Mosquitto, an acknowledging subscriber) in a process of its own,
against the emulated kit in processes of their own (dbus-daemon + bluezoo + the kit serving a simulated walking
session in real time: ``testing.ble_harness.serve``), paired first with `gaitsym gateway pair`. The gateway runs
under a ``NOTIFY_SOCKET`` of this script's, which says when it is ready and when its three sensors are connected;
from then on its CPU (user + system, /proc/PID/stat) is sampled over ``--seconds`` of streaming, and its memory
is read from /proc/PID/status (VmHWM: peak resident; VmRSS: at the end). Only the gateway's own process counts.
Run: ``.venv/bin/python bench/gateway_cpu.py --process [--seconds 120]``.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from sensor_gateway.core import Gateway, GatewayConfig, run_for
from sensor_gateway.outbox import Outbox
from sensor_gateway.timing import VirtualHostClock
from sensor_gateway.transport import SyncLink, VirtualKitTransport
from simulator import packets
from simulator.session import simulate_session
from simulator.virtual_kit_source import _clock_of
from testing.gateway.loopback import LoopbackLink


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process (its threads included, its children not)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _memory_mb(pid: int) -> dict[str, float]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            out[key] = int(value.split()[0]) / 1024
    return out


def measure_process(seconds: float) -> None:
    from gaitsym.gateway_virtual_ble import VirtualBleStack, dev_ble_stack_missing
    from testing.gateway.worker_stub import AckingWorker
    from testing.servers import ROOT, Mosquitto

    missing = dev_ble_stack_missing()
    if missing:
        sys.exit(f"--process: {missing}")
    subject, minutes = "bench-001", max(1.0, seconds / 60 + 1.0)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        broker = Mosquitto(tmp / "mosquitto").start()
        worker = AckingWorker(broker.port, subject)
        stack = VirtualBleStack(seed=3, minutes=minutes, script="walk")
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(str(tmp / "notify"))
        notify.settimeout(120.0)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "DBUS_SYSTEM_BUS_ADDRESS": stack.bus_address}
        gaitsym = [sys.executable, "-m", "gaitsym.cli", "gateway"]
        state = ["--state-dir", str(tmp / "state"), "--adapter", "hci0"]
        gateway: subprocess.Popen[bytes] | None = None
        try:
            paired = subprocess.run([*gaitsym, "pair", *state, "--scan-s", "1.5"], env=env, capture_output=True)
            if paired.returncode != 0:
                sys.exit(f"pairing the emulated kit failed: {paired.stderr.decode()[-1000:]}")
            run_env = {**env, "NOTIFY_SOCKET": str(tmp / "notify"), "WATCHDOG_USEC": "2000000"}
            argv = [*gaitsym, "--ble", "--subject", subject, "--broker", broker.url, *state, "--log-level", "WARNING"]
            gateway = subprocess.Popen(argv, env=run_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            started = time.monotonic()
            while b"3/3 sensors connected" not in notify.recv(4096):  # READY, then pings with a status line
                pass
            ready_s, cpu_start = time.monotonic() - started, _cpu_s(gateway.pid)
            t0, cpu0 = time.monotonic(), _cpu_s(gateway.pid)
            per_10s: list[float] = []
            while time.monotonic() - t0 < seconds:
                t, c = time.monotonic(), _cpu_s(gateway.pid)
                time.sleep(min(10.0, seconds - (t - t0)))
                per_10s.append(100 * (_cpu_s(gateway.pid) - c) / (time.monotonic() - t))
            elapsed, cpu = time.monotonic() - t0, _cpu_s(gateway.pid) - cpu0
            memory = _memory_mb(gateway.pid)
            load = os.getloadavg()
            gateway.send_signal(signal.SIGTERM)
            gateway.wait(timeout=60)
        finally:
            if gateway is not None and gateway.poll() is None:
                gateway.kill()
            stack.close()
            worker.close()
            broker.kill()
        samples = sum(len(v) for v in worker.unique_samples().values())
    print(f"`gaitsym gateway --ble` in its own process, the emulated kit in others: 3 sensors connected "
          f"{ready_s:.1f} s after start (start-up CPU {cpu_start:.2f} s)")  # fmt: skip
    print(f"streaming {elapsed:.0f} s: CPU {cpu:.2f} s = {100 * cpu / elapsed:.2f} % of one core "
          f"(10-s windows {min(per_10s):.2f}-{max(per_10s):.2f} %)")  # fmt: skip
    print(f"memory: peak resident {memory['VmHWM']:.1f} MB, resident at the end {memory['VmRSS']:.1f} MB")
    print(f"{samples} unique samples acknowledged; load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=300.0)
    ap.add_argument("--batch-s", type=float, default=1.0)
    ap.add_argument("--process", action="store_true", help="the gateway process against the emulated kit (above)")
    args = ap.parse_args()
    if args.process:
        measure_process(args.seconds)
        return
    session = simulate_session(seed=7, minutes=args.seconds / 60 + 0.1, script="walk")
    sensors = packets.simulated_sensors(session)
    items = [i for i in packets.iter_packets(session, sensors) if i[0] < args.seconds]
    with tempfile.TemporaryDirectory() as d:
        clock = VirtualHostClock(start_s=1000.0)
        transport = VirtualKitTransport(
            items,
            {p: s.info for p, s in sensors.items()},
            clock,
            sync_links={p: SyncLink(s.connection_interval_s, _clock_of(s)) for p, s in sensors.items()},
        )
        link = LoopbackLink("P001", keep=False)
        config = GatewayConfig(subject="P001", batch_s=args.batch_s)
        gw = Gateway(config, transport, link, Outbox(Path(d) / "o.db"), clock)
        gw.start()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        run_for(gw, transport, clock, args.seconds + 2, tick_s=0.02)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        gw.stop()
    pct = 100 * cpu / args.seconds
    print(
        f"{len(items)} packets, {args.seconds:.0f} s of 3 sensors at 100 Hz, batch {args.batch_s} s: CPU {cpu:.2f} s "
        f"(wall {wall:.2f} s), {link.count} publishes"
    )
    print(f"gateway CPU: {pct:.2f} % of one core for 3 sensors, {pct / 3:.2f} % per sensor")


if __name__ == "__main__":
    main()
