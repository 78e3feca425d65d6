"""The gateway's MQTT link: a small interface the gateway owns, and its paho-mqtt 2.x implementation."""

from gaitsym_common.mqtt.client import (
    Connected,
    Disconnected,
    Incoming,
    MqttError,
    MqttEvent,
    MqttLink,
    MqttSettings,
    PahoLink,
    apply_tls_and_credentials,
    is_retryable,
    settings_from_url,
)

__all__ = [
    "Connected",
    "Disconnected",
    "Incoming",
    "MqttError",
    "MqttEvent",
    "MqttLink",
    "MqttSettings",
    "PahoLink",
    "apply_tls_and_credentials",
    "is_retryable",
    "settings_from_url",
]
