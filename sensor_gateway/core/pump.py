"""The publish side of the gateway loop: messages into the outbox, pending rows out to MQTT (QoS 1, at most
``max_inflight`` unacknowledged), rows with no ack after ``ack_timeout_s`` re-sent. A row leaves the outbox
only when the worker's ack for it arrives (`inbox`)."""

from __future__ import annotations

import logging
import math

from gaitsym_common.mqtt.client import MqttLink
from sensor_gateway.core.config import GatewayConfig
from sensor_gateway.outbox.store import Outbox, OutboxFull
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

    def publish_pending(self, now: float) -> None:
        if not self.link.connected:
            return
        room = self.config.max_inflight - self.outbox.inflight_count
        if room <= 0:
            return
        items = self.outbox.pending(limit=room)
        sent = []
        for item in items:
            if not self.link.publish(item.topic, item.payload, qos=1):
                break
            sent.append(item)
            arrivals = self._arrival_of.pop(item.msg_id, None)
            if arrivals is not None:
                done = self.clock.monotonic()
                self.batch_delay_s.append(done - arrivals[0])
                if not math.isnan(arrivals[1]):  # closed by its own last packet (not by silence, gap or stop)
                    self.publish_latency_s.append(done - arrivals[1])
        self.outbox.mark_inflight(sent, now)
        self.published += len(sent)
