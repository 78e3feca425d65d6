"""Fuzz the uplink's readers: the envelope decoder, the worker's message decoding (decode_message, batch_samples,
the store keys) and a whole worker turn (decode, store, quarantine, acknowledge) on an embedded store.

Structure-aware mutations of the golden vectors (huge integers, 5,000-digit numbers, 1e300, -0.0, 100,000 levels
of nesting, wrong types, long strings and lists), consistent raw batches with edge numbers, and byte flips.
Seeded and printed (tests/fuzz/conftest.py); replay with GAITSYM_FUZZ_SEED=<seed>."""

from __future__ import annotations

from pathlib import Path

from testing.fuzz.runner import run_target


def test_envelope_decode_raises_only_uplink_errors(tmp_path: Path) -> None:
    assert run_target("uplink envelope decode", tmp_path, examples=800) >= 800


def test_worker_decoding_raises_only_malformed_message_and_keeps_store_keys_distinct(tmp_path: Path) -> None:
    assert run_target("worker decode_message + batch_samples", tmp_path, examples=800) >= 800


def test_a_worker_turn_stores_or_quarantines_every_payload_and_keeps_going(tmp_path: Path) -> None:
    assert run_target("worker turn (decode, store, quarantine, ack)", tmp_path, examples=400) >= 400
