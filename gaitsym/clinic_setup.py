"""A clinic's secrets and broker configuration, made by `gaitsym clinic init` and `gaitsym enrol`.

`init` fills one folder (the *clinic folder*, owner-only) with everything `deploy/clinic/compose.yaml` needs:

    secrets.json                 every service password and token (the one source; the files below derive from it)
    clinic.json                  what is not secret: host name, ports, workers, enrolled subjects, who runs it
    ca/ca.key, ca/ca.crt         the clinic's private certificate authority (the key never leaves this folder)
    tls/ca.crt, server.crt/.key  the server certificate (broker and Grafana), for the host name and the service names
    mosquitto/                   mosquitto.conf (the clinic profile of deploy/mosquitto/mosquitto.conf),
                                 gaitsym.passwd (hashes only), gaitsym.acl (per user, from acl.example); data/
    mosquitto/health/mosquitto_sub   the health check's own broker user, as a mosquitto_sub options file
    influxdb/setup.env           InfluxDB users for `gaitsym clinic influx-setup`; data/, backups/
    grafana/grafana.env          Grafana's admin password, secret key, TLS, and its read-only InfluxDB user; data/
    workers/worker-N.env         each worker's own broker and InfluxDB password
    session-command.toml         the session command's own broker user (`gaitsym session ... --config`)
    gateways/SUBJECT/            written by `enrol`: gateway.toml (mode 0600) and ca.crt, to install on the gateway

and writes the compose file's variables (``--compose-env``: the folder, the user the containers run as, host name,
ports). Every file is created owner-only (0600, folders 0700) by an atomic rename, and the folder holds a
``.gitignore`` of ``*``: nothing in it is ever committed. Running `init` again is safe: an existing secret is
never replaced (delete ``tls/server.crt`` to renew the certificate, a user's entry in ``secrets.json`` to give
it a new password), only what is missing is added, and every derived file is written again from the sources.

Passwords never travel on a command line: the broker's password file is written here in Mosquitto's own format
(PBKDF2-SHA512, ``$7$``), the InfluxDB users are created over HTTP request bodies, and `openssl` is given no
secret at all (the keys are unencrypted files, protected by their mode).

Enrolling a gateway adds its user (its subject id) and ACL block (its own topics, in the direction it uses them),
writes its configuration file, and reloads Mosquitto (SIGHUP: the broker re-reads the password file and ACL
without dropping anyone).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gaitsym.errors import ClinicSetupError

REPO_ROOT = Path(__file__).resolve().parents[1]
SHIPPED_BROKER_CONF = REPO_ROOT / "deploy" / "mosquitto" / "mosquitto.conf"
SHIPPED_ACL = REPO_ROOT / "deploy" / "mosquitto" / "acl.example"
COMPOSE_FILE = REPO_ROOT / "deploy" / "clinic" / "compose.yaml"
CLINIC_MARKER = "# ---- clinic profile"

FILE_MODE, FOLDER_MODE = 0o600, 0o700
CLINIC_USER = "clinic"
"""The session command's broker user (acl.example's clinic block)."""
HEALTH_USER = "healthcheck"
"""The broker container's health check: reads one ``$SYS`` topic over the loopback listener, nothing else."""
HEALTH_TOPIC = "$SYS/broker/uptime"
GRAFANA_INFLUX_USER = "grafana"
GRAFANA_PASSWORD_ENV = "GAITSYM_GRAFANA_INFLUX_PASSWORD"
"""What deploy/grafana/provisioning's data source reads its password from (dashboards/provisioning.py)."""
INFLUX_ADMIN = "admin"
MAX_WORKERS = 32
PBKDF2_ITERATIONS = 101
"""Mosquitto's own default for ``$7$`` hashes. Every password here is 32 random URL-safe characters (about 190
bits): no number of iterations would make guessing one feasible or infeasible, while each MQTT CONNECT pays for
them."""

