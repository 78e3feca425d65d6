"""The gateway's own clock, behind a small protocol so scenarios can run on virtual time.

`HostClock` gives three readings (seconds):

- ``monotonic()``: never steps; the clock fit (`clock_fit`) is done against it, so an NTP step of the wall
  clock never bends a sensor's fitted line;
- ``utc()``: the wall clock, seconds since the Unix epoch (UTC); only meaningful when
- ``utc_synced()``: true when the wall clock is known to be disciplined (NTP). A Raspberry Pi has no RTC and
  boots at a stale date until NTP answers: until then the gateway keeps sensor time and publishes no UTC.

`RealHostClock` reads the kernel: ``adjtimex(2)`` with modes 0 returns the clock state, and TIME_ERROR (5)
means "unsynchronised" (this is what ``timedatectl show -p NTPSynchronized`` reports). The probe is
injectable and cached for ``sync_cache_s`` seconds. `VirtualHostClock` is driven by the caller
(``advance``/``set``): an accelerated scenario reads virtual time everywhere, so acceleration is never
mistaken for clock skew.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from sensor_gateway.timing.errors import TimingError

_TIME_ERROR = 5


@runtime_checkable
class HostClock(Protocol):
    def monotonic(self) -> float: ...
    def utc(self) -> float: ...
    def utc_synced(self) -> bool: ...


def kernel_utc_synced() -> bool:
    """True when the Linux kernel says the wall clock is synchronised (adjtimex state != TIME_ERROR).

    False when it cannot tell (non-Linux, no libc, or the call is refused).
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        buf = ctypes.create_string_buffer(512)  # struct timex (208 bytes on x86-64/arm64); modes = 0: read only
        state = int(libc.adjtimex(buf))
    except (OSError, AttributeError):
        return False
    return 0 <= state < _TIME_ERROR


class RealHostClock:
    """The machine's clocks; `utc_synced` from `probe` (default: the kernel), re-probed every sync_cache_s."""

    def __init__(
        self,
        probe: Callable[[], bool] = kernel_utc_synced,
        sync_cache_s: float = 10.0,
        assume_synced: bool = False,
    ) -> None:
        self._probe = probe
        self._cache_s = sync_cache_s
        self._assume = assume_synced
        self._last: tuple[float, bool] | None = None
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        return time.monotonic()

    def utc(self) -> float:
        return time.time()

    def utc_synced(self) -> bool:
        if self._assume:
            return True
        now = time.monotonic()
        with self._lock:
            if self._last is None or now - self._last[0] >= self._cache_s:
                self._last = (now, bool(self._probe()))
            return self._last[1]


class VirtualHostClock:
    """Caller-driven clock: monotonic starts at ``start_s``; utc = utc_at_start_s + (monotonic - start_s)."""

    def __init__(self, start_s: float = 1000.0, utc_at_start_s: float = 1_767_225_600.0, synced: bool = True):
        self._t = start_s
        self._start = start_s
        self._utc0 = utc_at_start_s
        self.synced = synced
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        return self._t

    def utc(self) -> float:
        return self._utc0 + (self._t - self._start)

    def utc_synced(self) -> bool:
        return self.synced

    def set(self, t_s: float) -> None:
        """Move monotonic time to ``t_s`` (never backwards)."""
        with self._lock:
            if t_s < self._t:
                raise TimingError(f"t_s: {t_s} is before the virtual clock's {self._t}")
            self._t = t_s

    def advance(self, dt_s: float) -> None:
        self.set(self._t + dt_s)
