"""The recording/1 folder format: reads the real validation data as it is, round-trips, rejects bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from analytics.errors import RecordingError
from analytics.recording import ExerciseMarker, Recording, SensorData, read_recording, write_recording
from gaitsym.cli import main
from tests.datasets import MOBGAP_LAB, shared_validation

VALIDATION = MOBGAP_LAB


def _recording(n: int = 500, rate: float = 100.0) -> Recording:
    rng = np.random.default_rng(3)
    t = np.arange(n) / rate
    sensors = {}
    for placement in ("pelvis", "left_thigh", "right_thigh"):
        acc = rng.normal(0, 0.5, (n, 3)) + np.array([0.0, 0.0, 9.80665])
        sensors[placement] = SensorData(placement, acc, rng.normal(0, 20, (n, 3)))
    markers = (
        ExerciseMarker(1.0, "start", "clam", "left", 1),
        ExerciseMarker(3.0, "end", "clam", "left", 1),
    )
    return Recording(rate, t, sensors, {"id": "p-1"}, "test", markers, {"note": "kept"})


def test_reads_the_real_validation_recordings_as_they_are():
    trials = sorted(VALIDATION.iterdir())
    assert len(trials) == 3
    for trial in trials:
        rec = read_recording(trial)
        assert list(rec.sensors) == ["pelvis"]
        assert rec.sampling_rate_hz == 100.0
        assert rec.sensors["pelvis"].acc_mps2.shape == (rec.n_samples, 3)
        norm = np.linalg.norm(rec.sensors["pelvis"].acc_mps2, axis=1)
        assert 9.0 < np.median(norm) < 10.6  # m/s^2 with gravity
        assert "sensor_frames" in rec.meta


def test_round_trip_keeps_every_value_within_the_written_precision(tmp_path):
    original = _recording()
    write_recording(tmp_path / "r", original, truth={"schema": "x"})
    back = read_recording(tmp_path / "r")
    assert back.markers == original.markers
    assert back.subject == {"id": "p-1"} and back.task == "test" and back.meta == {"note": "kept"}
    np.testing.assert_allclose(back.time_s, original.time_s, atol=1e-6)
    for placement, data in original.sensors.items():
        np.testing.assert_allclose(back.sensors[placement].acc_mps2, data.acc_mps2, atol=1e-5)
        np.testing.assert_allclose(back.sensors[placement].gyr_dps, data.gyr_dps, atol=1e-4)
    assert json.loads((tmp_path / "r" / "truth.json").read_text()) == {"schema": "x"}


def test_write_refuses_to_overwrite_a_recording(tmp_path):
    write_recording(tmp_path / "r", _recording())
    with pytest.raises(RecordingError, match="already holds a recording"):
        write_recording(tmp_path / "r", _recording())


def _copy(tmp_path: Path) -> Path:
    folder = tmp_path / "rec"
    write_recording(folder, _recording())
    return folder


def _edit_csv(path: Path, edit) -> None:
    lines = path.read_text().splitlines()
    edit(lines)
    path.write_text("\n".join(lines) + "\n")


def _edit_meta(folder: Path, **changes) -> None:
    meta = json.loads((folder / "recording.json").read_text())
    meta.update(changes)
    (folder / "recording.json").write_text(json.dumps(meta))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: (f / "recording.json").unlink(), "recording.json.*missing"),
        (lambda f: (f / "pelvis.csv").unlink(), "pelvis.csv.*missing"),
        (lambda f: _edit_meta(f, units={"acc": "g", "gyr": "deg/s"}), "units.acc must be 'm/s\\^2'"),
        (lambda f: _edit_meta(f, units={"acc": "m/s^2", "gyr": "rad/s"}), "units.gyr"),
        (lambda f: _edit_meta(f, sampling_rate_hz=0), "sampling_rate_hz must be a positive"),
        (lambda f: _edit_meta(f, format="recording/9"), "format must be"),
        (lambda f: _edit_meta(f, sensors={"head": "pelvis.csv"}), "unknown placement 'head'"),
        (lambda f: _edit_meta(f, sensors={"pelvis": "../x.csv"}), "must be a file name"),
        (
            lambda f: _edit_csv(f / "pelvis.csv", lambda L: L.__setitem__(0, L[0].replace("gyr_z", "gz"))),
            "missing column.*gyr_z",
        ),
        (
            lambda f: _edit_csv(f / "pelvis.csv", lambda L: L.__setitem__(5, "0.04,1,2,nan,0,0,0")),
            "NaN.*acc_z",
        ),
        (
            lambda f: _edit_csv(f / "pelvis.csv", lambda L: L.__setitem__(5, "0.01,1,2,9,0,0,0")),
            "not strictly increasing",
        ),
        (
            lambda f: _edit_csv(f / "pelvis.csv", lambda L: L.__delitem__(slice(5, 10))),
            "does not match sampling",
        ),
        (lambda f: _edit_csv(f / "left_thigh.csv", lambda L: L.pop()), "share one timeline"),
        (
            lambda f: _edit_csv(f / "pelvis.csv", lambda L: L.__setitem__(3, "0.02,x,2,9,0,0,0")),
            "must be a number",
        ),
        (
            lambda f: (f / "events.csv").write_text("t_s,event,exercise,side,set\n1,start,yoga,left,1\n"),
            "exercise.*'yoga'",
        ),
        (
            lambda f: (f / "events.csv").write_text("t_s,event,exercise,side,set\n1,start,clam,left,1\n"),
            "never ends",
        ),
        (
            lambda f: (f / "events.csv").write_text("t_s,event,exercise,side,set\n99,start,clam,left,1\n"),
            "outside the recording",
        ),
    ],
)
def test_bad_recordings_fail_naming_what_is_wrong(tmp_path, damage, message):
    folder = _copy(tmp_path)
    damage(folder)
    with pytest.raises(RecordingError, match=message):
        read_recording(folder)


def test_acceleration_in_g_is_recognised(tmp_path):
    rec = _recording()
    in_g = {p: SensorData(p, s.acc_mps2 / 9.80665, s.gyr_dps) for p, s in rec.sensors.items()}
    write_recording(tmp_path / "g", Recording(rec.sampling_rate_hz, rec.time_s, in_g))
    with pytest.raises(RecordingError, match="looks like g"):
        read_recording(tmp_path / "g")


def test_cli_check_accepts_real_data_and_rejects_bad(tmp_path, capsys):
    trial = sorted(VALIDATION.iterdir())[0]
    assert main(["recording", "check", str(trial), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["placements"] == ["pelvis"] and out["n_samples"] > 1000
    broken = tmp_path / "broken"
    shutil.copytree(trial, broken)
    (broken / "pelvis.csv").write_text("time_s,acc_x\n0,1\n")
    assert main(["recording", "check", str(broken)]) == 2
    assert "missing column" in capsys.readouterr().err


def test_a_later_file_with_its_own_broken_timeline_is_named(tmp_path):
    """Files whose time column equals the first file's skip the repeated time checks; any other is checked."""
    folder = _copy(tmp_path)
    _edit_csv(folder / "left_thigh.csv", lambda L: L.__setitem__(5, "0.01" + L[5][L[5].index(",") :]))
    with pytest.raises(RecordingError, match=r"left_thigh\.csv.*not strictly increasing"):
        read_recording(folder)


def test_sensors_share_one_time_array_and_channels_are_contiguous(tmp_path):
    rec = read_recording(_copy(tmp_path))
    original = _recording()
    for placement, sensor in rec.sensors.items():
        assert sensor.acc_mps2.shape == sensor.gyr_dps.shape == (rec.n_samples, 3)
        assert all(sensor.acc_mps2[:, i].flags["C_CONTIGUOUS"] for i in range(3))
        assert np.allclose(sensor.gyr_dps, original.sensors[placement].gyr_dps, atol=1e-4)
    assert rec.time_s.flags["C_CONTIGUOUS"]


def test_reads_the_real_three_sensor_trial_from_the_shared_folder():
    """The GPL-licensed three-sensor trial is never vendored: it is read from the shared folder (skipped, saying
    why, only where that folder is absent)."""
    trial = shared_validation("neura-sample") / "S02-Trial-Walk-1"
    rec = read_recording(trial)
    assert rec.sampling_rate_hz == 100.0
    assert set(rec.sensors) == {"pelvis", "left_thigh", "right_thigh"}
    assert rec.n_samples == len(rec.time_s) and rec.duration_s > 10.0  # one shared clock, standing and walking
