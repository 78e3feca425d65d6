"""Helpers for the firmware_protocol tests (imported by name: this folder is on sys.path under pytest)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import firmware_protocol

VECTORS_DIR = Path(firmware_protocol.__file__).resolve().parent / "vectors"
VECTOR_FILES = ("imu_packet.json", "sensor_info.json", "control.json")


def load_vectors(file_name: str) -> list[dict[str, Any]]:
    document = json.loads((VECTORS_DIR / file_name).read_text(encoding="utf-8"))
    vectors: list[dict[str, Any]] = document["vectors"]
    return vectors


def crc16_reference(data: bytes) -> int:
    """CRC-16/CCITT-FALSE, bit by bit, straight from its definition (independent of binascii)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc
