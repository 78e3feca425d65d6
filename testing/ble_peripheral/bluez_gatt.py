"""A BlueZ peripheral over D-Bus (dbus-fast): a GATT application and an LE advertisement, built from a
`firmware_protocol.gatt.GattProfile` description (the same description a Bumble kit serves).

`GattApplication.register` exports the application's objects (org.bluez.GattService1 /
org.bluez.GattCharacteristic1) under its root path and calls `org.bluez.GattManager1.RegisterApplication` on an
adapter; `Advertisement.register` calls `org.bluez.LEAdvertisingManager1.RegisterAdvertisement`. Characteristic
behaviour comes from a `CharacteristicHandler` per characteristic name. Works against BlueZ and bluezoo.

bluezoo specifics kept here (bluezoo 1.0.2 behaviour met by the tests/ble suite):
no ManufacturerData in the advertisement (bluezoo 1.0.2
declares it with the wrong D-Bus type); a `ServiceData` counter that the kit changes every ~0.3 s so late
scanners see the device; `Confirm` implemented as a no-op (bluezoo calls it after every notification).
Characteristics expose no NotifyAcquired/WriteAcquired properties, so centrals use StartNotify/WriteValue.
Each characteristic exports an MTU property (bluezoo takes the link's ATT MTU from it, default 512 otherwise)
and cuts notifications to MTU - 3 bytes as a real stack does, so small-MTU behaviour can be tested.
"""

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any

from dbus_fast import BusType, DBusError, Message, MessageType, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import DBusSignature
from dbus_fast.service import PropertyAccess, ServiceInterface, dbus_method, dbus_property

from firmware_protocol.gatt import Characteristic, GattProfile, Service

__all__ = ["DEFAULT_ATT_MTU", "Advertisement", "CharacteristicHandler", "GattApplication", "call_bluez", "call_dbus"]

log = logging.getLogger(__name__)

BLUEZ = "org.bluez"
DBusBytes = Annotated[bytes, DBusSignature("ay")]
DBusDict = Annotated[dict[str, Variant], DBusSignature("a{sv}")]
DBusStr = Annotated[str, DBusSignature("s")]
DBusPath = Annotated[str, DBusSignature("o")]
DBusBool = Annotated[bool, DBusSignature("b")]
DBusStrList = Annotated[list[str], DBusSignature("as")]
DBusU16 = Annotated[int, DBusSignature("q")]

DEFAULT_ATT_MTU = 247
"""ATT MTU an emulated sensor accepts, bytes (SPEC section 6: at least 247; bluezoo's own default is 512)."""


class CharacteristicHandler:
    """What a characteristic does. Override what its properties need; defaults reject."""

    def read(self, options: dict[str, Any]) -> bytes:
        raise DBusError("org.bluez.Error.NotPermitted", "read not permitted")

    def write(self, value: bytes, options: dict[str, Any]) -> None:
        raise DBusError("org.bluez.Error.NotPermitted", "write not permitted")

    def notifying_changed(self, notifying: bool) -> None:
        """The central subscribed (True) or unsubscribed / lost the link (False)."""


async def call_bluez(bus: MessageBus, path: str, interface: str, member: str, signature: str = "", body: Any = ()):
    """Call org.bluez `interface.member` on `path`; raises DBusError on an error reply. Returns the body."""
    return await call_dbus(bus, BLUEZ, path, interface, member, signature, body)


async def call_dbus(
    bus: MessageBus, destination: str, path: str, interface: str, member: str, signature: str = "", body: Any = ()
) -> Any:
    """Call `interface.member` on `path` of the bus name `destination`; raises DBusError on an error reply.
    Returns the reply's body (a list)."""
    reply = await bus.call(
        Message(
            destination=destination,
            path=path,
            interface=interface,
            member=member,
            signature=signature,
            body=list(body),
        )
    )
    assert reply is not None
    if reply.message_type == MessageType.ERROR:
        raise DBusError(reply.error_name or "org.freedesktop.DBus.Error.Failed", str(reply.body))
    return reply.body


class _ServiceObject(ServiceInterface):
    def __init__(self, service: Service) -> None:
        super().__init__("org.bluez.GattService1")
        self._service = service

    @dbus_property(access=PropertyAccess.READ)
    def UUID(self) -> DBusStr:
        return self._service.uuid

    @dbus_property(access=PropertyAccess.READ)
    def Primary(self) -> DBusBool:
        return self._service.primary

    @dbus_property(access=PropertyAccess.READ)
    def Includes(self) -> Annotated[list[str], DBusSignature("ao")]:
        return []


