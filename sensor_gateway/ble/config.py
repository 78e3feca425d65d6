"""Settings of the BLE transport (BlueZ quirks included) and the pairing file that pins a subject's kit.

Times in seconds, MTU in bytes. See `BLE.md` for what each BlueZ setting is for.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from gaitsym_common.uplink.vocabulary import PLACEMENTS
from sensor_gateway.ble.errors import BackoffPolicy, NotPaired, PairingError

__all__ = ["PAIRING_FILE", "BleConfig", "PairedSensor", "Pairing", "load_pairing", "save_pairing"]

PAIRING_FILE = "ble_pairing.json"
"""Name of the pairing file in the gateway's state directory."""
PAIRING_FORMAT = "gaitsym.ble-pairing/1"


@dataclass(frozen=True)
class BleConfig:
    state_dir: Path
    """The gateway's state directory; the pairing is `state_dir / PAIRING_FILE`."""
    adapter: str = "hci0"
    """BlueZ adapter the gateway uses (a USB dongle on a Raspberry Pi, not the built-in radio)."""
    placements: tuple[str, ...] = PLACEMENTS
    use_start_notify: bool = True
    """True: StartNotify (works with every stack; bleak 3.x's default); False: AcquireNotify (a socket, less
    D-Bus traffic; some peripherals and BlueZ versions deliver nothing with it)."""
    scan_timeout_s: float = 10.0
    """Longest wait for the pinned sensor's advertisement per connection attempt."""
    connect_timeout_s: float = 20.0
    """Longest connect (incl. service discovery) per attempt."""
    gatt_timeout_s: float = 5.0
    """Longest single GATT read/write/subscribe."""
    command_timeout_s: float = 1.0
    """Wait for a control reply (SPEC section 8: the sensor answers within 100 ms; the gateway waits 1 s)."""
    command_attempts: int = 3
    silence_timeout_s: float = 3.0
    """Watchdog: a streaming sensor with no notification for this long is treated as lost (at least 3 packet
    intervals are always allowed)."""
    samples_per_packet: int | None = None
    """Batch size to ask the sensor for; None = the most the MTU allows (`max_samples_for_mtu`). Capped by it."""
    mtu_wait_s: float = 2.0
    """Real BlueZ exchanges the MTU just after connecting; while the characteristic still shows 23 bytes the
    gateway re-reads it for up to this long before deciding."""
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    queue_size: int = 10_000

    @property
    def pairing_path(self) -> Path:
        return Path(self.state_dir) / PAIRING_FILE


@dataclass(frozen=True)
class PairedSensor:
    placement: str
    address: str
    """BLE address BlueZ shows (AA:BB:CC:DD:EE:FF)."""
    serial: str


@dataclass(frozen=True)
class Pairing:
    adapter: str
    sensors: dict[str, PairedSensor]
    """placement -> pinned sensor."""
    paired_at_utc_s: float = 0.0

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": PAIRING_FORMAT,
                "adapter": self.adapter,
                "paired_at_utc_s": self.paired_at_utc_s,
                "sensors": {p: {"address": s.address, "serial": s.serial} for p, s in sorted(self.sensors.items())},
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> Pairing:
        try:
            raw = json.loads(text)
            if raw.get("format") != PAIRING_FORMAT:
                raise PairingError(f"format: expected {PAIRING_FORMAT!r}, got {raw.get('format')!r}")
            sensors = {
                p: PairedSensor(p, str(s["address"]).upper(), str(s["serial"])) for p, s in raw["sensors"].items()
            }
            return cls(str(raw["adapter"]), sensors, float(raw.get("paired_at_utc_s", 0.0)))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise PairingError(f"pairing file unreadable: {exc}") from exc


def save_pairing(path: Path, pairing: Pairing) -> None:
    """Write atomically (temp file + rename) so a crash never leaves half a pairing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(pairing.to_json() + "\n")
    os.replace(tmp, path)


def load_pairing(path: Path) -> Pairing:
    path = Path(path)
    if not path.exists():
        raise NotPaired(f"no pairing at {path}: run `gaitsym gateway pair` with the three sensors switched on")
    return Pairing.from_json(path.read_text())


def now_utc_s() -> float:
    return time.time()
