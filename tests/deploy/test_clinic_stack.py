"""`gaitsym clinic init`'s output started for real (Mosquitto with its TLS configuration, password file and ACL;
InfluxDB with its users), a gateway handed out by `gaitsym enrol`, and a simulated home session through them:
the enrolled gateway (the production command on its own config file) over TLS -> two workers with their own users
(one restarted mid-session, as in an upgrade) -> InfluxDB; then the backup of InfluxDB restored into a fresh
server holds the same samples."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deploy.clinic_stack import ClinicBroker, ClinicInflux, clinic_worker, read_env_file, run_health_check
from gaitsym.cli import build_parser
from gaitsym.clinic import Clinic, enrol, init_clinic, reload_broker
from gaitsym.gateway_settings import check_private_files, resolve_settings
from gaitsym.gateway_wiring import mqtt_settings
from gaitsym_common.mqtt.client import make_paho_client
from gaitsym_common.uplink.topics import topic
from simulator import packets
from simulator.session import simulate_session
from testing.influxdb_server import InfluxDB
from testing.servers import ROOT

WAIT_S = 20.0
"""Upper bound for what takes milliseconds on loopback (a deadline, not a measured time)."""
SEED, MINUTES, SPEED = 5, 0.7, 10.0


@pytest.fixture
def clinic(tmp_path: Path) -> Clinic:
    return init_clinic(tmp_path / "clinic", "clinic.test", workers=2, compose_env=tmp_path / "compose.env")


@pytest.fixture
def broker(clinic: Clinic, tmp_path: Path) -> Iterator[ClinicBroker]:
    server = ClinicBroker(clinic, tmp_path / "mosquitto")
    server.start()
    try:
        yield server
    finally:
        server.kill()


class V5:
    """An MQTT 5 client built by the product's factory from a gateway's resolved settings (PUBACK reasons seen)."""

    def __init__(self, argv: list[str]) -> None:
        args = build_parser().parse_args(argv)
        settings = resolve_settings(args)
        check_private_files(settings, args.config)  # what the gateway runs at start
        self.settings = mqtt_settings(settings, "unused")
        self.connack: list[Any] = []
        self.puback: dict[int, str] = {}
        self.lock = threading.Lock()
        self.client = make_paho_client(self.settings, mqtt5=True, on_connect=self._on_connect)
        self.client.on_publish = self._on_publish
        self.client.connect(self.settings.host, self.settings.port)
        self.client.loop_start()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self.connack.append(reason)

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        with self.lock:
            self.puback[mid] = str(reason)

    def connected(self) -> str:
        deadline = time.monotonic() + WAIT_S
        while not self.connack and time.monotonic() < deadline:
            time.sleep(0.02)
        return str(self.connack[0]) if self.connack else "no CONNACK"

    def publish(self, name: str) -> str:
        mid = self.client.publish(name, b"{}", qos=1).mid
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            with self.lock:
                if mid in self.puback:
                    return self.puback[mid]
            time.sleep(0.02)
        return "no PUBACK"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def gateway_argv(clinic: Clinic, subject: str, broker: ClinicBroker) -> list[str]:
    """The enrolled gateway's own config file; only where the broker and the CA are differs on this host."""
    config = clinic.gateway_folder(subject) / "gateway.toml"
    return ["gateway", "--config", str(config), "--broker", broker.url, "--tls-ca", str(clinic.ca_crt)]


def test_enrol_gives_a_gateway_its_own_topics_only_after_the_broker_reloads(
    clinic: Clinic, broker: ClinicBroker
) -> None:
    assert run_health_check(clinic, broker).returncode == 0  # the container's health check answers
    enrol(clinic.root, "S001", reload=False)
    refused = V5(gateway_argv(clinic, "S001", broker))
    assert refused.connected() != "Success"  # not known to the running broker before it reloads
    refused.close()
    assert reload_broker(clinic, broker.write_pid_file())[0]
    done = enrol(clinic.root, "S002", broker_pid_file=broker.write_pid_file())
    assert done.reloaded and (done.config.stat().st_mode & 0o777) == 0o600
    home, other = V5(gateway_argv(clinic, "S001", broker)), V5(gateway_argv(clinic, "S002", broker))
    try:
        assert home.connected() == "Success" and other.connected() == "Success"
        ok = ("Success", "No matching subscribers")
        for kind in (("raw", "pelvis"), ("gap", "pelvis"), ("marker",), ("status",), ("cmd/reply",)):
            assert home.publish(topic("S001", *kind)) in ok, kind
            assert home.publish(topic("S002", *kind)) == "Not authorized", kind
        for only_others in ("ack", "cmd"):  # what only workers and the clinic send
            assert home.publish(topic("S001", only_others)) == "Not authorized", only_others
        assert other.publish(topic("S002", "raw", "pelvis")) in ok
        assert other.publish(topic("S001", "raw", "pelvis")) == "Not authorized"
    finally:
        home.close()
        other.close()
    assert broker.running  # SIGHUP reloads, it does not stop the broker


