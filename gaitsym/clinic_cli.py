"""`gaitsym clinic init|influx-setup` and `gaitsym enrol`: set up a clinic's stack and hand out gateways.

Import-light (only the parsers here); the work is in the `gaitsym.clinic` package, imported when a command runs.
Exit status: 0 done, 1 done but Mosquitto not reloaded (enrol) or the server refused (influx-setup), 2 refused
(bad argument, already enrolled, not a clinic folder: the message says which).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

DEFAULT_CLINIC_DIR = os.environ.get(
    "GAITSYM_CLINIC_DIR", str(Path(__file__).resolve().parents[1] / "deploy" / "clinic" / "local")
)
"""The folder deploy/clinic/init fills by default (in the checkout, wherever the command is run from)."""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    clinic = sub.add_parser(
        "clinic",
        help="set up a clinic's stack: secrets, CA and certificates, broker users and ACL, InfluxDB users",
        description="`init` writes every secret and configuration deploy/clinic/compose.yaml needs into an "
        "owner-only clinic folder (deploy/clinic/init runs it); `influx-setup` creates the InfluxDB users (the "
        "compose stack runs it once InfluxDB is up).",
    )
    actions = clinic.add_subparsers(dest="clinic_command", metavar="ACTION", required=True)
    init = actions.add_parser("init", help="create or complete a clinic folder (never replaces an existing secret)")
    init.add_argument("--dir", default=DEFAULT_CLINIC_DIR, help=f"the clinic folder (default {DEFAULT_CLINIC_DIR})")
    init.add_argument("--hostname", required=True, help="the name (or IP address) gateways reach the clinic by")
    init.add_argument("--workers", type=int, default=2, help="analytics workers, each with its own users (2)")
    init.add_argument("--broker-port", type=int, default=8883, help="the broker's TLS port on the host (8883)")
    init.add_argument("--grafana-port", type=int, default=3000, help="Grafana's HTTPS port on the host (3000)")
    init.add_argument("--raw-retention", default="30d", help="how long InfluxDB keeps raw samples (30d)")
    init.add_argument(
        "--run-as",
        metavar="UID:GID",
        help="user the containers run as and the files belong to (default: you; 1883:1883 when run as root)",
    )
    init.add_argument(
        "--compose-env",
        metavar="FILE",
        help="where to write the compose file's variables (deploy/clinic/init: deploy/clinic/.env)",
    )
    init.set_defaults(handler=clinic_command)
    influx = actions.add_parser(
        "influx-setup",
        help="create InfluxDB's database, retention policies and users from influxdb/setup.env (environment)",
    )
    influx.add_argument("--url", default="http://influxdb:8086", help="InfluxDB 1.x HTTP URL (http://influxdb:8086)")
    influx.add_argument("--wait-s", type=float, default=60.0, help="wait this long for InfluxDB to answer (60)")
    influx.set_defaults(handler=clinic_command)

    enrol = sub.add_parser(
        "enrol",
        help="hand out a gateway: its own broker user and ACL, its config file; reloads Mosquitto",
        description="Create the subject's gateway credentials (a broker user named after the subject, allowed "
        "only that subject's topics), write CLINIC_DIR/gateways/SUBJECT/gateway.toml (mode 0600) and ca.crt to "
        "install on the gateway, then reload Mosquitto (SIGHUP).",
    )
    enrol.add_argument("--subject", required=True, help="the subject's pseudonymous id (1-64 letters, digits, - _)")
    enrol.add_argument("--dir", default=DEFAULT_CLINIC_DIR, help=f"the clinic folder (default {DEFAULT_CLINIC_DIR})")
    enrol.add_argument(
        "--kit",
        metavar="pelvis=SERIAL,left_thigh=SERIAL,right_thigh=SERIAL",
        help="the sensors handed out with the gateway: it will refuse any other kit",
    )
    enrol.add_argument(
        "--gateway-etc",
        default="/etc/gaitsym",
        help="folder of gateway.toml and ca.crt on the gateway (default /etc/gaitsym)",
    )
    enrol.add_argument(
        "--broker-pid-file",
        metavar="FILE",
        help="reload the broker whose pid is in FILE (default: `docker compose kill -s SIGHUP mosquitto`)",
    )
    enrol.add_argument("--no-reload", action="store_true", help="do not reload Mosquitto (do it yourself)")
    enrol.set_defaults(handler=enrol_command)


def _refused(command: str, why: object, status: int = 2) -> int:
    """Say on stderr why ``gaitsym COMMAND`` did not do its work; the exit status (see the module)."""
    print(f"gaitsym {command}: {why}", file=sys.stderr)
    return status


def clinic_command(args: argparse.Namespace) -> int:
    from gaitsym.clinic import Owner, init_clinic
    from gaitsym.errors import ClinicSetupError

    if args.clinic_command == "influx-setup":
        return _influx_setup(args.url, args.wait_s)
    try:
        clinic = init_clinic(
            Path(args.dir),
            args.hostname,
            workers=args.workers,
            broker_port=args.broker_port,
            grafana_port=args.grafana_port,
            raw_retention=args.raw_retention,
            run_as=Owner.parse(args.run_as) if args.run_as else None,
            compose_env=Path(args.compose_env) if args.compose_env else None,
        )
    except (ClinicSetupError, OSError) as exc:
        return _refused("clinic init", exc)
    print(f"clinic folder {clinic.root} (owner-only; never commit it): broker {clinic.broker_url}")
    print(f"  workers: {', '.join(clinic.workers)}; session command: --config {clinic.session_command_config}")
    print(f"  enrolled gateways: {', '.join(clinic.subjects) or 'none yet'} (`gaitsym enrol --subject S`)")
    if args.compose_env:
        print(f"  compose variables: {args.compose_env}")
    return 0


def _influx_setup(url: str, wait_s: float) -> int:
    import time
    import urllib.error
    import urllib.request

    from analytics.stores.errors import StoreError
    from gaitsym.clinic import influx_setup_from_environment
    from gaitsym.errors import ClinicSetupError

    deadline = time.monotonic() + wait_s
    while True:
        try:
            with urllib.request.urlopen(f"{url.rstrip('/')}/ping", timeout=2.0):
                break
        except (urllib.error.URLError, OSError) as exc:
            if time.monotonic() > deadline:
                return _refused("clinic influx-setup", f"{url} does not answer: {exc}", status=1)
            time.sleep(1.0)
    try:
        print(influx_setup_from_environment(url))
    except ClinicSetupError as exc:
        return _refused("clinic influx-setup", exc)
    except StoreError as exc:
        return _refused("clinic influx-setup", exc, status=1)
    return 0


def enrol_command(args: argparse.Namespace) -> int:
    from gaitsym.clinic import enrol, parse_kit
    from gaitsym.errors import ClinicSetupError

    try:
        done = enrol(
            Path(args.dir),
            args.subject,
            kit=parse_kit(args.kit),
            gateway_etc=args.gateway_etc.rstrip("/") or "/",
            reload=not args.no_reload,
            broker_pid_file=Path(args.broker_pid_file) if args.broker_pid_file else None,
        )
    except (ClinicSetupError, OSError) as exc:
        return _refused("enrol", exc)
    print(f"subject {done.subject} enrolled: install {done.config} and {done.config.parent / 'ca.crt'} on its gateway")
    print(f"  ({args.gateway_etc}/, owner gaitsym, mode 0600: deploy/gateway/README.md)")
    print(f"  {done.reload_message}")
    return 0 if done.reloaded or args.no_reload else 1