CONTAINER = {
    "config": "/mosquitto/config/",
    "tls": "/mosquitto/tls/",
    "data": "/mosquitto/data/",
}
"""Where the broker container sees the clinic folder's parts (deploy/clinic/compose.yaml mounts them)."""
LOOPBACK_PORT = 1883
"""The broker's plaintext listener, bound to the container's loopback: only its own health check reaches it."""


def worker_name(n: int) -> str:
    return f"worker-{n}"


def is_reserved_user(name: str) -> bool:
    """Broker users that are not gateways: a subject may never take one of these names (the ACL is per user)."""
    return name in (CLINIC_USER, HEALTH_USER) or re.fullmatch(r"worker-\d+", name) is not None


# ----------------------------------------------------------------------------------------------- files, owner-only


@dataclass(frozen=True)
class Owner:
    """Who the clinic's containers run as, and so who owns every file of the clinic folder."""

    uid: int
    gid: int

    @classmethod
    def parse(cls, text: str) -> Owner:
        match = re.fullmatch(r"(\d+):(\d+)", text.strip())
        if match is None:
            raise ClinicSetupError(f"--run-as {text!r}: expected UID:GID (numbers), e.g. 1883:1883")
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def default(cls) -> Owner:
        """The user running `init`; when that is root, uid/gid 1883 (no login, the broker image's own), so that no
        container of the clinic runs as root."""
        if os.geteuid() == 0:
            return cls(1883, 1883)
        return cls(os.geteuid(), os.getegid())


def _chown(path: Path, owner: Owner | None) -> None:
    if owner is not None and os.geteuid() == 0:
        os.chown(path, owner.uid, owner.gid)


def make_folder(path: Path, owner: Owner | None) -> Path:
    """Create ``path`` (and parents) 0700; an existing folder of the clinic is made 0700 too."""
    path.mkdir(parents=True, exist_ok=True, mode=FOLDER_MODE)
    os.chmod(path, FOLDER_MODE)
    _chown(path, owner)
    return path


def write_private(path: Path, text: str, owner: Owner | None = None) -> Path:
    """Write ``text`` to ``path`` atomically, mode 0600 from the first byte (a temporary file in the same folder,
    fsync'd, renamed over the old one): a reader sees the old file or the new one, never half of one.

    A missing folder is created owner-only; an existing one is left as it is (the compose variables go into
    deploy/clinic/ of the checkout, which must stay the checkout's)."""
    if not path.parent.exists():
        make_folder(path.parent, owner)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # created 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, FILE_MODE)
        _chown(Path(tmp), owner)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


@contextlib.contextmanager
def _owner_only_umask() -> Iterator[None]:
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


@contextlib.contextmanager
def clinic_lock(root: Path) -> Iterator[None]:
    """One `init` or `enrol` at a time on a clinic folder (two enrolments must not overwrite each other's line)."""
    make_folder(root, None)
    with open(root / ".lock", "a") as fh:
        os.chmod(root / ".lock", FILE_MODE)
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def new_password() -> str:
    return secrets.token_urlsafe(24)


def toml_str(value: str) -> str:
    """A TOML basic string (JSON's escapes are a subset of TOML's)."""
    return json.dumps(value, ensure_ascii=True)


# ------------------------------------------------------------------------------------------------- Mosquitto files


def mosquitto_hash(password: str, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS) -> str:
    """A Mosquitto 2.0 password-file hash: ``$7$ITERATIONS$SALT$HASH`` (PBKDF2-HMAC-SHA512, base64), what
    ``mosquitto_passwd`` writes, made here so that the password is never an argument of a command."""
    salt = os.urandom(12) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def read_password_file(path: Path) -> dict[str, str]:
    """user -> hash line of a Mosquitto password file (absent file: empty)."""
    if not path.exists():
        return {}
    users: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        if not sep:
            raise ClinicSetupError(f"{path}:{number}: not a Mosquitto password line (user:hash)")
        users[user] = hashed
    return users


