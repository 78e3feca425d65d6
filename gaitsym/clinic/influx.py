"""InfluxDB 1.x for the clinic: the database, its retention policies and users (the admin, one writer per worker,
Grafana's read-only user), created over HTTP with every password in a request body or header, never in a URL or
on a command line; what the compose stack's ``influxdb-setup`` service runs (`gaitsym clinic influx-setup`)."""

from __future__ import annotations

import base64
import json
import os
import re

from gaitsym.errors import ClinicSetupError

INFLUX_ADMIN = "admin"
GRAFANA_INFLUX_USER = "grafana"
GRAFANA_PASSWORD_ENV = "GAITSYM_GRAFANA_INFLUX_PASSWORD"
"""What deploy/grafana/provisioning's data source reads its password from (dashboards/provisioning.py)."""


def password_variable(user: str) -> str:
    return "GAITSYM_INFLUX_PASSWORD_" + re.sub(r"[^A-Z0-9]", "_", user.upper())


def setup_influx(
    url: str,
    admin_user: str,
    admin_password: str,
    writers: dict[str, str],
    readers: dict[str, str],
    raw_retention: str = "30d",
) -> None:
    """InfluxDB 1.x for the clinic: the first admin (when the server has no user yet), the gaitsym database and
    retention policies, each writer (a worker: ALL on gaitsym) and each reader (Grafana: READ) with the given
    password, set again on every run so that the server always matches secrets.json. Passwords only in request
    bodies; StoreError messages never hold one."""
    from analytics.stores.errors import StoreError
    from analytics.stores.influx_setup import create_first_admin, setup_v1, without_secret

    every = [admin_password, *writers.values(), *readers.values()]

    def scrub(exc: StoreError) -> StoreError:
        for secret in every:
            exc = without_secret(exc, secret)
        return exc

    try:
        create_first_admin(url, admin_user, admin_password)
        for name, password in writers.items():
            setup_v1(url, admin_user, admin_password, raw_retention=raw_retention, worker_user=name,
                     worker_password=password)  # fmt: skip
        if not writers:
            setup_v1(url, admin_user, admin_password, raw_retention=raw_retention)
        for name, password in readers.items():
            _admin_query(url, admin_user, admin_password, f"CREATE USER {_ident(name)} WITH PASSWORD {_str(password)}")
            _admin_query(url, admin_user, admin_password, f"REVOKE ALL ON {_ident('gaitsym')} FROM {_ident(name)}")
            _admin_query(url, admin_user, admin_password, f"GRANT READ ON {_ident('gaitsym')} TO {_ident(name)}")
        for name, password in {**writers, **readers}.items():
            _admin_query(url, admin_user, admin_password, f"SET PASSWORD FOR {_ident(name)} = {_str(password)}")
    except StoreError as exc:
        raise scrub(exc) from None


def _ident(name: str) -> str:
    from analytics.stores.influx_codec import quote_ident

    return quote_ident(name)


def _str(value: str) -> str:
    from analytics.stores.influx_codec import quote_str

    return quote_str(value)


def _admin_query(url: str, user: str, password: str, statement: str, timeout_s: float = 10.0) -> None:
    """One InfluxQL statement as the admin: the statement in the POST body, the credentials in the Authorization
    header (InfluxDB 1.x reads them from the URL or that header; a URL ends up in logs). "already exists" is
    success. StoreQueryError (message without any password) otherwise."""
    import urllib.error
    import urllib.parse
    import urllib.request

    from analytics.stores.errors import StoreQueryError, StoreUnavailable

    body = urllib.parse.urlencode({"q": statement}).encode()
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Authorization": f"Basic {token}"}
    request = urllib.request.Request(f"{url.rstrip('/')}/query", data=body, headers=headers)
    verb = " ".join(statement.split()[:2])
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as resp:
            text = resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        raise StoreQueryError(f"{verb}: HTTP {exc.code} {exc.read().decode('utf-8', 'replace')[:200]}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise StoreUnavailable(f"{url}: cannot reach InfluxDB: {exc}") from None
    for result in json.loads(text or "{}").get("results", []):
        error = str(result.get("error", ""))
        if error and "already exists" not in error:
            raise StoreQueryError(f"{verb}: {error}")


def influx_setup_from_environment(url: str, environ: dict[str, str] | None = None) -> str:
    """`setup_influx` with what influxdb/setup.env holds; returns what was done, in one line."""
    env = dict(os.environ if environ is None else environ)

    def need(name: str) -> str:
        value = env.get(name, "")
        if not value:
            raise ClinicSetupError(f"{name} is not set (influxdb/setup.env of the clinic folder)")
        return value

    writers = {n: need(password_variable(n)) for n in env.get("GAITSYM_INFLUX_WRITERS", "").split(",") if n}
    readers = {n: need(password_variable(n)) for n in env.get("GAITSYM_INFLUX_READERS", "").split(",") if n}
    admin = env.get("GAITSYM_INFLUX_ADMIN_USER") or INFLUX_ADMIN
    retention = env.get("GAITSYM_INFLUX_RAW_RETENTION") or "30d"
    setup_influx(url, admin, need("GAITSYM_INFLUX_ADMIN_PASSWORD"), writers, readers, retention)
    return (
        f"InfluxDB at {url}: database gaitsym (raw kept {retention}); writers {', '.join(writers) or 'none'}; "
        f"readers {', '.join(readers) or 'none'}"
    )
