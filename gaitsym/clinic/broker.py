"""The clinic's Mosquitto files: the password file (Mosquitto's own ``$7$`` hashes, made here so that no password
is ever a command's argument), the ACL (one block per user, from deploy/mosquitto/acl.example) and mosquitto.conf
(the clinic profile of deploy/mosquitto/mosquitto.conf, with the container's paths); and the broker users that
are the clinic's services rather than gateways."""

from __future__ import annotations

import base64
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from gaitsym.clinic.shipped import SHIPPED_ACL, SHIPPED_BROKER_CONF
from gaitsym.errors import ClinicSetupError

CLINIC_MARKER = "# ---- clinic profile"
CLINIC_USER = "clinic"
"""The session command's broker user (acl.example's clinic block)."""
HEALTH_USER = "healthcheck"
"""The broker container's health check: reads one ``$SYS`` topic over the loopback listener, nothing else."""
HEALTH_TOPIC = "$SYS/broker/uptime"
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
