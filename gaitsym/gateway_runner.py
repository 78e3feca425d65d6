"""What `gaitsym gateway` and `gaitsym session` run: `run_gateway_command` resolves the settings and hands the
gateway to one of three wirings (outbox in the state dir, paho link, transport), each in a module of its own;
the one-shot command client is `gaitsym.session_command`. The CLI module stays import-light; this one imports
the core. Every name the commands and tests import from here stays importable from here.

The wirings: `gaitsym.gateway_virtual_kit` (``--virtual-kit``: the simulator's packets on an accelerated virtual
clock, its session clock start kept in the state dir across restarts), `gaitsym.gateway_ble` (``--ble``, the
default: the kit pinned by ``gaitsym gateway pair``, the real clock, until SIGTERM/SIGINT) and
`gaitsym.gateway_virtual_ble` (``--virtual-kit --ble``, a development-checkout option: the real bleak transport on
the emulated kit).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from gaitsym.errors import GaitsymError
from gaitsym.gateway_ble import build_ble_gateway, run_ble, run_pair_command, serve
from gaitsym.gateway_settings import check_private_files, resolve_settings
from gaitsym.gateway_systemd import Notifier
from gaitsym.gateway_virtual_ble import run_virtual_ble_kit
from gaitsym.gateway_virtual_kit import run_virtual_kit
from gaitsym.gateway_wiring import EXIT_NO_REPLY, EXIT_OK, EXIT_REFUSED, EXIT_USAGE, mqtt_settings
from gaitsym.session_command import run_session_command
from gaitsym_common.errors import CommonError
from gaitsym_common.private_files import make_private_dir
from gaitsym_common.uplink.topics import check_subject
from sensor_gateway.core.gateway import GatewayConfig
from sensor_gateway.errors import GatewayError

__all__ = [
    "EXIT_NO_REPLY",
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_USAGE",
    "build_ble_gateway",
    "mqtt_settings",
    "run_gateway_command",
    "run_pair_command",
    "run_session_command",
    "serve",
]


def run_gateway_command(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        settings = resolve_settings(args)
        check_private_files(settings, getattr(args, "config", None))  # before any secret is read
        subject = check_subject(settings.get("subject") or "")
        mqtt = mqtt_settings(settings, f"gaitsym-gateway-{subject}")
    except (GaitsymError, GatewayError, CommonError, ValueError, OSError) as exc:
        print(f"gaitsym gateway: {exc}", file=sys.stderr)
        return EXIT_USAGE
    ble = bool(getattr(args, "ble", False)) or not args.virtual_kit  # the paired BLE kit is the default
    state_dir = Path(settings["state_dir"])
    make_private_dir(state_dir)  # holds the outbox (health data): 0700 when made here
    config = GatewayConfig(
        subject=subject,
        batch_s=float(settings.get("batch_s", 1.0)),
        time_sync_every_s=float(settings.get("time_sync_every_s", 0.25)),
        bundle=bool(settings.get("bundle", True)),
    )
    budget = int(float(settings.get("outbox_budget_mb", 2048)) * 1024 * 1024)
    notifier = Notifier.from_environment()  # systemd's readiness and watchdog; inert outside systemd
    try:
        if ble and args.virtual_kit:
            return run_virtual_ble_kit(config, mqtt, state_dir, settings, args, budget, notifier)
        if ble:
            return run_ble(config, mqtt, state_dir, settings, args, budget, notifier)
        return run_virtual_kit(config, mqtt, state_dir, args.seed, args.minutes, args.speed, args, budget, notifier)
    finally:
        notifier.close()
