"""Transport interface: what the gateway needs from the link to its three sensors, and nothing more.

A transport connects sensors by placement, reads their sensor info and battery level, starts and stops
streaming, and reports two kinds of events into the gateway's bounded `EventQueue`:

- `PacketEvent`: the bytes of one IMU data notification and the host arrival time (monotonic s of the
  gateway's `HostClock`, read in the notification callback: the only work a callback does besides enqueue);
- `LinkEvent`: a link state change (uplink LINK_STATES: connected, connecting, lost, unpaired), with the
  freshly read `SensorInfo` on "connected" (its boot epoch tells the gateway whether the sensor rebooted);
  "lost" when a connected sensor's link drops (the gateway records the gap and calls `connect` again with
  backoff) or a connect attempt fails;
- `TimeSyncEvent` (optional capability): the outcome of a `time_sync(placement)` round trip
  (TIME_SYNC_REQUEST, firmware_protocol SPEC §8): host monotonic s when the request was handed to the stack
  (``sent_s``, read just before the write) and when the reply notification arrived (``received_s``, read in
  the callback), and the reply's u32 sensor clock in µs (None when the sensor answered not-OK or timed out).

The queue is bounded: when full, the event is dropped, counted per placement and logged (rate-limited);
the sequence gap of the next packet then accounts for the samples, which the gateway reports as a Gap.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from firmware_protocol.sensor_info import SensorInfo
from sensor_gateway.errors import GatewayError

log = logging.getLogger(__name__)


class TransportError(GatewayError):
    """Root of transport errors (connect failed, sensor vanished, ...)."""


class SensorUnavailable(TransportError):
    """The sensor is not reachable now (out of range, switched off, adapter busy): retry with backoff."""


class SensorRejected(TransportError):
    """The sensor cannot be used as it is (wrong protocol, MTU too small, unknown placement): do not retry."""


def is_retryable(exc: BaseException) -> bool:
    """Pure retry-or-drop rule for transport errors."""
    if isinstance(exc, SensorRejected):
        return False
    return isinstance(exc, SensorUnavailable | TimeoutError | ConnectionError | OSError)


@dataclass(frozen=True, slots=True)
class PacketEvent:
    placement: str
    arrival_s: float
    data: bytes


@dataclass(frozen=True, slots=True)
class LinkEvent:
    placement: str
    state: str
    info: SensorInfo | None = None
    battery_pct: int | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class TimeSyncEvent:
    placement: str
    request_id: int
    sent_s: float
    received_s: float
    timestamp_us: int | None


TransportEvent = PacketEvent | LinkEvent | TimeSyncEvent


class EventQueue:
    """Bounded, thread-safe FIFO filled by transport callbacks (any thread) and drained by the gateway."""

    def __init__(self, maxsize: int = 10_000) -> None:
        self.maxsize = maxsize
        self._items: deque[TransportEvent] = deque()
        self._cond = threading.Condition()
        self.dropped: dict[str, int] = {}
        self._last_log = 0.0

    def put(self, event: TransportEvent) -> bool:
        """Enqueue without blocking; False (and counted) when full."""
        with self._cond:
            if len(self._items) >= self.maxsize:
                self.dropped[event.placement] = self.dropped.get(event.placement, 0) + 1
                now = time.monotonic()
                if now - self._last_log > 5.0:
                    self._last_log = now
                    log.warning("transport event queue full (%d): dropped %s", self.maxsize, self.dropped)
                return False
            self._items.append(event)
            self._cond.notify()
            return True

    def drain(self, max_items: int = 100_000) -> list[TransportEvent]:
        with self._cond:
            n = min(max_items, len(self._items))
            return [self._items.popleft() for _ in range(n)]

    def wait(self, timeout_s: float) -> bool:
        """Block until an event is queued or timeout; True if something is waiting."""
        with self._cond:
            if not self._items:
                self._cond.wait(timeout_s)
            return bool(self._items)

    def __len__(self) -> int:
        return len(self._items)


class Transport(Protocol):
    """Implemented by the BLE transport and by `VirtualKitTransport`. Calls never block for long; results
    arrive as events. Placements are the uplink vocabulary names (pelvis, left_thigh, right_thigh)."""

    def open(self, events: EventQueue) -> None:
        """Start the transport; every later event goes to ``events``."""

    def connect(self, placement: str) -> None:
        """Connect (or reconnect) the sensor worn at ``placement``; a LinkEvent reports the outcome."""

    def read_sensor_info(self, placement: str) -> SensorInfo:
        """The connected sensor's info (serial, boot epoch, rate, ranges)."""
        ...

    def read_battery(self, placement: str) -> int | None:
        """Battery level in percent (Battery Service), None if unknown."""
        ...

    def start_streaming(self, placement: str) -> None: ...

    def stop_streaming(self, placement: str) -> None: ...

    def disconnect(self, placement: str) -> None: ...

    def close(self) -> None: ...


class SupportsTimeSync(Protocol):
    """Optional transport capability: the gateway calls `time_sync` (about once a second per streaming sensor,
    at randomised moments, one request outstanding per sensor) when the transport has it."""

    def time_sync(self, placement: str, request_id: int) -> None:
        """Send TIME_SYNC_REQUEST(request_id) without blocking; a `TimeSyncEvent` reports the round trip
        (also on failure, with ``timestamp_us`` None, so the gateway can ask again)."""
