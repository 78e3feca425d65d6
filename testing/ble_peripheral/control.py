"""Remote control of a running `VirtualBleKit` over the same D-Bus bus (for tests, benches and demos).

The kit process exports org.gaitsym.VirtualKit1 at /org/gaitsym/kitctl/<placement> under the bus name
``org.gaitsym.VirtualKit``; `KitControlClient` calls it from another process (e.g. the test process whose
bleak is the central). Send times are host `time.monotonic_ns` (ns, CLOCK_MONOTONIC, shared by processes).
"""

from typing import Annotated, Any

from dbus_fast import DBusError, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import DBusSignature
from dbus_fast.service import ServiceInterface, dbus_method

from .bluez_gatt import call_dbus
from .kit import VirtualBleKit

__all__ = ["BUS_NAME", "CONTROL_INTERFACE", "KitControlClient", "export_kit_control"]

BUS_NAME = "org.gaitsym.VirtualKit"
CONTROL_INTERFACE = "org.gaitsym.VirtualKit1"
_PATH = "/org/gaitsym/kitctl/{}"

DBusStr = Annotated[str, DBusSignature("s")]
DBusBool = Annotated[bool, DBusSignature("b")]
DBusU32 = Annotated[int, DBusSignature("u")]
DBusU16 = Annotated[int, DBusSignature("q")]
DBusDict = Annotated[dict[str, Variant], DBusSignature("a{sv}")]
DBusSendLog = Annotated[list[list[int]], DBusSignature("a(ut)")]


def _variant(value: Any) -> Variant:
    if isinstance(value, bool):
        return Variant("b", value)
    if isinstance(value, int):
        return Variant("x", value)
    return Variant("s", str(value))


class _KitControl(ServiceInterface):
    def __init__(self, kit: VirtualBleKit, placement: str) -> None:
        super().__init__(CONTROL_INTERFACE)
        self.kit = kit
        self.placement = placement

    @dbus_method()
    def GetState(self) -> DBusDict:
        return {k: _variant(v) for k, v in self.kit.state(self.placement).items()}

    @dbus_method()
    async def DropLink(self) -> DBusU32:
        return await self.kit.drop_link(self.placement)

    @dbus_method()
    def SetSilent(self, silent: DBusBool) -> None:
        self.kit.set_silent(self.placement, silent)

    @dbus_method()
    async def Reboot(self) -> None:
        await self.kit.reboot(self.placement)

    @dbus_method()
    def SendMalformed(self, kind: DBusStr, count: DBusU32) -> None:
        try:
            self.kit.send_malformed(self.placement, kind, count)
        except ValueError as exc:
            raise DBusError("org.gaitsym.Error.InvalidArguments", str(exc)) from None

    @dbus_method()
    def SetMtu(self, mtu: DBusU16) -> None:
        try:
            self.kit.set_mtu(self.placement, mtu)
        except ValueError as exc:
            raise DBusError("org.gaitsym.Error.InvalidArguments", str(exc)) from None

    @dbus_method()
    async def PowerOff(self) -> None:
        await self.kit.power_off(self.placement)

    @dbus_method()
    async def PowerOn(self) -> None:
        await self.kit.power_on(self.placement)

    @dbus_method()
    async def Reset(self) -> None:
        await self.kit.reset(self.placement)

    @dbus_method()
    def GetSendLog(self) -> DBusSendLog:
        return [[seq, t_ns] for seq, t_ns in self.kit.sensor(self.placement).send_log]


async def export_kit_control(kit: VirtualBleKit) -> None:
    """Export the control objects for every sensor of `kit` and take the bus name."""
    for placement in kit.sensors:
        kit.bus.export(_PATH.format(placement), _KitControl(kit, placement))
    await kit.bus.request_name(BUS_NAME)


class KitControlClient:
    """Calls a kit's control interface: ``await KitControlClient(bus).drop_link("pelvis")``."""

    def __init__(self, bus: MessageBus) -> None:
        self.bus = bus

    async def _call(self, placement: str, member: str, signature: str = "", body: tuple[Any, ...] = ()) -> Any:
        reply = await call_dbus(self.bus, BUS_NAME, _PATH.format(placement), CONTROL_INTERFACE, member, signature, body)
        return reply[0] if reply else None

    async def state(self, placement: str) -> dict[str, Any]:
        raw = await self._call(placement, "GetState")
        return {k: v.value for k, v in raw.items()}

    async def drop_link(self, placement: str) -> int:
        return int(await self._call(placement, "DropLink"))

    async def set_silent(self, placement: str, silent: bool) -> None:
        await self._call(placement, "SetSilent", "b", (silent,))

    async def reboot(self, placement: str) -> None:
        await self._call(placement, "Reboot")

    async def send_malformed(self, placement: str, kind: str, count: int = 1) -> None:
        await self._call(placement, "SendMalformed", "su", (kind, count))

    async def set_mtu(self, placement: str, mtu: int) -> None:
        """ATT MTU (bytes, 23..517) of the sensor's next links."""
        await self._call(placement, "SetMtu", "q", (mtu,))

    async def power_off(self, placement: str) -> None:
        await self._call(placement, "PowerOff")

    async def power_on(self, placement: str) -> None:
        await self._call(placement, "PowerOn")

    async def reset(self, placement: str) -> None:
        await self._call(placement, "Reset")

    async def send_log(self, placement: str) -> list[tuple[int, int]]:
        """(sequence, host monotonic ns when notified) of the recent IMU notifications."""
        return [(int(s), int(t)) for s, t in await self._call(placement, "GetSendLog")]
