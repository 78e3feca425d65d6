"""A server process started by gaitsym itself (the demo's and the tests' Mosquitto, the tests' InfluxDB): graceful
stop, SIGKILL, and whether it still runs. Standard library only. Times in seconds."""

from __future__ import annotations

import signal
import subprocess


class ManagedProcess:
    """Owns ``proc`` once a subclass's ``start`` has launched it; ``stop_timeout_s`` bounds a graceful stop."""

    proc: subprocess.Popen[bytes] | None = None
    stop_timeout_s: float = 10.0

    def stop(self) -> None:
        """Graceful stop (SIGTERM): the server saves what it keeps across a restart."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=self.stop_timeout_s)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL: whatever the server had not saved is lost."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None
