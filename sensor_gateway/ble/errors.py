"""Errors of the BLE transport, and the PURE rules deciding retry vs drop and the backoff from the error class.

Every error is a `sensor_gateway.transport.base.TransportError` (itself a `GatewayError`): the retryable ones
derive from `SensorUnavailable`, the refusals from `SensorRejected`. bleak and bleak-retry-connector raise
stringly typed errors; `classify` turns one into ours (it reads the D-Bus error name BlueZ sent, e.g.
``org.bluez.Error.InProgress`` when a scan and a connect overlap on one adapter: BlueZ's Device1.Connect
documents it, doc/org.bluez.Device.rst).
`retry_delay_s` is the one backoff rule: error class + attempt number in, seconds (or None = give up) out.
"""

from __future__ import annotations

from dataclasses import dataclass

from firmware_protocol.errors import MtuTooSmall, ProtocolError
from sensor_gateway.transport.base import SensorRejected, SensorUnavailable, TransportError

__all__ = [
    "AdapterBusy",
    "BackoffPolicy",
    "BleTransportError",
    "CommandFailed",
    "ConnectTimeout",
    "LinkLost",
    "MtuRefused",
    "NotPaired",
    "PairingError",
    "SensorInfoInvalid",
    "SensorNotFound",
    "SensorSilent",
    "WrongSensor",
    "classify",
    "retry_delay_s",
]


class BleTransportError(TransportError):
    """Root of the BLE transport's errors."""


class SensorNotFound(BleTransportError, SensorUnavailable):
    """The pinned sensor does not advertise (switched off, out of range, charging): retry, slowly."""


class AdapterBusy(BleTransportError, SensorUnavailable):
    """BlueZ refused because the adapter is busy (org.bluez.Error.InProgress / NotReady): retry soon."""


class ConnectTimeout(BleTransportError, SensorUnavailable):
    """Connect or a GATT operation took longer than its timeout: retry with backoff."""


class LinkLost(BleTransportError, SensorUnavailable):
    """The link dropped or BlueZ failed the connection (le-connection-abort, ...): retry with backoff."""


class SensorSilent(BleTransportError, SensorUnavailable):
    """Connected and streaming, but no notification for longer than the watchdog allows: reconnect at once."""


class CommandFailed(BleTransportError, SensorUnavailable):
    """A control command got no reply, or a BUSY reply (retryable) ."""


class SensorInfoInvalid(BleTransportError, SensorRejected):
    """The sensor info is malformed or of another protocol version (names the field): refused."""


class MtuRefused(BleTransportError, SensorRejected):
    """The negotiated ATT MTU cannot carry one sample (SPEC section 6): refused, not retried on this link."""


class WrongSensor(BleTransportError, SensorRejected):
    """The device at the pinned address is not the pinned sensor (other serial or placement): refused."""


class NotPaired(BleTransportError, SensorRejected):
    """No sensor is pinned for this placement: run `gaitsym gateway pair` first."""


class PairingError(BleTransportError, SensorRejected):
    """Pairing could not pin exactly one sensor per placement (missing or ambiguous; names them)."""


@dataclass(frozen=True)
class BackoffPolicy:
    """Delays in seconds; attempt n (1-based) waits base * 2**(n-1), capped."""

    busy_base_s: float = 0.25
    busy_cap_s: float = 2.0
    link_base_s: float = 0.5
    link_cap_s: float = 10.0
    not_found_base_s: float = 1.0
    not_found_cap_s: float = 30.0
    unknown_base_s: float = 1.0
    unknown_cap_s: float = 30.0


DEFAULT_BACKOFF = BackoffPolicy()


def _exp(base_s: float, cap_s: float, attempt: int) -> float:
    return min(cap_s, base_s * 2.0 ** max(0, min(attempt - 1, 30)))


def retry_delay_s(exc: BaseException, attempt: int, policy: BackoffPolicy = DEFAULT_BACKOFF) -> float | None:
    """PURE: seconds to wait before connection attempt ``attempt + 1`` after ``exc`` ended attempt ``attempt``
    (1-based); None = do not retry (the sensor is refused until the gateway asks again)."""
    if isinstance(exc, SensorRejected | ProtocolError):
        return None
    if isinstance(exc, SensorSilent):
        return 0.0 if attempt <= 1 else _exp(policy.link_base_s, policy.link_cap_s, attempt - 1)
    if isinstance(exc, AdapterBusy):
        return _exp(policy.busy_base_s, policy.busy_cap_s, attempt)
    if isinstance(exc, SensorNotFound):
        return _exp(policy.not_found_base_s, policy.not_found_cap_s, attempt)
    if isinstance(exc, LinkLost | ConnectTimeout | CommandFailed | TimeoutError | ConnectionError | OSError):
        return _exp(policy.link_base_s, policy.link_cap_s, attempt)
    return _exp(policy.unknown_base_s, policy.unknown_cap_s, attempt)


_BUSY = ("org.bluez.Error.InProgress", "org.bluez.Error.NotReady", "org.bluez.Error.Busy", "Operation already in")
_MISSING = ("org.freedesktop.DBus.Error.UnknownObject", "not found", "was not found", "DoesNotExist")
_LINK = ("le-connection-abort", "Not connected", "org.bluez.Error.Failed", "NotConnected", "disconnected", "Abort")


def classify(exc: BaseException) -> BaseException:
    """PURE: our error for a bleak / bleak-retry-connector / D-Bus exception (ours and protocol errors pass
    through unchanged). Decided from the exception's class name and text, since bleak's are untyped."""
    if isinstance(exc, TransportError):
        return exc
    if isinstance(exc, MtuTooSmall):
        return MtuRefused(str(exc))
    if isinstance(exc, ProtocolError):
        return SensorInfoInvalid(str(exc))
    if isinstance(exc, TimeoutError):
        return ConnectTimeout(str(exc) or "timed out")
    name = type(exc).__name__
    text = f"{getattr(exc, 'dbus_error', '') or ''} {exc}"
    if any(s in text for s in _BUSY):
        return AdapterBusy(text.strip())
    if name in ("BleakDeviceNotFoundError", "BleakNotFoundError") or any(s in text for s in _MISSING):
        return SensorNotFound(text.strip())
    if name in ("BleakConnectionError", "BleakAbortedError", "BrokenPipeError", "EOFError") or any(
        s in text for s in _LINK
    ):
        return LinkLost(text.strip() or name)
    if name == "BleakOutOfConnectionSlotsError":
        return AdapterBusy(text.strip())
    return LinkLost(f"{name}: {text.strip()}")
