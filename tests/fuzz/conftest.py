"""Fuzz tests print their seed: once on the terminal, and into every test's captured output (shown on failure).
Replay a run with ``GAITSYM_FUZZ_SEED=<seed>``; ``GAITSYM_FUZZ_EXAMPLES=<n>`` runs n examples per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testing.fuzz.poison import seed_line

_printed = False


@pytest.fixture(autouse=True)
def _print_fuzz_seed(capsys: pytest.CaptureFixture[str]) -> Iterator[None]:
    global _printed
    if not _printed:
        with capsys.disabled():
            print(f"\n{seed_line()}")
        _printed = True
    print(seed_line())
    yield
