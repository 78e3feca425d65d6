"""What `gaitsym gateway` and `gaitsym session` run: wiring of the production gateway (outbox in the state
dir, paho link, transport) and the one-shot command client. The CLI module stays import-light; this one
imports paho and the core.

Virtual kit (``--virtual-kit``): the transport is the simulator's packet stream on a `VirtualHostClock`
advanced ``speed`` times faster than real time. The kit is anchored in the state dir
(``virtual_kit.json``: seed, settings and the wall-clock start), so a gateway that is killed and restarted
finds the simulated sensors where they would be by then: the samples they sent while the gateway was dead
are gone from the air and reported as a gap. The anchor is removed when a run completes.

BLE (``--ble``): the production path. `make_ble_transport` on the kit pinned by `gaitsym gateway pair`
(``ble_pairing.json`` in the state dir), the real clock, until SIGTERM/SIGINT (the session stays open across
a restart). ``gaitsym gateway pair`` runs `pair_kit`.

Virtual kit over BLE (``--virtual-kit --ble``, a development-checkout option): starts
``python -m testing.ble_harness.serve`` as a subprocess (dbus-daemon + bluezoo, the GPL-2.0 BlueZ mock from the
dev extras, + the emulated kit serving the simulator's session in real time; this module never imports
bluezoo), points D-Bus at its private bus, pairs the emulated kit (pinned under ``STATE_DIR/virtual-ble/``, so
a real kit's pairing is never touched) and runs the real bleak transport on it until the session is over and
the worker has acknowledged everything.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gaitsym.gateway_settings import resolve_settings
from gaitsym_common.errors import CommonError, UplinkError
from gaitsym_common.mqtt.client import MqttSettings, PahoLink, apply_tls_and_credentials, settings_from_url
from gaitsym_common.private_files import make_private_dir
from gaitsym_common.uplink import envelope as env
from gaitsym_common.uplink.topics import check_subject, topic
from sensor_gateway.core.gateway import Gateway, GatewayConfig, run_for
from sensor_gateway.errors import GatewayError
from sensor_gateway.outbox.store import Outbox
from sensor_gateway.timing.host_clock import HostClock, RealHostClock, VirtualHostClock

if TYPE_CHECKING:
    from sensor_gateway.ble.config import BleConfig

log = logging.getLogger("sensor_gateway")

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_NO_REPLY = 0, 1, 2, 3
VIRTUAL_T0 = 1000.0


def mqtt_settings(settings: dict[str, Any], default_client_id: str) -> MqttSettings:
    password = os.environ.get("GAITSYM_MQTT_PASSWORD")
    if settings.get("password_file"):
        password = Path(settings["password_file"]).read_text().strip()
    return settings_from_url(
        settings["broker"],
        client_id=settings.get("client_id") or default_client_id,
        username=settings.get("username"),
        password=password,
        tls_ca_file=settings.get("tls_ca"),
        tls_cert_file=settings.get("tls_cert"),
        tls_key_file=settings.get("tls_key"),
    )


# ----------------------------------------------------------------------------------------------- gateway


def run_gateway_command(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        settings = resolve_settings(args)
        subject = check_subject(settings.get("subject") or "")
        mqtt = mqtt_settings(settings, f"gaitsym-gateway-{subject}")
    except (GatewayError, CommonError, ValueError, OSError) as exc:
        print(f"gaitsym gateway: {exc}", file=sys.stderr)
        return EXIT_USAGE
    ble = bool(getattr(args, "ble", False)) or not args.virtual_kit  # the paired BLE kit is the default
    state_dir = Path(settings["state_dir"])
    make_private_dir(state_dir)  # holds the outbox (health data): 0700 when made here
    config = GatewayConfig(
        subject=subject,
        batch_s=float(settings.get("batch_s", 1.0)),
        time_sync_every_s=float(settings.get("time_sync_every_s", 0.25)),
    )
    budget = int(float(settings.get("outbox_budget_mb", 2048)) * 1024 * 1024)
    if ble and args.virtual_kit:
        return run_virtual_ble_kit(config, mqtt, state_dir, settings, args, budget)
    if ble:
        return run_ble(config, mqtt, state_dir, settings, args, budget)
    return run_virtual_kit(config, mqtt, state_dir, args.seed, args.minutes, args.speed, args, budget)


def _anchor(state_dir: Path, key: dict[str, Any], duration_s: float, speed: float) -> tuple[float, float]:
    """(simulation seconds already elapsed, wall-clock UTC of simulation time 0) for this kit."""
    path = state_dir / "virtual_kit.json"
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
) -> int:
    from sensor_gateway.errors import SimulationError
    from simulator.virtual_kit_source import virtual_kit

    if speed <= 0:
        print("gaitsym gateway: --speed must be > 0", file=sys.stderr)
        return EXIT_USAGE
    key = {"seed": seed, "minutes": minutes, "speed": speed, "spp": args.samples_per_packet}
    duration_s = minutes * 60.0
    start_sim_s, utc0 = _anchor(state_dir, key, duration_s, speed)
    # The virtual clock defines its own time (UTC = the wall clock at the anchor + virtual seconds), so it is
    # synchronised by construction; --unsynced-clock simulates a gateway before NTP (no UTC invented).
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
    drain_deadline: float | None = None
    completed = False
    while not stop.is_set():
        run_for(gw, kit.transport, clock, 0.25 * speed, speed=speed)
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
    gw.stop(end_session=completed)
    if completed:
        (state_dir / "virtual_kit.json").unlink(missing_ok=True)
    log.info("gateway stopped: %d message(s) published, %d left in the outbox", gw.published, left)
    return EXIT_OK if completed or stop.is_set() else EXIT_REFUSED


# ----------------------------------------------------------------------------------------------- BLE


def ble_config_from(settings: dict[str, Any], args: argparse.Namespace, state_dir: Path) -> BleConfig:
    """`BleConfig` from the resolved settings (adapter, silence_timeout_s) and ``--acquire-notify``."""
    from sensor_gateway.ble.config import BleConfig

    extra: dict[str, Any] = {}
    if settings.get("silence_timeout_s") is not None:
        extra["silence_timeout_s"] = float(settings["silence_timeout_s"])
    return BleConfig(
        state_dir=state_dir,
        adapter=str(settings.get("adapter") or "hci0"),
        use_start_notify=not bool(getattr(args, "acquire_notify", False)),
        **extra,
    )


def run_pair_command(args: argparse.Namespace) -> int:
    """`gaitsym gateway pair`: pin one sensor per placement (`pair_kit`); PairingError -> message, exit 2."""
    from sensor_gateway.ble.errors import PairingError
    from sensor_gateway.ble.pairing import pair_kit

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        settings = resolve_settings(args)
    except (GatewayError, CommonError, ValueError, OSError) as exc:
        print(f"gaitsym gateway pair: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.scan_s <= 0:
        print("gaitsym gateway pair: --scan-s must be > 0", file=sys.stderr)
        return EXIT_USAGE
    config = ble_config_from(settings, args, Path(settings["state_dir"]))
    try:
        pair_kit(config, scan_s=args.scan_s)
    except PairingError as exc:
        print(f"gaitsym gateway pair: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # bleak/BlueZ: no adapter, bluetoothd not running, D-Bus refused
        print(
            f"gaitsym gateway pair: Bluetooth adapter {config.adapter} unusable (is bluetoothd running and the "
            f"adapter present?): {type(exc).__name__}: {exc}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    return EXIT_OK


def build_ble_gateway(
    config: GatewayConfig,
    mqtt: MqttSettings | Any,
    state_dir: Path,
    ble_config: BleConfig,
    budget_bytes: int = 2048 * 1024 * 1024,
    clock: HostClock | None = None,
) -> Gateway:
    """The production gateway on the BLE transport of the kit pinned in ``ble_config.state_dir`` (raises
    `NotPaired` when there is none). ``mqtt`` is `MqttSettings` (a `PahoLink` is made) or a ready link."""
    from sensor_gateway.ble.transport import make_ble_transport

    clock = clock or RealHostClock()
    transport = make_ble_transport(ble_config, clock)
    make_private_dir(state_dir)  # holds the outbox (health data): 0700 when made here
    outbox = Outbox(state_dir / "outbox.db", budget_bytes=budget_bytes)
    link = PahoLink(mqtt) if isinstance(mqtt, MqttSettings) else mqtt
    return Gateway(config, transport, link, outbox, clock)


def serve(
    gw: Gateway,
    stop: threading.Event,
    duration_s: float | None = None,
    drain_timeout_s: float = 60.0,
    tick_s: float = 0.02,
) -> bool:
    """Step a started gateway on its (real) clock until ``stop``; with ``duration_s``, until the sensors have
    streamed that long (counted from the first packet), then stop streaming, close the open batches and the
    session, and wait up to ``drain_timeout_s`` for the worker's acks. True when everything was acknowledged."""
    clock = gw.clock
    started_at: float | None = None
    while not stop.is_set():
        gw.events.wait(tick_s)
        gw.step()
        now = clock.monotonic()
        if started_at is None and any(s.stream is not None and s.stream.samples for s in gw.sensors.values()):
            started_at = now
        if duration_s is not None and started_at is not None and now - started_at >= duration_s:
            break
    if stop.is_set():
        return False
    for placement in gw.config.placements:
        gw.transport.stop_streaming(placement)
    settle_end = clock.monotonic() + gw.config.batch_s + gw.config.batch_grace_s + 0.5
    while not stop.is_set() and clock.monotonic() < settle_end:  # in-flight packets, then the last batches
        gw.events.wait(tick_s)
        gw.step()
    if gw.session.session is not None:
        gw._close_session(clock.monotonic())
    log.info("session over: waiting for the worker to acknowledge %d message(s)", len(gw.outbox))
    deadline = time.monotonic() + drain_timeout_s
    while not stop.is_set() and time.monotonic() < deadline:
        gw.events.wait(tick_s)
        gw.step()
        if len(gw.outbox) == 0:
            return True
    log.error("%d message(s) still unacknowledged after %.0f s", len(gw.outbox), drain_timeout_s)
    return False


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def _not_paired(exc: Exception) -> int:
    hint = "" if "gaitsym gateway pair" in str(exc) else "; run `gaitsym gateway pair` first"
    print(f"gaitsym gateway: {exc}{hint}", file=sys.stderr)
    return EXIT_USAGE


