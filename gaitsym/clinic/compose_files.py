"""What deploy/clinic/compose.yaml reads from a clinic: its variables (``--compose-env``: the clinic folder, the
user the containers run as, host name, ports) and the clinic's workers (``workers/compose.yaml`` of the clinic
folder, which compose.yaml includes: one ``worker-N`` service per worker of clinic.json, so the stack runs exactly
the workers `init` made credentials for). Neither holds a secret: the workers' passwords are in their env files."""

from __future__ import annotations

import json

from gaitsym.clinic.folder import Clinic
from gaitsym.clinic.formats import env_text
from gaitsym.clinic.shipped import WORKER_SERVICE_FILE

WORKER_STATE = "/var/lib/gaitsym"


def compose_env_text(clinic: Clinic) -> str:
    owner = clinic.owner
    return env_text(
        {
            "GAITSYM_CLINIC_DIR": str(clinic.root),
            "GAITSYM_UID": str(owner.uid),
            "GAITSYM_GID": str(owner.gid),
            "GAITSYM_HOSTNAME": clinic.settings["hostname"],
            "GAITSYM_BROKER_PORT": str(clinic.settings["broker_port"]),
            "GAITSYM_GRAFANA_PORT": str(clinic.settings["grafana_port"]),
        }
    )


def worker_command(name: str) -> list[str]:
    """``gaitsym worker`` as ``name``: its own broker user and client id, its own InfluxDB user."""
    return ["worker", "--mqtt", "mqtts://mosquitto:8883", "--tls-ca", "/run/gaitsym/tls/ca.crt",
            "--username", name, "--client-id", name,
            "--store", f"influx://{name}@influxdb:8086/gaitsym"]  # fmt: skip


def workers_compose_text(clinic: Clinic) -> str:
    """The clinic's ``worker-N`` services, each extending deploy/clinic/worker.compose.yaml's ``worker``. Paths are
    relative to the file's own folder (``workers/`` of the clinic folder), as compose reads an included file."""

    def q(value: str) -> str:  # a YAML double-quoted scalar (JSON's strings are a subset)
        return json.dumps(value, ensure_ascii=True)

    out = [
        "# The clinic's analytics workers, written by `gaitsym clinic init` (exactly `--workers` of them, each",
        "# with its own users): run init again, do not edit. deploy/clinic/compose.yaml includes this file; each",
        f"# worker extends the `worker` service of {WORKER_SERVICE_FILE.name} in the checkout.",
        "services:",
    ]
    for name in clinic.workers:
        out += [
            f"  {name}:",
            "    extends:",
            f"      file: {q(str(WORKER_SERVICE_FILE))}",
            '      service: "worker"',
            f"    command: [{', '.join(q(word) for word in worker_command(name))}]",
            "    env_file:",
            f"      - {q(clinic.worker_env(name).name)}",
            "    volumes:",
            f"      - {q(f'./{clinic.worker_state(name).name}:{WORKER_STATE}')}",
            "    # started once the broker answers and InfluxDB has the worker's user",
            "    depends_on:",
            "      mosquitto:",
            "        condition: service_healthy",
            "      influxdb-setup:",
            "        condition: service_completed_successfully",
        ]
    return "\n".join(out) + "\n"