def expected_samples() -> int:
    session = simulate_session(seed=SEED, minutes=MINUTES, script="walk")
    packets.simulated_sensors(session)
    return int(session.recording.n_samples)


def raw_counts(influx: InfluxDB, user: str, password: str, subject: str, layout: str = "packed") -> dict[str, int]:
    """Samples stored per placement, in the raw layout a clinic set up by this release writes (``packed``: the sum
    of its parts' sample counts; nothing must be stored one point per sample then), or ``points``."""
    where = f"WHERE subject='{subject}' GROUP BY placement"
    query = f"SELECT count(seq) FROM gaitsym.raw.raw {where}; SELECT sum(n) FROM gaitsym.raw.raw_packed {where}"
    body = urllib.parse.urlencode({"q": query, "db": "gaitsym"}).encode()
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    request = urllib.request.Request(f"{influx.url}/query", data=body, headers={"Authorization": f"Basic {token}"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        doc = json.loads(resp.read())
    points, packed = (
        {s["tags"]["placement"]: int(s["values"][0][1]) for s in r.get("series", [])} for r in doc["results"]
    )
    assert not (points if layout == "packed" else packed), f"stored in the other raw layout: {points} {packed}"
    return packed if layout == "packed" else points


def test_the_generated_stack_runs_the_pipeline_with_tls_and_authentication(
    clinic: Clinic, broker: ClinicBroker, tmp_path: Path
) -> None:
    influx = ClinicInflux(clinic, tmp_path / "influx")
    influx.start()
    workers = [clinic_worker(clinic, name, broker, influx, tmp_path) for name in clinic.workers]
    gateway: subprocess.Popen[bytes] | None = None
    try:
        assert "writers worker-1, worker-2; readers grafana" in influx.setup_message
        enrol(clinic.root, "S001", broker_pid_file=broker.write_pid_file())
        for w in workers:
            w.start()
        log = (tmp_path / "gateway.log").open("wb")
        argv = [*gateway_argv(clinic, "S001", broker), "--virtual-kit", "--state-dir", str(tmp_path / "gw")]
        argv += ["--seed", str(SEED), "--minutes", str(MINUTES), "--speed", str(SPEED), "--drain-timeout-s", "60"]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        gateway = subprocess.Popen([sys.executable, "-m", "gaitsym.cli", *argv], stdout=log, stderr=log, env=env)
        reader = read_env_file(clinic.root / "grafana" / "grafana.env")["GAITSYM_GRAFANA_INFLUX_PASSWORD"]
        deadline = time.monotonic() + WAIT_S
        while not raw_counts(influx, "grafana", reader, "S001"):  # the gateway streams: it is subscribed
            assert time.monotonic() < deadline and gateway.poll() is None, "no sample stored"
            time.sleep(0.1)
        # the session command, with its own user from init's session-command.toml, reaches the running gateway
        session = [sys.executable, "-m", "gaitsym.cli", "session", "mark"]
        session += ["--config", str(clinic.session_command_config), "--subject", "S001", "--broker", broker.url]
        session += ["--exercise", "clam", "--side", "left"]
        command = subprocess.run(session, capture_output=True, text=True, env=env, timeout=60)
        assert command.returncode in (0, 1) and command.stdout.strip(), command.stderr  # 3 = no reply
        # an upgrade of one worker while the home streams: it drains and stops, the other takes its share
        workers[0].stop()
        workers[0].start()
        assert gateway.wait(timeout=120) == 0, (tmp_path / "gateway.log").read_text()[-3000:]
        gateway = None
        n = expected_samples()
        deadline = time.monotonic() + WAIT_S
        while (counts := raw_counts(influx, "grafana", reader, "S001")) != dict.fromkeys(counts, n) or not counts:
            assert time.monotonic() < deadline, counts
            time.sleep(0.2)
        assert sorted(counts) == ["left_thigh", "pelvis", "right_thigh"]  # every sample stored, once
        for w in workers:
            w.stop()
        logs = "".join(w.log() for w in workers)
        assert "mqtts://127.0.0.1" in logs and "Traceback" not in logs

        # a backup of InfluxDB (deploy/clinic/README.md) restored into a fresh server holds the same samples
        backup = clinic.root / "influxdb" / "backups" / "test"
        run = [influx.binary, "backup", "-portable", "-database", "gaitsym", "-host", f"127.0.0.1:{influx.rpc_port}"]
        done = subprocess.run([*run, str(backup)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        fresh = ClinicInflux(clinic, tmp_path / "restored")
        fresh._initialised = True  # an empty server: the restore brings the database, its users come from setup
        fresh.start()
        try:
            run = [influx.binary, "restore", "-portable", "-db", "gaitsym", "-host", f"127.0.0.1:{fresh.rpc_port}"]
            done = subprocess.run([*run, str(backup)], capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr
            fresh._initialise()  # `gaitsym clinic influx-setup` after a restore: the same users and passwords
            assert raw_counts(fresh, "grafana", reader, "S001") == counts
        finally:
            fresh.kill()
    finally:
        if gateway is not None and gateway.poll() is None:
            gateway.kill()
        for w in workers:
            w.kill()
        influx.kill()
