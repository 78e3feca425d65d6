"""Control protocol v1: commands the gateway writes to the control characteristic, and the sensor's replies.

A command is an opcode byte and its arguments, written with response (SPEC.md "Control"). The sensor answers
every command with one notification on the same characteristic: (0x80 | opcode), a status byte, and for
TIME_SYNC_REQUEST the echoed request_id and the sensor clock (µs) when it handled the request.

A write the sensor cannot decode is answered too (`reply_for_invalid_command`): an undefined opcode with
`UnsupportedOpcodeReply` (UNSUPPORTED, the opcode echoed), which `decode_reply` accepts so that a gateway that
sent a command the firmware does not know learns it and gives up instead of timing out.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, ClassVar

from .errors import BadLength, CommandRejected, InvalidField, ProtocolError, TruncatedPacket
from .sensor_info import Placement
from .wire import MAX_SAMPLE_RATE_HZ, MAX_SAMPLES_PER_PACKET, U32_MAX, check_int

__all__ = [
    "REPLY_BIT",
    "Command",
    "ControlReply",
    "Opcode",
    "Reply",
    "SetPlacement",
    "SetSampleRate",
    "SetSamplesPerPacket",
    "StartStreaming",
    "Status",
    "StopStreaming",
    "TimeSyncReply",
    "TimeSyncRequest",
    "UnsupportedOpcodeReply",
    "check_reply",
    "command_from_dict",
    "command_to_dict",
    "decode_control",
    "decode_reply",
    "encode_control",
    "encode_reply",
    "reply_for_invalid_command",
    "reply_from_dict",
    "reply_to_dict",
    "status_for_invalid_command",
]

REPLY_BIT = 0x80
"""A reply's first byte is REPLY_BIT | the command's opcode."""

_U8 = struct.Struct("<B")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_TIME_SYNC_REPLY = struct.Struct("<BBII")


class Opcode(IntEnum):
    START_STREAMING = 0x01
    STOP_STREAMING = 0x02
    SET_SAMPLE_RATE = 0x03
    SET_SAMPLES_PER_PACKET = 0x04
    TIME_SYNC_REQUEST = 0x05
    SET_PLACEMENT = 0x06


_OPCODES = frozenset(int(op) for op in Opcode)


class Status(IntEnum):
    OK = 0
    UNSUPPORTED = 1
    """Unknown opcode, or a command this firmware does not implement."""
    BAD_ARGUMENT = 2
    """Wrong argument length or value out of range."""
    BUSY = 3
    """Cannot do it now (e.g. SET_SAMPLE_RATE while streaming); may succeed later."""


@dataclass(frozen=True, slots=True)
class StartStreaming:
    opcode: ClassVar[Opcode] = Opcode.START_STREAMING


@dataclass(frozen=True, slots=True)
class StopStreaming:
    opcode: ClassVar[Opcode] = Opcode.STOP_STREAMING


@dataclass(frozen=True, slots=True)
class SetSampleRate:
    opcode: ClassVar[Opcode] = Opcode.SET_SAMPLE_RATE
    sample_rate_hz: int
    """1..1000 Hz (u16 on the wire)."""


@dataclass(frozen=True, slots=True)
class SetSamplesPerPacket:
    opcode: ClassVar[Opcode] = Opcode.SET_SAMPLES_PER_PACKET
    samples_per_packet: int
    """1..19 (u8)."""


@dataclass(frozen=True, slots=True)
class TimeSyncRequest:
    opcode: ClassVar[Opcode] = Opcode.TIME_SYNC_REQUEST
    request_id: int
    """u32 chosen by the gateway, echoed in the reply."""


@dataclass(frozen=True, slots=True)
class SetPlacement:
    opcode: ClassVar[Opcode] = Opcode.SET_PLACEMENT
    placement: Placement


Command = StartStreaming | StopStreaming | SetSampleRate | SetSamplesPerPacket | TimeSyncRequest | SetPlacement


@dataclass(frozen=True, slots=True)
class ControlReply:
    """Reply to any command except TIME_SYNC_REQUEST: 2 bytes."""

    opcode: Opcode
    status: Status = Status.OK


@dataclass(frozen=True, slots=True)
class TimeSyncReply:
    """Reply to TIME_SYNC_REQUEST: 10 bytes. When status is not OK, timestamp_us is 0 and meaningless."""

    opcode: ClassVar[Opcode] = Opcode.TIME_SYNC_REQUEST
    request_id: int
    timestamp_us: int
    """Sensor clock when it handled the request, µs, mod 2**32."""
    status: Status = Status.OK


@dataclass(frozen=True, slots=True)
class UnsupportedOpcodeReply:
    """Reply to a write whose first byte is no opcode of this protocol version: 2 bytes, (0x80 | opcode),
    UNSUPPORTED. ``opcode`` is 0x00..0x7F and not an `Opcode`; 0x00 also answers an empty write and a first
    byte with the reply bit set (SPEC.md section 8)."""

    opcode: int
    status: Status = Status.UNSUPPORTED


Reply = ControlReply | TimeSyncReply | UnsupportedOpcodeReply


def _check_sample_rate(value: object) -> int:
    return check_int("sample_rate_hz", value, 1, MAX_SAMPLE_RATE_HZ, " Hz")


def _check_samples_per_packet(value: object) -> int:
    return check_int("samples_per_packet", value, 1, MAX_SAMPLES_PER_PACKET)


def _opcode(byte: int) -> Opcode:
    try:
        return Opcode(byte)
    except ValueError:
        raise InvalidField("opcode", f"0x{byte:02X} is not a defined opcode (0x01..0x06)") from None


def _opcode_name(opcode: int) -> str:
    """The opcode's name, or its hex value when it is not a defined opcode."""
    return opcode.name if isinstance(opcode, Opcode) else f"0x{opcode:02X}"


