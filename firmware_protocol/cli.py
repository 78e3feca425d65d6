"""`gaitsym protocol decode HEX [--kind ...]`: decode one message and print it as JSON.

Prints every field; for an IMU packet also the samples in physical units (acc m/s², gyr deg/s). On a malformed
message prints ``{"error": "<ExceptionClass>", "field": "<field>", "message": ..., "kind": ...}`` to stdout and
returns exit code 2. Pure Python: does not import numpy. The argument parser lives in gaitsym/cli.py.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from .control import command_to_dict, decode_control, decode_reply, reply_to_dict
from .errors import ProtocolError
from .packet import decode_packet
from .sensor_info import SENSOR_INFO_BYTES, decode_sensor_info
from .wire import crc16_ccitt_false

__all__ = ["EXIT_MALFORMED", "decode_command", "decode_hex", "parse_hex"]

EXIT_MALFORMED = 2
"""Exit code for bytes that are not a valid message (or not hex)."""


def parse_hex(text: str) -> bytes:
    """Hex text -> bytes; whitespace and colons are ignored, a leading 0x is allowed. Raises ValueError."""
    cleaned = "".join(text.split()).replace(":", "")
    if cleaned[:2].lower() == "0x":
        cleaned = cleaned[2:]
    return bytes.fromhex(cleaned)


def _imu(data: bytes) -> dict[str, Any]:
    pkt = decode_packet(data)
    acc, gyr = pkt.acc_scale_mps2, pkt.gyr_scale_dps
    out = pkt.to_dict()
    out["crc16"] = f"0x{crc16_ccitt_false(data[:-2]):04X}"
    out["next_sequence"] = pkt.next_sequence
    out["acc_mps2"] = [[round(v * acc, 6) for v in s[:3]] for s in pkt.samples]
    out["gyr_dps"] = [[round(v * gyr, 6) for v in s[3:]] for s in pkt.samples]
    return out


def _sensor_info(data: bytes) -> dict[str, Any]:
    return decode_sensor_info(data).to_dict()


def _control(data: bytes) -> dict[str, Any]:
    return command_to_dict(decode_control(data))


def _control_reply(data: bytes) -> dict[str, Any]:
    return reply_to_dict(decode_reply(data))


_DECODERS: dict[str, Callable[[bytes], dict[str, Any]]] = {
    "imu": _imu,
    "sensor-info": _sensor_info,
    "control": _control,
    "control-reply": _control_reply,
}


def _guess_kind(data: bytes) -> str | None:
    """The non-IMU kind these bytes look like by length (the kinds' valid lengths do not overlap)."""
    if len(data) == SENSOR_INFO_BYTES:
        return "sensor-info"
    if 1 <= len(data) <= 10 and data[0] & 0x80:
        return "control-reply"
    if 1 <= len(data) <= 5:
        return "control"
    return None


def decode_hex(data: bytes, kind: str = "auto") -> tuple[dict[str, Any], bool]:
    """(JSON-ready result, ok). kind "auto": IMU packet first, then the kind its length suggests."""
    if kind == "auto":
        result, ok = decode_hex(data, "imu")
        other = None if ok else _guess_kind(data)
        return (result, ok) if other is None else decode_hex(data, other)
    try:
        decoded = _DECODERS[kind](data)
    except ProtocolError as exc:
        return {"error": type(exc).__name__, "field": exc.field, "message": str(exc), "kind": kind}, False
    return {"kind": kind, "length_bytes": len(data), **decoded}, True


def _render(obj: dict[str, Any]) -> str:
    """One top-level key per line, values compact (a 19-sample packet stays readable)."""
    body = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v, separators=(', ', ': '))}" for k, v in obj.items())
    return "{\n" + body + "\n}"


def decode_command(args: argparse.Namespace) -> int:
    """Handler of `gaitsym protocol decode`: 0 when the bytes decode, 2 when they do not."""
    try:
        data = parse_hex(args.hex)
    except ValueError as exc:
        print(_render({"error": "BadHex", "field": "hex", "message": f"hex: {exc}", "kind": args.kind}))
        return EXIT_MALFORMED
    result, ok = decode_hex(data, args.kind)
    print(_render(result))
    return 0 if ok else EXIT_MALFORMED


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """`gaitsym protocol decode HEX [--kind ...]`."""
    protocol = sub.add_parser("protocol", help="inspect sensor wire-format packets")
    actions = protocol.add_subparsers(dest="protocol_command", metavar="ACTION", required=True)
    decode = actions.add_parser(
        "decode", help="decode one packet given as hex and print it as JSON (or the error naming the field)"
    )
    decode.add_argument("hex", help="packet bytes as hex; spaces and colons are ignored")
    decode.add_argument(
        "--kind",
        choices=["auto", "imu", "sensor-info", "control", "control-reply"],
        default="auto",
        help="what the bytes are (default: IMU data packet, then the others by length)",
    )
    decode.set_defaults(handler=decode_command)
