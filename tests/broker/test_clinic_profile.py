"""The clinic profile of deploy/mosquitto/ (TLS, one user per client, client id = user name, acl.example) on the
real Mosquitto, with every gaitsym client built the production way: the gateway's settings from
`runner.mqtt_settings` and `PahoLink`, the worker's from `gaitsym worker` flags and `PahoWorkerLink`, the session
command itself. All connect with an ``mqtts://`` URL and the test CA."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from analytics.worker import cli as worker_cli
from analytics.worker.link import Delivery, PahoWorkerLink
from broker.clinic import USERS, ClinicFiles, clinic_files
from gaitsym.cli import build_parser
from gaitsym.gateway_runner import mqtt_settings, run_session_command
from gaitsym_common.mqtt.client import (
    Connected,
    Disconnected,
    Incoming,
    MqttEvent,
    PahoLink,
    apply_tls_and_credentials,
    settings_from_url,
)
from gaitsym_common.uplink import envelope as env
from gaitsym_common.uplink.topics import gateway_subscriptions, topic, worker_subscriptions
from testing.servers import Mosquitto

WAIT_S = 15.0
"""Upper bound for things that happen within milliseconds on loopback (a deadline, not a measured time)."""


@pytest.fixture
def clinic(tmp_path: Path) -> Iterator[tuple[Mosquitto, ClinicFiles]]:
    files = clinic_files(tmp_path / "clinic")
    broker = Mosquitto(tmp_path / "mosquitto", conf=files.conf).start()
    try:
        yield broker, files
    finally:
        broker.kill()


def url(broker: Mosquitto) -> str:
    return f"mqtts://127.0.0.1:{broker.port}"


def gateway(broker: Mosquitto, files: ClinicFiles, subject: str, client_id: str | None = None) -> PahoLink:
    """A gateway's link as `gaitsym gateway` makes it (its settings file: broker URL, user, password file, CA)."""
    password_file = files.conf.parent / f"{subject}.password"
    password_file.write_text(USERS[subject] + "\n")
    settings = {
        "broker": url(broker),
        "username": subject,
        "password_file": str(password_file),
        "tls_ca": str(files.ca),
        "client_id": client_id,
    }
    link = PahoLink(mqtt_settings(settings, f"gaitsym-gateway-{subject}"))
    link.connect(will=(topic(subject, "status"), b'{"state":"offline"}'))
    link.subscribe(gateway_subscriptions(subject))
    return link


def worker(broker: Mosquitto, files: ClinicFiles, user: str, monkeypatch: pytest.MonkeyPatch) -> PahoWorkerLink:
    """A worker's link from the flags of `gaitsym worker` (password from GAITSYM_MQTT_PASSWORD)."""
    monkeypatch.setenv("GAITSYM_MQTT_PASSWORD", USERS[user])
    args = build_parser().parse_args(
        ["worker", "--mqtt", url(broker), "--tls-ca", str(files.ca), "--username", user, "--client-id", "gw"]
    )
    settings = worker_cli.mqtt_settings(args)
    assert settings.tls and settings.port == broker.port
    link = PahoWorkerLink(settings)
    link.connect(worker_subscriptions())
    return link


class Collected:
    """Everything a gateway link reported, gathered from `events()`."""

    def __init__(self, link: PahoLink) -> None:
        self.link = link
        self.events: list[MqttEvent] = []

    def until(self, done: Callable[[list[MqttEvent]], bool], what: str) -> None:
        deadline = time.monotonic() + WAIT_S
        while not done(self.events):
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {WAIT_S} s; events {self.events[-10:]}")
            self.events += self.link.events()
            time.sleep(0.02)

    def incoming(self, kind: str) -> list[bytes]:
        return [e.payload for e in self.events if isinstance(e, Incoming) and e.topic.endswith("/" + kind)]


def worker_events_until(link: PahoWorkerLink, done: Callable[[list[Any]], bool], what: str) -> list[Any]:
    events: list[Any] = []
    deadline = time.monotonic() + WAIT_S
    while not done(events):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {WAIT_S} s; events {events[-10:]}")
        events += link.wait(0.05)
    return events


def ack(subject: str, worker_user: str, text: str) -> bytes:
    return env.encode(env.Ack("ack", subject, (text,), worker_user))


def ready(gw: Collected, links: dict[str, PahoWorkerLink], subject: str) -> None:
    """Each worker publishes an ack once connected; the gateway receiving it proves the worker's subscriptions
    (sent before that publish on the same connection) are in place, and that workers may write acks."""
    gw.until(lambda ev: any(isinstance(e, Connected) for e in ev), "gateway connected over TLS")
    for user, link in links.items():
        worker_events_until(link, lambda ev: any(isinstance(e, Connected) for e in ev), f"{user} connected")
        assert link.publish(topic(subject, "ack"), ack(subject, user, f"hello from {user}"))
    gw.until(lambda ev: len(gw.incoming("ack")) == len(links), "an ack from every worker")