def _status(byte: int) -> Status:
    try:
        return Status(byte)
    except ValueError:
        raise InvalidField("status", f"{byte} is not a defined status (0..3)") from None


def encode_control(cmd: Command) -> bytes:
    """Command -> bytes to write to the control characteristic. Validates arguments."""
    if isinstance(cmd, StartStreaming | StopStreaming):
        return _U8.pack(cmd.opcode)
    if isinstance(cmd, SetSampleRate):
        return _U8.pack(cmd.opcode) + _U16.pack(_check_sample_rate(cmd.sample_rate_hz))
    if isinstance(cmd, SetSamplesPerPacket):
        return _U8.pack(cmd.opcode) + _U8.pack(_check_samples_per_packet(cmd.samples_per_packet))
    if isinstance(cmd, TimeSyncRequest):
        return _U8.pack(cmd.opcode) + _U32.pack(check_int("request_id", cmd.request_id, 0, U32_MAX))
    if isinstance(cmd, SetPlacement):
        try:
            code = Placement(cmd.placement).code
        except ValueError:
            raise InvalidField("placement", f"{cmd.placement!r} is not a placement") from None
        return _U8.pack(cmd.opcode) + _U8.pack(code)
    raise InvalidField("opcode", f"{cmd!r} is not a control command")


_ARG_FIELD = {  # opcode -> (argument bytes, argument field name)
    Opcode.START_STREAMING: (0, ""),
    Opcode.STOP_STREAMING: (0, ""),
    Opcode.SET_SAMPLE_RATE: (2, "sample_rate_hz"),
    Opcode.SET_SAMPLES_PER_PACKET: (1, "samples_per_packet"),
    Opcode.TIME_SYNC_REQUEST: (4, "request_id"),
    Opcode.SET_PLACEMENT: (1, "placement"),
}


def decode_control(data: bytes | bytearray | memoryview) -> Command:
    """Bytes written to the control characteristic -> Command. Raises only ProtocolError subclasses.

    For a sensor: reply with `status_for_invalid_command(exc)` when this raises.
    """
    if len(data) == 0:
        raise TruncatedPacket("opcode", "empty command (0 bytes)")
    opcode = _opcode(data[0])
    arg_bytes, arg_field = _ARG_FIELD[opcode]
    if len(data) < 1 + arg_bytes:
        raise TruncatedPacket(arg_field, f"got {len(data)} bytes; {opcode.name} is a {1 + arg_bytes}-byte command")
    if len(data) > 1 + arg_bytes:
        raise BadLength("length", f"got {len(data)} bytes; {opcode.name} is a {1 + arg_bytes}-byte command")
    if opcode is Opcode.START_STREAMING:
        return StartStreaming()
    if opcode is Opcode.STOP_STREAMING:
        return StopStreaming()
    if opcode is Opcode.SET_SAMPLE_RATE:
        return SetSampleRate(_check_sample_rate(_U16.unpack_from(data, 1)[0]))
    if opcode is Opcode.SET_SAMPLES_PER_PACKET:
        return SetSamplesPerPacket(_check_samples_per_packet(data[1]))
    if opcode is Opcode.TIME_SYNC_REQUEST:
        return TimeSyncRequest(_U32.unpack_from(data, 1)[0])
    return SetPlacement(Placement.from_code(data[1]))