class CharacteristicObject(ServiceInterface):
    """org.bluez.GattCharacteristic1 for one `Characteristic` of the description."""

    def __init__(self, characteristic: Characteristic, service_path: str, handler: CharacteristicHandler) -> None:
        super().__init__("org.bluez.GattCharacteristic1")
        self.characteristic = characteristic
        self._service_path = service_path
        self.handler = handler
        self.value = b""
        self.notifying = False
        self.notifications_sent = 0
        self.mtu = DEFAULT_ATT_MTU
        """ATT MTU of the link, bytes. Exported as the MTU property (bluezoo takes a link's MTU from it) and
        enforced here as a real stack does: a notification is cut to MTU - 3 bytes."""
        self.truncated = 0

    def set_mtu(self, mtu: int) -> None:
        """Change the ATT MTU (bytes) this characteristic reports and enforces; takes effect for new links."""
        self.mtu = mtu
        self.emit_properties_changed({"MTU": mtu})

    def notify(self, value: bytes) -> bool:
        """Send `value` as a notification (PropertiesChanged Value); False (dropped) when nobody subscribed.
        A value longer than MTU - 3 bytes is cut to that length (and counted in `truncated`)."""
        if not self.notifying:
            return False
        if len(value) > self.mtu - 3:
            value = value[: self.mtu - 3]
            self.truncated += 1
        self.value = value
        self.emit_properties_changed({"Value": value})
        self.notifications_sent += 1
        return True

    @dbus_property(access=PropertyAccess.READ)
    def UUID(self) -> DBusStr:
        return self.characteristic.uuid

    @dbus_property(access=PropertyAccess.READ)
    def Service(self) -> DBusPath:
        return self._service_path

    @dbus_property(access=PropertyAccess.READ)
    def Flags(self) -> DBusStrList:
        return self.characteristic.bluez_flags

    @dbus_property(access=PropertyAccess.READ)
    def Value(self) -> DBusBytes:
        return self.value

    @dbus_property(access=PropertyAccess.READ)
    def Notifying(self) -> DBusBool:
        return self.notifying

    @dbus_property(access=PropertyAccess.READ)
    def MTU(self) -> DBusU16:
        return self.mtu

    @dbus_method()
    def ReadValue(self, options: DBusDict) -> DBusBytes:
        value = self.handler.read(_unwrap(options))
        offset = int(_unwrap(options).get("offset", 0))
        return value[offset:]

    @dbus_method()
    def WriteValue(self, value: DBusBytes, options: DBusDict) -> None:
        if len(value) > self.characteristic.max_length:
            raise DBusError("org.bluez.Error.InvalidValueLength", f"{len(value)} > {self.characteristic.max_length}")
        self.handler.write(bytes(value), _unwrap(options))

    @dbus_method()
    def StartNotify(self) -> None:
        if self.notifying:
            return
        self.notifying = True
        self.emit_properties_changed({"Notifying": True})
        self.handler.notifying_changed(True)

    @dbus_method()
    def StopNotify(self) -> None:
        if not self.notifying:
            return
        self.notifying = False
        self.emit_properties_changed({"Notifying": False})
        self.handler.notifying_changed(False)

    @dbus_method()
    def Confirm(self) -> None:
        """Indication confirmation; bluezoo calls it after every notification too. Nothing to do."""


def _unwrap(options: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v.value if isinstance(v, Variant) else v) for k, v in options.items()}


