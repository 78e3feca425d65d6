"""Durable outbox between the sensors and MQTT (SQLite, WAL). See `store` for the guarantees."""

from sensor_gateway.outbox.store import (
    CONTROL_KINDS,
    Outbox,
    OutboxError,
    OutboxFull,
    OutboxItem,
    OutboxStats,
    is_retryable,
)

__all__ = ["CONTROL_KINDS", "Outbox", "OutboxError", "OutboxFull", "OutboxItem", "OutboxStats", "is_retryable"]
