"""Errors raised by the sensor wire format, and the gateway's retry-or-drop rule for them.

Every error raised by an encoder or decoder in `firmware_protocol` is a `ProtocolError` (a `ValueError`),
carries `.field` (the field's name exactly as in the byte tables of SPEC.md) and has a message that starts
with that field name and states the bad value, e.g. ``sample_count: 20 is outside 1..19``.

The rule implemented by `is_retryable` (SPEC.md, "What the gateway does with malformed input"):

* Malformed bytes (`TruncatedPacket`, `BadLength`, `BadCrc`, `UnsupportedVersion`, `InvalidField`) are never
  retried. Decoding is deterministic, and a BLE notification cannot be requested again: the gateway drops
  the notification, counts it per sensor and error class, and lets the sequence gap of the next good packet
  account for the samples lost.
* `MtuTooSmall` is not retried: the same link will negotiate the same MTU; the sensor is refused.
* `CommandRejected` is retried only when the sensor answered BUSY; UNSUPPORTED and BAD_ARGUMENT give the same
  answer every time.
* `TimeoutError` (no control reply in time) is retried: the write or the reply notification may be lost.
* Any other exception is not this package's to judge: `is_retryable` returns False and the caller decides.
"""

from __future__ import annotations

__all__ = [
    "BadCrc",
    "BadLength",
    "CommandRejected",
    "InvalidField",
    "MtuTooSmall",
    "ProtocolError",
    "TruncatedPacket",
    "UnsupportedVersion",
    "is_retryable",
]


class ProtocolError(ValueError):
    """Root of every wire-format error. `.field` names the offending field as in SPEC.md's tables.

    `.packet_index` is None, except when `packet_arrays.decode_packets` refuses one of many packets: then it is
    that packet's position."""

    packet_index: int | None

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.detail = message
        self.packet_index = None
        super().__init__(f"{field}: {message}")

    def __reduce__(self) -> tuple[object, ...]:  # keep picklable despite the two-argument constructor
        return (type(self), (self.field, self.detail))


class TruncatedPacket(ProtocolError):
    """The bytes end before the message does; `.field` is the first field that is cut off."""


class BadLength(ProtocolError):
    """The message is longer than its header says it is (`.field` is ``"length"``)."""


class BadCrc(ProtocolError):
    """The CRC-16/CCITT-FALSE trailer does not match the bytes before it (`.field` is ``"crc16"``)."""


class UnsupportedVersion(ProtocolError):
    """`protocol_version` is not one this code speaks (only 1 exists)."""


class InvalidField(ProtocolError):
    """A field holds a value the SPEC forbids (reserved bit set, code out of range, bad serial, ...)."""


class MtuTooSmall(ProtocolError):
    """The negotiated ATT MTU cannot carry even a one-sample IMU packet (`.field` is ``"mtu"``)."""


class CommandRejected(ProtocolError):
    """The sensor replied to a control command with a non-OK status (`.field` is ``"status"``).

    `.opcode` and `.status` are the `control.Opcode` and `control.Status` of the reply.
    """

    def __init__(self, opcode: int, status: int, message: str) -> None:
        self.opcode = opcode
        self.status = status
        super().__init__("status", message)

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.opcode, self.status, self.detail))


_STATUS_BUSY = 3  # control.Status.BUSY; a literal here keeps errors.py free of imports


def is_retryable(exc: BaseException) -> bool:
    """True when repeating the same action can succeed; False means drop (and count) or give up.

    Pure: depends only on the exception's type and attributes. See the module docstring for the rule.
    """
    if isinstance(exc, CommandRejected):
        return exc.status == _STATUS_BUSY
    if isinstance(exc, ProtocolError):
        return False
    return isinstance(exc, TimeoutError)
