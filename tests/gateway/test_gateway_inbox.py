"""The gateway acts only on acks and commands of its own subject, on its own topics.

Any client on the broker can publish to a subject's ack and cmd topics (an ACL confines gateways, not every
worker or clinic app), and a subject id is compared exactly: "g001" is another subject than "G001". A message
naming another subject, in its topic or its payload, or carrying a kind its topic does not, changes nothing (no
outbox row deleted, no session opened, no reply) and is a logged drop counted in the status's
``messages_dropped``; the same message for the gateway's own subject is then acted on.

The production gateway on the virtual clock with no sensors; MQTT is an in-memory link (nothing acknowledges by
itself); the outbox is the real SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest

from gaitsym_common.mqtt.client import Incoming
from gaitsym_common.uplink import envelope as env
from gaitsym_common.uplink.topics import topic
from sensor_gateway.core.gateway import Gateway, GatewayConfig
from sensor_gateway.outbox.store import Outbox
from sensor_gateway.timing.host_clock import VirtualHostClock
from testing.gateway.loopback import InMemoryLink, NoSensors

SUBJECT = "G001"


ROWS = ("gap:GS-1:7:100", "gap:GS-1:7:200")


def gateway(folder: Path) -> tuple[Gateway, InMemoryLink]:
    link = InMemoryLink()
    outbox = Outbox(folder / "outbox.db")
    gw = Gateway(GatewayConfig(subject=SUBJECT), NoSensors(), link, outbox, VirtualHostClock())  # type: ignore[arg-type]
    gw.start()
    gw.step()
    for first in (100, 200):
        gap = env.Gap(
            "gap", f"gap:GS-1:7:{first}", SUBJECT, None, "pelvis", "GS-1", 7, first, first, 0.01, "packet_lost"
        )
        outbox.put(gap.msg_id, topic(SUBJECT, "gap", "pelvis"), env.encode(gap), "gap")
    gw.step()
    link.published.clear()
    return gw, link


def waiting(gw: Gateway) -> set[str]:
    return {item.msg_id for item in gw.outbox.pending(limit=100, include_inflight=True)}


def deliver(gw: Gateway, link: InMemoryLink, name: str, message: env.Message) -> None:
    link.incoming.append(Incoming(name, env.encode(message)))
    gw.step()


@pytest.mark.parametrize(
    ("name", "named"),
    [
        (topic(SUBJECT, "ack"), "g001"),  # the fuzz campaign's find: same letters, other case
        (topic(SUBJECT, "ack"), "G002"),
        (topic("G002", "ack"), "G002"),  # another subject's ack topic (a wildcard subscription, a broker bug)
        (topic(SUBJECT, "cmd"), SUBJECT),  # an ack of its own subject, on the cmd topic
    ],
)
def test_an_ack_not_addressed_to_this_gateway_deletes_nothing(tmp_path: Path, name: str, named: str) -> None:
    gw, link = gateway(tmp_path)
    deliver(gw, link, name, env.Ack("ack", named, ROWS, "w-1"))
    assert waiting(gw) == set(ROWS)
    assert gw.messages_dropped == 1
    deliver(gw, link, topic(SUBJECT, "ack"), env.Ack("ack", SUBJECT, ROWS[:1], "w-1"))
    assert waiting(gw) == set(ROWS[1:])  # its own ack is acted on, for exactly the ids it lists
    assert gw.messages_dropped == 1
    gw.stop(end_session=False)


@pytest.mark.parametrize(
    ("name", "named"),
    [(topic(SUBJECT, "cmd"), "g001"), (topic(SUBJECT, "cmd"), "G002"), (topic(SUBJECT, "ack"), SUBJECT)],
)
def test_a_command_not_addressed_to_this_gateway_is_not_obeyed_nor_answered(
    tmp_path: Path, name: str, named: str
) -> None:
    gw, link = gateway(tmp_path)
    deliver(gw, link, name, env.Command("cmd", "c-1", named, "session_start"))
    assert gw.session.session is None
    assert not [n for n, _ in link.published if n.endswith("/cmd/reply") or n.endswith("/marker")]
    assert waiting(gw) == set(ROWS)
    status = env.decode(gw._status_payload("online"))
    assert isinstance(status, env.Status) and status.gateway["messages_dropped"] == "1"
    deliver(gw, link, topic(SUBJECT, "cmd"), env.Command("cmd", "c-2", SUBJECT, "session_start"))
    assert gw.session.session is not None
    replies = [env.decode(p) for n, p in link.published if n == topic(SUBJECT, "cmd/reply")]
    assert [(r.cmd_id, r.ok) for r in replies] == [("c-2", True)]  # type: ignore[union-attr]
    gw.stop(end_session=False)
