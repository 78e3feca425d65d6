"""Simulated home sessions through the production gateway core to real workers (shared by tests and benches).

Each subject: the virtual kit (walk script, sensors at 100 Hz with drifting clocks) as a `VirtualKitTransport`,
the production `Gateway` with its SQLite outbox and paho link to a real Mosquitto, on its own virtual clock
(run faster than real time). Workers run as real processes (`gaitsym worker`), so that they can be killed.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analytics.stores.quarantine import Quarantine, QuarantineEntry
from gaitsym_common.mqtt import MqttSettings, PahoLink
from sensor_gateway.core import Gateway, GatewayConfig, run_for
from sensor_gateway.outbox import Outbox
from sensor_gateway.timing import VirtualHostClock
from simulator.virtual_kit_source import VirtualKit, virtual_kit

ROOT = Path(__file__).resolve().parents[2]
UTC0 = float(int(time.time()) // 86400 * 86400 - 86400)
"""Yesterday 00:00 UTC: inside the raw retention (30 d), the same in every run of a test session."""


@dataclass
class HomeSession:
    subject: str
    kit: VirtualKit
    clock: VirtualHostClock
    gateway: Gateway
    closed: bool = False

    @property
    def done(self) -> bool:
        return self.kit.transport.exhausted

    def step(self, virtual_s: float) -> None:
        run_for(self.gateway, self.kit.transport, self.clock, virtual_s, tick_s=0.05)

    def close_session(self) -> None:
        """End the session as the gateway does after stillness (session_end marker after the last batches)."""
        if self.closed:
            return
        now = self.clock.monotonic()
        for s in self.gateway.sensors.values():
            self.gateway._close_batch(s, now)
        if self.gateway.session.session is not None:
            self.gateway._close_session(now)
        self.closed = True

    @property
    def backlog(self) -> int:
        return len(self.gateway.outbox)


def home_sessions(
    tmp: Path,
    port: int,
    n: int,
    minutes: float = 1.2,
    seed0: int = 11,
    utc0: float = UTC0,
    options: dict[str, dict[str, Any]] | None = None,
    **gw: Any,
) -> list[HomeSession]:
    """``options``: per subject, ``packet_loss`` (fraction of packets lost on the air: gaps) and ``synced``
    (False: the gateway's clock is not UTC-synchronised until a test sets ``clock.synced``)."""
    out = []
    for i in range(n):
        subject = f"S{i + 1:03d}"
        opts = (options or {}).get(subject, {})
        clock = VirtualHostClock(start_s=1000.0, utc_at_start_s=utc0 + 37.0 * i, synced=opts.get("synced", True))
        kit = virtual_kit(
            clock, seed=seed0 + i, minutes=minutes, script="walk", packet_loss=opts.get("packet_loss", 0.0)
        )
        link = PahoLink(MqttSettings(port=port, client_id=f"gw-{subject}", reconnect_max_s=1))
        config = GatewayConfig(
            subject=subject,
            ack_timeout_s=gw.get("ack_timeout_s", 60.0),
            still_timeout_s=gw.get("still_timeout_s", 600.0),
            window_s=gw.get("window_s", 5.0),
            **{k: v for k, v in gw.items() if k not in ("ack_timeout_s", "still_timeout_s", "window_s")},
        )
        gateway = Gateway(
            config, kit.transport, link, Outbox(tmp / f"outbox-{subject}.db", synchronous="NORMAL"), clock
        )
        gateway._rng = random.Random(seed0 + i)  # time-sync round trips at the same moments in every run
        gateway.start()
        out.append(HomeSession(subject, kit, clock, gateway))
    return out


def stream(sessions: list[HomeSession], virtual_s: float, chunk_s: float = 1.0) -> None:
    """Advance every session by ``virtual_s`` (round robin, ``chunk_s`` at a time, as fast as possible)."""
    t = 0.0
    while t < virtual_s:
        for s in sessions:
            if not s.done:
                s.step(chunk_s)
        t += chunk_s


def finish(sessions: list[HomeSession], timeout_s: float = 120.0, on_turn: Any = None) -> None:
    """Stream to the end, close every session, then keep the gateways stepping until every outbox is empty
    (every message acknowledged end to end by a worker)."""
    while not all(s.done for s in sessions):
        stream(sessions, 5.0)
        if on_turn is not None:
            on_turn()
    for s in sessions:
        s.close_session()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for s in sessions:
            s.step(0.2)
        if on_turn is not None:
            on_turn()
        if all(s.backlog == 0 for s in sessions):
            return
        time.sleep(0.05)
    raise AssertionError("outboxes not drained: " + ", ".join(f"{s.subject} {s.backlog}" for s in sessions))


def stop_gateways(sessions: list[HomeSession]) -> None:
    for s in sessions:
        s.gateway.stop(end_session=False)


class WorkerProcess:
    """`gaitsym worker` as a real process (so that it can be killed with SIGKILL)."""

    def __init__(self, port: int, store: str, client_id: str, tmp: Path, *extra: str) -> None:
        self.args = [
            sys.executable,
            "-m",
            "gaitsym.cli",
            "worker",
            "--mqtt",
            f"127.0.0.1:{port}",
            "--store",
            store,
            "--client-id",
            client_id,
            *extra,
        ]
        self.log_path = tmp / f"{client_id}.log"
        self.env = {**os.environ, "GAITSYM_STATE_DIR": str(tmp / "state"), "PYTHONPATH": str(ROOT)}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(self.args, stdout=log, stderr=log, env=self.env, cwd=ROOT)
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def quarantine_entries(state: Path) -> list[QuarantineEntry]:
    """Every record a worker set aside, from each quarantine file under its state folder (a `WorkerProcess`'s
    is ``tmp / "state"``)."""
    entries = []
    for path in sorted(state.rglob("*quarantine*.sqlite")):
        q = Quarantine(path)
        try:
            entries += q.entries()
        finally:
            q.close()
    return entries
