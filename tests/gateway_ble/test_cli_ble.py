"""`gaitsym gateway pair`, `gaitsym gateway --ble` and `gaitsym gateway --virtual-kit --ble` as a user runs them
(the pairing on the bluezoo stack; the virtual BLE kit as a subprocess against a real Mosquitto)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gaitsym.cli import main
from gaitsym_common.uplink import envelope as env
from testing.ble_harness import BleStack
from testing.ble_harness.standin import kit_call
from testing.gateway.worker_stub import AckingWorker
from testing.servers import Mosquitto

REPO = Path(__file__).resolve().parents[2]


def test_pair_command_pins_the_kit_and_refuses_a_neighbour(
    ble_stack: BleStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    assert main(["gateway", "pair", "--adapter", "hci0", "--state-dir", str(state), "--scan-s", "1"]) == 0
    pinned = json.loads((state / "ble_pairing.json").read_text())
    assert {p: s["serial"] for p, s in pinned["sensors"].items()} == {
        "pelvis": "GS1-PLV-0001",
        "left_thigh": "GS1-LTH-0002",
        "right_thigh": "GS1-RTH-0003",
    }
    kit_call(ble_stack, "power_on", "neighbour")
    other = tmp_path / "other"
    capsys.readouterr()
    assert main(["gateway", "pair", "--adapter", "hci0", "--state-dir", str(other), "--scan-s", "1"]) == 2
    err = capsys.readouterr().err
    assert "2 sensors claim pelvis" in err and "GS1-PLV-0904" in err and "GS1-PLV-0001" in err, err
    assert not (other / "ble_pairing.json").exists()


def test_ble_gateway_without_a_pairing_says_to_pair_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gateway", "--ble", "--state-dir", str(tmp_path), "--broker", "mqtt://127.0.0.1:1"]) == 2
    assert "run `gaitsym gateway pair`" in capsys.readouterr().err


def test_virtual_ble_kit_refuses_to_be_sped_up(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gateway", "--virtual-kit", "--ble", "--speed", "10", "--state-dir", str(tmp_path)]) == 2
    assert "real time" in capsys.readouterr().err


@pytest.mark.slow
def test_virtual_kit_over_ble_command_streams_the_simulated_session_to_the_worker(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """The whole walking session (the shortest the simulator makes, ~37 s) in real time, then exit 0."""
    worker = AckingWorker(mosquitto.port, "P-cli")
    env_ = dict(os.environ, PYTHONPATH=str(REPO))
    env_.pop("DBUS_SYSTEM_BUS_ADDRESS", None)  # the command starts its own private bus
    argv = [sys.executable, "-m", "gaitsym.cli", "gateway", "--virtual-kit", "--ble", "--minutes", "0.62"]
    argv += ["--subject", "P-cli", "--broker", f"mqtt://127.0.0.1:{mosquitto.port}", "--state-dir", str(tmp_path)]
    try:
        done = subprocess.run(argv, cwd=REPO, env=env_, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "GS1-PLV-0001" in done.stderr  # paired the emulated kit
        time.sleep(0.3)
        got = worker.unique_samples()
        gaps = [m for m in worker.messages if isinstance(m, env.Gap)]
        markers = [m.type for m in worker.messages if isinstance(m, env.Marker)]
    finally:
        worker.close()
    assert sorted(serial for serial, _ in got) == ["GS1-LTH-0002", "GS1-PLV-0001", "GS1-RTH-0003"]
    for key, seqs in got.items():
        assert seqs == list(range(len(seqs))), f"{key}: not contiguous from 0"
        assert len(seqs) >= 30 * 100, f"{key}: {len(seqs)} samples for a ~37 s session"
    assert not gaps
    assert markers[0] == "session_start" and "session_end" in markers
