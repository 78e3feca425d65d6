"""The production gateway on the virtual kit's packet stream (the simulator), against a real Mosquitto:
through the CLI (`gaitsym gateway --virtual-kit`, `gaitsym session ...`), killed with SIGKILL and restarted,
with a sensor's link dropping, and the time-sync error of the published clock mappings.

Every assertion is about outcomes: which samples the acknowledging worker stored, which gaps it was told
about, which markers and statuses it saw. Scenarios run on the virtual host clock, faster than real time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gaitsym.gateway_virtual_kit import SESSION_CLOCK_START_FILE
from gaitsym_common.mqtt import MqttSettings, PahoLink
from gaitsym_common.uplink import envelope as env
from sensor_gateway.core import Gateway, GatewayConfig, run_for
from sensor_gateway.outbox import Outbox
from sensor_gateway.timing import VirtualHostClock
from simulator import packets
from simulator.session import simulate_session
from simulator.virtual_kit_source import virtual_kit
from testing.gateway.kit_timing import run_timing
from testing.gateway.worker_stub import AckingWorker
from testing.servers import ROOT, Mosquitto

GAITSYM = [sys.executable, "-m", "gaitsym.cli"]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _kit_truth(seed: int, minutes: float, spp: int = 10) -> dict[str, tuple[str, int, range]]:
    """placement -> (serial, boot epoch, every sequence the simulated sensor sends)."""
    session = simulate_session(seed=seed, minutes=minutes, script="walk")
    sensors = packets.simulated_sensors(session, samples_per_packet=spp)
    n = session.recording.n_samples
    return {
        p: (s.info.serial, s.info.boot_epoch, range(s.sequence_start, s.sequence_start + n)) for p, s in sensors.items()
    }


def _gaps(worker: AckingWorker) -> dict[tuple[str, int], list[env.Gap]]:
    out: dict[tuple[str, int], list[env.Gap]] = {}
    with worker.lock:
        for m in worker.messages:
            if isinstance(m, env.Gap):
                out.setdefault((m.serial, m.boot_epoch), []).append(m)
    return out


def _first_delivery_order(worker: AckingWorker) -> dict[tuple[str, int], list[int]]:
    """Each sample's sequence in the order the worker first saw it (repeats after replays removed)."""
    out: dict[tuple[str, int], list[int]] = {}
    with worker.lock:
        for key, seqs in worker.samples.items():
            seen: set[int] = set()
            out[key] = [s for s in seqs if not (s in seen or seen.add(s))]  # type: ignore[func-returns-value]
    return out


def _gateway_cmd(port: int, state: Path, subject: str, seed: int, minutes: float, speed: float) -> list[str]:
    return [
        *GAITSYM,
        "gateway",
        "--virtual-kit",
        "--subject",
        subject,
        "--broker",
        f"mqtt://127.0.0.1:{port}",
        "--state-dir",
        str(state),
        "--seed",
        str(seed),
        "--minutes",
        str(minutes),
        "--speed",
        str(speed),
        "--drain-timeout-s",
        "30",
    ]


def _wait(predicate, timeout_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _session(port: int, subject: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GAITSYM, "session", *args, "--subject", subject, "--broker", f"mqtt://127.0.0.1:{port}", "--timeout-s", "10"],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=ROOT,
        timeout=60,
    )