def password_file_text(users: dict[str, str]) -> str:
    return "".join(f"{user}:{hashed}\n" for user, hashed in users.items())


@dataclass(frozen=True)
class AclRules:
    """The topic rules of deploy/mosquitto/acl.example: the gateway's (its ``pattern`` lines, %u = the subject),
    a worker's (the ``user worker-1`` block) and the clinic's (``user clinic``)."""

    gateway: tuple[str, ...]
    worker: tuple[str, ...]
    clinic: tuple[str, ...]

    @classmethod
    def load(cls, path: Path = SHIPPED_ACL) -> AclRules:
        if not path.is_file():
            raise ClinicSetupError(f"{path} not found: run gaitsym's clinic commands from a gaitsym checkout")
        patterns: list[str] = []
        blocks: dict[str, list[str]] = {}
        user: str | None = None
        for line in path.read_text().splitlines():
            words = line.split()
            if not words or words[0].startswith("#"):
                continue
            if words[0] == "pattern":
                patterns.append(" ".join(words[1:]))
            elif words[0] == "user":
                user = words[1]
                blocks[user] = []
            elif words[0] == "topic" and user is not None:
                blocks[user].append(" ".join(words[1:]))
        worker, clinic = blocks.get(worker_name(1)), blocks.get(CLINIC_USER)
        if not patterns or not worker or not clinic:
            raise ClinicSetupError(f"{path}: expected the gateway `pattern` lines and the worker-1 and clinic blocks")
        return cls(tuple(patterns), tuple(worker), tuple(clinic))

    def gateway_block(self, subject: str) -> str:
        topics = "".join(f"topic {rule.replace('%u', subject)}\n" for rule in self.gateway)
        return f"user {subject}\n{topics}"


def acl_text(rules: AclRules, workers: list[str], subjects: list[str]) -> str:
    out = [
        "# gaitsym broker ACL, written by `gaitsym clinic init` / `gaitsym enrol` from deploy/mosquitto/acl.example:\n"
        "# edit that file or enrol again, not this one. One block per user; anything not granted is denied.\n\n"
    ]
    for name in workers:
        out.append(f"user {name}\n" + "".join(f"topic {rule}\n" for rule in rules.worker) + "\n")
    out.append(f"user {CLINIC_USER}\n" + "".join(f"topic {rule}\n" for rule in rules.clinic) + "\n")
    out.append(f"# the broker container's health check\nuser {HEALTH_USER}\ntopic read {HEALTH_TOPIC}\n\n")
    out.append("# gateways: each its own subject's topics, in the direction it uses them\n")
    out.extend(rules.gateway_block(subject) + "\n" for subject in subjects)
    return "".join(out)


def broker_conf_text(shipped: Path = SHIPPED_BROKER_CONF, tls_port: int = 8883) -> str:
    """The shipped mosquitto.conf as the clinic runs it: its settings before the clinic marker (less the home
    profile's listener and anonymous access), a loopback-only plaintext listener for the health check, and the
    clinic profile uncommented, with the container's paths."""
    if not shipped.is_file():
        raise ClinicSetupError(f"{shipped} not found: run gaitsym's clinic commands from a gaitsym checkout")
    lines = shipped.read_text().splitlines()
    try:
        marker = next(i for i, line in enumerate(lines) if line.startswith(CLINIC_MARKER))
    except StopIteration:
        raise ClinicSetupError(f"{shipped}: no `{CLINIC_MARKER}` section") from None
    out = [
        "# gaitsym clinic broker, written by `gaitsym clinic init` from deploy/mosquitto/mosquitto.conf (its clinic",
        "# profile): edit that file and run init again, not this one.",
    ]
    for line in lines[:marker]:
        word = line.split(" ", 1)[0]
        if word in ("listener", "allow_anonymous"):
            continue
        if word == "persistence_location":
            line = f"persistence_location {CONTAINER['data']}"
        out.append(line)
    out += [
        "# Plaintext, bound to the container's own loopback: only the health check (user healthcheck) uses it.",
        f"listener {LOOPBACK_PORT} 127.0.0.1",
    ]
    paths = {
        "certfile": CONTAINER["tls"] + "server.crt",
        "keyfile": CONTAINER["tls"] + "server.key",
        "cafile": CONTAINER["tls"] + "ca.crt",
        "password_file": CONTAINER["config"] + "gaitsym.passwd",
        "acl_file": CONTAINER["config"] + "gaitsym.acl",
    }
    for line in lines[marker + 1 :]:
        if line.startswith("# #"):
            out.append(line[2:])
            continue
        if not line.startswith("# "):
            continue
        setting = line[2:]
        word = setting.split(" ", 1)[0]
        if word == "listener":
            setting = f"listener {tls_port}"
        elif word in paths:
            setting = f"{word} {paths[word]}"
        out.append(setting)
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------------------------------- certificates (openssl)


