"""The publish side of the gateway loop: messages into the outbox, pending rows out to MQTT (QoS 1, at most
``max_inflight`` unacknowledged), rows with no ack after ``ack_timeout_s`` re-sent. A row leaves the outbox
only when the worker's ack for it arrives (`inbox`).

Rows go out in bundles (``GatewayConfig.bundle``, UPLINK.md): consecutive pending raw, gap and marker rows in one
MQTT message of at most `MAX_PAYLOAD_BYTES`, each row's payload verbatim. A bundle is only transport: the outbox
still holds, acknowledges and re-sends rows, and a row sent again may go in another bundle. Raw batches and gaps
wait up to ``bundle_hold_s`` for a marker: the window marker follows the last of a second's batches (`session`), so
a second's batches and its marker go out together, when the worker could start on them anyway."""

from __future__ import annotations

import json
import logging
import math

from gaitsym_common.errors import UplinkError
from gaitsym_common.mqtt.client import MqttLink
from gaitsym_common.uplink import envelope as env
from gaitsym_common.uplink.topics import DURABLE_KINDS, topic
from sensor_gateway.core.config import GatewayConfig
from sensor_gateway.outbox.store import Outbox, OutboxFull, OutboxItem
from sensor_gateway.timing.host_clock import HostClock

log = logging.getLogger(__name__)


class Pump:
    def __init__(self, config: GatewayConfig, link: MqttLink, outbox: Outbox, clock: HostClock) -> None:
        self.config = config
        self.link = link
        self.outbox = outbox
        self.clock = clock
        # latency bookkeeping for the bench (msg_id -> (first packet arrival, closing packet arrival))
        self._arrival_of: dict[str, tuple[float, float]] = {}
        self.publish_latency_s: list[float] = []  # arrival of the packet that closed a batch -> handed to MQTT
        self.batch_delay_s: list[float] = []  # arrival of a batch's first packet -> publish
        self.published = 0
        """Rows handed to MQTT (a bundle's parts each count)."""
        self.messages = 0
        """MQTT messages those went out in."""
        self._holding_since: float | None = None
        """When pending raw batches or gaps were first held for a marker (None: nothing held)."""

    def put(
        self,
        msg_id: str,
        topic_: str,
        payload: bytes,
        kind: str,
        state: dict[str, object] | None = None,
        arrivals: tuple[float, float] | None = None,
    ) -> bool:
        """Commit one message (and ``state``, same transaction) to the outbox; False when the outbox is full
        and refused it (logged). ``arrivals``: a raw batch's first and closing packet arrivals (closing: NaN
        when silence, a gap or a stop closed it), for the latency figures."""
        if arrivals is not None:
            self._arrival_of[msg_id] = arrivals
        try:
            self.outbox.put(msg_id, topic_, payload, kind, state=state)
        except OutboxFull as exc:
            log.error("outbox full, %s refused: %s", msg_id, exc)
            self._arrival_of.pop(msg_id, None)
            return False
        return True

    def resend_overdue(self, now: float) -> None:
        """Rows handed to MQTT more than ``ack_timeout_s`` ago and not acknowledged go out again."""
        self.outbox.requeue(older_than_s=now - self.config.ack_timeout_s)

    def publish_pending(self, now: float, flush: bool = False) -> None:
        """Hand pending rows to MQTT (bundled), unless raw batches and gaps are held for a marker (``flush``: never)."""
        if not self.link.connected:
            return
        room = self.config.max_inflight - self.outbox.inflight_count
        if room <= 0:
            return
        items = self.outbox.pending(limit=room)
        if not items:
            self._holding_since = None
            return
        if self.config.bundle and not flush and all(i.kind in ("raw", "gap") for i in items):
            if self._holding_since is None:
                self._holding_since = now
            if now - self._holding_since < self.config.bundle_hold_s:
                return
        self._holding_since = None
        sent: list[OutboxItem] = []
        for group in self._messages(items):
            ok = self._publish(group)
            if not ok:
                break
            sent.extend(group)
            self.messages += 1
            for item in group:
                arrivals = self._arrival_of.pop(item.msg_id, None)
                if arrivals is not None:
                    done = self.clock.monotonic()
                    self.batch_delay_s.append(done - arrivals[0])
                    if not math.isnan(arrivals[1]):  # closed by its own last packet (not by silence, gap or stop)
                        self.publish_latency_s.append(done - arrivals[1])
        self.outbox.mark_inflight(sent, now)
        self.published += len(sent)

    def _publish(self, group: list[OutboxItem]) -> bool:
        """One MQTT message: a lone row on its own topic, several as a bundle (each alone if the bundle cannot be
        made: a row that breaks the contract must never stop the others, or the gateway, on every restart)."""
        if len(group) > 1:
            parts = tuple(env.BundlePart(i.topic, i.payload) for i in group)
            try:
                bundle = env.encode(env.Bundle("bundle", self.config.subject, parts))
            except UplinkError as exc:
                log.error("%d rows sent one by one, not as a bundle: %s", len(group), exc)
            else:
                return self.link.publish(topic(self.config.subject, "bundle"), bundle, qos=1)
        return all(self.link.publish(i.topic, i.payload, qos=1) for i in group)

    def _messages(self, items: list[OutboxItem]) -> list[list[OutboxItem]]:
        """The rows grouped into MQTT messages, in order: runs of bundled kinds as large as one payload takes (a
        row too large to share one alone), each other row alone; all alone without bundles."""
        if not self.config.bundle:
            return [[i] for i in items]
        groups: list[list[OutboxItem]] = []
        size = 0
        for item in items:
            if item.kind not in DURABLE_KINDS or item.topic.split("/")[2] != self.config.subject:
                groups.append([item])
                size = env.MAX_PAYLOAD_BYTES  # nothing joins a row sent alone
                continue
            cost = _part_bytes(item)
            if groups and size + cost <= env.MAX_PAYLOAD_BYTES and len(groups[-1]) < env.MAX_BUNDLE_PARTS:
                groups[-1].append(item)
                size += cost
            else:
                groups.append([item])
                size = _BUNDLE_HEAD_BYTES + len(self.config.subject) + cost
        return groups


_BUNDLE_HEAD_BYTES = len('{"v":1,"kind":"bundle","subject":"","parts":[]}')


def _part_bytes(item: OutboxItem) -> int:
    """Bytes a row takes in a bundle's JSON (as `envelope.encode` writes it), its separator included."""
    text = item.payload.decode("utf-8", errors="replace")
    return len(json.dumps({"topic": item.topic, "payload": text}, separators=(",", ":"))) + 1