def run_ble(
    config: GatewayConfig,
    mqtt: MqttSettings,
    state_dir: Path,
    settings: dict[str, Any],
    args: argparse.Namespace,
    budget_bytes: int,
) -> int:
    """`gaitsym gateway --ble`: the paired kit, until SIGTERM/SIGINT."""
    from sensor_gateway.ble.config import load_pairing
    from sensor_gateway.ble.errors import NotPaired, PairingError

    ble_config = ble_config_from(settings, args, state_dir)
    try:
        pairing = load_pairing(ble_config.pairing_path)
        if not settings.get("adapter"):  # the adapter the kit was paired on
            ble_config = ble_config_from({**settings, "adapter": pairing.adapter}, args, state_dir)
        gw = build_ble_gateway(config, mqtt, state_dir, ble_config, budget_bytes)
    except (NotPaired, PairingError) as exc:
        return _not_paired(exc)
    stop = _stop_on_signals()
    log.info(
        "BLE kit %s on %s; state in %s; broker %s:%d",
        ", ".join(f"{p}={s.serial}" for p, s in pairing.sensors.items()),
        ble_config.adapter,
        state_dir,
        mqtt.host,
        mqtt.port,
    )
    gw.start()
    serve(gw, stop)
    left = len(gw.outbox)
    gw.stop(end_session=False)  # a restarted gateway continues the session
    log.info("gateway stopped: %d message(s) published, %d left in the outbox", gw.published, left)
    return EXIT_OK


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
    stop = _stop_on_signals()
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
        completed = serve(gw, stop, duration_s=duration_s, drain_timeout_s=args.drain_timeout_s)
        left = len(gw.outbox)
        gw.stop(end_session=True)
        log.info("gateway stopped: %d message(s) published, %d left in the outbox", gw.published, left)
        return EXIT_OK if completed or stop.is_set() else EXIT_REFUSED
    finally:
        stack.close()
        if old_bus is None:
            os.environ.pop("DBUS_SYSTEM_BUS_ADDRESS", None)
        else:
            os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = old_bus