def status_for_invalid_command(exc: ProtocolError) -> Status:
    """The status a sensor replies when `decode_control` raised `exc`: UNSUPPORTED for an unknown opcode, else
    BAD_ARGUMENT."""
    return Status.UNSUPPORTED if exc.field == "opcode" else Status.BAD_ARGUMENT


def reply_for_invalid_command(data: bytes | bytearray | memoryview) -> Reply:
    """The reply a sensor sends to a write that `decode_control` rejects (SPEC.md section 8): UNSUPPORTED echoing
    an undefined opcode (0x00 for an empty write or a first byte with the reply bit set, which no opcode has),
    else BAD_ARGUMENT for the opcode written; a malformed TIME_SYNC_REQUEST is answered with request_id 0 and
    timestamp_us 0, whatever its length. ValueError if ``data`` is a valid command (it needs a real answer)."""
    try:
        decode_control(data)
    except ProtocolError as exc:
        first = data[0] if len(data) else 0
        try:
            opcode = Opcode(first)
        except ValueError:
            return UnsupportedOpcodeReply(first if first < REPLY_BIT else 0)
        status = status_for_invalid_command(exc)
        if opcode is Opcode.TIME_SYNC_REQUEST:
            return TimeSyncReply(request_id=0, timestamp_us=0, status=status)
        return ControlReply(opcode, status)
    raise ValueError(f"{bytes(data).hex()} is a valid command: answer it, not with an error reply")


def encode_reply(reply: Reply) -> bytes:
    """Reply -> bytes of the sensor's notification on the control characteristic."""
    status = _status(check_int("status", reply.status, 0, 0xFF))
    if isinstance(reply, TimeSyncReply):
        return _TIME_SYNC_REPLY.pack(
            REPLY_BIT | Opcode.TIME_SYNC_REQUEST,
            status,
            check_int("request_id", reply.request_id, 0, U32_MAX),
            check_int("timestamp_us", reply.timestamp_us, 0, U32_MAX, " µs"),
        )
    if isinstance(reply, UnsupportedOpcodeReply):
        byte = check_int("opcode", reply.opcode, 0, 0x7F)
        if byte in _OPCODES:
            raise InvalidField("opcode", f"0x{byte:02X} is a defined opcode: answer it with a ControlReply")
        if status is not Status.UNSUPPORTED:
            raise InvalidField("status", f"{status.name}: an undefined opcode is answered UNSUPPORTED only")
        return bytes((REPLY_BIT | byte, status))
    if isinstance(reply, ControlReply):
        opcode = _opcode(check_int("opcode", reply.opcode, 0, 0x7F))
        if opcode is Opcode.TIME_SYNC_REQUEST:
            raise InvalidField("opcode", f"{reply.opcode!r} needs a TimeSyncReply or is not an opcode")
        return bytes((REPLY_BIT | opcode, status))
    raise InvalidField("opcode", f"{reply!r} is not a control reply")


def decode_reply(data: bytes | bytearray | memoryview) -> Reply:
    """Bytes of a control notification -> Reply. Raises only ProtocolError subclasses."""
    size = len(data)
    if size == 0:
        raise TruncatedPacket("opcode", "empty reply (0 bytes)")
    if not data[0] & REPLY_BIT:
        raise InvalidField("opcode", f"0x{data[0]:02X} lacks the reply bit 0x80")
    if data[0] & ~REPLY_BIT not in _OPCODES:
        return _decode_unsupported_opcode(data)
    opcode = _opcode(data[0] & ~REPLY_BIT)
    expected = 10 if opcode is Opcode.TIME_SYNC_REQUEST else 2
    if size < expected:
        cut = "status" if size < 2 else ("request_id" if size < 6 else "timestamp_us")
        raise TruncatedPacket(cut, f"got {size} bytes; a {opcode.name} reply is {expected} bytes")
    if size > expected:
        raise BadLength("length", f"got {size} bytes; a {opcode.name} reply is {expected} bytes")
    status = _status(data[1])
    if opcode is Opcode.TIME_SYNC_REQUEST:
        _, _, request_id, timestamp_us = _TIME_SYNC_REPLY.unpack_from(data)
        return TimeSyncReply(request_id=request_id, timestamp_us=timestamp_us, status=status)
    return ControlReply(opcode, status)


