"""A stand-in for the gateway core on top of a `BleTransport`, for tests and benches (runs in the caller's
thread): drains the transport's events into a `StreamLedger`, and calls `start_streaming` on every
"connected" event, as `sensor_gateway.core.Gateway` does. Kit controls are wrapped as blocking calls.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from sensor_gateway.ble import BleTransport, StreamLedger
from sensor_gateway.transport.base import EventQueue, LinkEvent, TransportEvent

from .stack import BleStack

__all__ = ["GatewayStandIn", "kit_call"]


def kit_call(stack: BleStack, method: str, *args: Any) -> Any:
    """Call one `KitControlClient` method (e.g. "drop_link", "pelvis") from synchronous code."""

    async def call() -> Any:
        async with stack.kit_control() as kit:
            return await getattr(kit, method)(*args)

    return asyncio.run(call())


class GatewayStandIn:
    def __init__(self, transport: BleTransport, auto_start: bool = True) -> None:
        self.transport = transport
        self.auto_start = auto_start
        self.events = EventQueue(maxsize=100_000)
        self.ledger = StreamLedger()
        self.on_event: Callable[[TransportEvent], None] | None = None

    def open(self, placements: tuple[str, ...]) -> None:
        self.transport.open(self.events)
        for placement in placements:
            self.transport.connect(placement)

    def pump_once(self, wait_s: float = 0.05) -> None:
        self.events.wait(wait_s)
        for event in self.events.drain():
            self.ledger.feed(event)
            if self.on_event is not None:
                self.on_event(event)
            if isinstance(event, LinkEvent) and event.state == "connected" and self.auto_start:
                self.transport.start_streaming(event.placement)

    def run_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.pump_once(min(0.05, max(0.0, end - time.monotonic())))

    def wait_until(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            self.pump_once()
            if predicate():
                return True
        return predicate()

    def streaming(self, placement: str, min_packets: int = 2) -> bool:
        """True once the placement's current (serial, boot) stream delivered min_packets packets."""
        key = self.ledger.current.get(placement)
        return key is not None and self.ledger.ledgers[key].packets >= min_packets

    def stop_all(self, placements: tuple[str, ...], settle_s: float = 0.6) -> None:
        """Stop streaming everywhere and drain what was still on the way."""
        for placement in placements:
            self.transport.stop_streaming(placement)
        self.run_for(settle_s)
