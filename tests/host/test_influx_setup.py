"""The documented InfluxDB setup keeps passwords off the command line, and works on a real, empty InfluxDB 1.x."""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from analytics.stores import influx, influx_setup
from analytics.stores.errors import StoreQueryError, StoreUnavailable

TESTS = Path(__file__).resolve().parents[1]
from testing.influxdb_server import InfluxDB  # noqa: E402

README = TESTS.parent / "deploy" / "influxdb" / "README.md"
ADMIN_PW, WORKER_PW = "adm1n-Setup-pw", "w0rker-Setup-pw"


def _shell_lines() -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    return [line for block in blocks for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_documented_setup_puts_no_password_on_a_command_line() -> None:
    lines = _shell_lines()
    assert lines
    for line in lines:
        assert not re.search(r"PASSWORD\s+'|password\s*=|-password|\bp=|://[^/\s@]*:[^/\s@]*@", line, re.I), line


def _query(url: str, q: str, user: str, password: str) -> dict[str, object]:
    body = urllib.parse.urlencode({"q": q}).encode()
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    request = urllib.request.Request(f"{url}/query", data=body, headers={"Authorization": f"Basic {basic}"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        doc: dict[str, object] = json.loads(resp.read())
    return doc


def test_documented_setup_command_sets_up_an_empty_server(tmp_path: Path) -> None:
    server = InfluxDB(tmp_path / "influxdb")
    server._initialised = True  # an empty server, as after `apt-get install influxdb`: no user yet
    server.start()
    try:
        (line,) = [x for x in _shell_lines() if "influx_setup" in x]
        argv = shlex.split(line.replace("http://127.0.0.1:8086", server.url))
        argv[0] = sys.executable
        env = {**os.environ, "GAITSYM_INFLUX_ADMIN_PASSWORD": ADMIN_PW, "GAITSYM_INFLUX_PASSWORD": WORKER_PW}
        for attempt in (1, 2):  # idempotent: the second run finds the admin and changes nothing
            done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
            assert done.returncode == 0, done.stderr
            assert ADMIN_PW not in done.stdout + done.stderr and WORKER_PW not in done.stdout + done.stderr
            assert ("created" if attempt == 1 else "already has users") in done.stdout
        users = json.dumps(_query(server.url, "SHOW USERS", "admin", ADMIN_PW))
        assert '["admin", true]' in users and '["worker", false]' in users
        policies = json.dumps(_query(server.url, 'SHOW RETENTION POLICIES ON "gaitsym"', "worker", WORKER_PW))
        assert '"raw"' in policies and '"results"' in policies

        wrong = {**env, "GAITSYM_INFLUX_ADMIN_PASSWORD": "not-the-Admin-pw"}
        done = subprocess.run(argv, env=wrong, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert done.returncode == 1
        assert "not-the-Admin-pw" not in done.stdout + done.stderr and WORKER_PW not in done.stdout + done.stderr
    finally:
        server.kill()


def test_a_failed_user_creation_does_not_quote_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    """InfluxDB's errors quote the statement; the statement holds the new user's password."""

    def query(self: influx.InfluxStore, q: str, rp: str | None = None) -> list[dict[str, object]]:
        if q.startswith("CREATE USER"):
            raise StoreUnavailable(f"query {q!r}: ConnectionResetError")
        if q.startswith("SHOW RETENTION"):
            return []
        return []

    monkeypatch.setattr(influx.InfluxStore, "query", query)
    monkeypatch.setattr(influx.InfluxStore, "retention_policies", lambda self: set())
    with pytest.raises(StoreUnavailable) as info:
        influx_setup.setup_v1("http://127.0.0.1:9", "admin", "x", worker_user="worker", worker_password=WORKER_PW)
    assert WORKER_PW not in str(info.value) and "***" in str(info.value)
    assert info.value.__suppress_context__


def test_first_admin_with_an_empty_password_is_refused_before_sending() -> None:
    from analytics.stores.influx_setup import create_first_admin

    with pytest.raises(StoreQueryError):
        create_first_admin("http://127.0.0.1:9", "admin", "")
