"""The gateway under systemd: readiness and the watchdog (``sd_notify``), with a plain AF_UNIX datagram socket.

systemd hands a ``Type=notify`` service the address of its notification socket in ``NOTIFY_SOCKET`` (a path, or
an abstract address written with a leading ``@``) and, with ``WatchdogSec=``, the watchdog period in
``WATCHDOG_USEC`` (and the process it expects the pings from in ``WATCHDOG_PID``). A notification is one datagram
of ``KEY=VALUE`` lines: ``READY=1`` once the gateway runs, ``WATCHDOG=1`` at least once per period, ``STATUS=...``
for `systemctl status`, ``STOPPING=1`` on the way out. No systemd library is needed for that, and nothing here
blocks: the socket is non-blocking, and a notification that cannot be sent is dropped (systemd then acts on the
missing ping, which is the point of a watchdog).

Who pings: only the gateway's main loop, after a step that returned, and only while `gateway_health` finds
nothing wrong. A loop that hangs (a blocked system call on a failing SD card, a deadlock) or an outbox that no
longer answers stops the pings, and systemd kills and restarts the gateway (``Restart=always``); the outbox on
disk makes that restart lose nothing. There is deliberately no ping thread: a thread would keep pinging for a
loop that is stuck. Standard library only. Times in seconds.
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import time
from collections.abc import Callable, MutableMapping
from typing import Any

log = logging.getLogger("sensor_gateway")

__all__ = ["Notifier", "gateway_health"]


class Notifier:
    """Sends systemd notifications; does nothing at all when the process was not started by systemd
    (no ``NOTIFY_SOCKET``). ``watchdog_s``: the period systemd expects pings within (None: no watchdog)."""

    def __init__(
        self, address: str | None, watchdog_s: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.address = address
        self.watchdog_s = watchdog_s
        self._clock = clock
        self._last_ping: float | None = None
        self.sent: int = 0
        self.failed: int = 0
        self._sock: socket.socket | None = None
        if address:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.setblocking(False)

    @classmethod
    def from_environment(cls, environ: MutableMapping[str, str] | None = None) -> Notifier:
        """From ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and ``WATCHDOG_PID`` (a watchdog meant for another process is
        ignored). ``NOTIFY_SOCKET`` is removed from the environment, so that processes the gateway starts (the
        emulated kit) never notify in its name."""
        env: MutableMapping[str, Any] = os.environ if environ is None else environ
        address = env.pop("NOTIFY_SOCKET", None) or None
        watchdog_s: float | None = None
        usec = env.get("WATCHDOG_USEC")
        pid = env.get("WATCHDOG_PID")
        if usec and (not pid or pid == str(os.getpid())):
            try:
                watchdog_s = int(usec) / 1e6 if int(usec) > 0 else None
            except ValueError:
                log.warning("WATCHDOG_USEC=%r is not a number of microseconds: no watchdog pings", usec)
        return cls(address, watchdog_s)

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def _target(self) -> str | bytes:
        assert self.address is not None
        if self.address.startswith("@"):  # abstract namespace
            return b"\0" + self.address[1:].encode()
        return self.address

    def send(self, *fields: str) -> bool:
        """One notification (``KEY=VALUE`` fields); False when not under systemd or when it could not be sent."""
        if self._sock is None:
            return False
        try:
            self._sock.sendto("\n".join(fields).encode(), self._target())
        except OSError as exc:
            self.failed += 1
            if self.failed == 1 or self.failed % 100 == 0:
                log.warning("systemd notification not sent (%d so far): %s", self.failed, exc)
            return False
        self.sent += 1
        return True

    def ready(self, status: str) -> bool:
        return self.send("READY=1", f"STATUS={status}")

    def stopping(self, status: str) -> bool:
        return self.send("STOPPING=1", f"STATUS={status}")

    def loop_turned(self, health: Callable[[], str | None], status: Callable[[], str] | None = None) -> bool:
        """Called by the main loop after each step: pings the watchdog (with ``status()`` as the status line) when
        half its period has passed since the last ping and ``health()`` finds nothing wrong (None). True when it
        pinged."""
        if self._sock is None or self.watchdog_s is None:
            return False
        now = self._clock()
        if self._last_ping is not None and now - self._last_ping < self.watchdog_s / 2:
            return False
        problem = health()
        if problem is not None:
            self.send(f"STATUS=unhealthy, no watchdog ping: {problem}")
            log.error("unhealthy, withholding the watchdog ping (systemd will restart the gateway): %s", problem)
            self._last_ping = now  # say it once per half period, not on every step
            return False
        if self.send("WATCHDOG=1", *([f"STATUS={status()}"] if status is not None else [])):
            self._last_ping = now
            return True
        return False

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def gateway_health(gateway: Any) -> str | None:
    """What is wrong with a running gateway that a restart may cure (None: nothing): its outbox must answer (a
    query on the SQLite file; an SD card gone read-only or failing shows here). Losing the broker or a sensor is
    not a fault: the gateway rides those out by itself, and restarting would not bring Wi-Fi back."""
    try:
        len(gateway.outbox)
    except (sqlite3.Error, OSError) as exc:
        return f"outbox does not answer: {type(exc).__name__}: {exc}"
    return None


def status_line(gateway: Any) -> str:
    """One line for `systemctl status`: sensors connected, broker link, messages waiting in the outbox."""
    linked = sum(1 for s in gateway.sensors.values() if s.link == "connected")
    broker = "connected" if gateway.link.connected else "disconnected"
    try:
        waiting = str(len(gateway.outbox))
    except (sqlite3.Error, OSError):
        waiting = "unreadable"
    return f"{linked}/{len(gateway.sensors)} sensors connected, broker {broker}, outbox {waiting} message(s)"
