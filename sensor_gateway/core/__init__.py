"""The gateway core: transport events -> decode -> clock mapping -> batches -> outbox -> MQTT -> acks."""

from sensor_gateway.core.gateway import Gateway, GatewayConfig, run_for
from sensor_gateway.core.session import SessionTracker

__all__ = ["Gateway", "GatewayConfig", "SessionTracker", "run_for"]
