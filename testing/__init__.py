"""Development and test tools, not shipped (not in the wheel): the emulated BLE sensor kit (`ble_peripheral`) and
the BLE harness on bluezoo (`ble_harness`). Tests and benches import it; the product never does."""
