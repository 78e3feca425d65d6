"""One rule for TLS in every gaitsym MQTT client (gateway, worker, session command): the URL scheme decides
(``mqtts://`` TLS, ``mqtt://`` plain), a CA file only chooses whom to trust, and TLS files with a plain URL are
a typed error, never a silent switch either way. (TLS connections to the real broker: test_clinic_profile.py.)"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from analytics.worker import cli as worker_cli
from analytics.worker.link import SESSION_EXPIRY_S, PahoWorkerLink
from gaitsym.cli import build_parser, main
from gaitsym.gateway_runner import mqtt_settings
from gaitsym_common.mqtt.client import Connected, MqttError, settings_from_url
from gaitsym_common.uplink.topics import worker_subscriptions
from testing.servers import Mosquitto


def worker_settings(*flags: str):  # type: ignore[no-untyped-def]
    return worker_cli.mqtt_settings(build_parser().parse_args(["worker", *flags]))


def test_the_scheme_alone_decides_tls_for_the_gateway_and_the_worker(tmp_path: Path) -> None:
    ca = str(tmp_path / "ca.crt")
    for settings in (
        mqtt_settings({"broker": "mqtts://broker.clinic.example", "tls_ca": ca}, "gw"),
        worker_settings("--mqtt", "mqtts://broker.clinic.example", "--tls-ca", ca),
    ):
        assert (settings.tls, settings.port, settings.tls_ca_file) == (True, 8883, ca)
    for settings in (
        mqtt_settings({"broker": "mqtts://broker.clinic.example:9883"}, "gw"),  # the system's CA store
        worker_settings("--mqtt", "mqtts://broker.clinic.example:9883"),
    ):
        assert (settings.tls, settings.port, settings.tls_ca_file) == (True, 9883, None)
    for settings in (
        mqtt_settings({"broker": "mqtt://10.0.0.5"}, "gw"),
        worker_settings("--mqtt", "mqtt://10.0.0.5"),
        worker_settings("--mqtt", "10.0.0.5:1883"),  # a bare HOST:PORT is mqtt://
    ):
        assert (settings.tls, settings.host, settings.port) == (False, "10.0.0.5", 1883)
    assert worker_settings().session_expiry_s == SESSION_EXPIRY_S
    assert worker_settings("--session-expiry-s", "5").session_expiry_s == 5


def test_tls_files_with_a_plain_url_are_refused_not_ignored_nor_switching_tls_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ca = str(tmp_path / "ca.crt")
    with pytest.raises(MqttError, match="mqtts://"):
        mqtt_settings({"broker": "mqtt://broker.clinic.example", "tls_ca": ca}, "gw")
    with pytest.raises(MqttError, match="mqtts://"):
        settings_from_url("mqtt://broker.clinic.example", tls_cert_file="c.crt", tls_key_file="c.key")
    with pytest.raises(TypeError):
        settings_from_url("mqtt://broker.clinic.example", tls=True)
    store = str(tmp_path / "store.sqlite")
    assert main(["worker", "--mqtt", "mqtt://127.0.0.1:1", "--tls-ca", ca, "--store", store]) == 2
    assert "mqtts://" in capsys.readouterr().err
    argv = ["session", "start", "--subject", "S001", "--broker", "mqtt://127.0.0.1:1", "--tls-ca", ca]
    assert main(argv) == 2  # the session command: a usage error before any connection
    assert "mqtts://" in capsys.readouterr().err


def test_a_broker_url_with_a_password_is_refused_without_echoing_it() -> None:
    with pytest.raises(MqttError) as refused:
        settings_from_url("mqtts://S001:hunter2@broker.clinic.example")
    assert "hunter2" not in str(refused.value)
    with pytest.raises(MqttError) as wrong_scheme:
        settings_from_url("https://S001:hunter2@broker.clinic.example")
    assert "hunter2" not in str(wrong_scheme.value)


def test_the_worker_with_an_mqtt_url_connects_in_plain_text(mosquitto: Mosquitto) -> None:
    """The project's broker listens without TLS: a worker that tried TLS there would never connect."""
    link = PahoWorkerLink(worker_settings("--mqtt", f"mqtt://127.0.0.1:{mosquitto.port}", "--client-id", "w-plain"))
    link.connect(worker_subscriptions())
    try:
        deadline = time.monotonic() + 15.0
        events: list[object] = []
        while not any(isinstance(e, Connected) for e in events):
            assert time.monotonic() < deadline, f"the worker did not connect: {events}"
            events += link.wait(0.05)
    finally:
        link.close()
    assert "as w-plain (p5, c0" in mosquitto.log_path.read_text()  # MQTT 5, clean start off
