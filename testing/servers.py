"""Real servers for integration tests, reusable by the whole project: `Mosquitto` (the product's local broker
launcher: the project's own deploy/mosquitto/mosquitto.conf on a free loopback port, in a temp folder) with
stop / kill -9 / restart.

If the ``mosquitto`` binary is missing, `find_mosquitto` tries ``apt-get install -y mosquitto`` once (the
Makefile installs it too) and raises `ServerUnavailable` with what to do when it still cannot be found.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

from gaitsym_common.mqtt.local_broker import BrokerUnavailable, LocalMosquitto, free_port
from gaitsym_common.mqtt.local_broker import find_mosquitto as _find
from gaitsym_common.processes import ManagedProcess

ROOT = Path(__file__).resolve().parents[1]
MOSQUITTO_CONF = ROOT / "deploy" / "mosquitto" / "mosquitto.conf"
__all__ = ["MOSQUITTO_CONF", "ROOT", "Mosquitto", "ServerUnavailable", "find_mosquitto", "free_port", "killed_after"]

Server = TypeVar("Server", bound=ManagedProcess)


class ServerUnavailable(RuntimeError):
    """A server binary needed by the tests is not installed and could not be installed."""


def find_mosquitto() -> str:
    found = _find()
    if found is None and shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "mosquitto"], capture_output=True, timeout=600, check=False)
        found = _find()
    if found is None:
        raise ServerUnavailable(
            "mosquitto not found: install it (Debian: `apt-get install -y mosquitto mosquitto-clients`, "
            "or `make test`) and re-run"
        )
    return found


class Mosquitto(LocalMosquitto):
    """The product's local broker launcher (gaitsym_common.mqtt.local_broker), installing Mosquitto if missing."""

    def __init__(self, workdir: Path, port: int | None = None, conf: Path = MOSQUITTO_CONF) -> None:
        find_mosquitto()
        try:
            super().__init__(workdir, port, conf)
        except BrokerUnavailable as exc:
            raise ServerUnavailable(str(exc)) from exc

    def start(self, timeout_s: float = 10.0) -> Mosquitto:
        try:
            super().start(timeout_s)
        except BrokerUnavailable as exc:
            raise ServerUnavailable(str(exc)) from exc
        return self


def killed_after(server: Server) -> Iterator[Server]:
    """A fixture's body (``yield from killed_after(Mosquitto(folder).start())``): the started server, killed
    (SIGKILL) when the fixture ends, whatever the test did to it."""
    try:
        yield server
    finally:
        server.kill()
