"""The gateway's settings: flags over the TOML config file over defaults (the keys are listed in
`gaitsym.gateway_cli`). Standard library only: both the import-light command line and the runner use it.

Three keys exist only in the file, never as flags: ``bundle`` (false: one MQTT message per batch and marker, for a
clinic whose workers are older than bundles), ``password`` (the MQTT password, for a configuration file that
is itself a secret; ``password_file`` and ``GAITSYM_MQTT_PASSWORD`` are the alternatives) and ``[kit]`` (the
serial of the sensor the clinic handed out for each placement: the gateway refuses to run on another kit).
`check_private_files` is what the gateway runs at start: the configuration file and every secret file it names
must be owner-only."""

from __future__ import annotations

import argparse
import os
import stat
from pathlib import Path
from typing import Any

from gaitsym.errors import ConfigError, InsecureFile

DEFAULT_BROKER = "mqtt://127.0.0.1:1883"
DEFAULT_SUBJECT = "demo-001"
DEFAULT_STATE_DIR = "/var/lib/gaitsym-gateway"

_CONFIG_KEYS = (
    "subject",
    "broker",
    "username",
    "password_file",
    "tls_ca",
    "tls_cert",
    "tls_key",
    "client_id",
    "state_dir",
    "batch_s",
    "time_sync_every_s",
    "outbox_budget_mb",
    "adapter",
    "silence_timeout_s",
    "bundle",
    "password",
    "kit",
)
SECRET_FILE_KEYS = ("password_file", "tls_key")
"""Settings naming a file that holds a secret: each must be owner-only, like the configuration file."""


def resolve_settings(args: argparse.Namespace) -> dict[str, Any]:
    """Flags over the config file over defaults (only the keys in the module docstring)."""
    merged: dict[str, Any] = {}
    if getattr(args, "config", None):
        import tomllib

        with open(args.config, "rb") as fh:
            doc = tomllib.load(fh)
        unknown = sorted(set(doc) - set(_CONFIG_KEYS))
        if unknown:
            raise ValueError(
                f"{args.config}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(_CONFIG_KEYS)}"
            )
        merged.update(doc)
        if "bundle" in doc and not isinstance(doc["bundle"], bool):
            raise ConfigError(f"{args.config}: bundle must be true or false, got {doc['bundle']!r}")
        if "kit" in doc:
            merged["kit"] = check_kit(doc["kit"], args.config)
    for key in _CONFIG_KEYS:
        value = getattr(args, key, None)
        if value is not None:
            merged[key] = value
    merged.setdefault("subject", DEFAULT_SUBJECT)
    merged.setdefault("broker", DEFAULT_BROKER)
    merged.setdefault("state_dir", DEFAULT_STATE_DIR)
    return merged


def check_kit(kit: object, source: str) -> dict[str, str]:
    """The ``[kit]`` table: placement -> sensor serial, every placement at most once. ConfigError naming it."""
    from firmware_protocol.sensor_info import PLACEMENTS as PLACEMENT_KEYS

    if not isinstance(kit, dict) or not kit:
        raise ConfigError(f'{source}: [kit] must be a table of placement = "SERIAL" ({", ".join(PLACEMENT_KEYS)})')
    unknown = sorted(set(kit) - set(PLACEMENT_KEYS))
    if unknown:
        known = ", ".join(PLACEMENT_KEYS)
        raise ConfigError(f"{source}: [kit] unknown placement(s) {', '.join(unknown)}; known: {known}")
    for placement, serial in kit.items():
        if not isinstance(serial, str) or not 0 < len(serial) <= 64 or not serial.isprintable():
            raise ConfigError(f"{source}: [kit] {placement}: expected the sensor's serial (1-64 printable characters)")
    return dict(kit)


def check_private_file(path: str | os.PathLike[str], what: str) -> None:
    """Refuse a file other local users may read or change: InsecureFile naming it, its mode and the fix. A
    missing file is left to whoever opens it (their error names it)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    if stat.S_ISREG(st.st_mode) and st.st_mode & 0o077:
        raise InsecureFile(
            f"{what} {path} is open to other users (mode {stat.S_IMODE(st.st_mode):04o}): it holds or leads to the "
            f"gateway's credentials; make it owner-only (chmod 600 {path}) and start again"
        )


def check_private_files(settings: dict[str, Any], config_path: str | None) -> None:
    """The gateway's start check: the configuration file and each secret file it names are owner-only."""
    if config_path:
        check_private_file(Path(config_path), "configuration file")
    for key in SECRET_FILE_KEYS:
        if settings.get(key):
            check_private_file(Path(settings[key]), f"secret file ({key})")
