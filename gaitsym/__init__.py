"""The `gaitsym` command line and the demo: the top layer, which wires the gateway, the analytics side and the
simulator into processes. Nothing below imports it."""
