"""Set up InfluxDB 1.x for gaitsym once, with no password on any command line.

    python -m analytics.stores.influx_setup [--url http://127.0.0.1:8086] [--admin admin] [--worker worker]
                                            [--database gaitsym] [--raw-retention 30d]

creates the first admin user when the server has none (InfluxDB allows exactly that one statement without
credentials while no user exists), then the database, its retention policies and the worker's user
(`setup_v1`). Passwords come from the environment, ``GAITSYM_INFLUX_ADMIN_PASSWORD``
and ``GAITSYM_INFLUX_PASSWORD`` (the variable the worker itself reads), else they are asked for on the
terminal without echo (or read from standard input when there is no terminal). They travel only in HTTP
request bodies and headers: never on a command line (visible to every local user in ``ps`` and
``/proc/*/cmdline``), never in shell history, never in an error message.

Exit status: 0 done, 1 the server refused or could not be reached, 2 a missing password or bad argument.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import replace

from analytics.stores.errors import StoreError, StoreQueryError, StoreUnavailable
from analytics.stores.influx import InfluxConfig, InfluxStore
from analytics.stores.influx_codec import quote_ident, quote_str
from analytics.stores.influx_layout import RawLayout
from analytics.stores.quarantine import Quarantine
from gaitsym_common.redaction import redact_url

ADMIN_PASSWORD_ENV = "GAITSYM_INFLUX_ADMIN_PASSWORD"
RESULTS_SHARD_DURATION = "52w"
"""Shard group duration of the results policy (kept forever, about 100 points per session)."""
WORKER_PASSWORD_ENV = "GAITSYM_INFLUX_PASSWORD"
NEW_DATABASE_LAYOUT = "packed"
"""The raw layout a database nothing was written to is marked with (`influx_layout`; one holding data keeps its
marker, or none: `gaitsym store raw-layout` switches it once every worker reads both layouts)."""


def without_secret(exc: StoreError, secret: str) -> StoreError:
    """A copy of ``exc`` (same class) whose message no longer holds ``secret``, quoted or not."""
    message = str(exc)
    if secret:
        message = message.replace(quote_str(secret), "'***'").replace(secret, "***")
    return type(exc)(message)


def setup_v1(
    url: str,
    admin_user: str,
    admin_password: str,
    *,
    database: str = "gaitsym",
    raw_rp: str = "raw",
    raw_retention: str = "30d",
    sensor_time_rp: str = "raw_unsynced",
    results_rp: str = "results",
    worker_user: str | None = None,
    worker_password: str | None = None,
    timeout_s: float = 10.0,
) -> None:
    """Create the database, its retention policies and (optionally) the worker's user on InfluxDB 1.x.

    Idempotent: an existing policy is ALTERed to the requested duration. A database nothing was written to yet
    is marked to be written in the packed raw layout (`NEW_DATABASE_LAYOUT`); one holding data keeps its marker, or
    none. Needs an admin user (1.x grants
    CREATE RETENTION POLICY to admins only). 2.x: create buckets ``{database}/{raw_rp}`` with the raw
    retention, ``{database}/{sensor_time_rp}`` and ``{database}/{results_rp}`` with none instead
    (``influx bucket create``).
    """
    admin = InfluxStore(
        InfluxConfig(url=url, database=database, username=admin_user, password=admin_password, timeout_s=timeout_s),
        quarantine=_NoQuarantine(),
    )
    try:
        db = quote_ident(database)
        admin.query(f"CREATE DATABASE {db}")
        existing = admin.retention_policies()
        policies = ((raw_rp, raw_retention, ""), (sensor_time_rp, "INF", ""), (results_rp, "INF", " DEFAULT"))
        for rp, duration, default in policies:
            verb = "ALTER" if rp in existing else "CREATE"
            shard = " SHARD DURATION 1d" if duration != "INF" else ""
            if rp == results_rp:
                # results are sparse (~100 points per session): a dashboard query costs per series, field and shard
                # it touches, and 7-day shards (the default without a duration) made the clinic overview 6-10x
                # slower (bench/RESULTS.md, "Dashboard queries"); an ALTER only changes shards created afterwards
                shard = f" SHARD DURATION {RESULTS_SHARD_DURATION}"
            admin.query(
                f"{verb} RETENTION POLICY {quote_ident(rp)} ON {db} DURATION {duration} REPLICATION 1{shard}{default}"
            )
        if worker_user:
            secret = worker_password or ""
            try:
                admin.query(f"CREATE USER {quote_ident(worker_user)} WITH PASSWORD {quote_str(secret)}")
            except StoreError as exc:
                if not (isinstance(exc, StoreQueryError) and "already exists" in str(exc)):
                    # the error quotes the statement, password included: never let it reach a log
                    raise without_secret(exc, secret) from None
            admin.query(f"GRANT ALL ON {db} TO {quote_ident(worker_user)}")
        # a database nothing was written to (no measurement, so no marker either) has no worker older than the
        # packed layout writing to it: marked last, so a setup that failed before is marked when run again
        if not admin.query(f"SHOW MEASUREMENTS ON {db}"):
            marking = replace(admin.config, results_rp=results_rp)
            RawLayout(marking, admin.transport).mark(NEW_DATABASE_LAYOUT)
    finally:
        admin.close()


class _NoQuarantine(Quarantine):
    """Admin connections never write data: no quarantine file."""

    def __init__(self) -> None:
        pass

    def close(self) -> None:
        pass


def create_first_admin(url: str, user: str, password: str, timeout_s: float = 10.0) -> bool:
    """Create the server's first user, an admin, if it has none: True when created, False when the server
    already has users (it then refuses unauthenticated statements). StoreError otherwise; its message never holds
    the password."""
    if not password:
        raise StoreQueryError("admin password: empty (InfluxDB refuses an empty password)")
    statement = f"CREATE USER {quote_ident(user)} WITH PASSWORD {quote_str(password)} WITH ALL PRIVILEGES"
    body = urllib.parse.urlencode({"q": statement}).encode()
    request = urllib.request.Request(
        f"{url.rstrip('/')}/query", data=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as resp:
            text = resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            return False
        detail = exc.read().decode("utf-8", "replace")[:300]
        raise without_secret(StoreQueryError(f"creating the first admin: HTTP {exc.code} {detail}"), password) from None
    except (urllib.error.URLError, OSError) as exc:
        raise StoreUnavailable(f"{redact_url(url)}: cannot reach InfluxDB: {exc}") from None
    for result in json.loads(text or "{}").get("results", []):
        error = str(result.get("error", ""))
        if "already exists" in error:
            return False
        if error:
            raise without_secret(StoreQueryError(f"creating the first admin: {error}"), password)
    return True


def _password(variable: str, prompt: str) -> str:
    value = os.environ.get(variable)
    if value is None:
        value = getpass.getpass(prompt)
    return value.strip("\r\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analytics.stores.influx_setup",
        description="Set up InfluxDB 1.x for gaitsym (passwords from the environment or asked for, never argv).",
    )
    parser.add_argument("--url", default="http://127.0.0.1:8086", help="InfluxDB HTTP URL (no credentials in it)")
    parser.add_argument("--admin", default="admin", help=f"admin user (password: ${ADMIN_PASSWORD_ENV} or asked)")
    parser.add_argument("--worker", default="worker", help=f"worker user (password: ${WORKER_PASSWORD_ENV} or asked)")
    parser.add_argument("--database", default="gaitsym")
    parser.add_argument("--raw-retention", default="30d", help="how long raw samples are kept (InfluxQL duration)")
    args = parser.parse_args(argv)
    if urllib.parse.urlsplit(args.url).password is not None:
        print(
            f"influx_setup: --url {redact_url(args.url)}: give the password by environment, not in the URL",
            file=sys.stderr,
        )
        return 2
    admin_password = _password(ADMIN_PASSWORD_ENV, f"password of InfluxDB admin {args.admin!r}: ")
    worker_password = _password(WORKER_PASSWORD_ENV, f"password of InfluxDB user {args.worker!r}: ")
    if not admin_password or not worker_password:
        print("influx_setup: empty password (set the environment variables or type them when asked)", file=sys.stderr)
        return 2
    try:
        created = create_first_admin(args.url, args.admin, admin_password)
        print(f"admin {args.admin!r}: {'created' if created else 'the server already has users; using it'}")
        setup_v1(
            args.url,
            args.admin,
            admin_password,
            database=args.database,
            raw_retention=args.raw_retention,
            worker_user=args.worker,
            worker_password=worker_password,
        )
    except StoreError as exc:
        message = without_secret(without_secret(exc, admin_password), worker_password)
        print(f"influx_setup: {redact_url(message)}", file=sys.stderr)
        return 1
    print(
        f"database {args.database!r} with retention policies raw ({args.raw_retention}), raw_unsynced, results; "
        f"user {args.worker!r} may read and write it"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
