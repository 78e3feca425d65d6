"""`gaitsym gateway --virtual-kit`: the transport is the simulator's packet stream on a `VirtualHostClock`
advanced ``speed`` times faster than real time. The session clock start is kept in the state dir
(``SESSION_CLOCK_START_FILE``: seed, settings and the wall-clock start), so a gateway that is killed and restarted
finds the simulated sensors where they would be by then: the samples they sent while the gateway was dead are gone
from the air and reported as a gap. The file is removed when a run completes.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from gaitsym.gateway_systemd import Notifier, gateway_health, status_line
from gaitsym.gateway_wiring import EXIT_OK, EXIT_REFUSED, EXIT_USAGE, log
from gaitsym_common.mqtt.client import MqttSettings, PahoLink
from sensor_gateway.core.gateway import Gateway, GatewayConfig, run_for
from sensor_gateway.outbox.store import Outbox
from sensor_gateway.timing.host_clock import VirtualHostClock

VIRTUAL_T0 = 1000.0
SESSION_CLOCK_START_FILE = "virtual_kit_clock_start.json"
"""In the state dir; read and written only by this module."""


def _session_clock_start(state_dir: Path, key: dict[str, Any], duration_s: float, speed: float) -> tuple[float, float]:
    """(simulation seconds already elapsed, wall-clock UTC of simulation time 0) for this kit."""
    path = state_dir / SESSION_CLOCK_START_FILE
    now = time.time()
    if path.exists():
        saved = json.loads(path.read_text())
        if saved.get("key") == key:
            elapsed = (now - float(saved["started_wall_s"])) * speed
            if 0 <= elapsed < duration_s:
                return elapsed, float(saved["started_wall_s"])
    path.write_text(json.dumps({"key": key, "started_wall_s": now}))
    return 0.0, now


def run_virtual_kit(
    config: GatewayConfig,
    mqtt: MqttSettings,
    state_dir: Path,
    seed: int,
    minutes: float,
    speed: float,
    args: argparse.Namespace,
    budget_bytes: int,
    notifier: Notifier | None = None,
) -> int:
    from sensor_gateway.errors import SimulationError
    from simulator.virtual_kit_source import virtual_kit

    if speed <= 0:
        print("gaitsym gateway: --speed must be > 0", file=sys.stderr)
        return EXIT_USAGE
    key = {"seed": seed, "minutes": minutes, "speed": speed, "spp": args.samples_per_packet}
    duration_s = minutes * 60.0
    start_sim_s, utc0 = _session_clock_start(state_dir, key, duration_s, speed)
    # The virtual clock defines its own time (UTC = the wall clock at the session clock start + virtual seconds),
    # so it is synchronised by construction; --unsynced-clock simulates a gateway before NTP (no UTC invented).
    synced = not getattr(args, "unsynced_clock", False)
    clock = VirtualHostClock(start_s=VIRTUAL_T0 + start_sim_s, utc_at_start_s=utc0 + start_sim_s, synced=synced)
    try:
        kit = virtual_kit(
            clock, seed=seed, minutes=minutes, samples_per_packet=args.samples_per_packet, start_sim_s=start_sim_s
        )
    except SimulationError as exc:
        print(f"gaitsym gateway: {exc}", file=sys.stderr)
        return EXIT_USAGE
    outbox = Outbox(state_dir / "outbox.db", budget_bytes=budget_bytes)
    link = PahoLink(mqtt)
    gw = Gateway(config, kit.transport, link, outbox, clock)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    log.info(
        "virtual kit seed %d, %.1f min at %gx (joining at %.1f s); state in %s; broker %s:%d",
        seed,
        minutes,
        speed,
        start_sim_s,
        state_dir,
        mqtt.host,
        mqtt.port,
    )
    gw.start()
    if notifier is not None:
        notifier.ready(status_line(gw))
    drain_deadline: float | None = None
    completed = False
    while not stop.is_set():
        run_for(gw, kit.transport, clock, 0.25 * speed, speed=speed)
        if notifier is not None:
            notifier.loop_turned(lambda: gateway_health(gw), lambda: status_line(gw))
        if kit.transport.exhausted and not any(s.packets for s in gw.sensors.values()):
            if gw.session.session is not None:
                gw._close_session(clock.monotonic())  # the simulated session is over
            if drain_deadline is None:
                drain_deadline = time.monotonic() + args.drain_timeout_s
                log.info("virtual session over: waiting for the worker to acknowledge %d message(s)", len(outbox))
            if len(outbox) == 0:
                completed = True
                break
            if time.monotonic() > drain_deadline:
                log.error("%d message(s) still unacknowledged after %.0f s", len(outbox), args.drain_timeout_s)
                break
    left = len(outbox)
    if notifier is not None:
        notifier.stopping(f"stopping: {left} message(s) kept in the outbox")
    gw.stop(end_session=completed)
    if completed:
        (state_dir / SESSION_CLOCK_START_FILE).unlink(missing_ok=True)
    log.info("gateway stopped: %d message(s) published, %d left in the outbox", gw.published, left)
    return EXIT_OK if completed or stop.is_set() else EXIT_REFUSED
