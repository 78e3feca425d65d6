"""The gateway under systemd: readiness and watchdog pings through a real ``NOTIFY_SOCKET`` datagram socket from
the running `gaitsym gateway` process; no ping while unhealthy; and the start checks of its configuration file
(owner-only files, the kit it was handed)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from gaitsym.cli import build_parser
from gaitsym.errors import ConfigError, InsecureFile, KitMismatch
from gaitsym.gateway_ble import check_kit_matches
from gaitsym.gateway_runner import run_gateway_command
from gaitsym.gateway_settings import check_private_files, resolve_settings
from gaitsym.gateway_systemd import Notifier, gateway_health
from sensor_gateway.ble.config import PairedSensor, Pairing
from sensor_gateway.outbox import Outbox
from testing.gateway.worker_stub import AckingWorker
from testing.servers import ROOT, Mosquitto


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, Path]]:
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(30.0)
    try:
        yield sock, path
    finally:
        sock.close()


def receive_until(
    sock: socket.socket,
    gateway: subprocess.Popen[bytes],
    log: Path,
    done: Callable[[list[str]], bool],
    waiting_for: str,
    deadline_s: float = 120.0,
) -> list[str]:
    """Notifications, in order, until ``done(received)``. The deadline only bounds a gateway that never gets there
    (the test then fails saying what was awaited, what came and what the gateway logged): nothing here depends on
    how fast the gateway is."""

    def fail(why: str) -> NoReturn:
        pytest.fail(f"{why}; the gateway said: {out}; its log ends: {log.read_text()[-1500:]}")

    out: list[str] = []
    deadline = time.monotonic() + deadline_s
    while not done(out):
        if out and out[-1].startswith("STOPPING=1"):
            fail(f"the gateway stopped before {waiting_for}")
        sock.settimeout(min(1.0, max(0.001, deadline - time.monotonic())))
        try:
            out.append(sock.recv(4096).decode())
        except TimeoutError:
            # what it sent before it ended is already queued on the socket: a timeout after that means no more
            if gateway.poll() is not None:
                fail(f"the gateway ended (status {gateway.returncode}) before {waiting_for}")
            if time.monotonic() >= deadline:
                fail(f"no {waiting_for} within {deadline_s:.0f} s")
    return out


def watchdog_pings(messages: list[str]) -> list[str]:
    return [m for m in messages if m.startswith("WATCHDOG=1")]


STREAMING = "3/3 sensors connected, broker connected"


def three_pings_while_streaming(messages: list[str]) -> bool:
    pings = watchdog_pings(messages)
    return len(pings) >= 3 and any(STREAMING in m for m in pings)


def said_goodbye(messages: list[str]) -> bool:
    return bool(messages) and messages[-1].startswith("STOPPING=1")


def test_the_running_gateway_says_ready_pings_the_watchdog_and_says_stopping(
    tmp_path: Path, notify_socket: tuple[socket.socket, Path], mosquitto: Mosquitto
) -> None:
    sock, path = notify_socket
    broker = mosquitto
    worker = AckingWorker(broker.port, "wd-001")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "400000"}
    # a session far longer than the deadlines below, at real speed: the gateway runs until it is told to stop
    argv = [sys.executable, "-m", "gaitsym.cli", "gateway", "--virtual-kit", "--subject", "wd-001"]
    argv += ["--broker", broker.url, "--state-dir", str(tmp_path / "state"), "--minutes", "5", "--speed", "1"]
    log = tmp_path / "gateway.log"
    with log.open("wb") as stderr:
        gateway = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        running = receive_until(
            sock, gateway, log, three_pings_while_streaming, f"3 watchdog pings, one of them saying {STREAMING!r}"
        )
        gateway.send_signal(signal.SIGTERM)  # what `systemctl stop` sends
        stopping = receive_until(sock, gateway, log, said_goodbye, "STOPPING=1")
        assert gateway.wait(timeout=60) == 0, log.read_text()[-2000:]
    finally:
        if gateway.poll() is None:
            gateway.kill()
        worker.close()
    messages = running + stopping
    assert messages[0].startswith("READY=1\nSTATUS="), messages
    assert re.fullmatch(r"STOPPING=1\nSTATUS=stopping: \d+ message\(s\) kept in the outbox", messages[-1]), messages
    # nothing but readiness, pings and the goodbye: no unhealthy status, nothing from a child process
    assert len(messages) == 2 + len(watchdog_pings(messages)), messages


def test_no_watchdog_ping_while_the_outbox_does_not_answer(
    tmp_path: Path, notify_socket: tuple[socket.socket, Path]
) -> None:
    sock, path = notify_socket
    now = [0.0]
    notifier = Notifier(str(path), watchdog_s=10.0, clock=lambda: now[0])

    class Gateway:
        outbox = Outbox(tmp_path / "outbox.db")

    assert gateway_health(Gateway) is None
    assert notifier.loop_turned(lambda: gateway_health(Gateway))
    assert sock.recv(4096) == b"WATCHDOG=1"
    now[0] = 2.0  # within half the period: no second ping
    assert not notifier.loop_turned(lambda: gateway_health(Gateway))
    Gateway.outbox.close()  # the database no longer answers (as when its disk fails)
    now[0] = 6.0
    assert not notifier.loop_turned(lambda: gateway_health(Gateway))
    said = sock.recv(4096).decode()
    assert said.startswith("STATUS=unhealthy") and "outbox does not answer" in said
    sock.setblocking(False)
    with pytest.raises(BlockingIOError):
        sock.recv(4096)  # and no WATCHDOG=1: systemd restarts the gateway once the period runs out
    notifier.close()


def test_notifier_follows_systemds_environment(tmp_path: Path) -> None:
    abstract = f"@gaitsym-test-{os.getpid()}"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(b"\0" + abstract[1:].encode())
    receiver.settimeout(5)
    env = {"NOTIFY_SOCKET": abstract, "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}
    notifier = Notifier.from_environment(env)
    assert "NOTIFY_SOCKET" not in env  # the processes the gateway starts never notify in its name
    assert notifier.watchdog_s == 30.0 and notifier.ready("up")
    assert receiver.recv(4096) == b"READY=1\nSTATUS=up"
    other = Notifier.from_environment({"NOTIFY_SOCKET": abstract, "WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"})
    assert other.watchdog_s is None  # a watchdog meant for another process
    assert not Notifier.from_environment({}).enabled  # outside systemd: nothing at all
    for n in (notifier, other):
        n.close()
    receiver.close()


def write(path: Path, text: str, mode: int) -> Path:
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_the_gateway_refuses_a_config_or_secret_file_other_users_can_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = write(tmp_path / "mqtt-password", "s3cret\n", 0o600)
    config = write(tmp_path / "gateway.toml", f'subject = "S001"\npassword_file = "{secret}"\n', 0o644)
    argv = ["gateway", "--virtual-kit", "--config", str(config), "--state-dir", str(tmp_path / "state")]
    assert run_gateway_command(build_parser().parse_args(argv)) == 2
    err = capsys.readouterr().err
    assert str(config) in err and "0644" in err and "chmod 600" in err
    assert not (tmp_path / "state").exists()  # refused before anything was made
    os.chmod(config, 0o600)
    os.chmod(secret, 0o640)  # group-readable secret
    args = build_parser().parse_args(argv)
    with pytest.raises(InsecureFile, match="mqtt-password"):
        check_private_files(resolve_settings(args), args.config)
    os.chmod(secret, 0o600)
    check_private_files(resolve_settings(args), args.config)  # owner-only: accepted


def test_the_gateway_runs_only_with_the_kit_it_was_handed(tmp_path: Path) -> None:
    config = write(tmp_path / "gateway.toml", '[kit]\npelvis = "GS-1"\nleft_thigh = "GS-2"\n', 0o600)
    kit = resolve_settings(build_parser().parse_args(["gateway", "--config", str(config)]))["kit"]
    paired = {p: PairedSensor(p, f"AA:00:00:00:00:0{i}", f"GS-{i}") for i, p in enumerate(("pelvis", "left_thigh"), 1)}
    check_kit_matches(kit, Pairing("hci0", paired))
    neighbour = {**paired, "left_thigh": PairedSensor("left_thigh", "BB:00:00:00:00:09", "GS-9")}
    with pytest.raises(KitMismatch, match="left_thigh: configured GS-2, paired GS-9"):
        check_kit_matches(kit, Pairing("hci0", neighbour))
    write(config, '[kit]\nspine = "GS-1"\n', 0o600)
    with pytest.raises(ConfigError, match="spine"):
        resolve_settings(build_parser().parse_args(["gateway", "--config", str(config)]))


def test_outside_systemd_the_loop_never_even_checks_its_health() -> None:
    """Without NOTIFY_SOCKET (the demo, a shell) the notifier sends nothing and asks nothing of the gateway."""

    def health() -> str | None:
        raise AssertionError("health checked with no systemd to tell")

    notifier = Notifier.from_environment({})
    assert not notifier.loop_turned(health) and not notifier.ready("x") and notifier.sent == 0
