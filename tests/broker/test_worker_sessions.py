"""A worker that is gone stops taking its share of the load, without the broker-wide session expiry (which would
also drop the gateways' queued acks and commands): workers connect with MQTT 5 and a session expiry of their own,
and a clean stop ends the session at once. Real `gaitsym worker` processes, the production gateway core with a
simulated kit, the project's Mosquitto."""

from __future__ import annotations

import time
from pathlib import Path

from testing.servers import Mosquitto
from testing.worker.harness import WorkerProcess, finish, home_sessions, stop_gateways, stream

WAIT_S = 60.0


def wait_for_log(what: str, read: object, deadline_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + deadline_s
    while what not in read():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what!r} not logged within {deadline_s} s"
        time.sleep(0.05)


def test_a_killed_or_stopped_worker_stops_taking_its_share(tmp_path: Path, mosquitto: Mosquitto) -> None:
    store = str(tmp_path / "store.sqlite")  # one store for all (WAL), as workers share InfluxDB
    killed = WorkerProcess(mosquitto.port, store, "worker-killed", tmp_path, "--session-expiry-s", "2")
    stopped = WorkerProcess(mosquitto.port, store, "worker-stopped", tmp_path, "--session-expiry-s", "3600")
    survivor = WorkerProcess(mosquitto.port, store, "worker-survivor", tmp_path)
    workers = (killed, stopped, survivor)
    # the gateway never re-sends within the test: what the broker routes to a gone worker would stay unacknowledged
    sessions = home_sessions(tmp_path, mosquitto.port, 1, minutes=0.65, ack_timeout_s=3600.0)
    try:
        for w in workers:
            w.start()
        for w in workers:
            wait_for_log("MQTT connected", w.log)
        stream(sessions, 6.0)  # all three share the load; then everything is acknowledged
        deadline = time.monotonic() + WAIT_S
        while sessions[0].backlog:
            assert time.monotonic() < deadline, f"{sessions[0].backlog} message(s) not acknowledged"
            sessions[0].step(0.2)
            time.sleep(0.02)

        killed.kill()  # SIGKILL: its session stays for its expiry (2 s), then the broker forgets it
        stopped.stop()  # SIGTERM: a clean stop ends its session at once, whatever its expiry
        wait_for_log("Expiring client worker-killed", mosquitto.log_path.read_text)

        finish(sessions, timeout_s=WAIT_S)  # every message acknowledged: the survivor got them all
    finally:
        stop_gateways(sessions)
        for w in workers:
            w.stop()
    assert "Expiring client worker-stopped" not in mosquitto.log_path.read_text()  # ended, not expired
    assert "MQTT connected" in survivor.log()
