"""In-process virtual-kit transport: replays a simulated kit's packets as if they came over BLE.

The source is any iterable of ``(arrival_s, placement, packet_bytes)`` in arrival order (the virtual kit's
`iter_packets`, or a test's), with arrival in seconds of simulation time, plus each placement's
`SensorInfo`. Simulation time ``s`` is host monotonic time ``t0 + s``, where ``t0`` is fixed at `open`
(``start_sim_s`` lets a restarted gateway join a kit that kept streaming: packets that arrived before it are
skipped, as they would be lost on the air). `pump(until_s)` enqueues every packet due by host time
``until_s``; the gateway runner calls it every loop turn, on the real clock or on a `VirtualHostClock` it
advances itself (faster than real time). Only the transport is virtual: decoding, timing, outbox and MQTT
are the production path.

Time sync (`time_sync`): when a placement has a `SyncLink` (its BLE connection interval and the sensor's
clock as a function of simulation time) a round trip is modelled as on a BLE link: the request leaves at
the next connection event after ``sent + stack latency`` (0.2-1 ms; an event is missed with probability
0.4, as in the packet stream), the sensor reads its clock 0.1-0.5 ms after receiving it, the reply leaves at
the next successful event at least 1 ms later and reaches the gateway 0.1-1 ms after that. The connection
events are those of the packet stream (one connection, one grid: the phase is learnt from the packets'
arrivals, which leave 0-1 ms after an event). The `TimeSyncEvent` is enqueued when its receive time is due.

Link loss (`drop_link`): the link of one placement drops now for ``down_s`` host seconds: a "lost"
LinkEvent, the packets sent meanwhile vanish, connect attempts fail until the sensor is back in range.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from firmware_protocol.sensor_info import SensorInfo
from sensor_gateway.timing.host_clock import HostClock
from sensor_gateway.transport.base import (
    EventQueue,
    LinkEvent,
    PacketEvent,
    SensorUnavailable,
    TimeSyncEvent,
)

PacketSource = Iterable[tuple[float, str, bytes]]

MISSED_EVENT_PROBABILITY = 0.4


@dataclass(frozen=True)
class SyncLink:
    """What a time-sync round trip needs to know about one simulated sensor."""

    connection_interval_s: float
    sensor_clock_us: Callable[[float], int]
    """The sensor's u32 clock (µs) at simulation time s."""


