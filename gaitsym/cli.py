"""The `gaitsym` command: one entry point, one subcommand per job.

Each package declares its own subcommands next to the code that runs them: a light `cli` module (nothing
heavy imported at module level) with ``register(subparsers)``, whose parsers set ``handler`` to a function
``(args) -> exit code`` that imports the real work only when it runs. `command_modules` imports them, in the
order `gaitsym --help` shows them, following a sample's path. The imports are written out (inside the function,
so that importing this module stays cheap) so that the import-linter layer contracts see them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from types import ModuleType

Handler = Callable[[argparse.Namespace], int]


def command_modules() -> tuple[ModuleType, ...]:
    from analytics.pipeline import cli as analyze_cli
    from analytics.recording import cli as recording_cli
    from analytics.stores import cli as results_cli
    from analytics.stores import plan_cli, store_cli
    from analytics.worker import cli as worker_cli
    from export import cli as export_cli
    from firmware_protocol import cli as protocol_cli
    from gaitsym import clinic_cli, demo, gateway_cli
    from report import cli as report_cli
    from simulator import cli as simulate_cli

    return (
        protocol_cli,  # protocol decode
        simulate_cli,  # simulate
        gateway_cli,  # gateway, session
        recording_cli,  # recording check
        results_cli,  # results
        store_cli,  # store raw-layout
        report_cli,  # report
        export_cli,  # export
        plan_cli,  # plan
        analyze_cli,  # analyze
        worker_cli,  # worker, reanalyze
        demo,  # demo
        clinic_cli,  # clinic init|influx-setup, enrol
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gaitsym",
        description="Measure pelvic control at home: pelvis + thigh IMUs -> gateway -> MQTT -> analytics.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in command_modules():
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