def _openssl(*argv: str | Path) -> None:
    binary = shutil.which("openssl")
    if binary is None:
        raise ClinicSetupError(
            "the `openssl` command is needed to make the clinic's CA (Debian: apt-get install openssl)"
        )
    with _owner_only_umask():
        done = subprocess.run([binary, *map(str, argv)], capture_output=True, timeout=120, check=False)
    if done.returncode != 0:
        raise ClinicSetupError(f"openssl {argv[0]} failed: {done.stderr.decode(errors='replace')[-600:]}")


EC_KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")


def make_ca(folder: Path, name: str, days: int = 3650) -> tuple[Path, Path]:
    key, crt = folder / "ca.key", folder / "ca.crt"
    ca_ext = ("-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    _openssl("req", "-x509", *EC_KEY, "-keyout", key, "-out", crt, "-days", str(days), "-subj", f"/CN={name}", *ca_ext)
    return key, crt


def server_names(hostname: str) -> list[str]:
    """The server certificate's names: the clinic's host name, the compose services that clients reach by name,
    and loopback."""
    names = []
    for name in (hostname, "mosquitto", "grafana", "localhost", "127.0.0.1"):
        try:
            ipaddress.ip_address(name)
            entry = f"IP:{name}"
        except ValueError:
            entry = f"DNS:{name}"
        if entry not in names:
            names.append(entry)
    return names


def make_server_certificate(ca_key: Path, ca_crt: Path, folder: Path, hostname: str, days: int = 825) -> None:
    key, csr, crt, ext = (folder / n for n in ("server.key", "server.csr", "server.crt", "server.ext"))
    _openssl("req", *EC_KEY, "-keyout", key, "-out", csr, "-subj", f"/CN={hostname}")
    ext.write_text(
        f"subjectAltName={','.join(server_names(hostname))}\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n"
    )
    serial = folder / "ca.srl"
    _openssl("x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAserial", serial, "-CAcreateserial",
             "-out", crt, "-days", str(days), "-extfile", ext)  # fmt: skip
    for leftover in (csr, ext, serial):
        leftover.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------------- the clinic


HOSTNAME = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)


def check_hostname(name: str) -> str:
    try:
        ipaddress.ip_address(name)
        return name
    except ValueError:
        pass
    if not HOSTNAME.fullmatch(name):
        raise ClinicSetupError(f"--hostname {name!r}: expected the name gateways reach the clinic server by")
    return name


