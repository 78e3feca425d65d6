"""A private BLE test stack: dbus-daemon + bluezoo (patched, own process) + the emulated sensor kit (own process).

    with BleStack() as stack:           # ~1 s to start; env DBUS_SYSTEM_BUS_ADDRESS now points at the private bus
        ...  real bleak in this process scans/connects on stack.central_adapter ("hci0")

Layout: adapter hci0 (00:AA:00:00:00:00) is the central (the gateway's bleak); hci1..hciN are one per emulated
sensor (bluezoo shows one advertisement and all GATT applications of an adapter as one device); with
`neighbour` (default) one more adapter carries another kit's pelvis sensor, powered off until a test powers it
on (`kit_control` key "neighbour"). The kit runs
`python -m testing.ble_peripheral`; control it with `stack.kit_control(bus)` (a
`KitControlClient`). `reset_async()` puts everything back between tests (removes cached devices, disconnects,
resets the kit's sensors).

bleak and dbus-fast read DBUS_SYSTEM_BUS_ADDRESS when they connect: bleak's BlueZ manager connects once per
event loop, so enter the stack before the loop's first bleak call (a new event loop per test is simplest).
Teardown: SIGTERM, then SIGKILL after 3 s, to each process group this class started; the temp dir is removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO

from dbus_fast import BusType, DBusError
from dbus_fast.aio import MessageBus

from firmware_protocol.sensor_info import PLACEMENTS
from testing.ble_peripheral.bluez_gatt import call_bluez
from testing.ble_peripheral.control import KitControlClient

__all__ = ["BleStack", "StackError"]

REPO = Path(__file__).resolve().parents[2]
LAUNCHER = Path(__file__).resolve().with_name("bluezoo_launcher.py")
_READY_TIMEOUT_S = 15.0
_KIT_READY_TIMEOUT_S = 120.0
"""A simulated session (``--motion session``) is computed before the kit advertises (~2 s per 15 min)."""

_BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow receive_sender="*"/>
  </policy>
  <limit name="max_replies_per_connection">100000</limit>
  <limit name="max_match_rules_per_connection">100000</limit>
</busconfig>
"""


class StackError(RuntimeError):
    """A stack process failed to start; the message carries its stderr tail."""


def adapter_address(index: int) -> str:
    """Adapter `index`'s public address: 00:AA:00:00:00:<index> (hci0 is the central)."""
    return f"00:AA:00:00:00:{index:02X}"


