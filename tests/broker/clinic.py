"""The clinic profile of deploy/mosquitto/mosquitto.conf, made runnable for a test: a throw-away CA and broker
certificate (the `openssl` command), a password file (`mosquitto_passwd`), the shipped acl.example, and the
shipped conf with its loopback listener removed and the clinic section uncommented (every ``# setting`` line after
the ``# ---- clinic profile`` marker; ``# #`` lines stay comments). Only file paths are replaced."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from testing.servers import MOSQUITTO_CONF

ACL_EXAMPLE = MOSQUITTO_CONF.parent / "acl.example"
CLINIC_MARKER = "# ---- clinic profile"
PATH_SETTINGS = ("certfile", "keyfile", "cafile", "password_file", "acl_file")

USERS = {
    "S001": "gateway-one-secret",
    "S002": "gateway-two-secret",
    "worker-1": "worker-one-secret",
    "worker-2": "worker-two-secret",
    "clinic": "clinic-secret",
}
"""Gateways log in with their subject id; workers and the session command with the users of acl.example."""


@dataclass(frozen=True)
class ClinicFiles:
    conf: Path
    ca: Path


def _run(*argv: str | Path) -> None:
    done = subprocess.run([str(a) for a in argv], capture_output=True, timeout=60, check=False)
    if done.returncode != 0:
        raise AssertionError(f"{argv[0]} failed: {done.stderr.decode(errors='replace')[-800:]}")


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """(CA certificate, broker certificate, broker key): a one-day CA and a certificate for 127.0.0.1."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("the `openssl` command is needed to make the test CA: `make test` installs it (Debian: openssl)")
    ca_key, ca, key, csr, crt = (folder / n for n in ("ca.key", "ca.crt", "broker.key", "broker.csr", "broker.crt"))
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _run(openssl, "req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", "1", "-subj", "/CN=gaitsym test CA")
    _run(openssl, "req", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1")
    ext = folder / "broker.ext"
    ext.write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n"
        "extendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n"
    )
    _run(openssl, "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", crt,
         "-days", "1", "-extfile", ext)  # fmt: skip
    return ca, crt, key


def make_password_file(path: Path, users: dict[str, str] = USERS) -> Path:
    binary = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    path.unlink(missing_ok=True)
    first = True
    for user, password in users.items():
        _run(binary, *(["-c"] if first else []), "-b", path, user, password)
        first = False
    return path


def clinic_conf_text(paths: dict[str, Path]) -> str:
    """The shipped conf as the clinic runs it, with ``paths`` (setting -> file) in place of /etc/mosquitto/..."""
    lines = MOSQUITTO_CONF.read_text().splitlines()
    marker = next(i for i, line in enumerate(lines) if line.startswith(CLINIC_MARKER))
    out = [line for line in lines[:marker] if line.split(" ", 1)[0] not in ("listener", "allow_anonymous")]
    for line in lines[marker + 1 :]:
        if line.startswith("# #") or not line.startswith("# "):
            continue
        setting = line[2:]
        word = setting.split(" ", 1)[0]
        if word in PATH_SETTINGS:
            setting = f"{word} {paths[word]}"
        out.append(setting)
    return "\n".join(out) + "\n"


def clinic_files(folder: Path) -> ClinicFiles:
    folder.mkdir(parents=True, exist_ok=True)
    ca, crt, key = make_certificates(folder)
    acl = folder / "gaitsym.acl"
    shutil.copyfile(ACL_EXAMPLE, acl)
    passwd = make_password_file(folder / "gaitsym.passwd")
    conf = folder / "clinic.conf"
    conf.write_text(
        clinic_conf_text({"certfile": crt, "keyfile": key, "cafile": ca, "password_file": passwd, "acl_file": acl})
    )
    return ClinicFiles(conf, ca)
