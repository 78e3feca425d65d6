"""Shared fixture for the firmware_protocol tests: the `gaitsym` command."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import pytest


@pytest.fixture
def gaitsym(monkeypatch: pytest.MonkeyPatch) -> Callable[[Sequence[str]], int]:
    """analytics.cli.main, tolerant of other packages' subcommands that are not written yet.

    build_parser() imports e.g. sensor_gateway.virtual_kit.cli to declare `simulate`'s options; while such a
    module does not exist, skipping its options keeps `gaitsym protocol ...` testable (it does not use them).
    """
    import analytics.cli as cli

    real = cli._defer_arguments

    def tolerant(parser: Any, target: str) -> None:
        with contextlib.suppress(ModuleNotFoundError):
            real(parser, target)

    monkeypatch.setattr(cli, "_defer_arguments", tolerant)
    return cli.main