@dataclass
class Clinic:
    """The clinic folder: its paths, its settings (clinic.json) and its secrets (secrets.json)."""

    root: Path
    settings: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)

    # paths
    @property
    def settings_path(self) -> Path:
        return self.root / "clinic.json"

    @property
    def secrets_path(self) -> Path:
        return self.root / "secrets.json"

    @property
    def ca_crt(self) -> Path:
        return self.root / "tls" / "ca.crt"

    @property
    def password_file(self) -> Path:
        return self.root / "mosquitto" / "gaitsym.passwd"

    @property
    def acl_file(self) -> Path:
        return self.root / "mosquitto" / "gaitsym.acl"

    @property
    def broker_conf(self) -> Path:
        return self.root / "mosquitto" / "mosquitto.conf"

    def gateway_folder(self, subject: str) -> Path:
        return self.root / "gateways" / subject

    def worker_env(self, name: str) -> Path:
        return self.root / "workers" / f"{name}.env"

    @property
    def session_command_config(self) -> Path:
        return self.root / "session-command.toml"

    # settings
    @property
    def owner(self) -> Owner:
        return Owner(int(self.settings["run_as"]["uid"]), int(self.settings["run_as"]["gid"]))

    @property
    def workers(self) -> list[str]:
        return [worker_name(n) for n in range(1, int(self.settings["workers"]) + 1)]

    @property
    def subjects(self) -> list[str]:
        return list(self.settings.get("gateways", []))

    @property
    def broker_url(self) -> str:
        host = self.settings["hostname"]
        if ":" in host:  # an IPv6 address
            host = f"[{host}]"
        return f"mqtts://{host}:{self.settings['broker_port']}"

    @classmethod
    def open(cls, root: Path) -> Clinic:
        """An initialised clinic folder (ClinicSetupError saying to run init when it is not one)."""
        root = Path(root)
        try:
            settings = json.loads((root / "clinic.json").read_text())
            stored = json.loads((root / "secrets.json").read_text())
        except FileNotFoundError:
            raise ClinicSetupError(f"{root} is not a clinic folder: run `deploy/clinic/init` first") from None
        except json.JSONDecodeError as exc:
            raise ClinicSetupError(f"{root}: clinic.json or secrets.json is not JSON ({exc})") from None
        return cls(root, settings, stored)

    def secret(self, name: str, make: Any = new_password) -> str:
        """The stored secret ``name``, made (and remembered) when missing."""
        if name not in self.secrets:
            self.secrets[name] = make()
        return self.secrets[name]

    def save(self) -> None:
        owner = self.owner
        write_private(self.secrets_path, json.dumps(self.secrets, indent=2, sort_keys=True) + "\n", owner)
        write_private(self.settings_path, json.dumps(self.settings, indent=2, sort_keys=True) + "\n", owner)


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
    """Create or complete the clinic folder ``root`` (see the module docstring); returns the clinic."""
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
            make_folder(root / "workers" / f"{name}-state", owner)
        _certificates(clinic, owner)
        _service_files(clinic, owner, rules, conf)
        clinic.save()
        if compose_env is not None:
            write_private(Path(compose_env), compose_env_text(clinic), owner if os.geteuid() == 0 else None)
    return clinic


def _certificates(clinic: Clinic, owner: Owner) -> None:
    ca_dir, tls = clinic.root / "ca", clinic.root / "tls"
    if not (ca_dir / "ca.key").exists() or not (ca_dir / "ca.crt").exists():
        make_ca(ca_dir, f"gaitsym clinic CA {clinic.settings['hostname']}")
        (tls / "server.crt").unlink(missing_ok=True)  # a new CA: the old server certificate no longer chains to it
    if not (tls / "server.crt").exists() or not (tls / "server.key").exists():
        make_server_certificate(ca_dir / "ca.key", ca_dir / "ca.crt", tls, clinic.settings["hostname"])
    shutil.copyfile(ca_dir / "ca.crt", tls / "ca.crt")
    for folder in (ca_dir, tls):
        for path in folder.iterdir():
            os.chmod(path, FILE_MODE)
            _chown(path, owner)


def _service_files(clinic: Clinic, owner: Owner, rules: AclRules, conf: str) -> None:
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


def password_variable(user: str) -> str:
    return "GAITSYM_INFLUX_PASSWORD_" + re.sub(r"[^A-Z0-9]", "_", user.upper())


def env_text(values: dict[str, str]) -> str:
    """A compose ``env_file`` (KEY=VALUE lines); no value here holds a quote, a newline or a ``$``."""
    for key, value in values.items():
        if re.search(r"[\s'\"$\\#]", value):
            raise ClinicSetupError(f"{key}: value not safe for an env file")
    return "".join(f"{key}={value}\n" for key, value in values.items())


def compose_env_text(clinic: Clinic) -> str:
    owner = clinic.owner
    return env_text(
        {
            "GAITSYM_CLINIC_DIR": str(clinic.root),
            "GAITSYM_UID": str(owner.uid),
            "GAITSYM_GID": str(owner.gid),
            "GAITSYM_HOSTNAME": clinic.settings["hostname"],
            "GAITSYM_BROKER_PORT": str(clinic.settings["broker_port"]),
            "GAITSYM_GRAFANA_PORT": str(clinic.settings["grafana_port"]),
        }
    )


# ------------------------------------------------------------------------------------------------------- enrol


@dataclass(frozen=True)
class Enrolment:
    subject: str
    config: Path
    reloaded: bool
    reload_message: str


def gateway_config_text(clinic: Clinic, subject: str, password: str, kit: dict[str, str], etc: str) -> str:
    lines = [
        f"# gaitsym home gateway of subject {subject}, written by `gaitsym enrol` for the clinic at",
        f"# {clinic.settings['hostname']} on {time.strftime('%Y-%m-%d')}. It holds the gateway's broker password:",
        "# hand it over like a key. Install it on the gateway as",
        f"# {etc}/gateway.toml with ca.crt beside it, owner gaitsym, mode 0600 (the gateway refuses a file other",
        "# users could read; deploy/gateway/README.md).",
        f"subject = {toml_str(subject)}",
        f"broker = {toml_str(clinic.broker_url)}",
        f"username = {toml_str(subject)}",
        f"password = {toml_str(password)}",
        f"tls_ca = {toml_str(etc + '/ca.crt')}",
        'state_dir = "/var/lib/gaitsym-gateway"',
        '# adapter = "hci1"                     # a USB dongle on a Raspberry Pi (sensor_gateway/ble/BLE.md)',
    ]
    if kit:
        lines += [
            "",
            "# the kit handed out with this gateway: it refuses to pair or run with any other sensors",
            "[kit]",
        ]
        lines += [f"{placement} = {toml_str(serial)}" for placement, serial in kit.items()]
    return "\n".join(lines) + "\n"


def parse_kit(text: str | None) -> dict[str, str]:
    """``pelvis=SERIAL,left_thigh=SERIAL,right_thigh=SERIAL`` -> the ``[kit]`` table (checked like the gateway
    checks it)."""
    if not text:
        return {}
    from gaitsym.gateway_settings import check_kit

    pairs: dict[str, str] = {}
    for item in text.split(","):
        placement, sep, serial = item.partition("=")
        if not sep or placement.strip() in pairs:
            raise ClinicSetupError(f"--kit {text!r}: expected placement=SERIAL, comma-separated, each placement once")
        pairs[placement.strip()] = serial.strip()
    try:
        return check_kit(pairs, "--kit")
    except ValueError as exc:
        raise ClinicSetupError(str(exc)) from None


