"""`gaitsym clinic init`: create or complete a clinic folder (the package docstring lists what it holds).

Running it again is safe: an existing secret is never replaced, only what is missing is added (a new worker), and
every derived file (broker password file, ACL and configuration, each service's env file, the workers' compose
services) is written again from secrets.json, clinic.json and the shipped configuration."""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from gaitsym.clinic.broker import (
    CLINIC_USER,
    HEALTH_USER,
    AclRules,
    acl_text,
    broker_conf_text,
    mosquitto_hash,
    password_file_text,
    read_password_file,
)
from gaitsym.clinic.certificates import ensure_certificates
from gaitsym.clinic.compose_files import compose_env_text, workers_compose_text
from gaitsym.clinic.folder import MAX_WORKERS, Clinic, check_hostname
from gaitsym.clinic.formats import env_text, toml_str
from gaitsym.clinic.influx import GRAFANA_INFLUX_USER, GRAFANA_PASSWORD_ENV, INFLUX_ADMIN, password_variable
from gaitsym.clinic.private_files import LOCK_FILE, Owner, clinic_lock, make_folder, write_private
from gaitsym.errors import ClinicSetupError


def check_clinic_folder(root: Path) -> None:
    """``root`` may become the clinic folder only when it is new, empty, or a clinic folder already (its
    clinic.json, or the lock file of an `init` that stopped half-way). `init` makes its folder owner-only and gives
    it to the containers' user: that must never happen to a folder someone else uses (a home folder, /srv)."""
    if root.exists() and not root.is_dir():
        raise ClinicSetupError(f"{root} is not a folder: give --dir a new or empty folder")
    ours = (root / "clinic.json").exists() or (root / LOCK_FILE).exists()
    if root.is_dir() and not ours and any(root.iterdir()):
        raise ClinicSetupError(
            f"{root} already holds other files and is not a clinic folder (no clinic.json): give --dir a new or "
            "empty folder; nothing was changed"
        )


def init_clinic(
    root: Path,
    hostname: str,
    *,
    workers: int = 2,
    broker_port: int = 8883,
    grafana_port: int = 3000,
    run_as: Owner | None = None,
    compose_env: Path | None = None,
    raw_retention: str = "30d",
) -> Clinic:
    """Create or complete the clinic folder ``root`` (what it holds: the package docstring); returns the clinic."""
    if not 1 <= workers <= MAX_WORKERS:
        raise ClinicSetupError(f"--workers {workers}: expected 1 to {MAX_WORKERS}")
    for name, port in (("--broker-port", broker_port), ("--grafana-port", grafana_port)):
        if not 1 <= port <= 65535:
            raise ClinicSetupError(f"{name} {port}: expected 1 to 65535")
    if not re.fullmatch(r"\d+[hdw]|INF", raw_retention):
        raise ClinicSetupError(f"--raw-retention {raw_retention!r}: expected e.g. 30d, 12w or INF")
    hostname = check_hostname(hostname)
    root = Path(root).resolve()
    rules = AclRules.load()
    conf = broker_conf_text(tls_port=broker_port)
    check_clinic_folder(root)
    make_folder(root, None)
    with clinic_lock(root):
        if (root / "clinic.json").exists():
            clinic = Clinic.open(root)
            if clinic.settings["hostname"] != hostname:
                raise ClinicSetupError(
                    f"{root} was initialised for {clinic.settings['hostname']!r}, not {hostname!r}: the gateways "
                    "trust that name; to move the clinic, delete tls/server.crt and clinic.json's hostname line"
                )
        else:
            clinic = Clinic(root, {"hostname": hostname, "gateways": []}, {})
        owner = run_as or (clinic.owner if "run_as" in clinic.settings else Owner.default())
        clinic.settings.update(
            {
                "format": "gaitsym.clinic/1",
                "hostname": hostname,
                "workers": max(workers, int(clinic.settings.get("workers", 0))),
                "broker_port": broker_port,
                "grafana_port": grafana_port,
                "raw_retention": raw_retention,
                "run_as": {"uid": owner.uid, "gid": owner.gid},
            }
        )
        make_folder(root, owner)
        write_private(root / ".gitignore", "# secrets and patient data: never committed\n*\n", owner)
        for sub in ("ca", "tls", "mosquitto", "mosquitto/data", "mosquitto/health", "influxdb", "influxdb/data",
                    "influxdb/backups", "grafana", "grafana/data", "workers", "gateways"):  # fmt: skip
            make_folder(root / sub, owner)
        for name in clinic.workers:
            make_folder(clinic.worker_state(name), owner)
        ensure_certificates(root, hostname, owner)
        write_service_files(clinic, owner, rules, conf)
        write_private(clinic.workers_compose, workers_compose_text(clinic), owner)
        clinic.save()
        if compose_env is not None:
            write_private(Path(compose_env), compose_env_text(clinic), owner if os.geteuid() == 0 else None)
    return clinic


