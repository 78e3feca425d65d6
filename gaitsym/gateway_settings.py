"""The gateway's settings: flags over the TOML config file over defaults (the keys are listed in
`gaitsym.gateway_cli`). Standard library only: both the import-light command line and the runner use it."""

from __future__ import annotations

import argparse
from typing import Any

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
)


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
    for key in _CONFIG_KEYS:
        value = getattr(args, key, None)
        if value is not None:
            merged[key] = value
    merged.setdefault("subject", DEFAULT_SUBJECT)
    merged.setdefault("broker", DEFAULT_BROKER)
    merged.setdefault("state_dir", DEFAULT_STATE_DIR)
    return merged