def enrol(
    root: Path,
    subject: str,
    *,
    kit: dict[str, str] | None = None,
    gateway_etc: str = "/etc/gaitsym",
    reload: bool = True,
    broker_pid_file: Path | None = None,
) -> Enrolment:
    """Give ``subject``'s gateway a broker user of its own, its ACL block and its configuration file, then reload
    Mosquitto. ClinicSetupError (nothing changed) for an invalid, reserved or already enrolled subject."""
    from gaitsym_common.uplink.topics import check_subject

    try:
        subject = check_subject(subject)
    except ValueError as exc:
        raise ClinicSetupError(f"--subject: {exc}") from None
    if is_reserved_user(subject):
        raise ClinicSetupError(f"--subject {subject!r} is the name of a clinic service user: choose another id")
    rules = AclRules.load()
    root = Path(root).resolve()
    with clinic_lock(root):
        clinic = Clinic.open(root)
        users = read_password_file(clinic.password_file)
        users.pop(subject, None)  # a login left from a withdrawn enrolment is replaced
        if subject in clinic.subjects:
            raise ClinicSetupError(
                f"subject {subject!r} is already enrolled (its gateway's file is {clinic.gateway_folder(subject)}); "
                "to give it new credentials, take it out of clinic.json's gateways, run init (which withdraws its "
                "login), then enrol again"
            )
        owner = clinic.owner
        password = new_password()
        folder = make_folder(clinic.gateway_folder(subject), owner)
        config = write_private(
            folder / "gateway.toml", gateway_config_text(clinic, subject, password, kit or {}, gateway_etc), owner
        )
        shutil.copyfile(clinic.ca_crt, folder / "ca.crt")
        os.chmod(folder / "ca.crt", FILE_MODE)
        _chown(folder / "ca.crt", owner)
        users[subject] = mosquitto_hash(password)
        clinic.settings["gateways"] = [*clinic.subjects, subject]
        write_private(clinic.acl_file, acl_text(rules, clinic.workers, clinic.subjects), owner)
        write_private(clinic.password_file, password_file_text(users), owner)
        clinic.save()
    if not reload:
        return Enrolment(subject, config, False, "not reloaded (--no-reload): send Mosquitto SIGHUP to apply")
    ok, message = reload_broker(clinic, broker_pid_file)
    return Enrolment(subject, config, ok, message)


def reload_broker(clinic: Clinic, pid_file: Path | None) -> tuple[bool, str]:
    """SIGHUP to Mosquitto: to the process in ``pid_file``, else through compose (``docker compose kill -s SIGHUP
    mosquitto`` on deploy/clinic/compose.yaml). (done, what happened)."""
    if pid_file is not None:
        try:
            pid = int(Path(pid_file).read_text().strip())
            os.kill(pid, signal.SIGHUP)
        except (OSError, ValueError) as exc:
            return False, f"could not signal the broker in {pid_file}: {exc}"
        return True, f"Mosquitto (pid {pid}) reloaded"
    docker = shutil.which("docker")
    if docker is None:
        return (
            False,
            "docker not found: reload Mosquitto yourself (SIGHUP), e.g. `docker compose kill -s SIGHUP mosquitto`",
        )
    argv = [docker, "compose", "-f", str(COMPOSE_FILE), "kill", "-s", "SIGHUP", "mosquitto"]
    env_file = COMPOSE_FILE.parent / ".env"
    if env_file.exists():
        argv[2:2] = ["--env-file", str(env_file)]
    done = subprocess.run(argv, capture_output=True, timeout=60, check=False)
    if done.returncode != 0:
        return False, f"`{' '.join(argv[1:])}` failed: {done.stderr.decode(errors='replace')[-400:]}"
    return True, "Mosquitto reloaded (docker compose kill -s SIGHUP mosquitto)"


# ----------------------------------------------------------------------------------------------------- InfluxDB


