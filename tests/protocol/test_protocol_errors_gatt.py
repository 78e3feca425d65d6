"""The error hierarchy and retry rule, and the GATT profile description."""

from __future__ import annotations

import pickle
import re

import pytest

import firmware_protocol.errors as errors
from firmware_protocol import gatt
from firmware_protocol.errors import (
    BadCrc,
    BadLength,
    CommandRejected,
    InvalidField,
    MtuTooSmall,
    ProtocolError,
    TruncatedPacket,
    UnsupportedVersion,
    is_retryable,
)
from firmware_protocol.packet import decode_packet

MALFORMED = [TruncatedPacket, BadLength, BadCrc, UnsupportedVersion, InvalidField, MtuTooSmall]


def test_one_root() -> None:
    for cls in [*MALFORMED, CommandRejected]:
        assert issubclass(cls, ProtocolError)
    assert issubclass(ProtocolError, ValueError)
    exported = {name for name in errors.__all__ if isinstance(getattr(errors, name), type)}
    assert exported == {c.__name__ for c in [*MALFORMED, CommandRejected, ProtocolError]}


@pytest.mark.parametrize("cls", MALFORMED)
def test_malformed_input_is_dropped_not_retried(cls: type[ProtocolError]) -> None:
    exc = cls("some_field", "bad")
    assert exc.field == "some_field"
    assert str(exc) == "some_field: bad"
    assert is_retryable(exc) is False
    again = pickle.loads(pickle.dumps(exc))
    assert type(again) is cls and again.field == "some_field" and str(again) == str(exc)


def test_retry_rule() -> None:
    assert is_retryable(CommandRejected(3, 3, "busy")) is True
    assert is_retryable(CommandRejected(3, 2, "bad argument")) is False
    assert is_retryable(CommandRejected(3, 1, "unsupported")) is False
    assert is_retryable(TimeoutError()) is True
    assert is_retryable(RuntimeError()) is False
    assert is_retryable(KeyError("x")) is False
    rejected = pickle.loads(pickle.dumps(CommandRejected(3, 3, "busy")))
    assert (rejected.opcode, rejected.status, rejected.field) == (3, 3, "status")


def test_messages_name_field_and_value() -> None:
    body = bytes([1, 0, 20, 0x42]) + bytes(8)
    with pytest.raises(InvalidField, match=r"^sample_count: 20 ") as info:
        decode_packet(body + bytes(12 * 20 + 2))
    assert info.value.field == "sample_count"
    with pytest.raises(UnsupportedVersion, match=r"^protocol_version: 7 "):
        decode_packet(bytes([7]) + bytes(25))
    with pytest.raises(BadCrc, match=r"^crc16: packet says 0x0000, its bytes give 0x[0-9A-F]{4}$"):
        decode_packet(bytes([1, 0, 1, 0x42]) + bytes(8 + 12 + 2))


# --- GATT -----------------------------------------------------------------------------------------------------

UUID128 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def test_uuids() -> None:
    assert gatt.SERVICE_UUID == "5e1a0001-8c2f-4d7e-9a41-6b3c0d2e1f70"
    assert gatt.IMU_DATA_UUID == "5e1a0002-8c2f-4d7e-9a41-6b3c0d2e1f70"
    assert gatt.SENSOR_INFO_UUID == "5e1a0003-8c2f-4d7e-9a41-6b3c0d2e1f70"
    assert gatt.CONTROL_UUID == "5e1a0004-8c2f-4d7e-9a41-6b3c0d2e1f70"
    assert gatt.BATTERY_SERVICE_UUID == "0000180f-0000-1000-8000-00805f9b34fb"
    assert gatt.BATTERY_LEVEL_UUID == "00002a19-0000-1000-8000-00805f9b34fb"
    all_uuids = [s.uuid for s in gatt.PROFILE.services] + [
        c.uuid for s in gatt.PROFILE.services for c in s.characteristics
    ]
    assert len(all_uuids) == len(set(all_uuids)) == 6
    assert all(UUID128.match(u) for u in all_uuids)


def test_characteristic_properties() -> None:
    service = gatt.PROFILE.service("gaitsym")
    imu = service.characteristic("imu_data")
    assert imu.bluez_flags == ["notify"] and imu.property_bits == 0x10
    assert imu.max_length == 242 <= 247 - 3
    info = service.characteristic("sensor_info")
    assert info.bluez_flags == ["read"] and info.property_bits == 0x02 and info.max_length == 30
    ctrl = service.characteristic("control")
    assert set(ctrl.bluez_flags) == {"write", "notify"} and ctrl.property_bits == 0x18
    battery = gatt.PROFILE.service("battery").characteristic("battery_level")
    assert set(battery.bluez_flags) == {"read", "notify"} and battery.max_length == 1
    assert gatt.PROFILE.advertised_service_uuids == (gatt.SERVICE_UUID,)
    with pytest.raises(KeyError):
        service.characteristic("nope")


def test_advertised_name() -> None:
    assert gatt.advertised_name("GS24-0001") == "gaitsym-GS24-0001"
    assert gatt.serial_from_advertised_name("gaitsym-GS24-0001") == "GS24-0001"
    assert gatt.serial_from_advertised_name("gaitsym-") is None
    assert gatt.serial_from_advertised_name("MetaWear") is None
    assert gatt.serial_from_advertised_name(None) is None
    assert gatt.serial_from_advertised_name("gaitsym-" + "x" * 17) is None
    with pytest.raises(ValueError):
        gatt.advertised_name("")
    # the complete local name must fit a 31-byte scan response: 2 bytes AD header + up to 29 characters
    assert len(gatt.advertised_name("x" * 16)) == 24 <= 29
