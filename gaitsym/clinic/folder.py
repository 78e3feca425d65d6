"""The clinic folder: where its parts are (paths), what is not secret (clinic.json: host name, ports, workers,
enrolled subjects, who runs it) and its secrets (secrets.json, the one source every derived file is written
from)."""

from __future__ import annotations

import ipaddress
import json
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gaitsym.clinic.broker import worker_name
from gaitsym.clinic.private_files import Owner, write_private
from gaitsym.errors import ClinicSetupError

MAX_WORKERS = 32


def new_password() -> str:
    return secrets.token_urlsafe(24)


HOSTNAME = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)


def check_hostname(name: str) -> str:
    try:
        ipaddress.ip_address(name)
        return name
    except ValueError:
        pass
    if not HOSTNAME.fullmatch(name):
        raise ClinicSetupError(f"--hostname {name!r}: expected the name gateways reach the clinic server by")
    return name


@dataclass
class Clinic:
    """The clinic folder: its paths, its settings (clinic.json) and its secrets (secrets.json)."""

    root: Path
    settings: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)

    # paths
    @property
    def settings_path(self) -> Path:
        return self.root / "clinic.json"

    @property
    def secrets_path(self) -> Path:
        return self.root / "secrets.json"

    @property
    def ca_crt(self) -> Path:
        return self.root / "tls" / "ca.crt"

    @property
    def password_file(self) -> Path:
        return self.root / "mosquitto" / "gaitsym.passwd"

    @property
    def acl_file(self) -> Path:
        return self.root / "mosquitto" / "gaitsym.acl"

    @property
    def broker_conf(self) -> Path:
        return self.root / "mosquitto" / "mosquitto.conf"

    def gateway_folder(self, subject: str) -> Path:
        return self.root / "gateways" / subject

    def worker_env(self, name: str) -> Path:
        return self.root / "workers" / f"{name}.env"

    def worker_state(self, name: str) -> Path:
        return self.root / "workers" / f"{name}-state"

    @property
    def workers_compose(self) -> Path:
        """The ``worker-N`` services of deploy/clinic/compose.yaml, one per worker of clinic.json."""
        return self.root / "workers" / "compose.yaml"

    @property
    def session_command_config(self) -> Path:
        return self.root / "session-command.toml"

    # settings
    @property
    def owner(self) -> Owner:
        return Owner(int(self.settings["run_as"]["uid"]), int(self.settings["run_as"]["gid"]))

    @property
    def workers(self) -> list[str]:
        return [worker_name(n) for n in range(1, int(self.settings["workers"]) + 1)]

    @property
    def subjects(self) -> list[str]:
        return list(self.settings.get("gateways", []))

    @property
    def broker_url(self) -> str:
        host = self.settings["hostname"]
        if ":" in host:  # an IPv6 address
            host = f"[{host}]"
        return f"mqtts://{host}:{self.settings['broker_port']}"

    @classmethod
    def open(cls, root: Path) -> Clinic:
        """An initialised clinic folder (ClinicSetupError saying to run init when it is not one)."""
        root = Path(root)
        try:
            settings = json.loads((root / "clinic.json").read_text())
            stored = json.loads((root / "secrets.json").read_text())
        except FileNotFoundError:
            raise ClinicSetupError(f"{root} is not a clinic folder: run `deploy/clinic/init` first") from None
        except json.JSONDecodeError as exc:
            raise ClinicSetupError(f"{root}: clinic.json or secrets.json is not JSON ({exc})") from None
        return cls(root, settings, stored)

    def secret(self, name: str, make: Any = new_password) -> str:
        """The stored secret ``name``, made (and remembered) when missing."""
        if name not in self.secrets:
            self.secrets[name] = make()
        return self.secrets[name]

    def save(self) -> None:
        owner = self.owner
        write_private(self.secrets_path, json.dumps(self.secrets, indent=2, sort_keys=True) + "\n", owner)
        write_private(self.settings_path, json.dumps(self.settings, indent=2, sort_keys=True) + "\n", owner)