def test_two_workers_with_their_own_users_share_the_load_over_tls(
    clinic: tuple[Mosquitto, ClinicFiles], monkeypatch: pytest.MonkeyPatch
) -> None:
    broker, files = clinic
    gw = Collected(gateway(broker, files, "S001"))
    workers = {user: worker(broker, files, user, monkeypatch) for user in ("worker-1", "worker-2")}
    try:
        ready(gw, workers, "S001")
        batches = [f"batch {i}".encode() for i in range(10)]
        for payload in batches:
            assert gw.link.publish(topic("S001", "raw", "pelvis"), payload)
        got: dict[str, list[Delivery]] = {user: [] for user in workers}
        deadline = time.monotonic() + WAIT_S
        while sum(len(v) for v in got.values()) < len(batches):  # each worker acknowledges what it got
            assert time.monotonic() < deadline, f"not every batch delivered within {WAIT_S} s: {got}"
            for user, link in workers.items():
                for d in link.wait(0.02):
                    if isinstance(d, Delivery):
                        got[user].append(d)
                        link.ack(d.token)
                        assert link.publish(topic("S001", "ack"), ack("S001", user, d.payload.decode()))
        assert sorted(d.payload for v in got.values() for d in v) == sorted(batches)  # each exactly once
        assert all(got[user] for user in workers), {u: len(v) for u, v in got.items()}  # both took a share
        gw.until(lambda ev: len(gw.incoming("ack")) == len(workers) + len(batches), "the workers' acks")
    finally:
        for link in workers.values():
            link.close()
        gw.link.close()
    log = broker.log_path.read_text()
    assert "as worker-1 " in log and "as worker-2 " in log  # client id = user name, not the --client-id given


def test_a_client_cannot_take_over_another_gateways_client_id(
    clinic: tuple[Mosquitto, ClinicFiles], monkeypatch: pytest.MonkeyPatch
) -> None:
    broker, files = clinic
    victim = Collected(gateway(broker, files, "S001"))
    helper = {"worker-1": worker(broker, files, "worker-1", monkeypatch)}
    intruders: list[PahoLink] = []
    try:
        ready(victim, helper, "S001")
        # another home's gateway asking for the victim's (predictable) client ids
        for client_id in ("gaitsym-gateway-S001", "S001"):
            intruder = Collected(gateway(broker, files, "S002", client_id=client_id))
            intruders.append(intruder.link)
            intruder.until(lambda ev: any(isinstance(e, Connected) for e in ev), f"intruder as {client_id}")
        # the victim is still connected with its session: a later ack reaches it, and it was never dropped
        assert helper["worker-1"].publish(topic("S001", "ack"), ack("S001", "worker-1", "after the intruders"))
        victim.until(lambda ev: len(victim.incoming("ack")) == 2, "the ack sent after the intruders connected")
        assert not [e for e in victim.events if isinstance(e, Disconnected)]
        assert victim.link.connected
    finally:
        for link in intruders:
            link.close()
        helper["worker-1"].close()
        victim.link.close()
    assert "Client S001 already connected" not in broker.log_path.read_text()


