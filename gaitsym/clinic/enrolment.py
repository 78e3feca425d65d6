"""`gaitsym enrol`: hand out one gateway. Its broker user (the subject id) with its own password, its ACL block
(its own subject's topics, in the direction it uses them), its configuration file (mode 0600) and the clinic's CA
certificate to install on the gateway; then Mosquitto is reloaded (SIGHUP: the broker re-reads the password file
and the ACL without dropping anyone)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from gaitsym.clinic.broker import (
    AclRules,
    acl_text,
    is_reserved_user,
    mosquitto_hash,
    password_file_text,
    read_password_file,
)
from gaitsym.clinic.folder import Clinic, new_password
from gaitsym.clinic.formats import toml_str
from gaitsym.clinic.private_files import FILE_MODE, clinic_lock, give_to, make_folder, write_private
from gaitsym.clinic.shipped import COMPOSE_FILE
from gaitsym.errors import ClinicSetupError


@dataclass(frozen=True)
class Enrolment:
    subject: str
    config: Path
    reloaded: bool
    reload_message: str


def gateway_config_text(clinic: Clinic, subject: str, password: str, kit: dict[str, str], etc: str) -> str:
    lines = [
        f"# gaitsym home gateway of subject {subject}, written by `gaitsym enrol` for the clinic at",
        f"# {clinic.settings['hostname']} on {time.strftime('%Y-%m-%d')}. It holds the gateway's broker password:",
        "# hand it over like a key. Install it on the gateway as",
        f"# {etc}/gateway.toml with ca.crt beside it, owner gaitsym, mode 0600 (the gateway refuses a file other",
        "# users could read; deploy/gateway/README.md).",
        f"subject = {toml_str(subject)}",
        f"broker = {toml_str(clinic.broker_url)}",
        f"username = {toml_str(subject)}",
        f"password = {toml_str(password)}",
        f"tls_ca = {toml_str(etc + '/ca.crt')}",
        'state_dir = "/var/lib/gaitsym-gateway"',
        '# adapter = "hci1"                     # a USB dongle on a Raspberry Pi (sensor_gateway/ble/BLE.md)',
    ]
    if kit:
        lines += [
            "",
            "# the kit handed out with this gateway: it refuses to pair or run with any other sensors",
            "[kit]",
        ]
        lines += [f"{placement} = {toml_str(serial)}" for placement, serial in kit.items()]
    return "\n".join(lines) + "\n"


def parse_kit(text: str | None) -> dict[str, str]:
    """``pelvis=SERIAL,left_thigh=SERIAL,right_thigh=SERIAL`` -> the ``[kit]`` table (checked like the gateway
    checks it)."""
    if not text:
        return {}
    from gaitsym.gateway_settings import check_kit

    pairs: dict[str, str] = {}
    for item in text.split(","):
        placement, sep, serial = item.partition("=")
        if not sep or placement.strip() in pairs:
            raise ClinicSetupError(f"--kit {text!r}: expected placement=SERIAL, comma-separated, each placement once")
        pairs[placement.strip()] = serial.strip()
    try:
        return check_kit(pairs, "--kit")
    except ValueError as exc:
        raise ClinicSetupError(str(exc)) from None


def enrol(
    root: Path,
    subject: str,
    *,
    kit: dict[str, str] | None = None,
    gateway_etc: str = "/etc/gaitsym",
    reload: bool = True,
    broker_pid_file: Path | None = None,
) -> Enrolment:
    """Give ``subject``'s gateway a broker user of its own, its ACL block and its configuration file, then reload
    Mosquitto. ClinicSetupError (nothing changed) for an invalid, reserved or already enrolled subject."""
    from gaitsym_common.uplink.topics import check_subject

    try:
        subject = check_subject(subject)
    except ValueError as exc:
        raise ClinicSetupError(f"--subject: {exc}") from None
    if is_reserved_user(subject):
        raise ClinicSetupError(f"--subject {subject!r} is the name of a clinic service user: choose another id")
    rules = AclRules.load()
    root = Path(root).resolve()
    Clinic.open(root)  # a folder that is not a clinic's is refused before anything is made or locked in it
    with clinic_lock(root):
        clinic = Clinic.open(root)
        users = read_password_file(clinic.password_file)
        users.pop(subject, None)  # a login left from a withdrawn enrolment is replaced
        if subject in clinic.subjects:
            raise ClinicSetupError(
                f"subject {subject!r} is already enrolled (its gateway's file is {clinic.gateway_folder(subject)}); "
                "to give it new credentials, take it out of clinic.json's gateways, run init (which withdraws its "
                "login), then enrol again"
            )
        owner = clinic.owner
        password = new_password()
        folder = make_folder(clinic.gateway_folder(subject), owner)
        config = write_private(
            folder / "gateway.toml", gateway_config_text(clinic, subject, password, kit or {}, gateway_etc), owner
        )
        shutil.copyfile(clinic.ca_crt, folder / "ca.crt")
        os.chmod(folder / "ca.crt", FILE_MODE)
        give_to(folder / "ca.crt", owner)
        users[subject] = mosquitto_hash(password)
        clinic.settings["gateways"] = [*clinic.subjects, subject]
        write_private(clinic.acl_file, acl_text(rules, clinic.workers, clinic.subjects), owner)
        write_private(clinic.password_file, password_file_text(users), owner)
        clinic.save()
    if not reload:
        return Enrolment(subject, config, False, "not reloaded (--no-reload): send Mosquitto SIGHUP to apply")
    ok, message = reload_broker(clinic, broker_pid_file)
    return Enrolment(subject, config, ok, message)


def reload_broker(clinic: Clinic, pid_file: Path | None) -> tuple[bool, str]:
    """SIGHUP to Mosquitto: to the process in ``pid_file``, else through compose (``docker compose kill -s SIGHUP
    mosquitto`` on deploy/clinic/compose.yaml). (done, what happened)."""
    if pid_file is not None:
        try:
            pid = int(Path(pid_file).read_text().strip())
            os.kill(pid, signal.SIGHUP)
        except (OSError, ValueError) as exc:
            return False, f"could not signal the broker in {pid_file}: {exc}"
        return True, f"Mosquitto (pid {pid}) reloaded"
    docker = shutil.which("docker")
    if docker is None:
        return (
            False,
            "docker not found: reload Mosquitto yourself (SIGHUP), e.g. `docker compose kill -s SIGHUP mosquitto`",
        )
    argv = [docker, "compose", "-f", str(COMPOSE_FILE), "kill", "-s", "SIGHUP", "mosquitto"]
    env_file = COMPOSE_FILE.parent / ".env"
    if env_file.exists():
        argv[2:2] = ["--env-file", str(env_file)]
    done = subprocess.run(argv, capture_output=True, timeout=60, check=False)
    if done.returncode != 0:
        return False, f"`{' '.join(argv[1:])}` failed: {done.stderr.decode(errors='replace')[-400:]}"
    return True, "Mosquitto reloaded (docker compose kill -s SIGHUP mosquitto)"
