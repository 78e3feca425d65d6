"""What tests/protocol/test_protocol_fuzz.py does not cover yet: the decoders on the buffer types bleak hands
over (bytearray, memoryview), sensor infos with any field value, the worker's fast packet check against
decode_packet under fuzzing, names heard on the air, and the `gaitsym protocol decode` hex input.
Seeded and printed (tests/fuzz/conftest.py); replay with GAITSYM_FUZZ_SEED=<seed>."""

from __future__ import annotations

from pathlib import Path

import pytest

from testing.fuzz.runner import run_target


@pytest.mark.parametrize(
    ("target", "examples"),
    [
        ("firmware decoders on bytes/bytearray/memoryview", 400),
        ("firmware sensor info fields", 300),
        ("worker packet_header vs decode_packet", 400),
        ("advertised name", 300),
        ("protocol decode CLI hex", 300),
    ],
)
def test_firmware_side_decoders(target: str, examples: int, tmp_path: Path) -> None:
    assert run_target(target, tmp_path, examples=examples) >= examples
