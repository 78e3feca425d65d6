"""The clinic's private certificate authority and its server certificate (the broker's and Grafana's TLS), made
with the `openssl` command, which is given no secret at all: the keys are unencrypted files, protected by their
mode (the CA key never leaves the clinic folder)."""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
from pathlib import Path

from gaitsym.clinic.private_files import FILE_MODE, Owner, give_to, owner_only_umask
from gaitsym.errors import ClinicSetupError


def _openssl(*argv: str | Path) -> None:
    binary = shutil.which("openssl")
    if binary is None:
        raise ClinicSetupError(
            "the `openssl` command is needed to make the clinic's CA (Debian: apt-get install openssl)"
        )
    with owner_only_umask():
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


def ensure_certificates(root: Path, hostname: str, owner: Owner) -> None:
    """The clinic folder's CA (``ca/``) and server certificate (``tls/``, with a copy of the CA certificate), each
    made only when missing: a new CA means a new server certificate, which must chain to it."""
    ca_dir, tls = root / "ca", root / "tls"
    if not (ca_dir / "ca.key").exists() or not (ca_dir / "ca.crt").exists():
        make_ca(ca_dir, f"gaitsym clinic CA {hostname}")
        (tls / "server.crt").unlink(missing_ok=True)  # a new CA: the old server certificate no longer chains to it
    if not (tls / "server.crt").exists() or not (tls / "server.key").exists():
        make_server_certificate(ca_dir / "ca.key", ca_dir / "ca.crt", tls, hostname)
    shutil.copyfile(ca_dir / "ca.crt", tls / "ca.crt")
    for folder in (ca_dir, tls):
        for path in folder.iterdir():
            os.chmod(path, FILE_MODE)
            give_to(path, owner)