def setup_influx(
    url: str,
    admin_user: str,
    admin_password: str,
    writers: dict[str, str],
    readers: dict[str, str],
    raw_retention: str = "30d",
) -> None:
    """InfluxDB 1.x for the clinic: the first admin (when the server has no user yet), the gaitsym database and
    retention policies, each writer (a worker: ALL on gaitsym) and each reader (Grafana: READ) with the given
    password, set again on every run so that the server always matches secrets.json. Passwords only in request
    bodies; StoreError messages never hold one."""
    from analytics.stores.errors import StoreError
    from analytics.stores.influx_setup import create_first_admin, setup_v1, without_secret

    every = [admin_password, *writers.values(), *readers.values()]

    def scrub(exc: StoreError) -> StoreError:
        for secret in every:
            exc = without_secret(exc, secret)
        return exc

    try:
        create_first_admin(url, admin_user, admin_password)
        for name, password in writers.items():
            setup_v1(url, admin_user, admin_password, raw_retention=raw_retention, worker_user=name,
                     worker_password=password)  # fmt: skip
        if not writers:
            setup_v1(url, admin_user, admin_password, raw_retention=raw_retention)
        for name, password in readers.items():
            _admin_query(url, admin_user, admin_password, f"CREATE USER {_ident(name)} WITH PASSWORD {_str(password)}")
            _admin_query(url, admin_user, admin_password, f"REVOKE ALL ON {_ident('gaitsym')} FROM {_ident(name)}")
            _admin_query(url, admin_user, admin_password, f"GRANT READ ON {_ident('gaitsym')} TO {_ident(name)}")
        for name, password in {**writers, **readers}.items():
            _admin_query(url, admin_user, admin_password, f"SET PASSWORD FOR {_ident(name)} = {_str(password)}")
    except StoreError as exc:
        raise scrub(exc) from None


def _ident(name: str) -> str:
    from analytics.stores.influx_codec import quote_ident

    return quote_ident(name)


def _str(value: str) -> str:
    from analytics.stores.influx_codec import quote_str

    return quote_str(value)


def _admin_query(url: str, user: str, password: str, statement: str, timeout_s: float = 10.0) -> None:
    """One InfluxQL statement as the admin: the statement in the POST body, the credentials in the Authorization
    header (InfluxDB 1.x reads them from the URL or that header; a URL ends up in logs). "already exists" is
    success. StoreQueryError (message without any password) otherwise."""
    import urllib.error
    import urllib.parse
    import urllib.request

    from analytics.stores.errors import StoreQueryError, StoreUnavailable

    body = urllib.parse.urlencode({"q": statement}).encode()
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Authorization": f"Basic {token}"}
    request = urllib.request.Request(f"{url.rstrip('/')}/query", data=body, headers=headers)
    verb = " ".join(statement.split()[:2])
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as resp:
            text = resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        raise StoreQueryError(f"{verb}: HTTP {exc.code} {exc.read().decode('utf-8', 'replace')[:200]}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise StoreUnavailable(f"{url}: cannot reach InfluxDB: {exc}") from None
    for result in json.loads(text or "{}").get("results", []):
        error = str(result.get("error", ""))
        if error and "already exists" not in error:
            raise StoreQueryError(f"{verb}: {error}")


def influx_setup_from_environment(url: str, environ: dict[str, str] | None = None) -> str:
    """`setup_influx` with what influxdb/setup.env holds; returns what was done, in one line."""
    env = dict(os.environ if environ is None else environ)

    def need(name: str) -> str:
        value = env.get(name, "")
        if not value:
            raise ClinicSetupError(f"{name} is not set (influxdb/setup.env of the clinic folder)")
        return value

    writers = {n: need(password_variable(n)) for n in env.get("GAITSYM_INFLUX_WRITERS", "").split(",") if n}
    readers = {n: need(password_variable(n)) for n in env.get("GAITSYM_INFLUX_READERS", "").split(",") if n}
    admin = env.get("GAITSYM_INFLUX_ADMIN_USER") or INFLUX_ADMIN
    retention = env.get("GAITSYM_INFLUX_RAW_RETENTION") or "30d"
    setup_influx(url, admin, need("GAITSYM_INFLUX_ADMIN_PASSWORD"), writers, readers, retention)
    return (
        f"InfluxDB at {url}: database gaitsym (raw kept {retention}); writers {', '.join(writers) or 'none'}; "
        f"readers {', '.join(readers) or 'none'}"
    )
