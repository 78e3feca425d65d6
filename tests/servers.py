"""Real servers for integration tests, reusable by the whole project: `Mosquitto` (the project's own
deploy/mosquitto/mosquitto.conf on a free loopback port, in a temp folder) with stop / kill -9 / restart.

If the ``mosquitto`` binary is missing, `find_mosquitto` tries ``apt-get install -y mosquitto`` once (the
Makefile installs it too) and raises `ServerUnavailable` with what to do when it still cannot be found.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MOSQUITTO_CONF = ROOT / "deploy" / "mosquitto" / "mosquitto.conf"


class ServerUnavailable(RuntimeError):
    """A server binary needed by the tests is not installed and could not be installed."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_mosquitto() -> str:
    for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    if shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "mosquitto"], capture_output=True, timeout=600, check=False)
        for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
            if candidate and os.access(candidate, os.X_OK):
                return candidate
    raise ServerUnavailable(
        "mosquitto not found: install it (Debian: `apt-get install -y mosquitto mosquitto-clients`, "
        "or `make deps`) and re-run"
    )


class Mosquitto:
    """A Mosquitto from the project's conf; port and persistence folder are the only things changed."""

    def __init__(self, workdir: Path, port: int | None = None, conf: Path = MOSQUITTO_CONF) -> None:
        self.binary = find_mosquitto()
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
            lines.append(line)
        self.conf_path.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 10.0) -> Mosquitto:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf_path)], stdout=log, stderr=log)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerUnavailable(f"mosquitto exited: {self.log_path.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise ServerUnavailable(f"mosquitto did not listen on {self.port}: {self.log_path.read_text()[-2000:]}")

    def stop(self) -> None:
        """Graceful stop (SIGTERM): Mosquitto saves its persistence file."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=10)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL: whatever Mosquitto had not saved is lost."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def restart(self) -> Mosquitto:
        self.stop()
        return self.start()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None