class VirtualKitTransport:
    def __init__(
        self,
        source: PacketSource,
        infos: dict[str, SensorInfo],
        clock: HostClock,
        battery_pct: int = 87,
        sync_links: dict[str, SyncLink] | None = None,
        start_sim_s: float = 0.0,
        seed: int = 0,
    ) -> None:
        self._source: Iterator[tuple[float, str, bytes]] = iter(source)
        self._infos = dict(infos)
        self._clock = clock
        self._battery = battery_pct
        self._sync = dict(sync_links or {})
        self._start_sim_s = start_sim_s
        self._rng = random.Random(seed)
        self._phase: dict[str, float] = {}  # connection-event phase (sim s), learnt from the packets' arrivals
        self._events: EventQueue | None = None
        self._t0: float | None = None  # host time of simulation time 0
        self._next: tuple[float, str, bytes] | None = None
        self._connected: set[str] = set()
        self._streaming: set[str] = set()
        self._down_until: dict[str, float] = {}
        self._replies: list[tuple[float, int, TimeSyncEvent]] = []  # heap by receive time
        self.exhausted = False
        self.lost_on_air: dict[str, int] = {}

    @property
    def sim_t0(self) -> float | None:
        """Host monotonic time of simulation time 0 (None before `open`)."""
        return self._t0

    def open(self, events: EventQueue) -> None:
        self._events = events
        self._t0 = self._clock.monotonic() - self._start_sim_s
        while (nxt := self._peek()) is not None and nxt[0] < self._start_sim_s:
            self._next = None

    def connect(self, placement: str) -> None:
        if placement not in self._infos:
            raise SensorUnavailable(f"no virtual sensor at {placement!r}")
        assert self._events is not None, "open() first"
        if self._clock.monotonic() < self._down_until.get(placement, -math.inf):
            self._events.put(LinkEvent(placement, "lost", reason="sensor not reachable (virtual link down)"))
            return
        self._connected.add(placement)
        self._events.put(LinkEvent(placement, "connected", self._infos[placement], self._battery))

    def read_sensor_info(self, placement: str) -> SensorInfo:
        return self._infos[placement]

    def read_battery(self, placement: str) -> int | None:
        return self._battery

    def start_streaming(self, placement: str) -> None:
        if placement in self._connected:
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

    def drop_link(self, placement: str, down_s: float) -> None:
        """Simulate the link of ``placement`` dropping now, out of range for ``down_s`` host seconds."""
        self._down_until[placement] = self._clock.monotonic() + down_s
        self._connected.discard(placement)
        self._streaming.discard(placement)
        assert self._events is not None
        self._events.put(LinkEvent(placement, "lost", reason="link supervision timeout (virtual)"))

    # ------------------------------------------------------------------------------------------- time sync

    def time_sync(self, placement: str, request_id: int) -> None:
        """TIME_SYNC_REQUEST round trip on the modelled BLE link (see the module docstring)."""
        link = self._sync.get(placement)
        sent = self._clock.monotonic()
        if link is None or placement not in self._connected or self._t0 is None:
            if self._events is not None:
                self._events.put(TimeSyncEvent(placement, request_id, sent, sent, None))
            return
        ci, rng = link.connection_interval_s, self._rng
        phase = self._phase.setdefault(placement, rng.uniform(0.0, ci))

        def next_event(after_sim_s: float) -> float:
            k = math.ceil((after_sim_s - phase) / ci)
            t = phase + k * ci
            while rng.random() < MISSED_EVENT_PROBABILITY:
                t += ci
            return t

        s_sent = sent - self._t0
        request_at = next_event(s_sent + rng.uniform(0.0002, 0.001))
        stamped_at = request_at + rng.uniform(0.0001, 0.0005)
        reply_at = next_event(stamped_at + 0.001) + rng.uniform(0.0001, 0.001)
        event = TimeSyncEvent(placement, request_id, sent, self._t0 + reply_at, link.sensor_clock_us(stamped_at))
        heapq.heappush(self._replies, (event.received_s, request_id, event))

    # ------------------------------------------------------------------------------------------- pumping

    def _peek(self) -> tuple[float, str, bytes] | None:
        if self._next is None and not self.exhausted:
            self._next = next(self._source, None)
            self.exhausted = self._next is None
        return self._next

    def next_arrival_s(self) -> float | None:
        """Host time of the next packet, None when the source is exhausted."""
        nxt = self._peek()
        if nxt is None or self._t0 is None:
            return None
        return self._t0 + nxt[0]

    def pump(self, until_s: float) -> int:
        """Enqueue the packets and round-trip replies due by host time ``until_s`` (a packet is dropped unless
        its sensor streams). Returns how many packets were enqueued."""
        assert self._events is not None and self._t0 is not None, "open() first"
        while self._replies and self._replies[0][0] <= until_s:
            event = heapq.heappop(self._replies)[2]
            if event.placement in self._connected:
                self._events.put(event)
        n = 0
        while True:
            due = self.next_arrival_s()
            if due is None or due > until_s or self._next is None:
                return n
            _, placement, data = self._next
            self._next = None
            link = self._sync.get(placement)
            if link is not None:  # one connection, one event grid: packets arrive 0-1 ms after their event
                ci = link.connection_interval_s
                phase = self._phase.setdefault(placement, (due - self._t0) % ci)
                d = ((due - self._t0 - phase + ci / 2) % ci) - ci / 2
                if d < 0:
                    self._phase[placement] = (phase + d) % ci
            if placement in self._streaming:
                self._events.put(PacketEvent(placement, due, data))
                n += 1
            else:
                self.lost_on_air[placement] = self.lost_on_air.get(placement, 0) + 1
