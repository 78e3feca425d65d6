"""`gaitsym gateway --virtual-kit --ble` (a development-checkout option): starts
``python -m testing.ble_harness.serve`` as a subprocess (dbus-daemon + bluezoo, the GPL-2.0 BlueZ mock from the
dev extras, + the emulated kit serving the simulator's session in real time; this module never imports
bluezoo), points D-Bus at its private bus, pairs the emulated kit (pinned under ``STATE_DIR/virtual-ble/``, so
a real kit's pairing is never touched) and runs the real bleak transport on it until the session is over and
the worker has acknowledged everything.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from gaitsym.gateway_ble import ble_config_from, build_ble_gateway, serve, stop_on_signals
from gaitsym.gateway_systemd import Notifier, status_line
from gaitsym.gateway_wiring import EXIT_OK, EXIT_REFUSED, EXIT_USAGE, log
from gaitsym_common.mqtt.client import MqttSettings
from sensor_gateway.core.gateway import GatewayConfig
from sensor_gateway.errors import GatewayError


def repository_root() -> Path:
    return Path(__file__).resolve().parents[1]


def dev_ble_stack_missing() -> str | None:
    """Why ``--virtual-kit --ble`` cannot run here (None: it can)."""
    import importlib.util
    import shutil

    if not (repository_root() / "testing" / "ble_harness" / "serve.py").exists():
        return "it needs a development checkout of gaitsym (testing/ble_harness is not installed with the package)"
    if importlib.util.find_spec("bluezoo") is None:
        return "bluezoo (the BlueZ mock, a dev extra) is not installed: run `make test` in the checkout"
    if shutil.which("dbus-daemon") is None:
        return "dbus-daemon is not installed (Debian package dbus; `make test` installs it)"
    return None


class VirtualBleStack:
    """``python -m testing.ble_harness.serve`` as a subprocess: the emulated kit on bluezoo, private D-Bus."""

    def __init__(self, seed: int, minutes: float, script: str | None = None, ready_timeout_s: float = 120.0) -> None:
        argv = [sys.executable, "-m", "testing.ble_harness.serve", "--seed", str(seed), "--minutes", str(minutes)]
        if script:
            argv += ["--script", script]
        root = repository_root()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(
            argv, cwd=root, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True
        )
        self.bus_address = ""
        assert self.proc.stdout is not None
        lines: list[str] = []
        timer = threading.Timer(ready_timeout_s, self.close)
        timer.start()
        try:
            for raw in self.proc.stdout:
                line = raw.decode(errors="replace").strip()
                lines.append(line)
                if line.startswith("BUS "):
                    self.bus_address = line[4:]
                if line == "READY":
                    break
        finally:
            timer.cancel()
        if not self.bus_address or self.proc.poll() is not None:
            self.close()
            raise GatewayError(f"the emulated BLE kit did not start: {' | '.join(lines[-5:]) or 'no output'}")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10.0)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5.0)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


def session_duration_s(seed: int, minutes: float, script: str | None = None) -> float:
    """Length of the simulated session the kit serves (the simulator is deterministic by seed), s."""
    from simulator.session import simulate_session

    chosen = script or ("home" if minutes >= 12.0 else "walk")
    return float(simulate_session(seed=seed, minutes=minutes, script=chosen).recording.time_s[-1])


def run_virtual_ble_kit(
    config: GatewayConfig,
    mqtt: MqttSettings,
    state_dir: Path,
    settings: dict[str, Any],
    args: argparse.Namespace,
    budget_bytes: int,
    notifier: Notifier | None = None,
) -> int:
    """`gaitsym gateway --virtual-kit --ble`: the real bleak transport on the emulated kit (bluezoo)."""
    from sensor_gateway.ble.errors import NotPaired, PairingError
    from sensor_gateway.ble.pairing import pair_kit
    from sensor_gateway.errors import SimulationError

    if args.speed != 1.0:
        print("gaitsym gateway: --virtual-kit --ble runs in real time (BLE cannot be accelerated): no --speed",
              file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    missing = dev_ble_stack_missing()
    if missing:
        print(f"gaitsym gateway: --virtual-kit --ble: {missing}", file=sys.stderr)
        return EXIT_USAGE
    try:
        duration_s = session_duration_s(args.seed, args.minutes)
    except SimulationError as exc:
        print(f"gaitsym gateway: {exc}", file=sys.stderr)
        return EXIT_USAGE
    stop = stop_on_signals()
    log.info("starting the emulated kit on bluezoo (seed %d, %.1f min session)", args.seed, duration_s / 60)
    try:
        stack = VirtualBleStack(args.seed, args.minutes)
    except GatewayError as exc:
        print(f"gaitsym gateway: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    log.info("emulated kit on the private D-Bus bus %s (central adapter hci0)", stack.bus_address)
    old_bus = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
    os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = stack.bus_address  # bleak connects per event loop, after this
    try:
        ble_config = ble_config_from({**settings, "adapter": "hci0"}, args, state_dir / "virtual-ble")
        try:
            pair_kit(ble_config, scan_s=1.5, report=lambda msg: log.info("pairing: %s", msg))
            gw = build_ble_gateway(config, mqtt, state_dir, ble_config, budget_bytes)
        except (NotPaired, PairingError) as exc:
            print(f"gaitsym gateway: the emulated kit could not be paired: {exc}", file=sys.stderr)
            return EXIT_REFUSED
        log.info("emulated kit paired; streaming %.0f s in real time; broker %s:%d", duration_s, mqtt.host, mqtt.port)
        gw.start()
        if notifier is not None:
            notifier.ready(status_line(gw))
        completed = serve(gw, stop, duration_s=duration_s, drain_timeout_s=args.drain_timeout_s, notifier=notifier)
        left = len(gw.outbox)
        if notifier is not None:
            notifier.stopping(f"stopping: {left} message(s) kept in the outbox")
        gw.stop(end_session=True)
        log.info("gateway stopped: %d message(s) published, %d left in the outbox", gw.published, left)
        return EXIT_OK if completed or stop.is_set() else EXIT_REFUSED
    finally:
        stack.close()
        if old_bus is None:
            os.environ.pop("DBUS_SYSTEM_BUS_ADDRESS", None)
        else:
            os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = old_bus
