"""Run bluezoo 1.0.2 (the BlueZ D-Bus mock) with gaitsym's run-time fixes. A TEST TOOL, run as its own process.

bluezoo is GPL-2.0-only: this script is the only gaitsym file that imports it, it lives under tests/, and it
runs in a separate process started by `ble_harness.stack.BleStack`. Product code never imports it.

Usage: ``python bluezoo_launcher.py --adapter 00:AA:00:00:00:00 --adapter ... [--scan-interval-s 0.25]``
on the bus named by DBUS_SYSTEM_BUS_ADDRESS. Prints ``READY`` on stdout once every adapter is exported.

Fixes applied by monkey-patching (bluezoo 1.0.2 bugs met by the tests/ble suite, numbered as they were found):

(2) late scanners: the scan period is a float in seconds (bluezoo's CLI takes whole seconds, default 10 s),
    so a changing advertisement (the kit varies a ServiceData counter every ~0.3 s) reaches a scanner
    within ~0.25 s.
(3) GATT link objects are removed (InterfacesRemoved) when a link goes down, and before a new connect, so a
    reconnect does not show every service twice.
(4) on link loss the peripheral's GATT application is told StopNotify on every characteristic the link was
    notifying, so the next StartNotify succeeds.
(5) when a peripheral's GATT application vanishes (process gone or unregistered), every central connected to
    that adapter is disconnected (bleak's disconnected_callback fires).
Both ends of a link go down together, whichever end's Device1.Disconnect was called (bluezoo updates only
the called object and a stray copy).
New: a second StartDiscovery on an adapter no longer leaks the previous scan task.
(1) ManufacturerData with the wrong D-Bus type is avoided on the peripheral side (the kit never sets it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from typing import Any

from bluezoo import bluezoo as bz  # GPL-2.0 test tool; see the module docstring
from bluezoo import events
from bluezoo.adapter import Adapter
from bluezoo.device import Device
from bluezoo.gatt.characteristic import GattCharacteristicClientLink
from bluezoo.gatt.manager import GattManager
from bluezoo.utils import BluetoothAddress

log = logging.getLogger("bluezoo_launcher")


def _counterpart(device: Any) -> Any:
    """The Device object for the other end of `device`'s link (in the peer adapter), or None."""
    peer_adapter = device.peer_adapter
    local_adapter = device.adapter
    if peer_adapter is None or local_adapter is None:
        return None
    path = f"{peer_adapter.get_object_path()}/dev_{local_adapter.address.replace(':', '_')}"
    return peer_adapter.devices.get(path)


async def _release_gatt_links(device: Any) -> None:
    """Fixes (3) and (4): stop the peripheral's notifications and unexport the link's GATT objects."""
    for link in list(device.services.values()):
        if isinstance(link, GattCharacteristicClientLink):
            subscription = link.client_props_changed_subscription
            # Subscription() (idle wrapper) before StartNotify, a raw pyventus EventSubscriber after it.
            active = not isinstance(subscription, events.Subscription) or subscription.subscriber is not None
            if active:
                subscription.unsubscribe()
                link.client_props_changed_subscription = events.Subscription()
                try:
                    await link.client.StopNotify()
                except Exception as exc:  # the peripheral may be gone already
                    log.debug("StopNotify on %s failed: %s", link, exc)
            if link.f_read is not None:
                asyncio.get_running_loop().remove_reader(link.f_read.fileno())
                link.f_read.close()
                link.f_read = None
    for link in reversed(list(device.services.values())):  # descriptors, characteristics, then services
        with contextlib.suppress(KeyError):
            device.peer_adapter.mock.remove_object(link)
    device.services.clear()


async def _link_down(device: Any) -> None:
    await _release_gatt_links(device)
    if device.services_resolved:
        await device.ServicesResolved.set_async(False)
    if device.connected:
        await device.Connected.set_async(False)


async def _patched_disconnect(self: Any, uuid: str | None = None) -> None:
    self.connecting_task.cancel()
    log.info("Disconnecting %s (both ends)", self)
    await _link_down(self)
    other = _counterpart(self)
    if other is not None and other is not self:
        other.connecting_task.cancel()
        await _link_down(other)


_original_connect = Device.connect


async def _patched_connect(self: Any, uuid: str | None = None) -> None:
    await _release_gatt_links(self)  # fix (3): never export a second copy of the services
    await _original_connect(self, uuid)


_original_del_gatt_application = GattManager._GattManager__del_gatt_application  # type: ignore[attr-defined]


async def _patched_del_gatt_application(self: Any, app: Any) -> None:
    await _original_del_gatt_application(self, app)
    # Fix (5): the peripheral vanished; every central linked to this adapter loses its link.
    for adapter in list(self.mock.adapters.values()):
        for device in list(adapter.devices.values()):
            if device.peer_adapter is self and device.connected:
                await device.disconnect()


_original_create_discovering_task = bz.BluezMockService.create_discovering_task


def _patched_create_discovering_task(self: Any, adapter_id: int) -> Any:
    self.adapters[adapter_id].discovering_task.cancel()  # new: do not leak the previous scan loop
    return _original_create_discovering_task(self, adapter_id)


def apply_patches() -> None:
    Device.disconnect = _patched_disconnect  # type: ignore[method-assign]
    Device.connect = _patched_connect  # type: ignore[method-assign]
    GattManager._GattManager__del_gatt_application = _patched_del_gatt_application  # type: ignore[attr-defined]
    bz.BluezMockService.create_discovering_task = _patched_create_discovering_task  # type: ignore[method-assign]
    assert Adapter.__mro__  # imported for the patch targets' module to be loaded first


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-a", "--adapter", dest="adapters", action="append", type=BluetoothAddress, required=True)
    parser.add_argument("--scan-interval-s", type=float, default=0.25, help="scan report period, s")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, stream=sys.stderr)
    apply_patches()

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def run() -> None:
        await bz.startup(bus="system", adapters=args.adapters, auto_enable=True, scan_interval=args.scan_interval_s)
        print("READY", flush=True)
        await stop.wait()
        try:
            await asyncio.wait_for(bz.shutdown(), 2.0)
        except Exception as exc:
            log.debug("shutdown: %s", exc)

    loop.run_until_complete(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
