"""Incoming MQTT messages of the gateway: the worker's acks (they delete rows from the outbox) and commands
(session start/stop, exercise markers; each gets a reply).

Every message is handled on its own: any failure drops it, logged and counted, and so is one not addressed to
this gateway (another subject's, in the topic or the payload, compared exactly)."""

from __future__ import annotations

import logging

from gaitsym_common.errors import UplinkError
from gaitsym_common.mqtt.client import Incoming, MqttLink
from gaitsym_common.uplink import envelope as env
from gaitsym_common.uplink.topics import parse_topic, topic
from sensor_gateway.core.config import GatewayConfig
from sensor_gateway.core.session import Sessions
from sensor_gateway.outbox.store import Outbox
from sensor_gateway.timing.host_clock import HostClock

log = logging.getLogger(__name__)


class NotForThisGateway(UplinkError):
    """A readable message that this gateway must not act on: another subject's (in the topic or the payload,
    compared exactly), or a kind its topic does not carry. Dropped and counted like a malformed one."""


class Inbox:
    def __init__(
        self, config: GatewayConfig, clock: HostClock, link: MqttLink, outbox: Outbox, sessions: Sessions
    ) -> None:
        self.config = config
        self.clock = clock
        self.link = link
        self.outbox = outbox
        self.sessions = sessions
        self.messages_dropped = 0
        """MQTT messages (commands, acks) that failed and were dropped (logged): never a crash."""

    def on_message(self, m: Incoming) -> None:
        """Handle one incoming message. Whatever goes wrong with it (a malformed or hostile payload, a failure
        while acting on it) drops that message, logged and counted in ``messages_dropped``: the gateway loop,
        which carries the patient's data, never stops for one message."""
        try:
            self._handle_message(m)
        except Exception as exc:
            self.messages_dropped += 1
            if isinstance(exc, NotForThisGateway):
                what = "foreign"
            else:
                what = "malformed" if isinstance(exc, UplinkError) else f"failed ({type(exc).__name__})"
            log.warning("dropped a %s message on %.200s: %.300s", what, m.topic, exc)

    def _handle_message(self, m: Incoming) -> None:
        """Act on an ack or a command of this gateway's subject, on its own topic: anything else (another
        subject's, even one differing only in case, a kind the topic does not carry) raises `NotForThisGateway`
        before anything is changed."""
        subject = self.config.subject
        parts = parse_topic(m.topic)
        if parts.subject != subject or parts.kind not in ("ack", "cmd"):
            raise NotForThisGateway("topic", f"{m.topic!r} is not the ack or cmd topic of subject {subject!r}")
        msg = env.decode(m.payload)
        if not isinstance(msg, env.Ack | env.Command) or msg.kind != parts.kind:
            raise NotForThisGateway("kind", f"a {msg.kind!r} message on the {parts.kind} topic")
        if msg.subject != subject:
            raise NotForThisGateway("subject", f"{msg.subject!r} is not this gateway's subject {subject!r}")
        if isinstance(msg, env.Ack):
            self.outbox.ack(msg.msg_ids)
        else:
            ok, text = self._command(msg)
            reply = env.CommandReply("cmd/reply", msg.cmd_id, subject, ok, text)
            self.link.publish(topic(subject, "cmd/reply"), env.encode(reply))

    def _command(self, cmd: env.Command) -> tuple[bool, str]:
        now = self.clock.monotonic()
        tracker = self.sessions.tracker
        if cmd.action == "session_start":
            if tracker.session is not None:
                return True, f"session {tracker.session} already open"
            self.sessions.open(now, source="command")
            return True, f"session {tracker.session} started"
        if tracker.session is None:
            return False, "no session is open"
        if cmd.action == "session_stop":
            return True, f"session {self.sessions.close(now, source='command')} closed"
        self.sessions.marker(cmd.action, now, source="command", exercise=cmd.exercise, side=cmd.side, set=cmd.set or 1)
        return True, f"{cmd.action} {cmd.exercise} {cmd.side} set {cmd.set or 1}"
