"""In-process virtual-kit transport: replays a simulated kit's packets as if they came over BLE.

The source is any iterable of ``(arrival_s, placement, packet_bytes)`` in arrival order (the virtual kit's
generator, or a test's), with arrival in seconds from the start of the simulation, plus each placement's
`SensorInfo`. `pump(until_s)` enqueues every packet whose arrival (shifted to the host clock at `open`) is
due by host monotonic time ``until_s``; the gateway runner calls it every loop turn, with the real clock
(real time) or a `VirtualHostClock` it advances itself (faster than real time). Only the transport is
virtual: decoding, timing, outbox and MQTT are the production path.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from firmware_protocol.sensor_info import SensorInfo
from sensor_gateway.timing.host_clock import HostClock
from sensor_gateway.transport.base import EventQueue, LinkEvent, PacketEvent, SensorUnavailable

PacketSource = Iterable[tuple[float, str, bytes]]


class VirtualKitTransport:
    def __init__(
        self, source: PacketSource, infos: dict[str, SensorInfo], clock: HostClock, battery_pct: int = 87
    ) -> None:
        self._source: Iterator[tuple[float, str, bytes]] = iter(source)
        self._infos = dict(infos)
        self._clock = clock
        self._battery = battery_pct
        self._events: EventQueue | None = None
        self._t0: float | None = None  # host time of simulation time 0
        self._next: tuple[float, str, bytes] | None = None
        self._connected: set[str] = set()
        self._streaming: set[str] = set()
        self.exhausted = False

    def open(self, events: EventQueue) -> None:
        self._events = events
        self._t0 = self._clock.monotonic()

    def connect(self, placement: str) -> None:
        if placement not in self._infos:
            raise SensorUnavailable(f"no virtual sensor at {placement!r}")
        self._connected.add(placement)
        assert self._events is not None
        self._events.put(LinkEvent(placement, "connected", self._infos[placement], self._battery))

    def read_sensor_info(self, placement: str) -> SensorInfo:
        return self._infos[placement]

    def read_battery(self, placement: str) -> int | None:
        return self._battery

    def start_streaming(self, placement: str) -> None:
        self._streaming.add(placement)

    def stop_streaming(self, placement: str) -> None:
        self._streaming.discard(placement)

    def disconnect(self, placement: str) -> None:
        self._connected.discard(placement)
        self._streaming.discard(placement)
        if self._events is not None:
            self._events.put(LinkEvent(placement, "lost", reason="disconnected by gateway"))

    def close(self) -> None:
        for placement in list(self._connected):
            self.disconnect(placement)

    def next_arrival_s(self) -> float | None:
        """Host time of the next packet, None when the source is exhausted."""
        if self._next is None and not self.exhausted:
            self._next = next(self._source, None)
            self.exhausted = self._next is None
        if self._next is None or self._t0 is None:
            return None
        return self._t0 + self._next[0]

    def pump(self, until_s: float) -> int:
        """Enqueue the packets due by host time ``until_s`` (dropped unless their sensor streams)."""
        assert self._events is not None and self._t0 is not None, "open() first"
        n = 0
        while True:
            due = self.next_arrival_s()
            if due is None or due > until_s or self._next is None:
                return n
            _, placement, data = self._next
            self._next = None
            if placement in self._streaming:
                self._events.put(PacketEvent(placement, due, data))
                n += 1