class _AdapterRegistration:
    """D-Bus objects registered with one BlueZ manager of an adapter (GattManager1 applications,
    LEAdvertisingManager1 advertisements) under `path`: exported before they are registered, unexported after
    they are unregistered, even when BlueZ refuses the unregister."""

    def __init__(self, manager: str, kind: str, path: str, objects: Sequence[tuple[str, ServiceInterface]]) -> None:
        self._manager = manager
        self._kind = kind
        """What the manager's Register<kind> / Unregister<kind> methods take: Application, Advertisement."""
        self._path = path
        self._objects = objects
        self._bus: MessageBus | None = None
        self._adapter_path = ""

    @property
    def registered(self) -> bool:
        return self._bus is not None

    async def register(self, bus: MessageBus, adapter_path: str) -> None:
        for path, obj in self._objects:
            bus.export(path, obj)
        await call_bluez(bus, adapter_path, self._manager, f"Register{self._kind}", "oa{sv}", (self._path, {}))
        self._bus, self._adapter_path = bus, adapter_path

    async def unregister(self) -> None:
        if self._bus is None:
            return
        bus, self._bus = self._bus, None
        try:
            await call_bluez(bus, self._adapter_path, self._manager, f"Unregister{self._kind}", "o", (self._path,))
        finally:
            for path, obj in self._objects:
                bus.unexport(path, obj)


class GattApplication:
    """The profile's services and characteristics as D-Bus objects under `root_path`."""

    def __init__(self, profile: GattProfile, root_path: str, handlers: Mapping[str, CharacteristicHandler]) -> None:
        self.profile = profile
        self.root_path = root_path
        self.characteristics: dict[str, CharacteristicObject] = {}
        objects: list[tuple[str, ServiceInterface]] = []
        for si, service in enumerate(profile.services):
            service_path = f"{root_path}/service{si}"
            objects.append((service_path, _ServiceObject(service)))
            for ci, characteristic in enumerate(service.characteristics):
                handler = handlers.get(characteristic.name, CharacteristicHandler())
                obj = CharacteristicObject(characteristic, service_path, handler)
                self.characteristics[characteristic.name] = obj
                objects.append((f"{service_path}/char{ci}", obj))
        self._registration = _AdapterRegistration("org.bluez.GattManager1", "Application", root_path, objects)

    async def register(self, bus: MessageBus, adapter_path: str) -> None:
        await self._registration.register(bus, adapter_path)

    async def unregister(self) -> None:
        """Unregister and unexport; every subscription ends (as a link loss would)."""
        if not self._registration.registered:
            return
        try:
            await self._registration.unregister()
        finally:
            for obj in self.characteristics.values():
                if obj.notifying:
                    obj.notifying = False
                    obj.handler.notifying_changed(False)


class Advertisement(ServiceInterface):
    """org.bluez.LEAdvertisement1: connectable, discoverable, local name and the 128-bit service UUIDs.

    `service_data_counter` (u8, under the first advertised service UUID) is what `bump` changes.
    """

    def __init__(self, path: str, local_name: str, service_uuids: tuple[str, ...]) -> None:
        super().__init__("org.bluez.LEAdvertisement1")
        self.path = path
        self.local_name = local_name
        self.service_uuids = list(service_uuids)
        self.counter = 0
        self._registration = _AdapterRegistration(
            "org.bluez.LEAdvertisingManager1", "Advertisement", path, [(path, self)]
        )

    def _service_data(self) -> dict[str, Variant]:
        return {self.service_uuids[0]: Variant("ay", bytes((self.counter,)))}

    def bump(self) -> None:
        """Change the ServiceData counter so scanners that started late hear a "new" advertisement."""
        self.counter = (self.counter + 1) % 256
        self.emit_properties_changed({"ServiceData": self._service_data()})

    @dbus_method()
    def Release(self) -> None:
        log.debug("advertisement %s released", self.path)

    @dbus_property(access=PropertyAccess.READ)
    def Type(self) -> DBusStr:
        return "peripheral"

    @dbus_property(access=PropertyAccess.READ)
    def ServiceUUIDs(self) -> DBusStrList:
        return self.service_uuids

    @dbus_property(access=PropertyAccess.READ)
    def ServiceData(self) -> DBusDict:
        return self._service_data()

    @dbus_property(access=PropertyAccess.READ)
    def LocalName(self) -> DBusStr:
        return self.local_name

    @dbus_property(access=PropertyAccess.READ)
    def Discoverable(self) -> DBusBool:
        return True

    async def register(self, bus: MessageBus, adapter_path: str) -> None:
        await self._registration.register(bus, adapter_path)

    async def unregister(self) -> None:
        await self._registration.unregister()


async def connect_system_bus() -> MessageBus:
    """The system bus named by DBUS_SYSTEM_BUS_ADDRESS (or the default system bus)."""
    return await MessageBus(bus_type=BusType.SYSTEM).connect()


NotifyFn = Callable[[bytes], bool]
