"""A real InfluxDB 1.x for integration tests, in the style of `servers.Mosquitto`: the project's own
deploy/influxdb/influxdb.conf, with only the folders (a temp dir) and the ports (free loopback ports) changed,
authentication ENABLED. `start` creates the admin user (allowed once, while no user exists), then the
gaitsym database, its retention policies and a non-admin worker user through `analytics.stores.influx_setup.setup_v1`.
stop (SIGTERM) / kill (SIGKILL) / restart keep the data folder.

If ``influxd`` is missing, `find_influxd` runs ``apt-get install -y influxdb influxdb-client`` once (root; the
Makefile installs it too) and raises `ServerUnavailable` saying what to do when it still cannot be found.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from gaitsym_common.processes import ManagedProcess
from testing.servers import ROOT, ServerUnavailable, free_port

INFLUXDB_CONF = ROOT / "deploy" / "influxdb" / "influxdb.conf"
ADMIN_USER, ADMIN_PASSWORD = "admin", "admin-test-pw"
WORKER_USER, WORKER_PASSWORD = "worker", "worker-test-pw"


def find_influxd() -> str:
    for candidate in (shutil.which("influxd"), "/usr/bin/influxd"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    if shutil.which("apt-get") and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, timeout=600, check=False, env=env)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "influxdb", "influxdb-client"],
            capture_output=True,
            timeout=900,
            check=False,
            env=env,
        )
        for candidate in (shutil.which("influxd"), "/usr/bin/influxd"):
            if candidate and os.access(candidate, os.X_OK):
                return candidate
    raise ServerUnavailable(
        "influxd not found: install it (Debian: `apt-get install -y influxdb influxdb-client`, or `make install`) "
        "and re-run"
    )


class InfluxDB(ManagedProcess):
    """InfluxDB 1.x from the project's conf; folders, ports and the ``http`` overrides are all that change. A
    SIGKILL loses nothing it acknowledged (``wal-fsync-delay = 0s``)."""

    stop_timeout_s = 20.0

    def __init__(self, workdir: Path, port: int | None = None, http_overrides: dict[str, str] | None = None) -> None:
        self.binary = find_influxd()
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.rpc_port = free_port()
        self.conf_path = self.workdir / "influxdb.conf"
        self.log_path = self.workdir / "influxd.log"
        text = INFLUXDB_CONF.read_text().replace("/var/lib/influxdb", str(self.workdir))
        text = text.replace('bind-address = "127.0.0.1:8088"', f'bind-address = "127.0.0.1:{self.rpc_port}"')
        text = text.replace('bind-address = "127.0.0.1:8086"', f'bind-address = "127.0.0.1:{self.port}"')
        for key, value in (http_overrides or {}).items():
            text, n = re.subn(rf"(?m)^(\s*){re.escape(key)} = .*$", rf"\g<1>{key} = {value}", text)
            if n != 1:
                raise ValueError(f"{key} is not a setting of {INFLUXDB_CONF}")
        self.conf_path.write_text(text)
        self.proc: subprocess.Popen[bytes] | None = None
        self._initialised = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def store_url(self, database: str = "gaitsym") -> str:
        return f"influx://{WORKER_USER}:{WORKER_PASSWORD}@127.0.0.1:{self.port}/{database}"

    def _ping(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=0.5) as resp:
                return bool(resp.status == 204)
        except (urllib.error.URLError, OSError):
            return False

    def start(self, timeout_s: float = 20.0) -> InfluxDB:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen([self.binary, "run", "-config", str(self.conf_path)], stdout=log, stderr=log)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerUnavailable(f"influxd exited: {self.log_path.read_text()[-2000:]}")
            if self._ping():
                break
            time.sleep(0.05)
        else:
            raise ServerUnavailable(f"influxd did not answer on {self.port}: {self.log_path.read_text()[-2000:]}")
        if not self._initialised:
            self._initialise()
        return self

    def admin_query(self, q: str, auth: bool = True) -> dict[str, object]:
        data = urllib.parse.urlencode({"q": q}).encode()
        request = urllib.request.Request(f"{self.url}/query", data=data)
        if auth:  # influxd reads credentials from the URL or a Basic header, not from a form body
            token = base64.b64encode(f"{ADMIN_USER}:{ADMIN_PASSWORD}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        with urllib.request.urlopen(request, timeout=10) as resp:
            doc: dict[str, object] = json.loads(resp.read())
        return doc

    def _initialise(self) -> None:
        from analytics.stores.influx_setup import create_first_admin, setup_v1

        create_first_admin(self.url, ADMIN_USER, ADMIN_PASSWORD)  # the deployment's own first-admin step
        setup_v1(self.url, ADMIN_USER, ADMIN_PASSWORD, worker_user=WORKER_USER, worker_password=WORKER_PASSWORD)
        self._initialised = True

    def restart(self) -> InfluxDB:
        self.stop()
        return self.start()
