"""The checkout's files a clinic is made from and run by: its clinic folder is generated from them, never the
other way round (edit these and run `gaitsym clinic init` again)."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy"
SHIPPED_BROKER_CONF = DEPLOY / "mosquitto" / "mosquitto.conf"
SHIPPED_ACL = DEPLOY / "mosquitto" / "acl.example"
COMPOSE_FILE = DEPLOY / "clinic" / "compose.yaml"
WORKER_SERVICE_FILE = DEPLOY / "clinic" / "worker.compose.yaml"
"""The analytics worker's service, which each of the clinic's ``worker-N`` services extends."""
