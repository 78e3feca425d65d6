"""Fuzz the decoders: random bytes and mutated valid messages.

Asserts the decoders raise nothing but ProtocolError subclasses, and that whatever decodes re-encodes to the
same bytes (the decoders accept only the canonical encoding). The seed is printed; replay a failure with
GAITSYM_FUZZ_SEED=<seed> .venv/bin/pytest tests/protocol/test_protocol_fuzz.py
(GAITSYM_FUZZ_EXAMPLES=<n> runs more examples per test than the default 600.)
"""

from __future__ import annotations

import os
import random
import struct
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fp_testlib import load_vectors
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from firmware_protocol.control import decode_control, decode_reply, encode_control, encode_reply
from firmware_protocol.errors import ProtocolError
from firmware_protocol.packet import decode_packet, encode_packet
from firmware_protocol.sensor_info import decode_sensor_info, encode_sensor_info
from firmware_protocol.wire import crc16_ccitt_false

FUZZ_SEED = int(os.environ.get("GAITSYM_FUZZ_SEED") or random.SystemRandom().randrange(2**32))
_printed = False


@pytest.fixture(autouse=True)
def _print_fuzz_seed(capsys: pytest.CaptureFixture[str]) -> Iterator[None]:
    """Print the seed once on the terminal, and into every test's captured output (shown on failure)."""
    global _printed
    line = f"fuzz seed: {FUZZ_SEED} (replay with GAITSYM_FUZZ_SEED={FUZZ_SEED})"
    if not _printed:
        with capsys.disabled():
            print(f"\n{line}")
        _printed = True
    print(line)
    yield


FUZZ = settings(
    max_examples=int(os.environ.get("GAITSYM_FUZZ_EXAMPLES") or 600),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

Decoder = Callable[[bytes], Any]
CODECS: list[tuple[str, Decoder, Callable[[Any], bytes]]] = [
    ("imu_packet", decode_packet, encode_packet),
    ("sensor_info", decode_sensor_info, encode_sensor_info),
    ("command", decode_control, encode_control),
    ("reply", decode_reply, encode_reply),
]

SEEDS: list[bytes] = [
    bytes.fromhex(v["hex"])
    for f in ("imu_packet.json", "sensor_info.json", "control.json")
    for v in load_vectors(f)
    if "decoded" in v
]


def _check_all_decoders(data: bytes) -> None:
    for name, decode, encode in CODECS:
        try:
            decoded = decode(data)
        except ProtocolError:
            continue
        # anything else propagates and fails the test
        assert encode(decoded) == data, f"{name}: {data.hex()} decodes but re-encodes differently"


def _fix_imu_crc(data: bytes) -> bytes:
    """Recompute the trailer as if the bytes were a packet, so mutations reach the checks after the CRC."""
    if len(data) < 3:
        return data
    return data[:-2] + struct.pack("<H", crc16_ccitt_false(data[:-2]))


@seed(FUZZ_SEED)
@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes(data: bytes) -> None:
    _check_all_decoders(data)


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["flip", "truncate", "extend", "set_byte"]))
        if op == "flip" and data:
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set_byte" and data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        elif op == "truncate":
            del data[draw(st.integers(0, len(data))) :]
        elif op == "extend":
            data += draw(st.binary(min_size=1, max_size=24))
    out = bytes(data)
    return _fix_imu_crc(out) if draw(st.booleans()) else out


@seed(FUZZ_SEED)
@FUZZ
@given(_mutated())
def test_mutated_valid_messages(data: bytes) -> None:
    _check_all_decoders(data)


@seed(FUZZ_SEED)
@FUZZ
@given(
    st.integers(1, 19).flatmap(
        lambda n: st.tuples(
            st.integers(0, 255),  # flags, reserved bits included
            st.just(n),
            st.integers(0, 255),  # ranges, invalid codes included
            st.binary(min_size=8 + 12 * n, max_size=8 + 12 * n),
        )
    )
)
def test_imu_header_fields_with_valid_crc(fields: tuple[int, int, int, bytes]) -> None:
    """Well-framed packets (right length, right CRC) with arbitrary flags/ranges/payload."""
    flags, n, ranges, rest = fields
    body = bytes([1, flags, n, ranges]) + rest
    data = body + struct.pack("<H", crc16_ccitt_false(body))
    valid = flags & 0xF8 == 0 and (ranges & 0x0F) <= 3 and (ranges >> 4) <= 4
    try:
        pkt = decode_packet(data)
    except ProtocolError as exc:
        assert not valid
        assert exc.field in {"flags", "ranges"}
    else:
        assert valid
        assert encode_packet(pkt) == data
