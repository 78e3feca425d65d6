"""Fuzz targets of the firmware protocol's decoders (a sensor's BLE notifications, advertised names, hex typed
by a user): the same answer for every buffer type, the worker's fast packet check against the full decoder."""

from __future__ import annotations

import json
import struct
from typing import Any

from hypothesis import strategies as st


def check_any_buffer(data: bytes) -> None:
    """bleak hands notifications over as bytearray: every decoder gives the same answer for bytes, bytearray
    and memoryview (or the same error class and field)."""
    from firmware_protocol.control import decode_control, decode_reply
    from firmware_protocol.errors import ProtocolError
    from firmware_protocol.packet import decode_packet
    from firmware_protocol.sensor_info import decode_sensor_info

    for decode in (decode_packet, decode_sensor_info, decode_control, decode_reply):
        answers: list[object] = []
        for buffer in (bytes(data), bytearray(data), memoryview(data)):
            try:
                answers.append(decode(buffer))  # type: ignore[arg-type]
            except ProtocolError as exc:
                answers.append((type(exc), exc.field))
        assert answers[0] == answers[1] == answers[2], (decode.__name__, data.hex(), answers)


def check_packet_header(data: bytes) -> None:
    """The worker's fast packet check accepts exactly what `decode_packet` accepts, with the same header."""
    from firmware_protocol.errors import ProtocolError
    from firmware_protocol.packet import decode_packet
    from firmware_protocol.packet_arrays import packet_header

    try:
        p = decode_packet(data)
        verdict: Any = (p.sample_count, p.sequence, p.timestamp_us, p.acc_scale_mps2, p.gyr_scale_dps)
    except ProtocolError:
        verdict = None
    assert packet_header(data) == verdict, data.hex()


def check_advertised_name(name: str) -> None:
    """A name heard on the air: None, or a serial the sensor info could carry (1..16 printable ASCII)."""
    from firmware_protocol.gatt import serial_from_advertised_name

    serial = serial_from_advertised_name(name)
    assert serial is None or (1 <= len(serial) <= 16 and all(0x20 <= ord(c) <= 0x7E for c in serial)), name


def check_protocol_cli(text: str) -> None:
    """`gaitsym protocol decode HEX`: bad hex is a ValueError (the CLI's BadHex); any bytes give a JSON-ready
    answer, never an exception."""
    from firmware_protocol.cli import decode_hex, parse_hex

    try:
        data = parse_hex(text)
    except ValueError:
        return
    for kind in ("auto", "imu", "sensor-info", "control", "control-reply"):
        result, _ = decode_hex(data, kind)
        json.dumps(result)


def framed_packets() -> st.SearchStrategy[bytes]:
    """IMU packets with the right length and CRC and any header value (flags, ranges, counts that disagree)."""

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        n = draw(st.integers(0, 21))
        body = bytes([draw(st.sampled_from((1, 1, 1, 0, 2, 255))), draw(st.integers(0, 255))])
        body += bytes([draw(st.sampled_from((n, n, draw(st.integers(0, 255))))), draw(st.integers(0, 255))])
        body += draw(st.binary(min_size=8 + 12 * n, max_size=8 + 12 * n))
        data = body + struct.pack("<H", _crc(body))
        return data[: draw(st.sampled_from((len(data), len(data), draw(st.integers(0, len(data))))))]

    return build()


def framed_sensor_infos() -> st.SearchStrategy[bytes]:
    """30-byte sensor infos with any field value (placement, rate, ranges, samples per packet, serial bytes)."""

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        serial = draw(st.binary(min_size=16, max_size=16) | st.sampled_from((b"GS-1" + bytes(12), b"\x7f" * 16)))
        return (
            struct.pack(
                "<BBHBB3BBI",
                draw(st.sampled_from((1, 1, 0, 2))),
                draw(st.integers(0, 255)),
                draw(st.sampled_from((0, 1, 100, 1000, 1001, 65535))),
                draw(st.integers(0, 255)),
                draw(st.integers(0, 255)),
                *draw(st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255))),
                draw(st.sampled_from((0, 0, 1, 255))),
                draw(st.sampled_from((0, 2**32 - 1))),
            )
            + serial
        )

    return build()


def _crc(data: bytes) -> int:
    import binascii

    return binascii.crc_hqx(data, 0xFFFF)
