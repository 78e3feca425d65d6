"""The sensor's GATT profile and advertisement, as plain data.

One description served by both emulated sensor kits (BlueZ/bluezoo via dbus-fast, and Bumble) and used by the
gateway to find things: the gaitsym service with its three characteristics, the standard Battery Service, and
the advertised name ``gaitsym-<serial>`` with the gaitsym service UUID in the advertising data.

`Property` values are BlueZ's GattCharacteristic1 "Flags" strings; `Characteristic.property_bits` gives the
Bluetooth Core characteristic-properties bits (what Bumble's `Characteristic.Properties` and C stacks use).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .packet import MAX_SAMPLES_PER_PACKET, packet_length
from .sensor_info import SENSOR_INFO_BYTES, SERIAL_BYTES

__all__ = [
    "BASE_UUID",
    "BATTERY_LEVEL",
    "BATTERY_LEVEL_UUID",
    "BATTERY_SERVICE",
    "BATTERY_SERVICE_UUID",
    "CONTROL",
    "CONTROL_UUID",
    "GAITSYM_SERVICE",
    "IMU_DATA",
    "IMU_DATA_UUID",
    "NAME_PREFIX",
    "PROFILE",
    "SENSOR_INFO",
    "SENSOR_INFO_UUID",
    "SERVICE_UUID",
    "Characteristic",
    "GattProfile",
    "Property",
    "Service",
    "advertised_name",
    "custom_uuid",
    "serial_from_advertised_name",
    "uuid16",
]

_CUSTOM_BASE = "5e1a{:04x}-8c2f-4d7e-9a41-6b3c0d2e1f70"
_SIG_BASE = "0000{:04x}-0000-1000-8000-00805f9b34fb"


def custom_uuid(short: int) -> str:
    """The gaitsym 128-bit UUID with `short` in bytes 2-3 of the base 5e1a0000-8c2f-4d7e-9a41-6b3c0d2e1f70."""
    return _CUSTOM_BASE.format(short)


def uuid16(short: int) -> str:
    """A Bluetooth SIG 16-bit UUID in 128-bit form (0000xxxx-0000-1000-8000-00805f9b34fb)."""
    return _SIG_BASE.format(short)


BASE_UUID = custom_uuid(0x0000)
SERVICE_UUID = custom_uuid(0x0001)
IMU_DATA_UUID = custom_uuid(0x0002)
SENSOR_INFO_UUID = custom_uuid(0x0003)
CONTROL_UUID = custom_uuid(0x0004)
BATTERY_SERVICE_UUID = uuid16(0x180F)
BATTERY_LEVEL_UUID = uuid16(0x2A19)

NAME_PREFIX = "gaitsym-"
"""Advertised local name = NAME_PREFIX + serial (the serial of the sensor info, 1..16 printable ASCII)."""


class Property(StrEnum):
    """Characteristic properties; values are BlueZ's GattCharacteristic1 Flags strings."""

    READ = "read"
    WRITE_WITHOUT_RESPONSE = "write-without-response"
    WRITE = "write"
    NOTIFY = "notify"

    @property
    def bit(self) -> int:
        """Bluetooth Core Vol 3 Part G 3.3.1.1 characteristic properties bit."""
        return _PROPERTY_BITS[self]


_PROPERTY_BITS = {
    Property.READ: 0x02,
    Property.WRITE_WITHOUT_RESPONSE: 0x04,
    Property.WRITE: 0x08,
    Property.NOTIFY: 0x10,
}


@dataclass(frozen=True)
class Characteristic:
    name: str
    """Stable identifier used in code and logs, e.g. "imu_data"."""
    uuid: str
    """128-bit UUID, lower case."""
    properties: tuple[Property, ...]
    max_length: int
    """Largest value in bytes (a server must accept at least this on write / serve it on read)."""
    value: str
    """What the value is, pointing at the SPEC section."""

    @property
    def bluez_flags(self) -> list[str]:
        """Flags for org.bluez.GattCharacteristic1."""
        return [str(p) for p in self.properties]

    @property
    def property_bits(self) -> int:
        """OR of the Bluetooth Core characteristic-properties bits (read 0x02, write 0x08, notify 0x10)."""
        bits = 0
        for p in self.properties:
            bits |= p.bit
        return bits


@dataclass(frozen=True)
class Service:
    name: str
    uuid: str
    characteristics: tuple[Characteristic, ...]
    primary: bool = True

    def characteristic(self, name: str) -> Characteristic:
        for c in self.characteristics:
            if c.name == name:
                return c
        raise KeyError(f"service {self.name!r} has no characteristic {name!r}")


@dataclass(frozen=True)
class GattProfile:
    services: tuple[Service, ...]
    advertised_service_uuids: tuple[str, ...]
    """Put in the advertising data (complete list of 128-bit service UUIDs); scanners filter on it."""
    name_prefix: str = NAME_PREFIX

    def service(self, name: str) -> Service:
        for s in self.services:
            if s.name == name:
                return s
        raise KeyError(f"profile has no service {name!r}")


IMU_DATA = Characteristic(
    name="imu_data",
    uuid=IMU_DATA_UUID,
    properties=(Property.NOTIFY,),
    max_length=packet_length(MAX_SAMPLES_PER_PACKET),
    value="IMU data packet v1, 14 + 12*n bytes (SPEC.md 'IMU data packet')",
)
SENSOR_INFO = Characteristic(
    name="sensor_info",
    uuid=SENSOR_INFO_UUID,
    properties=(Property.READ,),
    max_length=SENSOR_INFO_BYTES,
    value="sensor info v1, 30 bytes (SPEC.md 'Sensor info')",
)
CONTROL = Characteristic(
    name="control",
    uuid=CONTROL_UUID,
    properties=(Property.WRITE, Property.NOTIFY),
    max_length=10,
    value="command written with response; reply notified (SPEC.md 'Control')",
)
BATTERY_LEVEL = Characteristic(
    name="battery_level",
    uuid=BATTERY_LEVEL_UUID,
    properties=(Property.READ, Property.NOTIFY),
    max_length=1,
    value="u8 battery charge, percent 0..100 (Bluetooth SIG Battery Level 0x2A19)",
)

GAITSYM_SERVICE = Service(name="gaitsym", uuid=SERVICE_UUID, characteristics=(IMU_DATA, SENSOR_INFO, CONTROL))
BATTERY_SERVICE = Service(name="battery", uuid=BATTERY_SERVICE_UUID, characteristics=(BATTERY_LEVEL,))

PROFILE = GattProfile(services=(GAITSYM_SERVICE, BATTERY_SERVICE), advertised_service_uuids=(SERVICE_UUID,))
"""The whole profile a gaitsym sensor serves."""


def _serial_ok(serial: str) -> bool:
    return 1 <= len(serial) <= SERIAL_BYTES and all(0x20 <= ord(ch) <= 0x7E for ch in serial)


def advertised_name(serial: str) -> str:
    """``gaitsym-<serial>``; raises ValueError for a serial the sensor info could not carry."""
    if not _serial_ok(serial):
        raise ValueError(f"serial: {serial!r} is not 1..{SERIAL_BYTES} printable ASCII characters")
    return NAME_PREFIX + serial


def serial_from_advertised_name(name: str | None) -> str | None:
    """The serial in an advertised name ``gaitsym-<serial>``; None when it is not a gaitsym sensor's."""
    if not name or not name.startswith(NAME_PREFIX):
        return None
    serial = name[len(NAME_PREFIX) :]
    return serial if _serial_ok(serial) else None
