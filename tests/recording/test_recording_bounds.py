"""A recording folder is untrusted input: what the reader reads is bounded, and every refusal is a RecordingError
naming the file and what is wrong (never a traceback, never a file outside the folder, never a hang)."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.errors import RecordingError
from analytics.recording import Recording, SensorData, read_recording, write_recording
from analytics.recording.io import ACC_LIMIT_MPS2, GYR_LIMIT_DPS, MAX_METADATA_BYTES
from gaitsym.cli import main

N = 300


def _write(folder: Path, acc: np.ndarray | None = None, gyr: np.ndarray | None = None) -> Path:
    rng = np.random.default_rng(5)
    base_acc = rng.normal(0, 0.3, (N, 3)) + np.array([0.0, 0.0, 9.80665])
    sensors = {
        "pelvis": SensorData(
            "pelvis", base_acc if acc is None else acc, rng.normal(0, 10, (N, 3)) if gyr is None else gyr
        )
    }
    return write_recording(folder, Recording(100.0, np.arange(N) / 100.0, sensors, {"id": "p-1"}, "t"))


def _set_cell(csv: Path, row: int, column: int, value: str) -> None:
    lines = csv.read_text().splitlines()
    cells = lines[row].split(",")
    cells[column] = value
    lines[row] = ",".join(cells)
    csv.write_text("\n".join(lines) + "\n")


def _refused(folder: Path, *fragments: str) -> RecordingError:
    with pytest.raises(RecordingError) as info:
        read_recording(folder)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)
    return info.value


def _cli_refuses(folder: Path, capsys: pytest.CaptureFixture[str], fragment: str) -> None:
    assert main(["recording", "check", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and fragment in err, err


# --- physical ranges ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "value", "name"),
    [(1, "1e308", "acc_x"), (3, "-157.5", "acc_z"), (4, "2000.5", "gyr_x"), (6, "-1e20", "gyr_z")],
)
def test_values_beyond_what_a_sensor_measures_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], column: int, value: str, name: str
) -> None:
    folder = _write(tmp_path / "r")
    _set_cell(folder / "pelvis.csv", 7, column, value)
    _refused(folder, "pelvis.csv", name, "data row 7", "beyond")
    _cli_refuses(folder, capsys, name)


def test_full_scale_values_are_accepted(tmp_path: Path) -> None:
    acc = np.tile([0.0, 0.0, 9.80665], (N, 1))
    acc[10] = [ACC_LIMIT_MPS2, -ACC_LIMIT_MPS2, 9.80665]
    gyr = np.zeros((N, 3))
    gyr[11] = [GYR_LIMIT_DPS, -GYR_LIMIT_DPS, 0.0]
    rec = read_recording(_write(tmp_path / "r", acc, gyr))
    assert rec.sensors["pelvis"].acc_mps2[10, 0] == pytest.approx(16 * 9.80665)
    assert rec.sensors["pelvis"].gyr_dps[11, 1] == -2000.0


@pytest.mark.parametrize(
    ("rate", "fragment"),
    [
        ("1" + "0" * 399, "characters"),
        ("1e400", "sampling_rate_hz"),
        ("5000", "sampling_rate_hz"),
        ("0.5", "sampling_rate_hz"),
        ("NaN", "NaN"),
        ("-Infinity", "Infinity"),
    ],
)
def test_absurd_sampling_rates_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rate: str, fragment: str
) -> None:
    folder = _write(tmp_path / "r")
    meta = folder / "recording.json"
    meta.write_text(meta.read_text().replace('"sampling_rate_hz": 100.0', f'"sampling_rate_hz": {rate}'))
    _refused(folder, "recording.json", fragment)
    _cli_refuses(folder, capsys, fragment)


# --- recording.json: size, depth, numbers ------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [40, 100_000])
def test_deeply_nested_json_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], depth: int) -> None:
    folder = _write(tmp_path / "r")
    meta = json.loads((folder / "recording.json").read_text())
    text = json.dumps(meta)[:-1] + ', "subject_notes": ' + "[" * depth + "]" * depth + "}"
    (folder / "recording.json").write_text(text)
    _refused(folder, "recording.json", "nested deeper")
    _cli_refuses(folder, capsys, "nested deeper")


def test_huge_numbers_anywhere_in_the_settings_are_refused(tmp_path: Path) -> None:
    folder = _write(tmp_path / "r")
    meta = json.loads((folder / "recording.json").read_text())
    text = json.dumps(meta)[:-1] + ', "subject_weight": ' + "9" * 5000 + "}"
    (folder / "recording.json").write_text(text)
    _refused(folder, "recording.json", "5000 characters")


def test_oversized_settings_file_is_refused(tmp_path: Path) -> None:
    folder = _write(tmp_path / "r")
    meta = json.loads((folder / "recording.json").read_text())
    meta["notes"] = "x" * MAX_METADATA_BYTES
    (folder / "recording.json").write_text(json.dumps(meta))
    _refused(folder, "recording.json", "bytes")


# --- nothing outside the folder ---------------------------------------------------------------------------------


def test_a_sensor_file_that_is_a_symlink_out_of_the_folder_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = _write(tmp_path / "elsewhere")
    folder = _write(tmp_path / "r")
    (folder / "pelvis.csv").unlink()
    (folder / "pelvis.csv").symlink_to(outside / "pelvis.csv")
    _refused(folder, "pelvis.csv", "symbolic link")
    _cli_refuses(folder, capsys, "symbolic link")


def test_settings_and_events_that_are_symlinks_are_refused(tmp_path: Path) -> None:
    outside = _write(tmp_path / "elsewhere")
    folder = _write(tmp_path / "r")
    (folder / "events.csv").symlink_to(tmp_path / "no-such-file")  # dangling: still refused, not skipped
    _refused(folder, "events.csv", "symbolic link")
    (folder / "events.csv").unlink()
    (folder / "recording.json").unlink()
    (folder / "recording.json").symlink_to(outside / "recording.json")
    _refused(folder, "recording.json", "symbolic link")


def test_a_pipe_in_place_of_a_file_is_refused_without_waiting(tmp_path: Path) -> None:
    folder = _write(tmp_path / "r")
    os.mkfifo(folder / "events.csv")
    _refused(folder, "events.csv", "not a regular file")
    (folder / "pelvis.csv").unlink()
    (folder / "pelvis.csv").mkdir()
    _refused(folder, "pelvis.csv", "not a regular file")


def test_truth_json_symlink_is_not_reported_as_present(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _write(tmp_path / "r")
    (tmp_path / "secret.json").write_text("{}")
    (folder / "truth.json").symlink_to(tmp_path / "secret.json")
    assert main(["recording", "check", str(folder), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["has_truth"] is False


# --- whatever recording.json holds: a RecordingError or a recording, nothing else -------------------------------


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_damage_to_the_settings_is_a_recording_error(tmp_path: Path, data: st.DataObject) -> None:
    folder = tmp_path / "fuzz"
    if not folder.exists():
        _write(folder)
    original = (folder / "recording.json").read_bytes()
    try:
        cut = data.draw(st.integers(0, len(original)))
        insert = data.draw(st.binary(max_size=40) | st.sampled_from([b"[" * 5000, b"9" * 500, b"1e999", b"NaN"]))
        drop = data.draw(st.integers(0, 20))
        (folder / "recording.json").write_bytes(original[:cut] + insert + original[cut + drop :])
        with contextlib.suppress(RecordingError):
            read_recording(folder)
    finally:
        (folder / "recording.json").write_bytes(original)


def test_a_sensor_file_name_no_file_system_can_hold_is_refused(tmp_path: Path) -> None:
    folder = _write(tmp_path / "rec")
    meta = json.loads((folder / "recording.json").read_text())
    meta["sensors"]["pelvis"] = "pelvis\ud800.csv"  # a lone surrogate: valid JSON (escaped), not encodable
    (folder / "recording.json").write_text(json.dumps(meta))
    _refused(folder, "not a file name this system can encode")


@pytest.mark.parametrize("value", ["inf", "1e400", "9" * 400, "1.5"])
def test_an_exercise_set_that_is_not_a_whole_number_is_refused(tmp_path: Path, value: str) -> None:
    folder = _write(tmp_path / "rec")
    (folder / "events.csv").write_text(
        f"t_s,event,exercise,side,set\n0.5,start,clam,left,{value}\n1.5,end,clam,left,{value}\n"
    )
    _refused(folder, "events.csv line 2", "set", "whole number")
