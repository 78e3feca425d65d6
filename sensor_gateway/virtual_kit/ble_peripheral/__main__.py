"""Run the emulated sensor kit as BlueZ peripherals: ``python -m sensor_gateway.virtual_kit.ble_peripheral
--adapter /org/bluez/hci1 --adapter /org/bluez/hci2 --adapter /org/bluez/hci3`` (pelvis, left_thigh,
right_thigh in that order) on the bus in DBUS_SYSTEM_BUS_ADDRESS. Prints READY when advertising.
``--motion sine`` swaps the still sensors (noise only) for a 0.9 Hz swing. ``--neighbour-adapter PATH`` adds a
fourth sensor, another kit's pelvis (key "neighbour"), powered off until powered on by a test."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from .control import export_kit_control
from .kit import DEFAULT_IDENTITIES, NEIGHBOUR_IDENTITY, VirtualBleKit
from .samples import SampleSource, SineSource, StillSource
from .sensor import SensorIdentity


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sensor_gateway.virtual_kit.ble_peripheral", description=__doc__)
    parser.add_argument("--adapter", action="append", required=True, help="adapter object path, one per sensor")
    parser.add_argument("--neighbour-adapter", help="adapter object path for a neighbour's pelvis sensor")
    parser.add_argument("--motion", choices=("still", "sine"), default="still")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, stream=sys.stderr)
    identities = DEFAULT_IDENTITIES[: len(args.adapter)]
    adapters = list(args.adapter)
    powered_off: tuple[str, ...] = ()
    if args.neighbour_adapter:
        identities += (NEIGHBOUR_IDENTITY,)
        adapters.append(args.neighbour_adapter)
        powered_off = (NEIGHBOUR_IDENTITY.kit_key,)

    def source(identity: SensorIdentity) -> SampleSource:
        if args.motion == "sine":
            return SineSource(phase_rad=identity.boot_epoch % 7)
        return StillSource(seed=identity.boot_epoch)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with VirtualBleKit(adapters, identities, source, powered_off=powered_off) as kit:
            await export_kit_control(kit)
            print("READY", flush=True)
            await stop.wait()

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
