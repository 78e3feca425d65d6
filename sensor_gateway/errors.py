"""Errors of the sensor_gateway package: one root, typed subclasses.

The retry-or-drop decision for each layer lives next to it (transport, uplink, outbox) as a pure function;
`is_retryable` here is the gateway-wide default they build on.
"""

from __future__ import annotations

from gaitsym_common.errors import UplinkError


class GatewayError(Exception):
    """Root of every error raised by the sensor_gateway package."""


class SimulationError(GatewayError, ValueError):
    """The virtual sensor kit was asked for something it cannot simulate (names the setting)."""


def is_retryable(exc: BaseException) -> bool:
    """Default retry-or-drop rule: malformed data is dropped (and counted), transient I/O is retried."""
    if isinstance(exc, UplinkError | SimulationError):
        return False
    return isinstance(exc, OSError | TimeoutError | ConnectionError)
