"""A local Mosquitto on loopback from the project's own configuration, for the demo and the tests.

The broker runs `deploy/mosquitto/mosquitto.conf` (in a source checkout) with only three things changed: the
listener (a free loopback port unless one is given), the persistence folder (the caller's work folder) and the
user the broker runs as (the one starting it). Mosquitto started as root drops to the ``mosquitto`` user, which
can neither write the caller's folder nor, under pytest's private temporary folders, even reach it: every
autosave would fail with "Permission denied" and nothing would survive a restart. The production configuration
keeps dropping privileges (its persistence folder belongs to ``mosquitto``); only this local broker stays the
user that made its folder.
Start, graceful stop (Mosquitto saves its persistence file), kill -9 (whatever it had not saved is lost),
restart. Times in seconds.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path

from gaitsym_common.errors import CommonError
from gaitsym_common.processes import ManagedProcess

REPO_ROOT = Path(__file__).resolve().parents[2]
PROJECT_CONF = REPO_ROOT / "deploy" / "mosquitto" / "mosquitto.conf"
MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")


class BrokerUnavailable(CommonError):
    """Mosquitto is not installed or did not start (the message says which and what to do)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_mosquitto() -> str | None:
    for candidate in (shutil.which("mosquitto"), *MOSQUITTO_PATHS):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


PERSISTENCE_FILE = "mosquitto.db"
"""Mosquitto's default ``persistence_file`` name, inside the work folder."""


class LocalMosquitto(ManagedProcess):
    """A Mosquitto from the project's conf; the port, the persistence folder and the user are the only changes."""

    def __init__(self, workdir: Path, port: int | None = None, conf: Path = PROJECT_CONF) -> None:
        binary = find_mosquitto()
        if binary is None:
            raise BrokerUnavailable(
                "mosquitto is not installed: `make demo` / `make test` install it "
                "(Debian: `apt-get install -y mosquitto`)"
            )
        if not conf.is_file():
            raise BrokerUnavailable(f"broker configuration {conf} not found (run from a gaitsym checkout)")
        self.binary = binary
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.conf_path = self.workdir / "mosquitto.conf"
        self.log_path = self.workdir / "mosquitto.log"
        lines = []
        for line in conf.read_text().splitlines():
            word = line.split(" ", 1)[0]
            if word == "listener":
                line = f"listener {self.port} 127.0.0.1"
            elif word == "persistence_location":
                line = f"persistence_location {self.workdir}/"
            elif word == "user":
                continue
            lines.append(line)
        lines.append(f"user {pwd.getpwuid(os.geteuid()).pw_name}")
        self.conf_path.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def persistence_path(self) -> Path:
        return self.workdir / PERSISTENCE_FILE

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 10.0) -> LocalMosquitto:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen([self.binary, "-c", str(self.conf_path)], stdout=log, stderr=log)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BrokerUnavailable(f"mosquitto exited: {self.log_path.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise BrokerUnavailable(f"mosquitto did not listen on {self.port}: {self.log_path.read_text()[-2000:]}")

    def restart(self) -> LocalMosquitto:
        self.stop()
        return self.start()
