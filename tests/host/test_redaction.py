"""Passwords and tokens in store or broker URLs never reach a terminal or a log: `redact_url` everywhere."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from analytics.stores import open_store
from analytics.stores.errors import StoreConfigError
from gaitsym_common.mqtt.client import MqttError, settings_from_url
from gaitsym_common.redaction import redact_url
from testing.servers import Mosquitto, free_port

SECRET = "s3cret-Pw"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("influx://worker:s3cret-Pw@db.example:8086/gaitsym", "influx://worker:***@db.example:8086/gaitsym"),
        (
            "influxs://worker:s3cret-Pw@db/gaitsym?api=v1&raw_retention=30d",
            "influxs://worker:***@db/gaitsym?api=v1&raw_retention=30d",
        ),
        ("influx://db/gaitsym?token=s3cret-Pw&org=clinic", "influx://db/gaitsym?token=***&org=clinic"),
        ("influx://worker@db/gaitsym", "influx://worker@db/gaitsym"),
        ("mqtts://gw-17:s3cret-Pw@broker.example:8883", "mqtts://gw-17:***@broker.example:8883"),
        ("influx://u:s3cret/Pw@db/gaitsym", "influx://u:***@db/gaitsym"),  # an unencoded '/' in the password
        ("influx://:s3cret-Pw@db/x", "influx://:***@db/x"),
        ("http://127.0.0.1:8086/query?u=admin&p=s3cret-Pw", "http://127.0.0.1:8086/query?u=admin&p=***"),
        ("/var/lib/gaitsym/store.sqlite", "/var/lib/gaitsym/store.sqlite"),
        (
            "store 'influx://a:s3cret-Pw@h/db' failed, then mqtt://b:s3cret-Pw@h2 too",
            "store 'influx://a:***@h/db' failed, then mqtt://b:***@h2 too",
        ),
    ],
)
def test_redact_url_keeps_the_user_and_hides_the_secret(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert "s3cret" not in redact_url(url)


def test_redact_url_never_raises() -> None:
    for odd in ("", "://", "influx://[::1", "influx://@", "a://b:@", "x://" + "@" * 1000, object(), 12):
        assert isinstance(redact_url(odd), str)


def test_store_and_broker_url_errors_do_not_echo_the_password() -> None:
    for bad in (f"influx://worker:{SECRET}@db/gaitsym?api=v9", f"influx://worker:{SECRET}@db/g?color=red"):
        with pytest.raises(StoreConfigError) as info:
            open_store(bad)
        assert SECRET not in str(info.value) and "worker:***@db" in str(info.value)
    with pytest.raises(StoreConfigError) as info:
        open_store(f"ftp://worker:{SECRET}@db/gaitsym")
    assert SECRET not in str(info.value)
    with pytest.raises(MqttError) as mqtt_info:
        settings_from_url(f"mqtt://gw:{SECRET}@broker:1883")
    assert SECRET not in str(mqtt_info.value)


def test_results_command_error_does_not_echo_the_password(
    gaitsym_main: Callable[[Sequence[str] | None], int], capsys: pytest.CaptureFixture[str]
) -> None:
    code = gaitsym_main(["results", "--subject", "s1", "--store", f"influx://worker:{SECRET}@db/gaitsym?api=v9"])
    out, err = capsys.readouterr()
    assert code != 0
    assert SECRET not in out + err and "worker:***@" in err


@pytest.fixture
def gaitsym_main() -> Callable[[Sequence[str] | None], int]:
    from gaitsym.cli import main

    return main


def test_worker_banner_shows_the_store_without_its_password(tmp_path: Path) -> None:
    """The real `gaitsym worker` process against a real broker: its banner names the store, user kept."""
    broker = Mosquitto(tmp_path / "broker").start()
    store_url = f"influx://worker:{SECRET}@127.0.0.1:{free_port()}/gaitsym"
    env = {**os.environ, "GAITSYM_STATE_DIR": str(tmp_path / "state")}
    cmd = [sys.executable, "-m", "gaitsym.cli", "worker", "--mqtt", f"127.0.0.1:{broker.port}"]
    cmd += ["--store", store_url, "--client-id", "redaction-test"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    output = b""
    try:
        assert proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + 60
        while b"store " not in output and time.monotonic() < deadline and proc.poll() is None:
            if sel.select(timeout=1.0):
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                output += chunk
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=30)
        output += rest or b""
        broker.stop()
    text = output.decode("utf-8", "replace")
    assert "store influx://worker:***@127.0.0.1" in text, text
    assert SECRET not in text
