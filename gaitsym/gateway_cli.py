"""`gaitsym gateway ...` (run the home gateway) and `gaitsym session start|stop|mark` (talk to a running one).

Import-light: `gaitsym.cli` calls `register` at parser-build time; the handlers import the MQTT client, the gateway
core and (for ``--virtual-kit``) the simulator only when they run.

Settings come from flags and/or a TOML config file (``--config``; flags win). Keys of the file are the
long flag names with ``_`` for ``-``: subject, broker, username, password_file, tls_ca, tls_cert, tls_key,
client_id, state_dir, batch_s, time_sync_every_s, outbox_budget_mb, adapter, silence_timeout_s, and in the file
only ``bundle``, ``password`` and ``[kit]`` (placement = serial). Passwords never go on the command line: the file's
``password``, ``password_file`` or the ``GAITSYM_MQTT_PASSWORD`` environment variable; the gateway refuses a
configuration or secret file other users can read (deploy/gateway/README.md).

Sensors: ``--ble`` (the kit pinned by ``gaitsym gateway pair``; the default), ``--virtual-kit`` (the simulator's packet
stream, optionally sped up) or both (``--virtual-kit --ble``: the real bleak transport against the emulated kit
on bluezoo; needs a development checkout, see `sensor_gateway/ble/BLE.md`).
"""

from __future__ import annotations

import argparse
import sys

from gaitsym.gateway_settings import DEFAULT_BROKER, DEFAULT_STATE_DIR, DEFAULT_SUBJECT


def _add_broker_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="TOML file with any of the settings below (flags win)")
    p.add_argument(
        "--subject",
        help=f"subject id (1-64 letters, digits, '-', '_'): the topic prefix and MQTT user (default {DEFAULT_SUBJECT})",
    )
    p.add_argument(
        "--broker",
        metavar="URL",
        help=f"mqtt://HOST[:PORT] (plain, default port 1883) or mqtts://HOST[:PORT] (TLS, 8883); "
        f"default {DEFAULT_BROKER}",
    )
    p.add_argument("--username", help="MQTT user name (the clinic broker expects the subject id)")
    p.add_argument(
        "--password-file",
        metavar="FILE",
        help="file holding the MQTT password (or set GAITSYM_MQTT_PASSWORD; never a flag)",
    )
    p.add_argument(
        "--tls-ca",
        metavar="FILE",
        help="CA certificate(s) the broker is verified against (mqtts:// only; default the system's CA store)",
    )
    p.add_argument("--tls-cert", metavar="FILE", help="client certificate for TLS client authentication")
    p.add_argument("--tls-key", metavar="FILE", help="private key of --tls-cert")
    p.add_argument("--client-id", help="MQTT client id (default: gaitsym-gateway-SUBJECT / a random one)")


