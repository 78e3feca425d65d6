"""Fuzz the store's packed raw parts: what it reads back (`raw_packed.unpack`; another writer's, another version's
or a hand-made point gives `InvalidStoredPart` or samples that keep every promise a reader relies on), and what it
writes (`raw_packed.pack`: every batch the write rule lets through comes back bit for bit).
Seeded and printed (tests/fuzz/conftest.py); replay with GAITSYM_FUZZ_SEED=<seed>."""

from __future__ import annotations

from pathlib import Path

from testing.fuzz.runner import run_target


def test_stored_packed_parts_read_back_or_raise_invalid_stored_part(tmp_path: Path) -> None:
    assert run_target("store packed raw part read back", tmp_path, examples=800) >= 800


def test_every_batch_the_write_rule_lets_through_packs_and_comes_back_bit_for_bit(tmp_path: Path) -> None:
    assert run_target("store packed raw parts round trip", tmp_path, examples=300) >= 300
