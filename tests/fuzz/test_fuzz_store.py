"""Fuzz what the store reads back of its packed raw parts (`raw_packed.unpack`): another writer's, another
version's or a hand-made point gives `InvalidStoredPart` or samples that keep every promise a reader relies on.
Seeded and printed (tests/fuzz/conftest.py); replay with GAITSYM_FUZZ_SEED=<seed>."""

from __future__ import annotations

from pathlib import Path

from testing.fuzz.runner import run_target


def test_stored_packed_parts_read_back_or_raise_invalid_stored_part(tmp_path: Path) -> None:
    assert run_target("store packed raw part read back", tmp_path, examples=800) >= 800