def test_cli_gateway_on_the_virtual_kit_with_session_commands(tmp_path: Path, mosquitto: Mosquitto) -> None:
    subject, seed, minutes = "cli-001", 2, 1.0
    worker = AckingWorker(mosquitto.port, subject)
    log = (tmp_path / "gateway.log").open("w")
    gw = subprocess.Popen(
        _gateway_cmd(mosquitto.port, tmp_path / "state", subject, seed, minutes, speed=5.0),
        stdout=log,
        stderr=subprocess.STDOUT,
        env=_env(),
        cwd=ROOT,
    )
    try:
        _wait(lambda: any(s.state == "online" for s in worker.statuses), 30, "the gateway's online status")
        started = _session(mosquitto.port, subject, "start")
        assert started.returncode == 0, started.stderr
        assert "session" in started.stdout
        mark = _session(mosquitto.port, subject, "mark", "--exercise", "clam", "--side", "left", "--set", "1")
        assert mark.returncode == 0, mark.stderr
        end = _session(mosquitto.port, subject, "mark", "--exercise", "clam", "--side", "left", "--set", "1", "--end")
        assert end.returncode == 0, end.stderr
        bad = _session(mosquitto.port, subject, "mark", "--exercise", "yoga", "--side", "left")
        assert bad.returncode == 2 and "yoga" in bad.stderr
        stopped = _session(mosquitto.port, subject, "stop")
        assert stopped.returncode == 0 and "closed" in stopped.stdout, stopped.stderr
        assert gw.wait(timeout=90) == 0, (tmp_path / "gateway.log").read_text()[-3000:]
    finally:
        if gw.poll() is None:
            gw.kill()
        log.close()
    time.sleep(0.3)
    worker.close()
    got = worker.unique_samples()
    for placement, (serial, boot, seqs) in _kit_truth(seed, minutes).items():
        assert got[(serial, boot)] == list(seqs), placement
    assert not _gaps(worker)
    markers = [m for m in worker.messages if isinstance(m, env.Marker)]
    types = [(m.type, m.source) for m in markers]
    assert ("session_start", "command") in types and ("session_end", "command") in types
    sets = [m for m in markers if m.type in ("set_start", "set_end")]
    assert [(m.type, m.exercise, m.side, m.set) for m in sets] == [
        ("set_start", "clam", "left", 1),
        ("set_end", "clam", "left", 1),
    ]
    assert all(m.last_seq.keys() == {"pelvis", "left_thigh", "right_thigh"} for m in sets)
    assert not (tmp_path / "state" / SESSION_CLOCK_START_FILE).exists()  # the run completed


def test_cli_rejects_bad_settings(tmp_path: Path) -> None:
    conf = tmp_path / "gw.toml"
    conf.write_text('subject = "demo-001"\nbrokr = "mqtt://x"\n')
    bad_key = subprocess.run(
        [*GAITSYM, "gateway", "--virtual-kit", "--config", str(conf)], capture_output=True, text=True, env=_env()
    )
    assert bad_key.returncode == 2 and "brokr" in bad_key.stderr
    bad_url = subprocess.run(
        [*GAITSYM, "session", "start", "--subject", "S1", "--broker", "http://x"],
        capture_output=True,
        text=True,
        env=_env(),
    )
    assert bad_url.returncode == 2 and "mqtt://" in bad_url.stderr


@pytest.mark.slow
def test_sigkill_and_restart_delivers_every_accepted_sample_once_and_reports_the_dead_time(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    subject, seed, minutes, speed = "kill-001", 3, 1.0, 8.0
    worker = AckingWorker(mosquitto.port, subject)
    cmd = _gateway_cmd(mosquitto.port, tmp_path / "state", subject, seed, minutes, speed)
    log = (tmp_path / "gateway.log").open("w")
    first = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=_env(), cwd=ROOT)
    _wait(lambda: sum(len(v) for v in worker.samples.values()) > 3 * 1500, 60, "15 s of samples at the worker")
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    delivered_before = {k: set(v) for k, v in worker.unique_samples().items()}
    time.sleep(1.0)  # 8 virtual seconds during which the sensors keep sending to nobody
    second = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=_env(), cwd=ROOT)
    try:
        assert second.wait(timeout=120) == 0, (tmp_path / "gateway.log").read_text()[-3000:]
    finally:
        if second.poll() is None:
            second.kill()
        log.close()
    time.sleep(0.3)
    worker.close()
    got = worker.unique_samples()
    gaps = _gaps(worker)
    order = _first_delivery_order(worker)
    for placement, (serial, boot, seqs) in _kit_truth(seed, minutes).items():
        key = (serial, boot)
        samples = set(got[key])
        missing = {s for g in gaps.get(key, []) for s in range(g.seq_first_missing, g.seq_last_missing + 1)}
        assert samples | missing == set(seqs), placement  # nothing unaccounted for
        assert not samples & missing, placement  # a gap never claims a delivered sample
        assert delivered_before[key] <= samples
        assert missing, f"{placement}: the dead time must be reported"
        assert {g.reason for g in gaps[key]} == {"link_lost"}
        assert all(g.duration_s > 0 for g in gaps[key])
        assert order[key] == sorted(order[key]), f"{placement}: new samples arrive in sequence order"
    sessions = {m.session for m in worker.messages if isinstance(m, env.Marker)}
    assert len(sessions) == 1  # the restarted gateway continued the session it had open