@dataclass
class BleStack:
    placements: tuple[str, ...] = PLACEMENTS
    motion: str = "still"
    start_kit: bool = True
    """False: only dbus + bluezoo (run a `VirtualBleKit` yourself on `sensor_adapters`)."""
    neighbour: bool = True
    """Add a fourth sensor on its own adapter: another kit's pelvis (kit key "neighbour", serial
    GS1-PLV-0904), powered off at start and after every reset; tests power it on to play a neighbour."""
    verbose: bool = False
    kit_args: tuple[str, ...] = ()
    """Extra arguments for the kit process, e.g. ("--motion", "session", "--seed", "1", "--minutes", "1")
    (then leave `motion` at its default: the last --motion wins)."""
    tmpdir: Path = field(init=False)
    bus_address: str = field(init=False, default="")
    setup_s: float = field(init=False, default=0.0)
    """Wall time from start to kit advertising, s."""
    _procs: list[tuple[str, subprocess.Popen[bytes]]] = field(init=False, default_factory=list)
    _old_env: str | None = field(init=False, default=None)
    _logs: list[IO[bytes]] = field(init=False, default_factory=list)

    central_adapter = "hci0"

    @property
    def central_address(self) -> str:
        return adapter_address(0)

    @property
    def sensor_adapters(self) -> dict[str, str]:
        """placement -> adapter object path (/org/bluez/hci1, ...)."""
        return {p: f"/org/bluez/hci{i + 1}" for i, p in enumerate(self.placements)}

    @property
    def neighbour_adapter(self) -> str:
        return f"/org/bluez/hci{len(self.placements) + 1}"

    @property
    def neighbour_address(self) -> str:
        return adapter_address(len(self.placements) + 1)

    @property
    def sensor_addresses(self) -> dict[str, str]:
        """placement -> the address bleak sees for that sensor."""
        return {p: adapter_address(i + 1) for i, p in enumerate(self.placements)}

    # -- lifecycle -------------------------------------------------------------------------------------------
    def __enter__(self) -> BleStack:
        t0 = time.monotonic()
        self.tmpdir = Path(tempfile.mkdtemp(prefix="gaitsym-ble-"))
        try:
            self._start_bus()
            self._start_bluezoo()
            if self.start_kit:
                self._start_kit()
        except BaseException:
            self.close()
            raise
        self.setup_s = time.monotonic() - t0
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def env(self) -> dict[str, str]:
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=self.bus_address, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
        return env

    def _log(self, name: str) -> IO[bytes]:
        f = open(self.tmpdir / f"{name}.log", "wb")  # noqa: SIM115 - closed in close()
        self._logs.append(f)
        return f

    def _spawn(self, name: str, argv: list[str], stdout: int | IO[bytes]) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            argv, env=self.env(), stdout=stdout, stderr=self._log(name), start_new_session=True, cwd=REPO
        )
        self._procs.append((name, proc))
        return proc

    def _wait_ready(self, name: str, proc: subprocess.Popen[bytes], timeout_s: float = _READY_TIMEOUT_S) -> None:
        assert proc.stdout is not None
        deadline = time.monotonic() + timeout_s
        os.set_blocking(proc.stdout.fileno(), False)
        buf = b""
        while time.monotonic() < deadline:
            chunk = proc.stdout.read()
            if chunk:
                buf += chunk
                if b"READY" in buf:
                    return
            if proc.poll() is not None:
                break
            time.sleep(0.01)
        raise StackError(f"{name} did not get ready (exit {proc.poll()}): {self.log_tail(name)}")

    def log_tail(self, name: str, chars: int = 2000) -> str:
        path = self.tmpdir / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def _start_bus(self) -> None:
        dbus_daemon = shutil.which("dbus-daemon")
        if dbus_daemon is None:
            raise StackError("dbus-daemon not found (Debian package 'dbus')")
        socket = self.tmpdir / "system_bus_socket"
        config = self.tmpdir / "bus.conf"
        config.write_text(_BUS_CONFIG.format(socket=socket))
        self._spawn(
            "dbus-daemon", [dbus_daemon, f"--config-file={config}", "--nofork", "--nopidfile"], subprocess.DEVNULL
        )
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while not socket.exists():
            if time.monotonic() > deadline or self._procs[-1][1].poll() is not None:
                raise StackError(f"dbus-daemon did not start: {self.log_tail('dbus-daemon')}")
            time.sleep(0.005)
        self.bus_address = f"unix:path={socket}"
        self._old_env = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
        os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = self.bus_address

    def _start_bluezoo(self) -> None:
        argv = [sys.executable, str(LAUNCHER)]
        for i in range(len(self.placements) + 1 + int(self.neighbour)):
            argv += ["--adapter", adapter_address(i)]
        if self.verbose:
            argv.append("--verbose")
        proc = self._spawn("bluezoo", argv, subprocess.PIPE)
        self._wait_ready("bluezoo", proc)

    def _start_kit(self) -> None:
        argv = [sys.executable, "-m", "testing.ble_peripheral", "--motion", self.motion]
        for adapter in self.sensor_adapters.values():
            argv += ["--adapter", adapter]
        if self.neighbour:
            argv += ["--neighbour-adapter", self.neighbour_adapter]
        argv += self.kit_args
        if self.verbose:
            argv.append("--verbose")
        proc = self._spawn("kit", argv, subprocess.PIPE)
        self._wait_ready("kit", proc, _KIT_READY_TIMEOUT_S)

    def close(self) -> None:
        """Stop every process this stack started (kit, bluezoo, dbus-daemon, in that order) and clean up."""
        for name, proc in reversed(self._procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(3.0)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(3.0)
            if proc.stdout is not None:
                proc.stdout.close()
            del name
        self._procs.clear()
        for f in self._logs:
            f.close()
        self._logs.clear()
        if self.bus_address:
            if self._old_env is None:
                os.environ.pop("DBUS_SYSTEM_BUS_ADDRESS", None)
            else:
                os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = self._old_env
            self.bus_address = ""
        if getattr(self, "tmpdir", None) is not None and self.tmpdir.exists():
            shutil.rmtree(self.tmpdir, ignore_errors=True)

    def check_alive(self) -> None:
        for name, proc in self._procs:
            if proc.poll() is not None:
                raise StackError(f"{name} exited with {proc.returncode}: {self.log_tail(name)}")

    # -- helpers for async tests -----------------------------------------------------------------------------
    async def connect_bus(self) -> MessageBus:
        """A new dbus-fast connection to the private bus (disconnect it when done)."""
        return await MessageBus(bus_address=self.bus_address, bus_type=BusType.SYSTEM).connect()

    @contextlib.asynccontextmanager
    async def kit_control(self) -> AsyncIterator[KitControlClient]:
        bus = await self.connect_bus()
        try:
            yield KitControlClient(bus)
        finally:
            bus.disconnect()

    async def reset_async(self) -> None:
        """Between tests: remove every cached device on every adapter (this also drops links, stops the
        peripherals' notifications) and reset each sensor (powered, not streaming, initial boot epoch)."""
        self.check_alive()
        bus = await self.connect_bus()
        try:
            (objects,) = await call_bluez(bus, "/", "org.freedesktop.DBus.ObjectManager", "GetManagedObjects")
            for path, ifaces in objects.items():
                if "org.bluez.Device1" in ifaces:
                    adapter = path.rsplit("/", 1)[0]
                    with contextlib.suppress(DBusError):  # gone already: nothing to remove
                        await call_bluez(bus, adapter, "org.bluez.Adapter1", "RemoveDevice", "o", (path,))
            if self.start_kit:
                control = KitControlClient(bus)
                for placement in self.placements + (("neighbour",) if self.neighbour else ()):
                    await control.reset(placement)
        finally:
            bus.disconnect()

    def reset(self) -> None:
        asyncio.run(self.reset_async())
