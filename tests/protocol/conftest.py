"""Shared fixture for the firmware_protocol tests: the `gaitsym` command."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest


@pytest.fixture
def gaitsym() -> Callable[[Sequence[str] | None], int]:
    """The `gaitsym` console command's entry point, called in process."""
    from gaitsym.cli import main

    return main
