"""deploy/gateway/gaitsym-gateway.service checked by systemd's own tools (no running systemd needed):
`systemd-analyze verify` must print nothing at all, and `systemd-analyze security --offline=yes` must rate the
sandbox's exposure below 3. ExecStart points at /opt/gaitsym, which does not exist here: the checked copy points
it at this checkout's real `gaitsym` (verify checks that the command exists)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gaitsym.gateway_settings import DEFAULT_STATE_DIR
from testing.servers import ROOT

UNIT = ROOT / "deploy" / "gateway" / "gaitsym-gateway.service"
INSTALLED_GAITSYM = "/opt/gaitsym/.venv/bin/gaitsym"


def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.fail("systemd-analyze not found (Debian package systemd)")
    return found


def unit_here(tmp_path: Path) -> Path:
    text = UNIT.read_text()
    assert f"ExecStart={INSTALLED_GAITSYM} " in text
    gaitsym = Path(sys.executable).parent / "gaitsym"
    assert gaitsym.is_file()
    path = tmp_path / UNIT.name
    path.write_text(text.replace(f"ExecStart={INSTALLED_GAITSYM} ", f"ExecStart={gaitsym} "))
    return path


def settings(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_the_unit_passes_systemd_analyze_verify_with_nothing_on_stderr(tmp_path: Path) -> None:
    done = subprocess.run([systemd_analyze(), "verify", str(unit_here(tmp_path))], capture_output=True, text=True)
    assert done.returncode == 0 and done.stderr == "" and done.stdout == "", done.stderr
    # the same check speaks up when something is wrong: the shipped path does not exist on this machine
    shipped = subprocess.run([systemd_analyze(), "verify", str(UNIT)], capture_output=True, text=True)
    assert INSTALLED_GAITSYM in shipped.stderr


def test_the_sandbox_exposure_is_below_3(tmp_path: Path) -> None:
    done = subprocess.run(
        [systemd_analyze(), "security", "--offline=yes", "--no-pager", str(unit_here(tmp_path))],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout)
    assert match, done.stdout[-2000:]
    exposure = float(match.group(1))
    print(f"systemd-analyze security --offline=yes: exposure {exposure}")
    assert exposure < 3.0, done.stdout
    # what keeps it from 0, each needed: the broker's network, D-Bus (a Unix socket), group bluetooth for BlueZ
    remaining = {line.split()[1] for line in done.stdout.splitlines() if line.startswith("✗")}
    assert {"PrivateNetwork=", "RestrictAddressFamilies=~AF_UNIX", "SupplementaryGroups="} <= remaining


def test_the_unit_runs_the_gateway_with_watchdog_restart_and_private_state() -> None:
    unit = settings(UNIT.read_text())
    assert unit["Type"] == ["notify"] and unit["NotifyAccess"] == ["main"]
    assert unit["WatchdogSec"] == ["30s"] and unit["Restart"] == ["always"] and unit["StartLimitIntervalSec"] == ["0"]
    assert unit["User"] == ["gaitsym"] and unit["SupplementaryGroups"] == ["bluetooth"]
    assert unit["StateDirectory"] == ["gaitsym-gateway"] and unit["StateDirectoryMode"] == ["0700"]
    assert unit["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6"]  # D-Bus, the broker; no AF_BLUETOOTH
    assert unit["CapabilityBoundingSet"] == [""] and unit["PrivateDevices"] == ["yes"]
    assert unit["ExecStart"] == [f"{INSTALLED_GAITSYM} gateway --config /etc/gaitsym/gateway.toml"]
    # the folder systemd makes is where the gateway keeps its outbox by default and where enrol's config puts it
    assert "/var/lib/" + unit["StateDirectory"][0] == DEFAULT_STATE_DIR
    assert f'state_dir = "{DEFAULT_STATE_DIR}"' in (UNIT.parent / "gateway.example.toml").read_text()
