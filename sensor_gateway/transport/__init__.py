"""The gateway's view of its sensors: a small `Transport` interface, its events, and an in-process
virtual-kit implementation. The BLE (bleak) implementation will implement the same interface."""

from sensor_gateway.transport.base import (
    EventQueue,
    LinkEvent,
    PacketEvent,
    SensorRejected,
    SensorUnavailable,
    SupportsTimeSync,
    TimeSyncEvent,
    Transport,
    TransportError,
    TransportEvent,
    is_retryable,
)
from sensor_gateway.transport.virtual import PacketSource, SyncLink, VirtualKitTransport

__all__ = [
    "EventQueue",
    "LinkEvent",
    "PacketEvent",
    "PacketSource",
    "SensorRejected",
    "SensorUnavailable",
    "SupportsTimeSync",
    "SyncLink",
    "TimeSyncEvent",
    "Transport",
    "TransportError",
    "TransportEvent",
    "VirtualKitTransport",
    "is_retryable",
]
