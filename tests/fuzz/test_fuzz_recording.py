"""Fuzz the recording folder reader: a valid folder with recording.json mutated structure-aware or a CSV
(sensor or events) mutated cell by cell or byte by byte must give a RecordingError naming the file, or a
recording. Seeded and printed (tests/fuzz/conftest.py); replay with GAITSYM_FUZZ_SEED=<seed>."""

from __future__ import annotations

from pathlib import Path

from testing.fuzz.runner import run_target


def test_a_mutated_recording_folder_raises_only_recording_errors(tmp_path: Path) -> None:
    assert run_target("recording folder reader", tmp_path, examples=500) >= 500
