"""The gateway's view of its sensors: a small `Transport` interface, its events, and an in-process
virtual-kit implementation. The BLE (bleak) implementation will implement the same interface."""

from sensor_gateway.transport.base import (
    EventQueue,
    LinkEvent,
    PacketEvent,
    Transport,
    TransportError,
    TransportEvent,
    is_retryable,
)
from sensor_gateway.transport.virtual import PacketSource, VirtualKitTransport

__all__ = [
    "EventQueue",
    "LinkEvent",
    "PacketEvent",
    "PacketSource",
    "Transport",
    "TransportError",
    "TransportEvent",
    "VirtualKitTransport",
    "is_retryable",
]
