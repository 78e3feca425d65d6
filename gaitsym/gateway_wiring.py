"""What every gateway-side command shares: its exit codes, its logger and the MQTT settings built from the
resolved settings file (broker URL, user, password file, the file's own ``password`` or ``GAITSYM_MQTT_PASSWORD``,
TLS files)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from gaitsym_common.mqtt.client import MqttSettings, settings_from_url

log = logging.getLogger("sensor_gateway")

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_NO_REPLY = 0, 1, 2, 3


def mqtt_settings(settings: dict[str, Any], default_client_id: str) -> MqttSettings:
    password = settings.get("password") or os.environ.get("GAITSYM_MQTT_PASSWORD")
    if settings.get("password_file"):
        password = Path(settings["password_file"]).read_text().strip()
    return settings_from_url(
        settings["broker"],
        client_id=settings.get("client_id") or default_client_id,
        username=settings.get("username"),
        password=password,
        tls_ca_file=settings.get("tls_ca"),
        tls_cert_file=settings.get("tls_cert"),
        tls_key_file=settings.get("tls_key"),
    )
