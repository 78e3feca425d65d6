"""Run the emulated sensor kit as BlueZ peripherals: ``python -m testing.ble_peripheral
--adapter /org/bluez/hci1 --adapter /org/bluez/hci2 --adapter /org/bluez/hci3`` (pelvis, left_thigh,
right_thigh in that order) on the bus in DBUS_SYSTEM_BUS_ADDRESS. Prints READY when advertising.
``--motion sine`` swaps the still sensors (noise only) for a 0.9 Hz swing; ``--motion session`` serves a simulated
session (`simulator.session.simulate_session`, ``--seed``, ``--minutes``, ``--script``): each
sensor replays its placement's samples in real time, the three in step (`ArraySource` with a shared
`SessionClockStart`: row 0 is the first sample any of them takes), at the simulator's ranges (±16 g, ±2000 deg/s).
``--neighbour-adapter PATH`` adds a fourth sensor, another kit's pelvis (key "neighbour"), powered off until
powered on by a test."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import Any

from .control import export_kit_control
from .kit import DEFAULT_IDENTITIES, NEIGHBOUR_IDENTITY, VirtualBleKit
from .samples import ArraySource, SampleSource, SessionClockStart, SineSource, StillSource
from .sensor import SensorIdentity

SESSION_ACC_RANGE_G = 16
SESSION_GYR_RANGE_DPS = 2000


class SessionSources:
    """placement -> the simulated session's samples (m/s², deg/s) as wall-clock `ArraySource`s sharing one
    `SessionClockStart`. Asked again for a placement it already served (the kit's reset), it starts a new
    session clock: the session then starts over with the first sample any sensor takes."""

    def __init__(self, seed: int, minutes: float, script: str | None = None) -> None:
        from simulator.session import simulate_session  # numpy + the simulator: only here

        chosen = script or ("home" if minutes >= 12.0 else "walk")
        recording = simulate_session(seed=seed, minutes=minutes, script=chosen).recording
        if recording.sampling_rate_hz != 100:
            raise SystemExit(f"the emulated sensors sample at 100 Hz, the session at {recording.sampling_rate_hz} Hz")
        self.arrays: dict[str, tuple[Any, Any]] = {p: (d.acc_mps2, d.gyr_dps) for p, d in recording.sensors.items()}
        self._clock_start = SessionClockStart()
        self._served: set[str] = set()

    def __contains__(self, placement: object) -> bool:
        return placement in self.arrays

    def source(self, placement: str) -> ArraySource:
        if placement in self._served:
            self._clock_start, self._served = SessionClockStart(), set()
        self._served.add(placement)
        acc, gyr = self.arrays[placement]
        return ArraySource(acc, gyr, loop=False, clock_start=self._clock_start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testing.ble_peripheral", description=__doc__)
    parser.add_argument("--adapter", action="append", required=True, help="adapter object path, one per sensor")
    parser.add_argument("--neighbour-adapter", help="adapter object path for a neighbour's pelvis sensor")
    parser.add_argument("--motion", choices=("still", "sine", "session"), default="still")
    parser.add_argument("--seed", type=int, default=1, help="--motion session: simulation seed")
    parser.add_argument("--minutes", type=float, default=1.0, help="--motion session: session length, min")
    parser.add_argument("--script", help="--motion session: walk or home (default: home from 12 min on)")
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

    sessions = SessionSources(args.seed, args.minutes, args.script) if args.motion == "session" else None
    options = (
        {"acc_range_g": SESSION_ACC_RANGE_G, "gyr_range_dps": SESSION_GYR_RANGE_DPS} if args.motion == "session" else {}
    )

    def source(identity: SensorIdentity) -> SampleSource:
        if sessions is not None and identity.kit_key in sessions:
            return sessions.source(identity.kit_key)
        if args.motion == "sine":
            return SineSource(phase_rad=identity.boot_epoch % 7)
        return StillSource(seed=identity.boot_epoch)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with VirtualBleKit(adapters, identities, source, sensor_options=options, powered_off=powered_off) as kit:
            await export_kit_control(kit)
            print("READY", flush=True)
            await stop.wait()

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
