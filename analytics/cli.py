"""The `gaitsym` command: one entry point, one subcommand per job.

Each package declares its own subcommands next to the code that runs them: a light `cli` module (nothing
heavy imported at module level) with ``register(subparsers)``, whose parsers set ``handler`` to a function
``(args) -> exit code`` that imports the real work only when it runs. `COMMAND_MODULES` lists them, in the
order `gaitsym --help` shows them, following a sample's path.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

Handler = Callable[[argparse.Namespace], int]

COMMAND_MODULES = (
    "firmware_protocol.cli",  # protocol decode
    "sensor_gateway.virtual_kit.cli",  # simulate
    "sensor_gateway.cli",  # gateway, session
    "analytics.recording.cli",  # recording check
    "analytics.stores.cli",  # results
    "analytics.pipeline.cli",  # analyze
    "analytics.worker.cli",  # worker, reanalyze
    "analytics.demo",  # demo
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gaitsym",
        description="Measure pelvic control at home: pelvis + thigh IMUs -> gateway -> MQTT -> analytics.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