def _decode_unsupported_opcode(data: bytes | bytearray | memoryview) -> UnsupportedOpcodeReply:
    """A reply naming an undefined opcode: only UNSUPPORTED, 2 bytes, is a valid one."""
    byte = data[0] & ~REPLY_BIT
    if len(data) < 2:
        raise TruncatedPacket("status", f"got {len(data)} bytes; a reply to opcode 0x{byte:02X} is 2 bytes")
    if len(data) > 2:
        raise BadLength("length", f"got {len(data)} bytes; a reply to opcode 0x{byte:02X} is 2 bytes")
    status = _status(data[1])
    if status is not Status.UNSUPPORTED:
        raise InvalidField(
            "opcode", f"0x{byte:02X} is not a defined opcode (0x01..0x06), yet the reply's status is {status.name}"
        )
    return UnsupportedOpcodeReply(byte)


def check_reply(reply: Reply) -> Reply:
    """Return `reply` if its status is OK, else raise CommandRejected (retryable only when BUSY)."""
    if reply.status != Status.OK:
        raise CommandRejected(
            reply.opcode, reply.status, f"sensor rejected {_opcode_name(reply.opcode)}: {Status(reply.status).name}"
        )
    return reply


def command_to_dict(cmd: Command) -> dict[str, Any]:
    """JSON-ready form: {"opcode": NAME, <argument>: value}."""
    d: dict[str, Any] = {"opcode": cmd.opcode.name}
    if isinstance(cmd, SetSampleRate):
        d["sample_rate_hz"] = cmd.sample_rate_hz
    elif isinstance(cmd, SetSamplesPerPacket):
        d["samples_per_packet"] = cmd.samples_per_packet
    elif isinstance(cmd, TimeSyncRequest):
        d["request_id"] = cmd.request_id
    elif isinstance(cmd, SetPlacement):
        d["placement"] = str(cmd.placement)
    return d


def command_from_dict(d: dict[str, Any]) -> Command:
    opcode = Opcode[d["opcode"]]
    if opcode is Opcode.START_STREAMING:
        return StartStreaming()
    if opcode is Opcode.STOP_STREAMING:
        return StopStreaming()
    if opcode is Opcode.SET_SAMPLE_RATE:
        return SetSampleRate(d["sample_rate_hz"])
    if opcode is Opcode.SET_SAMPLES_PER_PACKET:
        return SetSamplesPerPacket(d["samples_per_packet"])
    if opcode is Opcode.TIME_SYNC_REQUEST:
        return TimeSyncRequest(d["request_id"])
    return SetPlacement(Placement(d["placement"]))


def reply_to_dict(reply: Reply) -> dict[str, Any]:
    """JSON-ready form: {"opcode": NAME, "status": NAME[, "request_id", "timestamp_us"]}; an undefined opcode's
    NAME is its hex value, e.g. "0x07"."""
    d: dict[str, Any] = {"opcode": _opcode_name(reply.opcode), "status": Status(reply.status).name}
    if isinstance(reply, TimeSyncReply):
        d["request_id"] = reply.request_id
        d["timestamp_us"] = reply.timestamp_us
    return d


def reply_from_dict(d: dict[str, Any]) -> Reply:
    status = Status[d["status"]]
    if str(d["opcode"]).startswith("0x"):
        return UnsupportedOpcodeReply(int(d["opcode"], 16), status)
    opcode = Opcode[d["opcode"]]
    if opcode is Opcode.TIME_SYNC_REQUEST:
        return TimeSyncReply(request_id=d["request_id"], timestamp_us=d["timestamp_us"], status=status)
    return ControlReply(opcode, status)
