"""The gateway loop, one `step` at a time (no threads of its own; transport and paho enqueue into it).

Per step: drain transport events into `ingest` (link changes, packets, time-sync round trips -> batches committed
to the outbox; a batch just closed is published at once), close batches of sensors gone silent and keep the
links up, let `session` emit a window marker or close the session after stillness, drain MQTT events into
`inbox` (acks delete from the outbox, commands become markers and replies), then `pump`: re-send rows with no
ack after ``ack_timeout_s`` and publish pending outbox rows (QoS 1, at most ``max_inflight`` unacknowledged);
publish the retained status every ``status_every_s`` s. A restarted gateway continues from what the outbox
committed: each sensor's cursor (`ingest`) and the open session (`session`). Times: host monotonic seconds of
the `HostClock`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from random import Random

from gaitsym_common.mqtt.client import Connected, Disconnected, Incoming, MqttLink
from gaitsym_common.uplink import envelope as env
from gaitsym_common.uplink.topics import gateway_subscriptions, topic
from sensor_gateway.core.config import GatewayConfig
from sensor_gateway.core.inbox import Inbox
from sensor_gateway.core.ingest import Ingest, published_jitter_ms
from sensor_gateway.core.pump import Pump
from sensor_gateway.core.sensors import SensorState
from sensor_gateway.core.session import Sessions, SessionTracker
from sensor_gateway.outbox.store import Outbox
from sensor_gateway.timing.clock_fit import ClockFit
from sensor_gateway.timing.host_clock import HostClock
from sensor_gateway.transport.base import EventQueue, PacketEvent, TimeSyncEvent, Transport

__all__ = ["Gateway", "GatewayConfig", "run_for"]

log = logging.getLogger(__name__)


class Gateway:
    def __init__(
        self, config: GatewayConfig, transport: Transport, link: MqttLink, outbox: Outbox, clock: HostClock
    ) -> None:
        self.config = config
        self.transport = transport
        self.link = link
        self.outbox = outbox
        self.clock = clock
        self.events = EventQueue()
        self.sensors = {p: SensorState(p) for p in config.placements}
        self.session = SessionTracker(config.still_timeout_s, config.motion_dps)
        self._last_status_s = -math.inf
        state = outbox.state()
        cursors: dict[str, dict[str, object]] = {
            k.split(":", 1)[1]: v for k, v in state.items() if k.startswith("cursor:") and isinstance(v, dict)
        }
        self.pump = Pump(config, link, outbox, clock)
        self.sessions = Sessions(config, clock, self.session, self.sensors, self.pump)
        self.ingest = Ingest(config, clock, transport, self.events, self.sensors, cursors, self.pump, self.sessions)
        self.inbox = Inbox(config, clock, link, outbox, self.sessions)
        saved = state.get("session")
        if isinstance(saved, dict):
            self.sessions.restore(saved, cursors)

    @property
    def published(self) -> int:
        """Messages handed to MQTT since start (re-sends included)."""
        return self.pump.published

    @property
    def publish_latency_s(self) -> list[float]:
        """Per raw batch closed by its own last packet: that packet's arrival -> handed to MQTT, s."""
        return self.pump.publish_latency_s

    @property
    def batch_delay_s(self) -> list[float]:
        """Per raw batch: its first packet's arrival -> handed to MQTT, s."""
        return self.pump.batch_delay_s

    @property
    def messages_dropped(self) -> int:
        """MQTT messages (commands, acks) that failed and were dropped (logged): never a crash."""
        return self.inbox.messages_dropped

    @property
    def _rng(self) -> Random:
        """Reconnect backoffs and time-sync moments: a test replaces or seeds it for a reproducible run."""
        return self.ingest.rng

    @_rng.setter
    def _rng(self, rng: Random) -> None:
        self.ingest.rng = rng

    # ------------------------------------------------------------------------------------------- lifecycle

    def start(self) -> None:
        self.transport.open(self.events)
        self.link.subscribe(gateway_subscriptions(self.config.subject))
        self.link.connect(will=(topic(self.config.subject, "status"), self._status_payload("offline")))
        for placement in self.config.placements:
            self.transport.connect(placement)

    def stop(self, end_session: bool = True) -> None:
        """Close open batches (and the session unless ``end_session`` is False), publish what is pending,
        say offline, close transport, MQTT and outbox."""
        now = self.clock.monotonic()
        for s in self.sensors.values():
            self._close_batch(s, now)
        if end_session and self.session.session is not None:
            self._close_session(now)
        self.pump.publish_pending(now, flush=True)
        self.transport.close()
        self.link.close(last_words=(topic(self.config.subject, "status"), self._status_payload("offline")))
        self.outbox.close()

    def run(self, stop: threading.Event, tick_s: float = 0.02) -> None:
        """Production loop on the real clock: wake on every transport event, at the next deadline (a time-sync
        request) or after ``tick_s``, and step."""
        while not stop.is_set():
            self.events.wait(max(0.0, min(tick_s, self.next_deadline_s() - self.clock.monotonic())))
            self.step()

    def next_deadline_s(self) -> float:
        """Host time of the next thing `step` must do on time (none yet: time-sync requests ride on packet
        arrivals, batches close on packets or at the next tick)."""
        return math.inf

    def step(self) -> None:
        for event in self.events.drain():
            if isinstance(event, PacketEvent):
                self.ingest.on_packet(event)
                if self.ingest.closed_batch:
                    self.ingest.closed_batch = False
                    self.pump.publish_pending(self.clock.monotonic())
            elif isinstance(event, TimeSyncEvent):
                self._on_time_sync(event)
            else:
                self.ingest.on_link(event)
        now = self.clock.monotonic()
        self.ingest.tick(now)
        self.sessions.tick(now)
        for m in self.link.events():
            if isinstance(m, Incoming):
                self.inbox.on_message(m)
            elif isinstance(m, Connected):
                log.info("MQTT connected (session present: %s): re-sending what is unacknowledged", m.session_present)
                self.outbox.requeue()
                self._last_status_s = -math.inf
            elif isinstance(m, Disconnected):
                log.warning("MQTT disconnected: %s", m.reason)
        self.pump.resend_overdue(now)
        self.pump.publish_pending(now)
        if now - self._last_status_s >= self.config.status_every_s and self.link.connected:
            self._last_status_s = now
            self.link.publish(topic(self.config.subject, "status"), self._status_payload("online"), retain=True)

    # ------------------------------------------------------------------------- used by the runner and tests

    def _close_batch(self, s: SensorState, now: float, by_packet: bool = False, fit: ClockFit | None = None) -> None:
        """Commit the open batch of ``s`` now (the end of a simulated session, a test)."""
        self.ingest.close_batch(s, now, by_packet=by_packet, fit=fit)

    def stop_streaming(self) -> None:
        """Ask every sensor to stop streaming, and one that reconnects from now on not to start again."""
        self.ingest.streaming = False
        for placement in self.config.placements:
            self.transport.stop_streaming(placement)

    def _close_session(self, now: float, source: str = "gateway") -> str | None:
        """End the open session now, as after stillness; returns its id."""
        return self.sessions.close(now, source=source)

    def _on_time_sync(self, event: TimeSyncEvent) -> None:
        self.ingest.on_time_sync(event)

    def _status_payload(self, state: str) -> bytes:
        sensors = {}
        for p, s in self.sensors.items():
            fit = s.stream.fit() if s.stream is not None and s.stream.estimator.ready else None
            sensors[p] = env.SensorStatus(
                link=s.link,
                serial=s.info.serial if s.info else None,
                battery_pct=s.battery_pct,
                boot_epoch=s.info.boot_epoch if s.info else None,
                last_seq=s.stream.last_seq if s.stream else None,
                drift_ppm=fit.drift_ppm if fit else None,
                jitter_ms=published_jitter_ms(fit) if fit else None,
                samples_received=s.stream.samples if s.stream else 0,
                gaps=s.gaps,
            )
        status = env.Status(
            kind="status",
            subject=self.config.subject,
            state=state,  # type: ignore[arg-type]
            t_utc_s=self.clock.utc() if self.clock.utc_synced() else None,
            gateway={
                "version": self.config.version,
                "utc_synced": str(self.clock.utc_synced()).lower(),
                "messages_dropped": str(self.messages_dropped),
                "sensor_clock_jumps": str(sum(s.clock_jumps for s in self.sensors.values())),
            },
            session=self.session.session,
            sensors=sensors if state == "online" else {},
            outbox=self.outbox.stats().as_status() if state == "online" else {},
        )
        return env.encode(status)


def run_for(
    gateway: Gateway,
    transport: object,
    clock: object,
    duration_s: float,
    tick_s: float = 0.02,
    speed: float | None = None,
) -> None:
    """Drive a gateway over a virtual-kit transport: advance a `VirtualHostClock` to the next packet arrival
    or by ``tick_s``, whichever comes first, and step (so the loop wakes on each packet as the real one does),
    sleeping so virtual time runs ``speed`` x real time (None = as fast as possible)."""
    from sensor_gateway.timing.host_clock import VirtualHostClock
    from sensor_gateway.transport.virtual import VirtualKitTransport

    assert isinstance(transport, VirtualKitTransport) and isinstance(clock, VirtualHostClock)
    end = clock.monotonic() + duration_s
    real0, virt0 = time.monotonic(), clock.monotonic()
    while clock.monotonic() < end:
        now = clock.monotonic()
        deadline = min(gateway.next_deadline_s(), transport.next_arrival_s() or math.inf)
        target = min(end, now + tick_s, deadline if deadline > now else math.inf)
        transport.pump(target)
        clock.set(target)
        gateway.step()
        if speed:
            lag = (target - virt0) / speed - (time.monotonic() - real0)
            if lag > 0:
                time.sleep(lag)
