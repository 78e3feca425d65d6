"""`gaitsym gateway --ble` (the production path) and `gaitsym gateway pair`: `make_ble_transport` on the kit
pinned by `pair_kit` (``ble_pairing.json`` in the state dir), the real clock, until SIGTERM/SIGINT (the session
stays open across a restart). `build_ble_gateway` and `serve` are also what the emulated BLE kit runs on.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gaitsym.errors import GaitsymError, KitMismatch
from gaitsym.gateway_settings import resolve_settings
from gaitsym.gateway_systemd import Notifier, gateway_health, status_line
from gaitsym.gateway_wiring import EXIT_OK, EXIT_USAGE, log
from gaitsym_common.errors import CommonError
from gaitsym_common.mqtt.client import MqttSettings, PahoLink
from gaitsym_common.private_files import make_private_dir
from sensor_gateway.core.gateway import Gateway, GatewayConfig
from sensor_gateway.errors import GatewayError
from sensor_gateway.outbox.store import Outbox
from sensor_gateway.timing.host_clock import HostClock, RealHostClock

if TYPE_CHECKING:
    from sensor_gateway.ble.config import BleConfig, Pairing


def check_kit_matches(kit: dict[str, str] | None, pairing: Pairing) -> None:
    """The kit pinned here must be the one the configuration's ``[kit]`` names (when it names one): a gateway
    never sends another kit's samples under this subject. KitMismatch naming each placement that differs."""
    if not kit:
        return
    paired = {placement: sensor.serial for placement, sensor in pairing.sensors.items()}
    wrong = [
        f"{placement}: configured {serial}, paired {paired.get(placement, 'none')}"
        for placement, serial in sorted(kit.items())
        if paired.get(placement) != serial
    ]
    if wrong:
        raise KitMismatch(
            "the paired kit is not the kit in the configuration (" + "; ".join(wrong) + "): switch on the subject's "
            "own sensors and run `gaitsym gateway pair` again, or correct [kit]"
        )


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
        pairing = pair_kit(config, scan_s=args.scan_s)
        check_kit_matches(settings.get("kit"), pairing)
    except KitMismatch as exc:
        config.pairing_path.unlink(missing_ok=True)  # never leave a foreign kit pinned
        print(f"gaitsym gateway pair: {exc}", file=sys.stderr)
        return EXIT_USAGE
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
    notifier: Notifier | None = None,
    settle_timeout_s: float = 30.0,
) -> bool:
    """Step a started gateway on its (real) clock until ``stop``; with ``duration_s``, until the sensors have
    streamed that long (counted from the first packet), then stop streaming, close the open batches and the
    session once the sensors fell quiet (giving up ``settle_timeout_s`` after a batch period and its grace), and wait
    up to ``drain_timeout_s`` for the worker's acks. True when everything was acknowledged.
    ``notifier``: told after every step, so that systemd's watchdog is pinged from this loop alone."""
    clock = gw.clock
    started_at: float | None = None

    def turned() -> None:
        if notifier is not None:
            notifier.loop_turned(lambda: gateway_health(gw), lambda: status_line(gw))

    while not stop.is_set():
        gw.events.wait(tick_s)
        gw.step()
        turned()
        now = clock.monotonic()
        if started_at is None and any(s.stream is not None and s.stream.samples for s in gw.sensors.values()):
            started_at = now
        if duration_s is not None and started_at is not None and now - started_at >= duration_s:
            break
    if stop.is_set():
        return False
    gw.stop_streaming()
    # The stop reaches each sensor in its own time (seconds on a slow or busy link) and packets already sent still
    # arrive: the session closes only once no packet came for a batch period and its grace, so that every last
    # batch lands inside it and no late packet opens a second session after it. Bounded: a sensor that ignores
    # the stop does not hold the session open.
    quiet_s = gw.config.batch_s + gw.config.batch_grace_s + 0.5
    stopped_at = clock.monotonic()
    while not stop.is_set():
        now = clock.monotonic()
        last_packet = max((s.last_arrival_s for s in gw.sensors.values()), default=stopped_at)
        if now - max(last_packet, stopped_at) >= quiet_s or now - stopped_at >= quiet_s + settle_timeout_s:
            break
        gw.events.wait(tick_s)
        gw.step()
        turned()
    if gw.session.session is not None:
        gw._close_session(clock.monotonic())
    log.info("session over: waiting for the worker to acknowledge %d message(s)", len(gw.outbox))
    deadline = time.monotonic() + drain_timeout_s
    while not stop.is_set() and time.monotonic() < deadline:
        gw.events.wait(tick_s)
        gw.step()
        turned()
        if len(gw.outbox) == 0:
            return True
    log.error("%d message(s) still unacknowledged after %.0f s", len(gw.outbox), drain_timeout_s)
    return False


def stop_on_signals() -> threading.Event:
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
    notifier: Notifier | None = None,
) -> int:
    """`gaitsym gateway --ble`: the paired kit, until SIGTERM/SIGINT. Under systemd: READY=1 once the gateway
    runs, the watchdog pinged from its loop, STOPPING=1 on the way out."""
    from sensor_gateway.ble.config import load_pairing
    from sensor_gateway.ble.errors import NotPaired, PairingError

    ble_config = ble_config_from(settings, args, state_dir)
    try:
        pairing = load_pairing(ble_config.pairing_path)
        if not settings.get("adapter"):  # the adapter the kit was paired on
            ble_config = ble_config_from({**settings, "adapter": pairing.adapter}, args, state_dir)
        check_kit_matches(settings.get("kit"), pairing)
        gw = build_ble_gateway(config, mqtt, state_dir, ble_config, budget_bytes)
    except (NotPaired, PairingError, GaitsymError) as exc:
        return _not_paired(exc)
    stop = stop_on_signals()
    log.info(
        "BLE kit %s on %s; state in %s; broker %s:%d",
        ", ".join(f"{p}={s.serial}" for p, s in pairing.sensors.items()),
        ble_config.adapter,
        state_dir,
        mqtt.host,
        mqtt.port,
    )
    gw.start()
    if notifier is not None:
        notifier.ready(status_line(gw))
    serve(gw, stop, notifier=notifier)
    left = len(gw.outbox)
    if notifier is not None:
        notifier.stopping(f"stopping: {left} message(s) kept in the outbox")
    gw.stop(end_session=False)  # a restarted gateway continues the session
    log.info("gateway stopped: %d message(s) published, %d left in the outbox", gw.published, left)
    return EXIT_OK
