"""What `gaitsym gateway` and `gaitsym session` run: wiring of the production gateway (outbox in the state
dir, paho link, transport) and the one-shot command client. The CLI module stays import-light; this one
imports paho and the core.

Virtual kit (``--virtual-kit``): the transport is the simulator's packet stream on a `VirtualHostClock`
advanced ``speed`` times faster than real time. The kit is anchored in the state dir
(``virtual_kit.json``: seed, settings and the wall-clock start), so a gateway that is killed and restarted
finds the simulated sensors where they would be by then: the samples they sent while the gateway was dead
are gone from the air and reported as a gap. The anchor is removed when a run completes.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from sensor_gateway.cli import resolve_settings
from sensor_gateway.core.gateway import Gateway, GatewayConfig, run_for
from sensor_gateway.errors import GatewayError, UplinkError
from sensor_gateway.mqtt.client import MqttSettings, PahoLink, settings_from_url
from sensor_gateway.outbox.store import Outbox
from sensor_gateway.timing.host_clock import VirtualHostClock, kernel_utc_synced
from sensor_gateway.uplink import envelope as env
from sensor_gateway.uplink.topics import check_subject, topic

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
    except (GatewayError, ValueError, OSError) as exc:
        print(f"gaitsym gateway: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not args.virtual_kit:
        print(
            "gaitsym gateway: the BLE transport is not wired into this command yet; use --virtual-kit",
            file=sys.stderr,
        )
        return EXIT_USAGE
    state_dir = Path(settings["state_dir"])
    state_dir.mkdir(parents=True, exist_ok=True)
    config = GatewayConfig(
        subject=subject,
        batch_s=float(settings.get("batch_s", 1.0)),
        time_sync_every_s=float(settings.get("time_sync_every_s", 0.25)),
    )
    budget = int(float(settings.get("outbox_budget_mb", 2048)) * 1024 * 1024)
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
    from sensor_gateway.transport.virtual_kit_source import virtual_kit

    if speed <= 0:
        print("gaitsym gateway: --speed must be > 0", file=sys.stderr)
        return EXIT_USAGE
    key = {"seed": seed, "minutes": minutes, "speed": speed, "spp": args.samples_per_packet}
    duration_s = minutes * 60.0
    start_sim_s, utc0 = _anchor(state_dir, key, duration_s, speed)
    clock = VirtualHostClock(
        start_s=VIRTUAL_T0 + start_sim_s, utc_at_start_s=utc0 + start_sim_s, synced=kernel_utc_synced()
    )
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
    except (UplinkError, GatewayError, ValueError, OSError) as exc:
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
    if mqtt.username is not None:
        c.username_pw_set(mqtt.username, mqtt.password)
    if mqtt.tls_ca_file is not None or mqtt.tls:
        c.tls_set(ca_certs=mqtt.tls_ca_file, certfile=mqtt.tls_cert_file, keyfile=mqtt.tls_key_file)
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
