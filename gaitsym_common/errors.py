"""Errors of the gaitsym_common package: one root, typed subclasses.

`UplinkError` is what both sides of the uplink raise when a topic, envelope, marker or command breaks the
contract; the gateway and the worker each decide what to do with it (drop and count, quarantine).
"""

from __future__ import annotations


class CommonError(Exception):
    """Root of every error raised by the gaitsym_common package (uplink contract, MQTT link, local broker)."""


class UplinkError(CommonError, ValueError):
    """An MQTT topic, envelope, marker or command does not follow the uplink contract (names the field)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class VocabularyError(UplinkError):
    """An exercise id, side or set number outside the frozen vocabulary."""
