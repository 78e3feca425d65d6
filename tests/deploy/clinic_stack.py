"""The output of `gaitsym clinic init` started for real, outside containers: Mosquitto from the generated
mosquitto.conf, password file and ACL, InfluxDB with the generated users (set up by the code the compose stack's
``influxdb-setup`` service runs), and the workers with their own credentials from the clinic folder.

Only what a container would see differently is changed: the container paths of the broker's files become the
clinic folder's paths, the two listeners get free loopback ports (the TLS one is 8883 in the container), the
persistence folder is the test's, and the broker stays the user that starts it (testing.servers' rule)."""

from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path

from gaitsym.clinic import CONTAINER, LOOPBACK_PORT, Clinic, influx_setup_from_environment
from testing.influxdb_server import InfluxDB
from testing.servers import Mosquitto, free_port
from testing.worker.harness import WorkerProcess


def read_env_file(path: Path) -> dict[str, str]:
    """A compose env_file as compose reads the ones init writes (KEY=VALUE lines)."""
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key] = value
    return out


def host_broker_conf(clinic: Clinic, tls_port: int, loopback_port: int, workdir: Path) -> str:
    """The generated mosquitto.conf with the container's paths and ports replaced by this host's."""
    host = {
        CONTAINER["config"]: f"{clinic.root / 'mosquitto'}/",
        CONTAINER["tls"]: f"{clinic.root / 'tls'}/",
        CONTAINER["data"]: f"{workdir}/",
    }
    lines = []
    for line in clinic.broker_conf.read_text().splitlines():
        word = line.split(" ", 1)[0]
        if word == "listener":
            port = loopback_port if line.split()[1] == str(LOOPBACK_PORT) else tls_port
            line = f"listener {port} 127.0.0.1"
        elif word == "user":
            line = f"user {pwd.getpwuid(os.geteuid()).pw_name}"
        for container, path in host.items():
            line = line.replace(container, path)
        lines.append(line)
    return "\n".join(lines) + "\n"


class ClinicBroker(Mosquitto):
    """Mosquitto on the clinic folder's generated configuration (TLS port = ``port``; plaintext on
    ``loopback_port``)."""

    def __init__(self, clinic: Clinic, workdir: Path) -> None:
        super().__init__(workdir, port=free_port(), conf=clinic.broker_conf)
        self.loopback_port = free_port()
        self.conf_path.write_text(host_broker_conf(clinic, self.port, self.loopback_port, self.workdir))

    @property
    def url(self) -> str:
        return f"mqtts://127.0.0.1:{self.port}"

    def write_pid_file(self) -> Path:
        assert self.proc is not None
        path = self.workdir / "mosquitto.pid"
        path.write_text(f"{self.proc.pid}\n")
        return path


class ClinicInflux(InfluxDB):
    """InfluxDB 1.x whose users are the clinic's, created from its influxdb/setup.env by
    `influx_setup_from_environment` (the compose stack's influxdb-setup service), not the tests' fixed users."""

    def __init__(self, clinic: Clinic, workdir: Path) -> None:
        super().__init__(workdir)
        self.clinic = clinic
        self.setup_message = ""

    def _initialise(self) -> None:
        env = read_env_file(self.clinic.root / "influxdb" / "setup.env")
        self.setup_message = influx_setup_from_environment(self.url, env)
        self._initialised = True


def clinic_worker(clinic: Clinic, name: str, broker: ClinicBroker, influx: InfluxDB, tmp: Path) -> WorkerProcess:
    """`gaitsym worker` as the compose file runs ``name``: its own broker user over TLS, its own InfluxDB user,
    both passwords from its env file."""
    store = f"influx://{name}@127.0.0.1:{influx.port}/gaitsym"
    worker = WorkerProcess(
        broker.port,
        store,
        name,
        tmp,
        "--mqtt",
        broker.url,
        "--tls-ca",
        str(clinic.ca_crt),
        "--username",
        name,
        "--session-expiry-s",
        "30",
    )
    worker.env.update(read_env_file(clinic.worker_env(name)))
    return worker


def run_health_check(clinic: Clinic, broker: ClinicBroker) -> subprocess.CompletedProcess[str]:
    """The broker container's health check (compose.yaml), with this host's folder and port."""
    env = {**os.environ, "XDG_CONFIG_HOME": str(clinic.root / "mosquitto" / "health")}
    argv = ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.loopback_port), "-t", "$SYS/broker/uptime"]
    return subprocess.run([*argv, "-C", "1", "-W", "5"], env=env, capture_output=True, text=True, timeout=20)
