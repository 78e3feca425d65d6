"""The emulated gaitsym sensor kit as BLE peripherals on a BlueZ D-Bus API (real BlueZ or the bluezoo mock).

- `sensor`: one sensor's firmware behaviour (control protocol, sensor info, packet timing, faults), no BLE
- `samples`: pluggable sample sources (still, sine, replayed arrays), physical units m/s² and deg/s
- `bluez_gatt`: a GATT application + LE advertisement built from `firmware_protocol.gatt.PROFILE` (dbus-fast)
- `kit`: `VirtualBleKit`, three sensors on three adapters, with test controls
- `control`: the kit's controls over D-Bus (`KitControlClient`) for other processes
- `streaming`: when each sensor's packets are due, shared by the BlueZ kit and the Bumble kit
- `bumble_kit`, `bumble_link`: the same sensors served with Bumble on a virtual link (the BLE VM test)

Run as a process with ``python -m testing.ble_peripheral --adapter ...``.
No GPL code here: bluezoo is only ever a separate test process (testing/ble_harness).
"""

from .kit import DEFAULT_IDENTITIES, VirtualBleKit
from .samples import ArraySource, SampleSource, SineSource, StillSource
from .sensor import EmulatedSensor, Malformation, SensorIdentity

__all__ = [
    "DEFAULT_IDENTITIES",
    "ArraySource",
    "EmulatedSensor",
    "Malformation",
    "SampleSource",
    "SensorIdentity",
    "SineSource",
    "StillSource",
    "VirtualBleKit",
]