def _add_ble_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--adapter",
        metavar="hciN",
        help="BLE: BlueZ adapter (default: the one the kit was paired on, else hci0; a USB dongle is often hci1)",
    )


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """`gaitsym gateway ...` and `gaitsym session start|stop|mark ...`."""
    gw = sub.add_parser(
        "gateway",
        help="run the home gateway: sensors -> clock mapping -> durable outbox -> MQTT",
        description=(
            "Run the home gateway until stopped (SIGTERM/SIGINT end it cleanly). The sensors are the BLE kit pinned "
            "by `gaitsym gateway pair` (run that first, once; --ble says so explicitly). With --virtual-kit the "
            "sensors are the simulator's packet stream (everything else is the production path) and the gateway "
            "exits once the simulated session is over and the worker has acknowledged everything. "
            "--virtual-kit --ble runs the real bleak transport against an emulated kit (bluezoo) serving the "
            "simulated session in real time: for anyone without sensors who wants to see the BLE path work; it "
            "needs a development checkout of gaitsym (`make test` installs bluezoo and dbus)."
        ),
    )
    _add_broker_arguments(gw)
    gw.add_argument(
        "--state-dir",
        metavar="DIR",
        help=f"where the outbox (SQLite) and the sensors' cursors live (default {DEFAULT_STATE_DIR})",
    )
    gw.add_argument("--batch-s", type=float, help="seconds of samples per raw batch (default 1.0)")
    gw.add_argument(
        "--time-sync-every-s",
        type=float,
        help="mean pause between TIME_SYNC round trips per sensor, s (default 0.25; 0 = arrival fit only)",
    )
    gw.add_argument("--outbox-budget-mb", type=float, help="outbox size before new raw batches are refused (2048)")
    gw.add_argument(
        "--ble",
        action="store_true",
        help="use the BLE kit pinned by `gaitsym gateway pair` (the production path; default without --virtual-kit)",
    )
    _add_ble_arguments(gw)
    gw.add_argument(
        "--silence-timeout-s",
        type=float,
        help="BLE: a streaming sensor silent this long is reconnected (default 3; never under 3 packet intervals)",
    )
    gw.add_argument(
        "--acquire-notify",
        action="store_true",
        help="BLE: subscribe with BlueZ AcquireNotify (a socket; less D-Bus traffic) instead of StartNotify",
    )
    gw.add_argument(
        "--virtual-kit",
        action="store_true",
        help="use the simulated sensor kit as the transport; with --ble: the real BLE transport against the "
        "emulated kit on bluezoo, in real time (needs a development checkout: `make test` installs bluezoo)",
    )
    gw.add_argument("--seed", type=int, default=1, help="virtual kit: simulation seed (default 1)")
    gw.add_argument("--minutes", type=float, default=15.0, help="virtual kit: session length, min (default 15)")
    gw.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="virtual kit: how many times faster than real time (default 1); runs on a virtual host clock, so "
        "acceleration is never mistaken for clock drift",
    )
    gw.add_argument(
        "--samples-per-packet", type=int, default=10, help="virtual kit: samples per BLE packet, 1-19 (default 10)"
    )
    gw.add_argument(
        "--unsynced-clock",
        action="store_true",
        help="virtual kit: behave like a gateway whose clock is not yet NTP-synchronised (batches carry sensor "
        "time, no UTC); by default the virtual clock is synchronised by construction",
    )
    gw.add_argument("--drain-timeout-s", type=float, default=60.0, help="virtual kit: wait for acks at the end (60)")
    gw.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default INFO)")
    gw.set_defaults(handler=gateway_command, gateway_command=None)
    gw_sub = gw.add_subparsers(dest="gateway_command", title="subcommand (optional)", metavar="{pair}", required=False)
    pair = gw_sub.add_parser(
        "pair",
        help="pin the subject's three sensors (switched on, every other kit off) by placement",
        description="Scan for gaitsym sensors, read each one's placement and serial, and pin one per placement in "
        "STATE_DIR/ble_pairing.json (written only when exactly one sensor per placement is found). Exit status: "
        "0 paired, 2 refused (a placement missing or claimed twice: the message names the sensors).",
    )
    pair.add_argument("--config", metavar="FILE", help="TOML file with state_dir and/or adapter (flags win)")
    _add_ble_arguments(pair)
    pair.add_argument(
        "--state-dir",
        metavar="DIR",
        help=f"where the pairing is written (default {DEFAULT_STATE_DIR})",
    )
    pair.add_argument("--scan-s", type=float, default=5.0, help="seconds to scan for sensors (default 5)")
    pair.set_defaults(handler=gateway_command)

    session = sub.add_parser(
        "session",
        help="start/stop a session or mark an exercise set on a running gateway (via MQTT cmd/reply)",
        description="Send one command to the subject's gateway over MQTT and wait for its reply. Exit status: "
        "0 done, 1 refused by the gateway, 2 bad arguments, 3 no reply (gateway not running?).",
    )
    actions = session.add_subparsers(dest="session_command", metavar="ACTION", required=True)
    for name, text in (("start", "open a session now"), ("stop", "close the open session")):
        p = actions.add_parser(name, help=text)
        _add_broker_arguments(p)
        p.add_argument("--timeout-s", type=float, default=10.0, help="seconds to wait for the reply (default 10)")
        p.set_defaults(handler=session_command)
    mark = actions.add_parser("mark", help="mark the start (or with --end the end) of an exercise set")
    _add_broker_arguments(mark)
    mark.add_argument("--exercise", required=True, help="exercise id from exercises-v1.json (e.g. clam, walk)")
    mark.add_argument("--side", required=True, help="left, right or none: the working leg")
    mark.add_argument("--set", type=int, default=1, help="set number, from 1 per exercise and side (default 1)")
    mark.add_argument("--end", action="store_true", help="mark the end of the set instead of its start")
    mark.add_argument("--timeout-s", type=float, default=10.0, help="seconds to wait for the reply (default 10)")
    mark.set_defaults(handler=session_command)


def gateway_command(args: argparse.Namespace) -> int:
    if getattr(args, "gateway_command", None) == "pair":
        from gaitsym.gateway_runner import run_pair_command

        return run_pair_command(args)
    from gaitsym.gateway_runner import run_gateway_command

    return run_gateway_command(args)


def session_command(args: argparse.Namespace) -> int:
    from gaitsym.gateway_runner import run_session_command

    return run_session_command(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(1)