def _kit_gateway(tmp_path: Path, broker: Mosquitto, subject: str, seed: int, minutes: float):  # type: ignore[no-untyped-def]
    clock = VirtualHostClock(start_s=1000.0)
    kit = virtual_kit(clock, seed=seed, minutes=minutes)
    link = PahoLink(MqttSettings(port=broker.port, client_id=f"gw-{subject}", reconnect_max_s=1))
    config = GatewayConfig(subject=subject, ack_timeout_s=5.0, status_every_s=1.0, reconnect_max_s=2.0)
    gw = Gateway(config, kit.transport, link, Outbox(tmp_path / "outbox.db"), clock)
    return kit, clock, gw


def test_link_loss_is_a_gap_and_the_stream_resumes_without_restart(tmp_path: Path, mosquitto: Mosquitto) -> None:
    subject, seed, minutes = "link-001", 4, 1.0
    worker = AckingWorker(mosquitto.port, subject)
    kit, clock, gw = _kit_gateway(tmp_path, mosquitto, subject, seed, minutes)
    gw.start()
    try:
        _wait(lambda: gw.link.connected, 10, "MQTT")
        run_for(gw, kit.transport, clock, 20.0, speed=20.0)
        kit.transport.drop_link("left_thigh", 5.0)
        run_for(gw, kit.transport, clock, 3.0, speed=5.0)
        assert gw.sensors["left_thigh"].link in ("lost", "connecting")
        status_during = gw._status_payload("online")
        run_for(gw, kit.transport, clock, kit.duration_s - 23.0 + 2.0, speed=20.0)
        deadline = time.monotonic() + 30
        while len(gw.outbox) and time.monotonic() < deadline:
            run_for(gw, kit.transport, clock, 0.5, speed=10.0)
        assert len(gw.outbox) == 0
        link_after = gw.sensors["left_thigh"].link
    finally:
        gw.stop()
    time.sleep(0.3)
    worker.close()
    decoded = env.decode(status_during)
    assert isinstance(decoded, env.Status) and decoded.sensors["left_thigh"].link in ("lost", "connecting")
    assert link_after == "connected"
    got = worker.unique_samples()
    gaps = _gaps(worker)
    for placement, (serial, boot, seqs) in _kit_truth(seed, minutes).items():
        key = (serial, boot)
        if placement != "left_thigh":
            assert got[key] == list(seqs) and key not in gaps, placement
            continue
        (gap,) = gaps[key]
        assert gap.reason == "link_lost"
        missing = range(gap.seq_first_missing, gap.seq_last_missing + 1)
        assert set(got[key]) | set(missing) == set(seqs) and not set(got[key]) & set(missing)
        assert 5.0 <= gap.duration_s <= 5.0 + 2.0 + 0.5  # down 5 s + reconnect backoff (<= 2 s) + a packet
        assert got[key][-1] == seqs[-1]  # resumed to the end without a restart
    assert any(s.sensors.get("left_thigh") and s.sensors["left_thigh"].gaps == 1 for s in worker.statuses)


@pytest.mark.parametrize("spp", [5, 10, 19])
def test_three_sensors_line_up_within_2ms_after_60s_on_the_kit_stream(spp: int) -> None:
    """20-50 ppm drifts, the simulator's bursty arrival, TIME_SYNC round trips: every published batch's mapping
    from 60 s to 90 s puts the three sensors within 2 ms of each other (and within 2 ms of the truth)."""
    for seed in (1, 2):
        result = run_timing(seed, spp, duration_s=90.0, from_s=60.0)
        assert result.pairwise_max_ms < 2.0, result
        assert result.abs_max_ms < 2.0, result
