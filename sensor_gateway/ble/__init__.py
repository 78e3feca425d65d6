"""The gateway's BLE transport (bleak on BlueZ) and pairing; see BLE.md.

- `make_ble_transport(config)` -> `BleTransport` (implements `sensor_gateway.transport.Transport`) for the kit
  pinned in the state directory; `pair(config)` / `pair_kit(config)` pin the three sensors by placement.
- `BleConfig`: adapter, timeouts, BlueZ quirks (use_start_notify), watchdog, batch size.
- `errors`: one error tree under `TransportError`, `classify` (bleak -> ours) and the pure `retry_delay_s`.
- `StreamLedger`: per-sample accounting of a transport's events (delivered or gap), for tests and benches.
"""

from sensor_gateway.ble.accounting import GapRecord, StreamLedger
from sensor_gateway.ble.config import BleConfig, PairedSensor, Pairing, load_pairing, save_pairing
from sensor_gateway.ble.errors import BleTransportError, PairingError, classify, retry_delay_s
from sensor_gateway.ble.pairing import pair, pair_kit
from sensor_gateway.ble.transport import BleTransport, make_ble_transport

__all__ = [
    "BleConfig",
    "BleTransport",
    "BleTransportError",
    "GapRecord",
    "PairedSensor",
    "Pairing",
    "PairingError",
    "StreamLedger",
    "classify",
    "load_pairing",
    "make_ble_transport",
    "pair",
    "pair_kit",
    "retry_delay_s",
    "save_pairing",
]