def write_service_files(clinic: Clinic, owner: Owner, rules: AclRules, conf: str) -> None:
    """Every file the services read their users and passwords from, written again from secrets.json (a missing
    secret is made) and the shipped broker configuration ``conf`` and ACL ``rules``."""
    users = read_password_file(clinic.password_file)
    service_users = [*clinic.workers, CLINIC_USER, HEALTH_USER]
    for user in service_users:
        users[user] = mosquitto_hash(clinic.secret(f"mqtt:{user}"))
    # the enrolled subjects of clinic.json are the gateways: a subject taken out of it loses its login too
    gateways = {u: users[u] for u in clinic.subjects if u in users}
    users = {u: users[u] for u in service_users} | gateways
    write_private(clinic.password_file, password_file_text(users), owner)
    write_private(clinic.acl_file, acl_text(rules, clinic.workers, clinic.subjects), owner)
    write_private(clinic.broker_conf, conf, owner)
    write_private(
        clinic.root / "mosquitto" / "health" / "mosquitto_sub",
        f"-u {HEALTH_USER}\n-P {clinic.secret(f'mqtt:{HEALTH_USER}')}\n",
        owner,
    )
    influx = {name: clinic.secret(f"influx:{name}") for name in clinic.workers}
    reader = clinic.secret(f"influx:{GRAFANA_INFLUX_USER}")
    write_private(
        clinic.root / "influxdb" / "setup.env",
        env_text(
            {
                "GAITSYM_INFLUX_ADMIN_USER": INFLUX_ADMIN,
                "GAITSYM_INFLUX_ADMIN_PASSWORD": clinic.secret(f"influx:{INFLUX_ADMIN}"),
                "GAITSYM_INFLUX_WRITERS": ",".join(influx),
                "GAITSYM_INFLUX_READERS": GRAFANA_INFLUX_USER,
                "GAITSYM_INFLUX_RAW_RETENTION": clinic.settings["raw_retention"],
                **{password_variable(name): pw for name, pw in influx.items()},
                password_variable(GRAFANA_INFLUX_USER): reader,
            }
        ),
        owner,
    )
    for name in clinic.workers:
        write_private(
            clinic.worker_env(name),
            env_text({"GAITSYM_MQTT_PASSWORD": clinic.secret(f"mqtt:{name}"), "GAITSYM_INFLUX_PASSWORD": influx[name]}),
            owner,
        )
    hostname = clinic.settings["hostname"]
    write_private(
        clinic.root / "grafana" / "grafana.env",
        env_text(
            {
                "GF_SECURITY_ADMIN_USER": "admin",
                "GF_SECURITY_ADMIN_PASSWORD": clinic.secret("grafana:admin"),
                "GF_SECURITY_SECRET_KEY": clinic.secret("grafana:secret_key", lambda: secrets.token_hex(32)),
                "GF_SECURITY_COOKIE_SECURE": "true",
                "GF_SERVER_PROTOCOL": "https",
                "GF_SERVER_DOMAIN": hostname,
                "GF_SERVER_CERT_FILE": "/etc/grafana/tls/server.crt",
                "GF_SERVER_CERT_KEY": "/etc/grafana/tls/server.key",
                "GF_USERS_ALLOW_SIGN_UP": "false",
                "GF_AUTH_ANONYMOUS_ENABLED": "false",
                "GF_ANALYTICS_REPORTING_ENABLED": "false",
                "GF_ANALYTICS_CHECK_FOR_UPDATES": "false",
                "GF_ANALYTICS_CHECK_FOR_PLUGIN_UPDATES": "false",
                "GF_NEWS_NEWS_FEED_ENABLED": "false",
                # the provisioned data source's password (deploy/grafana/provisioning: user grafana, read-only)
                GRAFANA_PASSWORD_ENV: reader,
            }
        ),
        owner,
    )
    write_private(
        clinic.session_command_config,
        "# `gaitsym session start|stop|mark --config THIS_FILE --subject S ...`: the session command's own broker\n"
        "# user. Keep it owner-only; copy it (with tls/ca.crt) to a clinic workstation that sends commands.\n"
        f"broker = {toml_str(clinic.broker_url)}\n"
        f"username = {toml_str(CLINIC_USER)}\n"
        f"password = {toml_str(clinic.secret(f'mqtt:{CLINIC_USER}'))}\n"
        f"tls_ca = {toml_str(str(clinic.ca_crt))}\n",
        owner,
    )
