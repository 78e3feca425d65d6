"""Errors of the timing package."""

from __future__ import annotations

from sensor_gateway.errors import GatewayError


class TimingError(GatewayError, ValueError):
    """A timing input that cannot be used (non-finite arrival, time going backwards in a virtual clock...)."""
