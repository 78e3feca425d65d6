"""`gaitsym protocol decode`, through gaitsym.cli.main."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from fp_testlib import load_vectors

Gaitsym = Callable[[Sequence[str]], int]

IMU = {v["name"]: v for v in load_vectors("imu_packet.json")}
INFO = {v["name"]: v for v in load_vectors("sensor_info.json")}
CONTROL = {v["name"]: v for v in load_vectors("control.json")}


def _run(gaitsym: Gaitsym, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = gaitsym(["protocol", "decode", *argv])
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_imu_packet_raw_and_physical(gaitsym: Gaitsym, capsys: pytest.CaptureFixture[str]) -> None:
    vector = IMU["one_sample_at_rest"]
    code, out = _run(gaitsym, capsys, vector["hex"])
    assert code == 0
    assert out["kind"] == "imu"
    assert out["length_bytes"] == 26
    for key, value in vector["decoded"].items():
        assert out[key] == value
    assert out["samples"] == [[0, 0, 4096, 0, 0, 0]]
    assert out["acc_mps2"] == [[0.0, 0.0, 9.80665]]
    assert out["gyr_dps"] == [[0.0, 0.0, 0.0]]
    assert out["crc16"] == "0x" + vector["hex"][-2:].upper() + vector["hex"][-4:-2].upper()


def test_bad_crc_prints_error_and_exits_2(gaitsym: Gaitsym, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(gaitsym, capsys, IMU["bad_crc"]["hex"])
    assert code == 2
    assert out["error"] == "BadCrc"
    assert out["field"] == "crc16"
    assert out["message"].startswith("crc16: ")


def test_hex_separators_ignored(gaitsym: Gaitsym, capsys: pytest.CaptureFixture[str]) -> None:
    hex_text = IMU["one_sample_at_rest"]["hex"]
    spaced = " ".join(hex_text[i : i + 2] for i in range(0, len(hex_text), 2))
    coloned = ":".join(hex_text[i : i + 2] for i in range(0, len(hex_text), 2)).upper()
    assert _run(gaitsym, capsys, spaced)[0] == 0
    assert _run(gaitsym, capsys, coloned)[0] == 0


def test_bad_hex(gaitsym: Gaitsym, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(gaitsym, capsys, "01zz")
    assert code == 2
    assert out["error"] == "BadHex" and out["field"] == "hex"


@pytest.mark.parametrize(
    ("hex_text", "kind", "expected"),
    [
        (INFO["pelvis_100hz"]["hex"], "sensor-info", INFO["pelvis_100hz"]["decoded"]),
        (CONTROL["set_sample_rate_100hz"]["hex"], "control", {"opcode": "SET_SAMPLE_RATE", "sample_rate_hz": 100}),
        (CONTROL["start_streaming"]["hex"], "control", {"opcode": "START_STREAMING"}),
        (CONTROL["reply_time_sync_ok"]["hex"], "control-reply", CONTROL["reply_time_sync_ok"]["decoded"]),
        (
            CONTROL["reply_set_sample_rate_busy"]["hex"],
            "control-reply",
            {"opcode": "SET_SAMPLE_RATE", "status": "BUSY"},
        ),
    ],
)
def test_auto_kind(
    gaitsym: Gaitsym, capsys: pytest.CaptureFixture[str], hex_text: str, kind: str, expected: dict[str, Any]
) -> None:
    code, out = _run(gaitsym, capsys, hex_text)
    assert code == 0
    assert out["kind"] == kind
    for key, value in expected.items():
        assert out[key] == value


def test_auto_reports_the_error_of_the_kind_the_length_suggests(
    gaitsym: Gaitsym, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _run(gaitsym, capsys, INFO["serial_non_ascii_utf8"]["hex"])
    assert code == 2
    assert (out["kind"], out["error"], out["field"]) == ("sensor-info", "InvalidField", "serial")
    code, out = _run(gaitsym, capsys, IMU["sample_count_20"]["hex"])
    assert (code, out["kind"], out["error"], out["field"]) == (2, "imu", "InvalidField", "sample_count")


@pytest.mark.parametrize(
    ("file_name", "kind_of"),
    [
        ("imu_packet.json", lambda v: "imu"),
        ("sensor_info.json", lambda v: "sensor-info"),
        ("control.json", lambda v: "control" if v["message"] == "command" else "control-reply"),
    ],
)
def test_every_vector_with_explicit_kind(
    gaitsym: Gaitsym,
    capsys: pytest.CaptureFixture[str],
    file_name: str,
    kind_of: Callable[[dict[str, Any]], str],
) -> None:
    for vector in load_vectors(file_name):
        code, out = _run(gaitsym, capsys, vector["hex"], "--kind", kind_of(vector))
        if "decoded" in vector:
            assert code == 0, vector["name"]
            for key, value in vector["decoded"].items():
                assert out[key] == value, vector["name"]
        else:
            assert code == 2, vector["name"]
            assert (out["error"], out["field"]) == (vector["error"], vector["field"]), vector["name"]
