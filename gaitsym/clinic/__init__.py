"""A clinic's secrets and configuration, made by `gaitsym clinic init` and `gaitsym enrol`.

`init` fills one folder (the *clinic folder*, owner-only) with everything `deploy/clinic/compose.yaml` needs:

    secrets.json                 every service password and token (the one source; the files below derive from it)
    clinic.json                  what is not secret: host name, ports, workers, enrolled subjects, who runs it
    ca/ca.key, ca/ca.crt         the clinic's private certificate authority (the key never leaves this folder)
    tls/ca.crt, server.crt/.key  the server certificate (broker and Grafana), for the host name and the service names
    mosquitto/                   mosquitto.conf (the clinic profile of deploy/mosquitto/mosquitto.conf),
                                 gaitsym.passwd (hashes only), gaitsym.acl (per user, from acl.example); data/
    mosquitto/health/mosquitto_sub   the health check's own broker user, as a mosquitto_sub options file
    influxdb/setup.env           InfluxDB users for `gaitsym clinic influx-setup`; data/, backups/
    grafana/grafana.env          Grafana's admin password, secret key, TLS, and its read-only InfluxDB user; data/
    workers/worker-N.env         each worker's own broker and InfluxDB password; worker-N-state/
    workers/compose.yaml         the stack's worker-1 ... worker-N services (compose.yaml includes it)
    session-command.toml         the session command's own broker user (`gaitsym session ... --config`)
    gateways/SUBJECT/            written by `enrol`: gateway.toml (mode 0600) and ca.crt, to install on the gateway

and writes the compose file's variables (``--compose-env``: the folder, the user the containers run as, host name,
ports). Every file is created owner-only (0600, folders 0700) by an atomic rename, and the folder holds a
``.gitignore`` of ``*``: nothing in it is ever committed. Running `init` again is safe: an existing secret is
never replaced (delete ``tls/server.crt`` to renew the certificate, a user's entry in ``secrets.json`` to give
it a new password), only what is missing is added, and every derived file is written again from the sources.

Passwords never travel on a command line: the broker's password file is written here in Mosquitto's own format
(PBKDF2-SHA512, ``$7$``), the InfluxDB users are created over HTTP request bodies, and `openssl` is given no
secret at all (the keys are unencrypted files, protected by their mode).

The parts, each in a module of its own: the clinic folder (`folder`), owner-only files and the folder's lock
(`private_files`), Mosquitto's password file, ACL and configuration (`broker`), the CA and server certificate
(`certificates`), InfluxDB's users (`influx`), what compose reads (`compose_files`), `init` (`init`) and
`enrol` (`enrolment`). Standard library only; the InfluxDB set-up imports the analytics stores when it runs.
"""

from __future__ import annotations

from gaitsym.clinic.broker import CONTAINER, LOOPBACK_PORT, mosquitto_hash, read_password_file
from gaitsym.clinic.enrolment import Enrolment, enrol, parse_kit, reload_broker
from gaitsym.clinic.folder import Clinic
from gaitsym.clinic.influx import GRAFANA_INFLUX_USER, influx_setup_from_environment, setup_influx
from gaitsym.clinic.init import init_clinic
from gaitsym.clinic.private_files import Owner
from gaitsym.clinic.shipped import COMPOSE_FILE

__all__ = [
    "COMPOSE_FILE",
    "CONTAINER",
    "GRAFANA_INFLUX_USER",
    "LOOPBACK_PORT",
    "Clinic",
    "Enrolment",
    "Owner",
    "enrol",
    "influx_setup_from_environment",
    "init_clinic",
    "mosquitto_hash",
    "parse_kit",
    "read_password_file",
    "reload_broker",
    "setup_influx",
]