class V5Client:
    """A bare MQTT 5 client (reason codes visible) with the shared TLS/credentials rule."""

    def __init__(self, broker: Mosquitto, files: ClinicFiles, user: str) -> None:
        settings = settings_from_url(url(broker), client_id=user, username=user, password=USERS[user],
                                     tls_ca_file=str(files.ca))  # fmt: skip
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=user, protocol=paho.MQTTv5)
        apply_tls_and_credentials(self.client, settings)
        self.lock = threading.Lock()
        self.puback: dict[int, Any] = {}
        self.suback: dict[int, list[Any]] = {}
        self.messages: list[tuple[str, bytes]] = []
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        with self.lock:
            self.puback[mid] = reason

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, reasons: Any, properties: Any) -> None:
        with self.lock:
            self.suback[mid] = list(reasons)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        with self.lock:
            self.messages.append((msg.topic, bytes(msg.payload)))

    def _wait(self, table: dict[int, Any], mid: int) -> Any:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            with self.lock:
                if mid in table:
                    return table[mid]
            time.sleep(0.02)
        raise AssertionError(f"no answer from the broker to packet {mid}")

    def publish(self, name: str, payload: bytes) -> str:
        """The broker's PUBACK reason ("Success", "Not authorized", ...)."""
        return str(self._wait(self.puback, self.client.publish(name, payload, qos=1).mid))

    def subscribe(self, name: str) -> str:
        mid = self.client.subscribe(name, qos=1)[1]
        assert mid is not None
        return str(self._wait(self.suback, mid)[0])

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_each_role_is_confined_to_its_topics(clinic: tuple[Mosquitto, ClinicFiles]) -> None:
    """Publishes are checked when sent (MQTT 5 PUBACK "Not authorized"); Mosquitto grants any subscription and
    checks read access per message, so reading is checked by what arrives: a message on an allowed topic sent
    after the forbidden ones (Mosquitto queues each publish to every subscriber before acknowledging it, and
    delivers a subscriber's queue in order) arrives alone."""
    broker, files = clinic
    home = V5Client(broker, files, "S001")
    other_home = V5Client(broker, files, "S002")
    reader = V5Client(broker, files, "worker-1")
    clinic_user = V5Client(broker, files, "clinic")
    clients = (home, other_home, reader, clinic_user)
    denied, ok, ok_unread = "Not authorized", "Success", "No matching subscribers"
    try:
        for name in ("gaitsym/v1/+/raw/+", "gaitsym/v1/+/cmd"):  # granted; what arrives is checked below
            reader.subscribe(name)
        for name in ("gaitsym/v1/+/raw/+", topic("S001", "cmd"), topic("S001", "ack"), topic("S002", "cmd")):
            other_home.subscribe(name)
        # a gateway: its own subject only, and only in the direction it uses
        assert other_home.publish(topic("S001", "raw", "pelvis"), b"forged batch") == denied
        assert other_home.publish(topic("S001", "marker"), b"forged marker") == denied
        assert other_home.publish(topic("S001", "cmd/reply"), b"forged reply") == denied
        assert other_home.publish(topic("S001", "ack"), b"forged ack") == denied
        assert other_home.publish(topic("S002", "ack"), b"its own ack, forged") == denied
        assert other_home.publish(topic("S002", "cmd"), b"its own command, forged") == denied
        assert home.publish(topic("S001", "raw", "pelvis"), b"S001 batch") == ok
        assert home.publish(topic("S001", "status"), b"S001 status") == ok_unread
        # a worker reads data and writes acks, never data or commands
        assert reader.publish(topic("S001", "raw", "pelvis"), b"worker forging data") == denied
        assert reader.publish(topic("S001", "cmd"), b"worker sending a command") == denied
        assert reader.publish(topic("S001", "ack"), b"S001 ack") == ok
        # the clinic (session command) writes commands, never data
        assert clinic_user.publish(topic("S001", "raw", "pelvis"), b"clinic forging data") == denied
        assert clinic_user.publish(topic("S001", "cmd"), b"S001 command") == ok
        assert other_home.publish(topic("S002", "raw", "pelvis"), b"S002 batch") == ok
        assert other_home.publish(topic("S002", "cmd/reply"), b"S002 reply") == ok_unread
        assert clinic_user.publish(topic("S002", "cmd"), b"S002 command") == ok  # the last message sent

        def arrived(client: V5Client, n: int) -> list[tuple[str, bytes]]:
            deadline = time.monotonic() + WAIT_S
            while len(client.messages) < n and time.monotonic() < deadline:
                time.sleep(0.02)
            return client.messages

        # the other home reads its own commands only: not S001's batch, command or ack
        assert arrived(other_home, 1) == [(topic("S002", "cmd"), b"S002 command")]
        # the worker reads every subject's data, not the commands
        assert arrived(reader, 2) == [
            (topic("S001", "raw", "pelvis"), b"S001 batch"),
            (topic("S002", "raw", "pelvis"), b"S002 batch"),
        ]
    finally:
        for c in clients:
            c.close()


def test_the_session_command_reaches_the_gateway_with_its_own_user_over_tls(
    clinic: tuple[Mosquitto, ClinicFiles], capsys: pytest.CaptureFixture[str]
) -> None:
    broker, files = clinic
    gw = Collected(gateway(broker, files, "S001"))
    gw.until(lambda ev: any(isinstance(e, Connected) for e in ev), "gateway connected")
    stop = threading.Event()

    def answer_commands() -> None:  # what the gateway does with a command, reduced to the reply
        while not stop.is_set():
            for e in gw.link.events():
                if isinstance(e, Incoming) and e.topic == topic("S001", "cmd"):
                    cmd = env.decode(e.payload)
                    assert isinstance(cmd, env.Command)
                    reply = env.CommandReply("cmd/reply", cmd.cmd_id, "S001", True, f"{cmd.action} done")
                    gw.link.publish(topic("S001", "cmd/reply"), env.encode(reply))
            time.sleep(0.02)

    responder = threading.Thread(target=answer_commands, daemon=True)
    responder.start()
    password_file = files.conf.parent / "clinic.password"
    password_file.write_text(USERS["clinic"])
    argv = ["session", "start", "--subject", "S001", "--broker", url(broker), "--username", "clinic",
            "--password-file", str(password_file), "--tls-ca", str(files.ca), "--timeout-s", "10"]  # fmt: skip
    try:
        code = run_session_command(build_parser().parse_args(argv))
    finally:
        stop.set()
        responder.join(5)
        gw.link.close()
    assert code == 0, capsys.readouterr().err
    assert capsys.readouterr().out.strip() == "session_start done"
