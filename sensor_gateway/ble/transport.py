"""`BleTransport`: the gateway's `Transport` over BLE (bleak on BlueZ), for the kit pinned at pairing.

The gateway calls it from its own thread; the transport runs one asyncio event loop in a daemon thread
("ble-transport") where bleak lives, one `SensorLink` task per placement, and one lock per adapter (every
BLE operation: scan, connect, GATT read/write/subscribe, disconnect, holds it, so sensors connect one after
another and a scan never overlaps a connect). Calls return at once (work is scheduled on the loop); outcomes
arrive as `LinkEvent`/`PacketEvent`/`TimeSyncEvent` in the gateway's queue.

Only pinned addresses are ever connected: discovery by placement happens in `pairing.pair` and nowhere else,
so a neighbour's kit is never picked up.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import weakref
from collections.abc import Coroutine
from typing import Any, TypeVar

from firmware_protocol.sensor_info import SensorInfo
from sensor_gateway.ble.config import BleConfig, Pairing, load_pairing
from sensor_gateway.ble.link import LinkStats, SensorLink
from sensor_gateway.timing.host_clock import HostClock, RealHostClock
from sensor_gateway.transport.base import EventQueue, LinkEvent, SensorUnavailable, TimeSyncEvent

__all__ = ["BleTransport", "adapter_lock", "make_ble_transport"]

log = logging.getLogger(__name__)
T = TypeVar("T")

_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = weakref.WeakKeyDictionary()


def adapter_lock(adapter: str) -> asyncio.Lock:
    """The one lock of `adapter` on the running event loop (pairing and links share it)."""
    locks = _LOCKS.setdefault(asyncio.get_running_loop(), {})
    return locks.setdefault(adapter, asyncio.Lock())


class BleTransport:
    def __init__(self, config: BleConfig, pairing: Pairing, clock: HostClock | None = None) -> None:
        self.config = config
        self.pairing = pairing
        self.clock: HostClock = clock if clock is not None else RealHostClock()
        self._events: EventQueue | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._links: dict[str, SensorLink] = {}

    # -- plumbing ---------------------------------------------------------------------------------------------
    def _submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        assert self._loop is not None, "open() first"
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def _fire(self, coro: Coroutine[Any, Any, Any], what: str) -> None:
        def done(fut: concurrent.futures.Future[Any]) -> None:
            if not fut.cancelled() and fut.exception() is not None:
                log.warning("%s failed: %s", what, fut.exception())

        self._submit(coro).add_done_callback(done)

    # -- Transport --------------------------------------------------------------------------------------------
    def open(self, events: EventQueue) -> None:
        self._events = events
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="ble-transport", daemon=True)
        self._thread.start()

    def connect(self, placement: str) -> None:
        assert self._events is not None, "open() first"
        pinned = self.pairing.sensors.get(placement)
        if pinned is None:
            self._events.put(LinkEvent(placement, "unpaired", reason="no sensor pinned: run `gaitsym gateway pair`"))
            return
        self._fire(self._connect(placement), f"{placement}: connect")

    async def _connect(self, placement: str) -> None:
        assert self._events is not None
        link = self._links.get(placement)
        if link is not None and link.task is not None and not link.task.done():
            return  # already connecting or connected
        lock = adapter_lock(self.config.adapter)
        if link is None:
            link = SensorLink(self.pairing.sensors[placement], self.config, lock, self._events, self.clock)
            self._links[placement] = link
        link.task = asyncio.get_running_loop().create_task(link.run(), name=f"ble-link-{placement}")

    def _link(self, placement: str) -> SensorLink:
        link = self._links.get(placement)
        if link is None:
            raise SensorUnavailable(f"{placement}: not connected (call connect first)")
        return link

    def read_sensor_info(self, placement: str) -> SensorInfo:
        """The info read at the last (re)connection (the sensor re-reads it on every connection)."""
        info = self._link(placement).info
        if info is None:
            raise SensorUnavailable(f"{placement}: not connected yet")
        return info

    def read_battery(self, placement: str) -> int | None:
        link = self._links.get(placement)
        return link.battery_pct if link else None

    def start_streaming(self, placement: str) -> None:
        self._fire(self._link(placement).start_streaming(), f"{placement}: start streaming")

    def stop_streaming(self, placement: str) -> None:
        self._fire(self._link(placement).stop_streaming(), f"{placement}: stop streaming")

    def disconnect(self, placement: str) -> None:
        """Disconnect and stop reconnecting (until `connect` again); a LinkEvent "lost" reports it."""
        if placement in self._links:
            self._fire(self._disconnect(placement), f"{placement}: disconnect")

    async def _disconnect(self, placement: str) -> None:
        link = self._links[placement]
        task, link.task = link.task, None
        if task is None or task.done():
            return
        if link.want_streaming and link.client is not None:
            await link.stop_streaming()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert self._events is not None
        self._events.put(LinkEvent(placement, "lost", reason="disconnected by gateway"))

    def close(self, timeout_s: float = 10.0) -> None:
        """Disconnect every sensor and stop the loop thread."""
        if self._loop is None:
            return
        try:
            self._submit(self._close_all()).result(timeout_s)
        except (concurrent.futures.TimeoutError, RuntimeError) as exc:
            log.warning("BLE transport close: %s", exc)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._loop.close()
        self._loop = None

    async def _close_all(self) -> None:
        await asyncio.gather(*(self._disconnect(p) for p in list(self._links)), return_exceptions=True)

    # -- beyond the interface ---------------------------------------------------------------------------------
    def time_sync(self, placement: str, request_id: int) -> None:
        """`SupportsTimeSync`: send TIME_SYNC_REQUEST(request_id) without blocking; a `TimeSyncEvent` reports
        the round trip (timestamp_us None when it failed or the sensor is not connected)."""
        self._fire(self._time_sync(placement, request_id), f"{placement}: time sync")

    async def _time_sync(self, placement: str, request_id: int) -> None:
        assert self._events is not None
        link = self._links.get(placement)
        if link is None or link.client is None:
            now = self.clock.monotonic()
            self._events.put(TimeSyncEvent(placement, request_id, now, now, None))
            return
        self._events.put(await link.time_sync(request_id))

    def stats(self) -> dict[str, LinkStats]:
        """Per placement counters (connects, losses, silent losses, notifications, MTU, batch size)."""
        return {p: link.stats for p, link in self._links.items()}

    def connected(self, placement: str) -> bool:
        link = self._links.get(placement)
        return bool(link and link.client is not None and link.info is not None)


def make_ble_transport(config: BleConfig, clock: HostClock | None = None) -> BleTransport:
    """The BLE transport for the kit pinned in ``config.state_dir`` (NotPaired if there is none)."""
    return BleTransport(config, load_pairing(config.pairing_path), clock)
