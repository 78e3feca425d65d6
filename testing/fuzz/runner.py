"""Run one fuzz target for a fixed number of examples with the campaign's seed (tests and bench share it)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import given, seed
from hypothesis import strategies as st

from testing.fuzz.poison import FUZZ_SEED, fuzz_settings
from testing.fuzz.targets import TARGETS


def fuzz(name: str, folder: Path, examples: int, fuzz_seed: int = FUZZ_SEED) -> tuple[int, BaseException | None]:
    """Fuzz target ``name`` with ``examples`` examples: (inputs its check ran on, the failure or None). Hypothesis
    stops at the first failure and replays it once: that replay counts too."""
    target = next(t for t in TARGETS if t.name == name)
    strategy, check, close = target.open(folder)
    count = 0

    def counted(example: Any) -> None:
        nonlocal count
        count += 1
        check(example)

    try:
        _given(strategy, counted, examples, fuzz_seed)()
    except Exception as exc:  # the target's failure, handed to the caller with the count
        return count, exc
    finally:
        close()
    return count, None


def run_target(name: str, folder: Path, examples: int, fuzz_seed: int = FUZZ_SEED) -> int:
    """`fuzz`, raising the target's failure (with its example); returns how many inputs were checked."""
    count, failure = fuzz(name, folder, examples, fuzz_seed)
    if failure is not None:
        raise failure
    return count


def _given(strategy: st.SearchStrategy[Any], check: Callable[[Any], None], examples: int, fuzz_seed: int) -> Any:
    @seed(fuzz_seed)
    @fuzz_settings(examples)
    @given(strategy)
    def run(example: Any) -> None:
        check(example)

    return run
