"""Serve the emulated kit on a private bluezoo stack as a process of its own, for `gaitsym gateway --virtual-kit
--ble` (a dev-checkout option: bluezoo comes with the dev extras, `make test` installs it).

    python -m testing.ble_harness.serve --seed 1 --minutes 15 [--script home]      (cwd: the repository)

Starts a `BleStack` (dbus-daemon + bluezoo + the kit serving the simulator's session, ``--motion session``; no
neighbour), prints ``BUS <address>`` (the private system bus: set DBUS_SYSTEM_BUS_ADDRESS to it before bleak's
first call; the central adapter is hci0) and then ``READY``, and runs until SIGTERM/SIGINT or until its stdin
closes (the gateway that started it has gone), then stops every process of the stack.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make `testing.ble_harness` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from testing.ble_harness.stack import BleStack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testing.ble_harness.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--script", help="walk or home (default: home from 12 min on)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    kit_args: tuple[str, ...] = ("--motion", "session", "--seed", str(args.seed), "--minutes", str(args.minutes))
    if args.script:
        kit_args += ("--script", args.script)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    def watch_stdin() -> None:  # raw fd reads: a daemon thread must not hold the buffered stdin's lock at exit
        try:
            while os.read(0, 1):
                pass
        except OSError:
            pass
        stop.set()

    with BleStack(neighbour=False, kit_args=kit_args, verbose=args.verbose) as stack:
        print(f"BUS {stack.bus_address}", flush=True)
        print("READY", flush=True)
        threading.Thread(target=watch_stdin, name="stdin-watch", daemon=True).start()
        while not stop.wait(1.0):
            stack.check_alive()
    return 0


if __name__ == "__main__":
    sys.exit(main())
