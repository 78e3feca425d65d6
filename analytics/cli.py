"""The `gaitsym` command: one entry point, one subcommand per job.

Each subcommand is parsed here and handled by the package that owns the job, imported only when the
subcommand runs (so `gaitsym protocol decode` does not import numpy, and a gateway does not import the
analytics worker). Handlers take the parsed arguments and return a process exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

Handler = Callable[[argparse.Namespace], int]


def _lazy(target: str) -> Handler:
    """`"package.module:function"` -> a handler that imports the module when called."""
    module_name, func_name = target.split(":")

    def run(args: argparse.Namespace) -> int:
        func: Handler = getattr(importlib.import_module(module_name), func_name)
        return func(args)

    return run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gaitsym",
        description="Measure pelvic control at home: pelvis + thigh IMUs -> gateway -> MQTT -> analytics.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    # --- firmware_protocol: the sensor's bytes -------------------------------------------------------
    protocol = sub.add_parser("protocol", help="inspect sensor wire-format packets")
    protocol_sub = protocol.add_subparsers(dest="protocol_command", metavar="ACTION", required=True)
    decode = protocol_sub.add_parser(
        "decode", help="decode one packet given as hex and print it as JSON (or the error naming the field)"
    )
    decode.add_argument("hex", help="packet bytes as hex; spaces and colons are ignored")
    decode.add_argument(
        "--kind",
        choices=["auto", "imu", "sensor-info", "control", "control-reply"],
        default="auto",
        help="what the bytes are (default: IMU data packet, then the others by length)",
    )
    decode.set_defaults(handler=_lazy("firmware_protocol.cli:decode_command"))

    # --- sensor_gateway.virtual_kit: a simulated patient -----------------------------------------------
    simulate = sub.add_parser(
        "simulate",
        help="simulate a home session with pelvis and thigh sensors; writes a recording + truth.json",
    )
    simulate.add_argument("out_dir", help="recording folder to create")
    simulate.set_defaults(handler=_lazy("sensor_gateway.virtual_kit.cli:simulate_command"))
    _defer_arguments(simulate, "sensor_gateway.virtual_kit.cli:add_simulate_arguments")

    # --- analytics.recording: the recording folder format -----------------------------------------------
    recording = sub.add_parser("recording", help="check or summarise a recording folder")
    recording_sub = recording.add_subparsers(dest="recording_command", metavar="ACTION", required=True)
    check = recording_sub.add_parser("check", help="validate a recording folder and summarise it")
    check.add_argument("recording_dir")
    check.add_argument("--json", action="store_true", help="print the summary as JSON")
    check.set_defaults(handler=_lazy("analytics.recording.cli:check_command"))

    # --- the main job, wired step by step -------------------------------------------------------------
    demo = sub.add_parser("demo", help="run the longest real chain that exists on an embedded default")
    demo.add_argument("--out", default="out/demo", help="working folder (default: out/demo)")
    demo.add_argument("--seed", type=int, default=1, help="simulation seed (default: 1)")
    demo.add_argument("--minutes", type=float, default=None, help="session length (default: the script's)")
    demo.set_defaults(handler=_lazy("analytics.demo:demo_command"))
    return parser


def _defer_arguments(parser: argparse.ArgumentParser, target: str) -> None:
    """Let the owning module declare its own options (they stay next to the code that reads them)."""
    module_name, func_name = target.split(":")
    getattr(importlib.import_module(module_name), func_name)(parser)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
