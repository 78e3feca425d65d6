"""Test harness for the BLE layer: a private D-Bus bus, bluezoo (GPL-2.0, own process, patched by
`bluezoo_launcher.py`) and the emulated sensor kit, for the real bleak to talk to. See `stack.BleStack`."""

from .stack import BleStack, StackError

__all__ = ["BleStack", "StackError"]
