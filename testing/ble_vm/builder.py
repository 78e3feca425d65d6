"""A throw-away QEMU VM that runs the real BlueZ: Debian's kernel + bluetoothd, Bumble as the controller.

Everything comes from Debian's packages (fetched with ``apt-get download``, unpacked with ``dpkg -x``) and from
the project's virtualenv, cached under ``<repo>/.cache/ble_vm`` (override: GAITSYM_BLE_VM_CACHE):

- the kernel image named by ``apt-cache depends linux-image-amd64`` (resolved at run time: Debian's point
  releases replace it), ``busybox-static`` and ``bluez``;
- a gzip'd newc initramfs: busybox, the modules for 9p over virtio and for Bluetooth (virtio_pci, 9pnet_virtio,
  9p, crc16, rfkill, ecc, ecdh_generic, bluetooth, hci_vhci, with their ``depends=``), and an ``/init`` that
  loads them, mounts the host's ``/`` read-only over 9p and ``switch_root``s into ``stage2.sh``.

``stage2.sh`` (run from the host's files, inside the VM) mounts a read-write work folder shared over 9p at its
host path, brings up loopback, starts a system D-Bus, ``bluetoothd -n``, the Bumble kit on ``/dev/vhci`` and
the gateway (``central.py``: pairing, the production gateway with Mosquitto and an acknowledging worker in the
VM, the MTU rules), which writes ``result.json`` into the work folder; then the VM powers off. KVM is not used
(it hangs on this already virtualised host): QEMU's software emulation, ~1 minute a run.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("GAITSYM_BLE_VM_CACHE", REPO / ".cache" / "ble_vm"))
QEMU = "qemu-system-x86_64"

INITRAMFS_MODULES = (
    "virtio_pci", "9pnet_virtio", "9p", "crc16", "rfkill", "ecc", "ecdh_generic", "cmac", "bluetooth", "hci_vhci"
)  # fmt: skip
PACKAGES = ("busybox-static", "bluez")


class VmError(RuntimeError):
    pass


def _run(cmd: list[str], cwd: Path | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise VmError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return proc.stdout


def kernel_package() -> str:
    """The kernel image package linux-image-amd64 currently depends on (e.g. linux-image-6.1.0-56-amd64)."""
    for attempt in range(2):
        try:
            out = _run(["apt-cache", "depends", "linux-image-amd64"])
        except VmError:
            out = ""
        m = re.search(r"Depends:\s*(linux-image-\S+-amd64)", out)
        if m:
            return m.group(1)
        if attempt == 0:
            _run(["apt-get", "update", "-qq"])
    raise VmError("apt-cache depends linux-image-amd64 names no kernel image package")


@dataclass(frozen=True)
class Packages:
    root: Path
    """Where the packages are unpacked (dpkg -x)."""
    kernel_version: str
    """e.g. 6.1.0-56-amd64"""

    @property
    def kernel(self) -> Path:
        return self.root / "boot" / f"vmlinuz-{self.kernel_version}"

    @property
    def modules(self) -> Path:
        return self.root / "lib" / "modules" / self.kernel_version

    @property
    def busybox(self) -> Path:
        return self.root / "bin" / "busybox"

    @property
    def bluetoothd(self) -> Path:
        return self.root / "usr" / "libexec" / "bluetooth" / "bluetoothd"


def ensure_packages(cache: Path = CACHE) -> Packages:
    """Download and unpack the kernel, busybox-static and bluez into `cache` (once per kernel version)."""
    kpkg = kernel_package()
    kver = kpkg.removeprefix("linux-image-")
    root = cache / f"root-{kver}"
    stamp = root / ".unpacked"
    if not stamp.exists():
        debs = cache / "debs"
        debs.mkdir(parents=True, exist_ok=True)
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        for pkg in (kpkg, *PACKAGES):
            before = set(debs.glob("*.deb"))
            name = pkg.split(":")[0]
            existing = [d for d in before if d.name.startswith(name + "_")]
            if not existing:
                _run(["apt-get", "download", "-q", pkg], cwd=debs)
                existing = [d for d in set(debs.glob("*.deb")) - before if d.name.startswith(name + "_")]
            if not existing:
                raise VmError(f"apt-get download {pkg} produced no .deb")
            _run(["dpkg", "-x", str(max(existing, key=lambda p: p.stat().st_mtime)), str(root)])
        stamp.write_text(kpkg + "\n")
    pk = Packages(root, kver)
    for path in (pk.kernel, pk.busybox, pk.bluetoothd):
        if not path.exists():
            raise VmError(f"{path} missing after unpacking the Debian packages")
    missing = [line.split()[0] for line in _run(["ldd", str(pk.bluetoothd)]).splitlines() if "not found" in line]
    if missing:
        raise VmError(f"bluetoothd needs libraries this host lacks: {missing}; apt-get install bluez's dependencies")
    return pk


# -- modules ---------------------------------------------------------------------------------------------------
_DEPENDS = re.compile(rb"(?:^|\x00)depends=([^\x00]*)\x00")


def _module_index(modules: Path) -> dict[str, Path]:
    index: dict[str, Path] = {}
    for ko in (modules / "kernel").rglob("*.ko"):
        index[ko.name[:-3].replace("-", "_")] = ko
    return index


def module_load_order(modules: Path, wanted: tuple[str, ...] = INITRAMFS_MODULES) -> list[Path]:
    """The .ko files for `wanted` and everything they depend on (each module's modinfo `depends=`),
    dependencies first. Modules built into the kernel have no .ko and need no loading."""
    index = _module_index(modules)
    order: list[Path] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        name = name.replace("-", "_")
        if name in seen:
            return
        seen.add(name)
        ko = index.get(name)
        if ko is None:
            builtin = (modules / "modules.builtin").read_text() if (modules / "modules.builtin").exists() else ""
            if re.search(rf"/{re.escape(name)}\.ko$", builtin.replace("-", "_"), re.M):
                return
            raise VmError(f"kernel module {name} is neither a .ko in {modules} nor built in")
        m = _DEPENDS.search(ko.read_bytes())
        for dep in m.group(1).decode().split(",") if m else []:
            if dep:
                visit(dep)
        order.append(ko)

    for name in wanted:
        visit(name)
    return order


# -- initramfs -------------------------------------------------------------------------------------------------
class _Cpio:
    """A newc ("070701") cpio archive writer."""

    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.ino = 1

    def _entry(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)) -> None:
        encoded = name.encode() + b"\x00"
        fields = (self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(encoded), 0)
        self.ino += 1
        self.buf.write(b"070701" + b"".join(f"{f:08x}".encode() for f in fields) + encoded)
        self.buf.write(b"\x00" * (-self.buf.tell() % 4))
        self.buf.write(data)
        self.buf.write(b"\x00" * (-self.buf.tell() % 4))

    def dir(self, name: str) -> None:
        self._entry(name, stat.S_IFDIR | 0o755)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._entry(name, stat.S_IFREG | mode, data)

    def chardev(self, name: str, major: int, minor: int) -> None:
        self._entry(name, stat.S_IFCHR | 0o600, rdev=(major, minor))

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        self.buf.write(b"\x00" * (-self.buf.tell() % 512))
        return self.buf.getvalue()


INIT = """#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
echo "gaitsym-vm: init at $(cut -d' ' -f1 /proc/uptime) s"
for m in $(cat /modules.order); do insmod "/lib/modules/$m" || echo "gaitsym-vm: insmod $m failed"; done
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose hostroot /newroot || {
  echo "gaitsym-vm: cannot mount the host root"; poweroff -f; }
umount /proc /sys /dev
exec switch_root /newroot /bin/sh "$gaitsym_stage2"
echo "gaitsym-vm: switch_root failed"; poweroff -f
"""


def build_initramfs(pk: Packages, cache: Path = CACHE) -> Path:
    """The gzip'd newc initramfs for `pk`'s kernel (rebuilt when this file changes)."""
    out = cache / f"initramfs-{pk.kernel_version}.cpio.gz"
    if out.exists() and out.stat().st_mtime >= Path(__file__).stat().st_mtime:
        return out
    modules = module_load_order(pk.modules)
    cpio = _Cpio()
    for d in ("bin", "dev", "proc", "sys", "newroot", "lib", "lib/modules"):
        cpio.dir(d)
    cpio.chardev("dev/console", 5, 1)
    cpio.chardev("dev/null", 1, 3)
    cpio.file("bin/busybox", pk.busybox.read_bytes(), 0o755)
    cpio.file("init", INIT.encode(), 0o755)
    cpio.file("modules.order", "".join(ko.name + "\n" for ko in modules).encode())
    for ko in modules:
        cpio.file(f"lib/modules/{ko.name}", ko.read_bytes())
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(gzip.compress(cpio.finish(), compresslevel=6))
    tmp.replace(out)
    return out


# -- running ---------------------------------------------------------------------------------------------------
@dataclass
class VmRun:
    result: dict[str, Any]
    """What central.py wrote (result.json), plus "vm" timings."""
    console: str
    work: Path
    wall_s: float


def qemu_command(pk: Packages, initramfs: Path, work: Path, env: dict[str, str], memory_mb: int = 2048) -> list[str]:
    params = " ".join(f"{k}={v}" for k, v in env.items())
    return [
        QEMU,
        "-machine", "q35",
        "-accel", "tcg",
        "-cpu", "max",
        "-smp", "2",
        "-m", str(memory_mb),
        "-nographic",
        "-no-reboot",
        "-kernel", str(pk.kernel),
        "-initrd", str(initramfs),
        "-append", f"console=ttyS0 quiet loglevel=4 panic=-1 {params}",
        "-fsdev", "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap",
        "-device", "virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot",
        "-fsdev", f"local,id=work,path={work},security_model=none,multidevs=remap",
        "-device", "virtio-9p-pci,fsdev=work,mount_tag=work",
    ]  # fmt: skip


def run_vm(
    work: Path,
    *,
    stream_s: float = 5.0,
    small_mtu: int = 65,
    samples_per_packet: int = 2,
    btmon: bool = False,
    timeout_s: float = 420.0,
    cache: Path = CACHE,
) -> VmRun:
    """Boot the VM, run the scenario of central.py, return its result. `work` is emptied first.
    `stream_s`: the gateway's streaming time from the first packet; `samples_per_packet`: its batch size setting."""
    if shutil.which(QEMU) is None:
        raise VmError(f"{QEMU} not installed (Debian package qemu-system-x86; `make test` installs it)")
    t0 = time.monotonic()
    pk = ensure_packages(cache)
    initramfs = build_initramfs(pk, cache)
    t_prepared = time.monotonic()
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    env = {
        "gaitsym_stage2": str(HERE / "stage2.sh"),
        "gaitsym_work": str(work),
        "gaitsym_repo": str(REPO),
        "gaitsym_python": sys.executable,
        "gaitsym_bluez": str(pk.root),
        "gaitsym_stream_s": str(stream_s),
        "gaitsym_small_mtu": str(small_mtu),
        "gaitsym_btmon": "1" if btmon else "0",
        "gaitsym_spp": str(samples_per_packet),
    }
    for k, v in env.items():
        if " " in v:
            raise VmError(f"{k}={v!r}: paths with spaces cannot go on the kernel command line")
    cmd = qemu_command(pk, initramfs, work, env)
    (work / "qemu-cmd.json").write_text(json.dumps(cmd))
    t_boot = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout_s, stdin=subprocess.DEVNULL)
        console = proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else ""
        (work / "console.log").write_text(out)
        raise VmError(f"the VM did not power off within {timeout_s} s; console in {work / 'console.log'}") from exc
    t_end = time.monotonic()
    (work / "console.log").write_text(console)
    result_file = work / "result.json"
    if not result_file.exists():
        logs = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(work.glob("*.log")))
        raise VmError(f"the VM wrote no result.json (qemu exit {proc.returncode}):\n{logs}")
    result = json.loads(result_file.read_text())
    result["vm"] = {
        "prepare_s": round(t_prepared - t0, 2),
        "qemu_wall_s": round(t_end - t_boot, 2),
        "kernel": pk.kernel_version,
        **result.get("vm", {}),
    }
    return VmRun(result=result, console=console, work=work, wall_s=t_end - t0)
