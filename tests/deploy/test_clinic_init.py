"""`gaitsym clinic init` and `gaitsym enrol` on their own (no server): what they write, with which permissions,
what a second run keeps, and what they refuse without changing anything."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from gaitsym.cli import build_parser
from gaitsym.clinic import Clinic, Owner, enrol, init_clinic, mosquitto_hash, read_password_file
from gaitsym.errors import ClinicSetupError
from gaitsym.gateway_settings import check_private_files, resolve_settings
from testing.servers import ROOT


def init(root: Path, workers: int = 2) -> Clinic:
    return init_clinic(root, "clinic.test", workers=workers, run_as=Owner(os.geteuid(), os.getegid()))


def test_every_file_is_owner_only_and_never_committed(tmp_path: Path) -> None:
    clinic = init(tmp_path / "clinic")
    enrol(clinic.root, "S001", reload=False)
    for path in [clinic.root, *clinic.root.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path}: {mode:04o}"
    assert (clinic.root / ".gitignore").read_text().splitlines()[-1] == "*"
    # the default folder and the compose variables of deploy/clinic/init are ignored by the repository itself
    for name in ("deploy/clinic/local/secrets.json", "deploy/clinic/.env"):
        assert subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", name]).returncode == 0, name
    # no secret in the files meant to be shared or committed: the compose variables
    # written into an existing shared folder (deploy/clinic/ of a checkout): the file is owner-only, the folder
    # keeps its own mode
    shared = tmp_path / "checkout-deploy-clinic"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    compose_env = shared / "compose.env"
    init_clinic(clinic.root, "clinic.test", compose_env=compose_env)
    assert not any(secret in compose_env.read_text() for secret in clinic.secrets.values())
    assert stat.S_IMODE(compose_env.stat().st_mode) == 0o600
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755


def test_a_second_init_keeps_every_secret_and_adds_what_is_missing(tmp_path: Path) -> None:
    clinic = init(tmp_path / "clinic")
    enrol(clinic.root, "S001", reload=False)
    certificates = {p: p.read_bytes() for p in (clinic.root / "tls" / "server.crt", clinic.ca_crt)}
    secrets_before = json.loads(clinic.secrets_path.read_text())
    gateway_line = read_password_file(clinic.password_file)["S001"]
    again = init(clinic.root, workers=3)
    assert json.loads(clinic.secrets_path.read_text()).items() >= secrets_before.items()  # nothing replaced
    assert {p: p.read_bytes() for p in certificates} == certificates
    assert again.workers == ["worker-1", "worker-2", "worker-3"] and "mqtt:worker-3" in again.secrets
    users = read_password_file(clinic.password_file)
    assert users["S001"] == gateway_line  # an enrolled gateway keeps its password
    assert list(users) == ["worker-1", "worker-2", "worker-3", "clinic", "healthcheck", "S001"]
    acl = clinic.acl_file.read_text()
    assert "user worker-3\n" in acl and "user S001\ntopic write gaitsym/v1/S001/raw/+\n" in acl
    with pytest.raises(ClinicSetupError, match=r"clinic\.test"):
        init_clinic(clinic.root, "elsewhere.test")  # the gateways trust the first name


def test_enrol_writes_a_config_the_gateway_accepts(tmp_path: Path) -> None:
    clinic = init(tmp_path / "clinic")
    done = enrol(clinic.root, "S001", kit={"pelvis": "GS-1", "left_thigh": "GS-2", "right_thigh": "GS-3"}, reload=False)
    args = build_parser().parse_args(["gateway", "--config", str(done.config)])
    settings = resolve_settings(args)
    check_private_files(settings, args.config)
    assert settings["subject"] == settings["username"] == "S001"
    assert settings["broker"] == "mqtts://clinic.test:8883" and settings["tls_ca"] == "/etc/gaitsym/ca.crt"
    assert settings["kit"] == {"pelvis": "GS-1", "left_thigh": "GS-2", "right_thigh": "GS-3"}
    assert read_password_file(clinic.password_file)["S001"].startswith("$7$101$")
    assert (done.config.parent / "ca.crt").read_bytes() == clinic.ca_crt.read_bytes()
    assert mosquitto_hash(settings["password"]) != read_password_file(clinic.password_file)["S001"]  # salted


@pytest.mark.parametrize("subject", ["worker-1", "worker-7", "clinic", "healthcheck", "S 001", "S001/+", ""])
def test_enrol_refuses_a_service_name_or_a_bad_id_and_changes_nothing(tmp_path: Path, subject: str) -> None:
    clinic = init(tmp_path / "clinic")
    before = {p: p.read_bytes() for p in (clinic.password_file, clinic.acl_file, clinic.settings_path)}
    with pytest.raises(ClinicSetupError):
        enrol(clinic.root, subject, reload=False)
    assert {p: p.read_bytes() for p in before} == before


def test_enrol_refuses_a_subject_enrolled_already(tmp_path: Path) -> None:
    clinic = init(tmp_path / "clinic")
    first = enrol(clinic.root, "S001", reload=False)
    config = first.config.read_bytes()
    with pytest.raises(ClinicSetupError, match="already enrolled"):
        enrol(clinic.root, "S001", reload=False)
    assert first.config.read_bytes() == config  # the gateway's file and password are untouched


def test_the_enrol_command_says_when_the_broker_was_not_reloaded(tmp_path: Path) -> None:
    clinic = init(tmp_path / "clinic")
    argv = [sys.executable, "-m", "gaitsym.cli", "enrol", "--dir", str(clinic.root), "--subject", "S009"]
    argv += ["--broker-pid-file", str(tmp_path / "no-such.pid")]
    done = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 1 and "could not signal the broker" in done.stdout
    assert (clinic.gateway_folder("S009") / "gateway.toml").is_file()  # enrolled; reload it yourself


def test_a_subject_taken_out_of_the_clinic_loses_its_login_and_can_be_enrolled_again(tmp_path: Path) -> None:
    clinic = init(tmp_path / "clinic")
    first = enrol(clinic.root, "S001", reload=False)
    enrol(clinic.root, "S002", reload=False)
    old_line = read_password_file(clinic.password_file)["S001"]
    settings = json.loads(clinic.settings_path.read_text())
    settings["gateways"].remove("S001")
    clinic.settings_path.write_text(json.dumps(settings))
    init(clinic.root)
    assert "S001" not in read_password_file(clinic.password_file) and "user S001\n" not in clinic.acl_file.read_text()
    assert "S002" in read_password_file(clinic.password_file)  # the others keep theirs
    again = enrol(clinic.root, "S001", reload=False)
    assert read_password_file(clinic.password_file)["S001"] != old_line
    assert again.config == first.config and "user S001\n" in clinic.acl_file.read_text()


def test_a_folder_that_is_not_a_clinics_is_left_as_it_is(tmp_path: Path) -> None:
    """init makes its folder owner-only (and, as root, gives it to the containers' user): a --dir that already holds
    someone's files (a home folder, /srv) is refused before its mode changes; enrol never makes or changes a
    folder that is not a clinic's."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "notes.txt").write_text("mine\n")
    os.chmod(home, 0o755)
    with pytest.raises(ClinicSetupError, match="not a clinic folder"):
        init(home)
    with pytest.raises(ClinicSetupError, match="not a clinic folder"):
        enrol(home, "S001", reload=False)
    assert stat.S_IMODE(home.stat().st_mode) == 0o755
    assert [p.name for p in home.iterdir()] == ["notes.txt"]
    missing = tmp_path / "no-clinic-here"
    with pytest.raises(ClinicSetupError, match="not a clinic folder"):
        enrol(missing, "S001", reload=False)
    assert not missing.exists()
    prepared = tmp_path / "prepared"  # an empty folder made for the clinic (its own disk, say) is the clinic's
    prepared.mkdir()
    os.chmod(prepared, 0o755)
    init(prepared)
    assert stat.S_IMODE(prepared.stat().st_mode) == 0o700
    init(prepared)  # and stays the clinic's