# ----------------------------------------------------------------------------------------------- session


def run_session_command(args: argparse.Namespace) -> int:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    try:
        settings = resolve_settings(args)
        subject = check_subject(settings.get("subject") or "")
        mqtt = mqtt_settings(settings, f"gaitsym-session-{uuid.uuid4().hex[:12]}")
        action = {"start": "session_start", "stop": "session_stop"}.get(args.session_command)
        if action is None:
            action = "set_end" if args.end else "set_start"
            cmd = env.Command("cmd", uuid.uuid4().hex, subject, action, args.exercise, args.side, args.set)
        else:
            cmd = env.Command("cmd", uuid.uuid4().hex, subject, action)
        payload = env.encode(cmd)
    except (CommonError, GatewayError, ValueError, OSError) as exc:
        print(f"gaitsym session: {exc}", file=sys.stderr)
        return EXIT_USAGE

    reply: list[env.CommandReply] = []
    subscribed = threading.Event()
    got = threading.Event()

    def on_connect(client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if not reason.is_failure:
            client.subscribe(topic(subject, "cmd/reply"), qos=1)

    def on_subscribe(client: Any, userdata: Any, mid: Any, reasons: Any, properties: Any) -> None:
        subscribed.set()

    def on_message(client: Any, userdata: Any, msg: Any) -> None:
        try:
            m = env.decode(msg.payload)
        except UplinkError:
            return
        if isinstance(m, env.CommandReply) and m.cmd_id == cmd.cmd_id:
            reply.append(m)
            got.set()

    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=mqtt.client_id, clean_session=True)
    apply_tls_and_credentials(c, mqtt)
    c.on_connect, c.on_subscribe, c.on_message = on_connect, on_subscribe, on_message
    deadline = time.monotonic() + args.timeout_s
    try:
        c.connect(mqtt.host, mqtt.port, keepalive=30)
    except OSError as exc:
        print(f"gaitsym session: cannot reach the broker {mqtt.host}:{mqtt.port}: {exc}", file=sys.stderr)
        return EXIT_NO_REPLY
    c.loop_start()
    try:
        if not subscribed.wait(max(0.0, deadline - time.monotonic())):
            print("gaitsym session: no subscription acknowledgement from the broker", file=sys.stderr)
            return EXIT_NO_REPLY
        c.publish(topic(subject, "cmd"), payload, qos=1)
        if not got.wait(max(0.0, deadline - time.monotonic())):
            print(
                f"gaitsym session: no reply from the gateway of {subject} within {args.timeout_s:g} s "
                "(is it running and connected?)",
                file=sys.stderr,
            )
            return EXIT_NO_REPLY
    finally:
        c.disconnect()
        c.loop_stop()
    answer = reply[0]
    print(answer.message)
    return EXIT_OK if answer.ok else EXIT_REFUSED
