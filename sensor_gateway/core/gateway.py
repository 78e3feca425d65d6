"""The gateway loop, one `step` at a time (no threads of its own; transport and paho enqueue into it).

Per step: drain transport events (link changes, packets, time-sync round trips) -> decode (malformed
packets are counted and dropped, the next sequence gap accounts for them) -> unwrap and time-map
(`timing.SensorStream`: arrival bounds + TIME_SYNC round trips, asked right after a packet) -> append to
the sensor's open batch. A batch closes as soon as a packet brings it to ``batch_s`` host seconds (or at a
gap, a reboot, a link loss, or ``batch_grace_s`` after ``batch_s`` when the sensor went silent) and is
committed to the outbox with a `ClockMapping` (the fit, its offset raised when needed so that the batch's
first sample maps after the previous batch's last one: `timing.continuity`) and the sensor's cursor (same
transaction, with that last mapped time, so the rule holds across a restart); lost samples
become a Gap message (reason packet_lost, link_lost, sensor_fifo_overflow or queue_full). A lost link is
re-connected with exponential backoff (``reconnect_min_s`` .. ``reconnect_max_s``); the stream resumes where
it was and the gap is recorded. After a restart the persisted cursors make the samples sent while the
gateway was down a link_lost gap too. The open session's last motion is saved with each of its batches (same
transaction): a restart less than ``still_timeout_s`` after it continues the session; a later one first sends
the session's ``session_end`` (referring to its last committed samples), as the running gateway would have.

A sensor's packets never stop the loop: a clock that jumps without a new boot epoch starts a new mapping segment
(the open batch is closed with the old fit; the sequence, the samples' identity, goes on, so losses stay gaps and
repeats stay dropped), and every batch is closed before it would pass the uplink's limits (samples, payload bytes,
sensor-time span); the published ``jitter_ms`` is kept within the contract's bound.

Every incoming MQTT message (ack, command) is handled on its own: any failure drops it, logged and counted, and
so is one not addressed to this gateway (another subject's, in the topic or the payload, compared exactly).

Then: drain MQTT events (acks delete from the outbox, commands become markers and replies), publish pending
outbox rows (QoS 1, at most ``max_inflight`` unacknowledged), re-send rows with no ack after
``ack_timeout_s``, emit a window marker (up to the samples published) after a batch closes, at most every
``window_s`` s of a session, close a session after stillness,
and publish the retained status every ``status_every_s`` s. Times: host monotonic seconds of the `HostClock`.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from dataclasses import dataclass, field

from firmware_protocol.errors import ProtocolError
from firmware_protocol.packet import ImuPacket, PacketFlags, decode_packet
from firmware_protocol.sensor_info import SensorInfo
from sensor_gateway.core.session import SessionTracker
from sensor_gateway.errors import UplinkError
from sensor_gateway.mqtt.client import Connected, Disconnected, Incoming, MqttLink
from sensor_gateway.outbox.store import Outbox, OutboxFull
from sensor_gateway.timing.clock_fit import ClockFit
from sensor_gateway.timing.continuity import MappingContinuity
from sensor_gateway.timing.host_clock import HostClock
from sensor_gateway.timing.stream import SensorStream
from sensor_gateway.transport.base import EventQueue, LinkEvent, PacketEvent, TimeSyncEvent, Transport
from sensor_gateway.uplink import envelope as env
from sensor_gateway.uplink.topics import gateway_subscriptions, parse_topic, topic
from sensor_gateway.uplink.vocabulary import PLACEMENTS

log = logging.getLogger(__name__)


class NotForThisGateway(UplinkError):
    """A readable message that this gateway must not act on: another subject's (in the topic or the payload,
    compared exactly), or a kind its topic does not carry. Dropped and counted like a malformed one."""


class _Now:
    """A marker's default time: now (when the clock is synchronised)."""


_NOW = _Now()


@dataclass(frozen=True)
class GatewayConfig:
    subject: str
    placements: tuple[str, ...] = PLACEMENTS
    batch_s: float = 1.0
    window_s: float = 0.25
    """Shortest pause between window markers, s. A window marker lets the worker analyse the session so far (live
    results); it refers only to samples already published (each sensor's last closed batch), so the worker
    can analyse it as soon as it arrives, and one goes out as soon as a sensor published a new batch (about
    3 per second with 1-s batches). A stride's provisional result is then queryable within 2 s of its last
    sample at 20 subjects per worker (p99 1.81-1.84 s, bench/RESULTS.md, "Worker: live latency"); most of that is
    the batch: shorter batches cut it further, at more messages per second."""
    still_timeout_s: float = 120.0
    motion_dps: float = 15.0
    ack_timeout_s: float = 30.0
    max_inflight: int = 200
    status_every_s: float = 10.0
    version: str = "0.1.0"
    batch_grace_s: float = 0.5
    """A batch normally closes on the packet that brings it to ``batch_s``; if none comes (link silent) it
    closes ``batch_grace_s`` later on the clock."""
    time_sync_every_s: float = 0.25
    """Mean pause between a TIME_SYNC reply and the next request per streaming sensor (randomised x0.5..1.5;
    with the round trip itself ~3 requests/s: 5 + 10 bytes each way, negligible next to the data); 0 = never."""
    time_sync_timeout_s: float = 2.0
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    silence_timeout_s: float = 10.0
    """A connected, streaming sensor that sends nothing for this long is disconnected and re-connected."""
    first_packet_timeout_s: float = 120.0
    """A connected sensor that has sent no packet since connecting is re-connected only after this long, s:
    its START can wait behind the other sensors' connection attempts on the one adapter (BLE: a scan and a
    connect of up to 10 + 20 s each, two other sensors), and re-connecting it then only loses its place in that
    queue (the real BlueZ run found this: tests/ble_vm). A sensor that took START and stays silent is caught
    sooner by the BLE link's own watchdog (`BleConfig.silence_timeout_s`, from START)."""


@dataclass
class _Sensor:
    placement: str
    info: SensorInfo | None = None
    stream: SensorStream | None = None
    link: str = "connecting"
    battery_pct: int | None = None
    packets: list[bytes] = field(default_factory=list)
    seq_first: int = 0
    seq_last: int = 0
    t_first_us: int = 0
    t_last_us: int = 0
    """Unwrapped sensor time of the open batch's last sample, µs."""
    n_samples: int = 0
    opened_s: float = 0.0
    peak_dps: float = 0.0
    malformed: int = 0
    gaps: int = 0
    payload_bytes: int = 0
    """Size the open batch's packets take in its payload (base64, quoted, comma-separated)."""
    clock_jumps: int = 0
    """Sensor clock discontinuities without a new boot epoch since the gateway started (new mapping segments)."""
    first_arrival_s: float = 0.0
    last_arrival_s: float = 0.0
    link_lost_since_packet: bool = False
    resumed: bool = False
    reconnect_at: float | None = None
    backoff_s: float = 0.0
    lost_at_s: float | None = None
    next_sync_s: float = 0.0
    sync_pending: tuple[int, float] | None = None
    last_packet_s: float | None = None
    """Arrival of the last packet since the link (re)connected; None: none yet."""
    connected_s: float = 0.0
    fifo_overflow: bool = False
    published: env.SensorPosition | None = None
    """Last sample of the last raw batch handed to the outbox (what a window marker may refer to)."""
    continuity: MappingContinuity = field(default_factory=MappingContinuity)
    """Keeps the published UTC mappings of consecutive batches in time order (per placement, across boots:
    the store keys samples by placement and time)."""


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
        self.sensors = {p: _Sensor(p) for p in config.placements}
        self.session = SessionTracker(config.still_timeout_s, config.motion_dps)
        self._last_window_s = 0.0
        self._last_window: dict[str, env.SensorPosition] = {}
        self._last_status_s = -math.inf
        self._rng = random.Random()
        self._sync_id = 0
        # latency bookkeeping for the bench (msg_id -> (first packet arrival, closing packet arrival))
        self._arrival_of: dict[str, tuple[float, float]] = {}
        self.publish_latency_s: list[float] = []  # arrival of the packet that closed a batch -> handed to MQTT
        self.batch_delay_s: list[float] = []  # arrival of a batch's first packet -> publish
        self.published = 0
        self._closed_batch = False
        state = outbox.state()
        self._cursors: dict[str, dict[str, object]] = {
            k.split(":", 1)[1]: v for k, v in state.items() if k.startswith("cursor:") and isinstance(v, dict)
        }
        for placement, cur in self._cursors.items():
            if placement in self.sensors and isinstance(cur.get("mapped_last_utc_s"), int | float):
                self.sensors[placement].continuity.seed(float(cur["mapped_last_utc_s"]))  # type: ignore[arg-type]
        self.messages_dropped = 0
        """MQTT messages (commands, acks) that failed and were dropped (logged): never a crash."""
        saved = state.get("session")
        if isinstance(saved, dict):
            self._restore_session(saved)

    @property
    def _latency_s(self) -> list[float]:  # old name, kept for the bench scripts
        return self.publish_latency_s

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
        self._publish_pending(now)
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
        now = self.clock.monotonic()
        for event in self.events.drain():
            if isinstance(event, PacketEvent):
                self._on_packet(event)
                if self._closed_batch:
                    self._closed_batch = False
                    self._publish_pending(self.clock.monotonic())
            elif isinstance(event, TimeSyncEvent):
                self._on_time_sync(event)
            else:
                self._on_link(event)
        now = self.clock.monotonic()
        for s in self.sensors.values():
            if s.packets and now - s.opened_s >= self.config.batch_s + self.config.batch_grace_s:
                self._close_batch(s, now)  # the sensor went quiet: do not hold its last samples back
            self._keep_linked(s, now)
        self._sessions(now)
        for m in self.link.events():
            if isinstance(m, Incoming):
                self._on_message(m)
            elif isinstance(m, Connected):
                log.info("MQTT connected (session present: %s): re-sending what is unacknowledged", m.session_present)
                self.outbox.requeue()
                self._last_status_s = -math.inf
            elif isinstance(m, Disconnected):
                log.warning("MQTT disconnected: %s", m.reason)
        self.outbox.requeue(older_than_s=now - self.config.ack_timeout_s)
        self._publish_pending(now)
        if now - self._last_status_s >= self.config.status_every_s and self.link.connected:
            self._last_status_s = now
            self.link.publish(topic(self.config.subject, "status"), self._status_payload("online"), retain=True)

    # ------------------------------------------------------------------------------------------- sensors

    def _on_link(self, event: LinkEvent) -> None:
        s = self.sensors.get(event.placement)
        if s is None:
            return
        now = self.clock.monotonic()
        if event.battery_pct is not None:
            s.battery_pct = event.battery_pct
        if event.state == "connected" and event.info is not None:
            info = event.info
            if s.info is None or (s.info.serial, s.info.boot_epoch) != (info.serial, info.boot_epoch):
                self._close_batch(s, now)
                s.stream = SensorStream(info.boot_epoch, info.sample_rate_hz, max_counter=env.MAX_COUNTER)
                s.resumed = self._resume(s, info.serial, info.boot_epoch, now)
            s.info = info
            s.link = "connected"
            s.reconnect_at, s.backoff_s, s.sync_pending = None, 0.0, None
            s.last_packet_s, s.connected_s = None, now
            s.next_sync_s = now + self._rng.uniform(0.0, max(self.config.time_sync_every_s, 0.0))
            if s.lost_at_s is not None:
                log.info("%s: link back after %.1f s", s.placement, now - s.lost_at_s)
            self.transport.start_streaming(event.placement)
        elif event.state == "lost":
            self._close_batch(s, now)
            if s.link == "connected":
                s.lost_at_s = now
                s.link_lost_since_packet = True
                log.warning("%s: link lost (%s)", s.placement, event.reason)
            s.link = "lost"
            s.backoff_s = (
                self.config.reconnect_min_s if s.backoff_s <= 0 else min(2 * s.backoff_s, self.config.reconnect_max_s)
            )
            s.reconnect_at = now + s.backoff_s * self._rng.uniform(0.8, 1.2)
        else:
            s.link = event.state

    def _keep_linked(self, s: _Sensor, now: float) -> None:
        """Reconnect a lost sensor when its backoff expires; recycle a link that stays silent."""
        if s.link == "lost" and s.reconnect_at is not None and now >= s.reconnect_at:
            s.reconnect_at = None
            s.link = "connecting"
            try:
                self.transport.connect(s.placement)
            except Exception as exc:  # the transport's own error classes; the backoff handles retrying
                log.warning("%s: connect failed: %s", s.placement, exc)
                self.events.put(LinkEvent(s.placement, "lost", reason=str(exc)))
            return
        if s.link != "connected":
            return
        if s.last_packet_s is None:
            if now - s.connected_s > self.config.first_packet_timeout_s:
                log.warning("%s: connected %.0f s ago, no packet yet: reconnecting", s.placement, now - s.connected_s)
                s.connected_s = now
                self.transport.disconnect(s.placement)
            return
        if now - s.last_packet_s > self.config.silence_timeout_s:
            log.warning("%s: connected but silent for %.0f s: reconnecting", s.placement, now - s.last_packet_s)
            s.last_packet_s = now
            self.transport.disconnect(s.placement)

    def _on_time_sync(self, event: TimeSyncEvent) -> None:
        s = self.sensors.get(event.placement)
        if s is None or s.stream is None:
            return
        if s.sync_pending is not None and s.sync_pending[0] == event.request_id:
            s.sync_pending = None
            # the next request leaves a random time after this reply, never right behind it: a reply comes
            # just after the sensor's connection event, and a request sent then waits a whole interval
            s.next_sync_s = self.clock.monotonic() + self.config.time_sync_every_s * self._rng.uniform(0.5, 1.5)
        if event.timestamp_us is not None:
            s.stream.observe_sync(event.timestamp_us, event.sent_s, event.received_s)

    def _resume(self, s: _Sensor, serial: str, boot_epoch: int, now: float) -> bool:
        """Seed a fresh stream from the cursor an earlier gateway process committed, if it is this boot."""
        cur = self._cursors.get(s.placement)
        if not cur or cur.get("serial") != serial or cur.get("boot_epoch") != boot_epoch or s.stream is None:
            return False
        ago = self.clock.utc() - float(cur["utc_s"])  # type: ignore[arg-type]
        s.stream.resume(int(cur["next_seq"]), int(cur["last_t_us"]), ago, now)  # type: ignore[call-overload]
        log.info("%s: resuming %s boot %d at sequence %s", s.placement, serial, boot_epoch, cur["next_seq"])
        return True

    def _on_packet(self, event: PacketEvent) -> None:
        s = self.sensors.get(event.placement)
        if s is None or s.stream is None or s.info is None:
            return
        try:
            pkt = decode_packet(event.data)
        except ProtocolError as exc:
            s.malformed += 1
            log.debug("%s: dropped malformed packet: %s", event.placement, exc)
            return
        timing = s.stream.observe(pkt.sequence, pkt.timestamp_us, pkt.sample_count, event.arrival_s)
        if timing.duplicate:
            if _first_or_power_of_two(s.stream.duplicates):
                log.warning(
                    "%s: dropped a packet of samples already received (sequence %d, expected %s; %d so far): a "
                    "repeat, or a sensor whose sequence restarted without a new boot epoch",
                    s.placement,
                    timing.seq,
                    s.stream.last_seq + 1 if s.stream.last_seq is not None else None,
                    s.stream.duplicates,
                )
            return
        if timing.out_of_range:
            s.malformed += 1
            if _first_or_power_of_two(s.stream.out_of_range):
                log.error("%s: dropped a packet whose counters pass what the uplink can name (2**53)", s.placement)
            return
        s.last_packet_s = event.arrival_s
        if timing.clock_restarted:
            # the open batch's samples belong to the segment that ended: mapped by its fit, never the new one
            self._close_batch(s, event.arrival_s, fit=timing.ended_fit)
            s.clock_jumps += 1
            if _first_or_power_of_two(s.clock_jumps):
                log.warning(
                    "%s: sensor clock jumped (raw %d us at sequence %d) without a new boot epoch, %d times so far: "
                    "a new clock mapping starts here",
                    s.placement,
                    pkt.timestamp_us,
                    timing.seq,
                    s.clock_jumps,
                )
        if timing.lost_before:
            self._close_batch(s, event.arrival_s)
            if s.link_lost_since_packet or s.resumed:
                reason = "link_lost"
            elif pkt.flags & PacketFlags.FIFO_OVERFLOW:
                reason = "sensor_fifo_overflow"
            else:
                reason = "packet_lost"
            self._gap(
                s, timing.seq - timing.lost_before, timing.seq - 1, timing.lost_before / s.info.sample_rate_hz, reason
            )
        s.link_lost_since_packet = s.resumed = False
        size = _payload_bytes(event.data)
        if s.packets and (
            s.n_samples + pkt.sample_count > env.MAX_BATCH_SAMPLES
            or s.payload_bytes + size > _MAX_BATCH_PAYLOAD_BYTES
            or timing.t_sensor_us - s.t_first_us >= _MAX_BATCH_SPAN_US
        ):
            self._close_batch(s, event.arrival_s)  # a batch the worker can read: within the uplink's limits
        if not s.packets:
            s.seq_first, s.t_first_us, s.opened_s, s.n_samples, s.peak_dps = (
                timing.seq,
                timing.t_sensor_us,
                event.arrival_s,
                0,
                0.0,
            )
            s.first_arrival_s = event.arrival_s
            s.payload_bytes = 0
        s.packets.append(bytes(event.data))
        s.payload_bytes += size
        s.last_arrival_s = event.arrival_s
        s.n_samples += pkt.sample_count
        s.seq_last = timing.seq + pkt.sample_count - 1
        s.t_last_us = timing.t_sensor_us + round((pkt.sample_count - 1) * 1e6 / s.info.sample_rate_hz)
        s.peak_dps = max(s.peak_dps, _peak_gyro_dps(pkt))
        if event.arrival_s - s.opened_s >= self.config.batch_s:
            self._close_batch(s, event.arrival_s, by_packet=True)
        self._maybe_time_sync(s, self.clock.monotonic())

    def _maybe_time_sync(self, s: _Sensor, now: float) -> None:
        """Ask for a TIME_SYNC round trip when one is due, *right after a packet of that sensor arrived*: the
        packet came with a connection event, so the request leaves with the next one and the reply with the
        one after -- both legs take one interval and the round trip's midpoint is the sensor's reading time
        (SPEC §8: pair with (t0 + t1) / 2, drop long round trips). A request sent at a random moment would
        have a random first leg and a midpoint off by up to half an interval."""
        time_sync = getattr(self.transport, "time_sync", None)
        if time_sync is None or self.config.time_sync_every_s <= 0 or s.link != "connected":
            return
        if s.sync_pending is not None and now - s.sync_pending[1] < self.config.time_sync_timeout_s:
            return
        if now >= s.next_sync_s:
            self._sync_id = (self._sync_id + 1) % 2**32
            s.sync_pending = (self._sync_id, now)
            s.next_sync_s = now + self.config.time_sync_every_s * self._rng.uniform(0.5, 1.5)
            time_sync(s.placement, self._sync_id)

    def _close_batch(self, s: _Sensor, now: float, by_packet: bool = False, fit: ClockFit | None = None) -> None:
        """Commit the open batch, mapped by ``fit`` (default: the stream's current fit)."""
        if not s.packets or s.info is None or s.stream is None:
            return
        fit = fit or s.stream.fit()
        synced = self.clock.utc_synced()
        ref_utc_s = None
        if synced:
            # continuity in the published (stored) UTC domain: the batch's first sample never maps at or
            # before the previous batch's last one (timing/continuity.py); rate and drift stay the fit's
            ref_utc_s = s.continuity.apply(
                fit.sensor_ref_us,
                fit.host_ref_s + (self.clock.utc() - self.clock.monotonic()),
                fit.rate,
                s.t_first_us,
                s.t_last_us,
                1.0 / s.info.sample_rate_hz,
            ).ref_s
        clock = env.ClockMapping(
            utc_synced=synced,
            ref_sensor_us=fit.sensor_ref_us,
            ref_utc_s=ref_utc_s,
            rate=fit.rate,
            drift_ppm=fit.drift_ppm,
            jitter_ms=_published_jitter_ms(fit),
        )
        info = s.info
        batch = env.RawBatch(
            kind="raw",
            msg_id=env.raw_batch_id(info.serial, info.boot_epoch, s.seq_first),
            subject=self.config.subject,
            session=self.session.session,
            placement=s.placement,
            sensor=env.SensorIdentity(
                info.serial,
                info.boot_epoch,
                float(info.sample_rate_hz),
                info.acc_range_g,
                info.gyr_range_dps,
                ".".join(map(str, info.firmware_version)),
            ),
            seq_first=s.seq_first,
            seq_last=s.seq_last,
            n_samples=s.n_samples,
            t_sensor_us_first=s.t_first_us,
            clock=clock,
            packets=tuple(s.packets),
        )
        peak = s.peak_dps
        s.packets = []
        self._arrival_of[batch.msg_id] = (s.first_arrival_s, s.last_arrival_s if by_packet else math.nan)
        self._closed_batch = True
        opens = self.session.motion(peak, now) == "session_start"
        cursor = {
            "serial": info.serial,
            "boot_epoch": info.boot_epoch,
            "next_seq": batch.seq_last + 1,
            "last_t_us": s.t_last_us,  # the batch's last sample: where a restarted gateway's stream goes on
            "utc_s": self.clock.utc() - (self.clock.monotonic() - s.last_arrival_s),
            "mapped_last_utc_s": s.continuity.last_s,  # the continuity floor survives a restart
            "session": batch.session,
        }
        state: dict[str, object] = {f"cursor:{s.placement}": cursor}
        if self.session.session is not None:
            state["session"] = self._session_state()  # its last motion, durable with the batch (no extra fsync)
        self._put(
            batch.msg_id,
            topic(self.config.subject, "raw", s.placement),
            env.encode(batch),
            "raw",
            seq=(s, batch.seq_first, batch.seq_last),
            state=state,
        )
        s.published = env.SensorPosition(info.serial, info.boot_epoch, batch.seq_last)
        if opens:
            self._open_session(now)

    def _gap(self, s: _Sensor, first: int, last: int, duration_s: float, reason: str = "packet_lost") -> None:
        assert s.info is not None
        s.gaps += 1
        gap = env.Gap(
            kind="gap",
            msg_id=env.gap_id(s.info.serial, s.info.boot_epoch, first),
            subject=self.config.subject,
            session=self.session.session,
            placement=s.placement,
            serial=s.info.serial,
            boot_epoch=s.info.boot_epoch,
            seq_first_missing=first,
            seq_last_missing=last,
            duration_s=duration_s,
            reason=reason,
        )
        log.warning("%s: gap of %d samples (%s)", s.placement, last - first + 1, reason)
        self._put(gap.msg_id, topic(self.config.subject, "gap", s.placement), env.encode(gap), "gap")

    def _put(
        self,
        msg_id: str,
        topic_: str,
        payload: bytes,
        kind: str,
        seq: tuple[_Sensor, int, int] | None = None,
        state: dict[str, object] | None = None,
    ) -> None:
        try:
            self.outbox.put(msg_id, topic_, payload, kind, state=state)
        except OutboxFull as exc:
            log.error("outbox full, %s refused: %s", msg_id, exc)
            self._arrival_of.pop(msg_id, None)
            if seq is not None:
                sensor, first, last = seq
                rate = sensor.info.sample_rate_hz if sensor.info else 100.0
                self._gap(sensor, first, last, (last - first + 1) / rate, reason="queue_full")

    # ------------------------------------------------------------------------------------------- sessions

    def _utc_of(self, host_s: float) -> float:
        return self.clock.utc() - (self.clock.monotonic() - host_s)

    def _session_state(self) -> dict[str, object]:
        """The ``session`` entry of the gateway state: the open session and the UTC time of its last motion
        (written with every batch of the session, in the batch's own transaction), so that a restarted
        gateway knows whether the stillness timeout passed while it was down."""
        last = self.session.last_motion_s
        return {
            "id": self.session.session,
            "counter": self.session.counter,
            "last_motion_utc_s": self._utc_of(last) if self.session.session and last is not None else None,
        }

    def _restore_session(self, saved: dict[str, object]) -> None:
        """The session an earlier process of this gateway left open (a restart, a crash, kill -9, a power cut):
        continue it when its last motion is less than ``still_timeout_s`` ago on a synchronised clock (the running
        gateway would still have it open), else send its ``session_end`` now, before anything else, referring to
        the last samples of it the outbox committed (the cursors), so that the worker runs its final analysis."""
        counter = saved.get("counter", 0)
        self.session.counter = int(counter) if isinstance(counter, int | float) else 0
        sid = saved.get("id")
        if not isinstance(sid, str) or not sid:
            return
        # older gateways saved only the session's opening time ("utc_s"); an unsynchronised clock (a computer
        # that just booted after a power cut, before NTP) cannot say how long the gateway was down: the session
        # is ended then (two parts with final results each, rather than a later visit merged into it)
        last = saved.get("last_motion_utc_s", saved.get("utc_s"))
        still_s = self.clock.utc() - float(last) if isinstance(last, int | float) else math.inf
        now = self.clock.monotonic()
        if still_s < self.config.still_timeout_s and self.clock.utc_synced():
            self.session.resume(sid, now - max(still_s, 0.0), now)
            log.info("continuing session %s (last motion %.0f s ago)", sid, still_s)
            return
        positions: dict[str, env.SensorPosition] = {}
        mapped: list[float] = []
        for placement, cur in self._cursors.items():
            serial, boot, next_seq = cur.get("serial"), cur.get("boot_epoch"), cur.get("next_seq")
            # a cursor written before the session opened (a sensor that sent nothing in it) is not part of it
            if placement not in self.sensors or cur.get("session", sid) != sid:
                continue
            if not isinstance(serial, str) or not isinstance(boot, int) or not isinstance(next_seq, int):
                continue
            positions[placement] = env.SensorPosition(serial, boot, next_seq - 1)
            if isinstance(cur.get("mapped_last_utc_s"), int | float):
                mapped.append(float(cur["mapped_last_utc_s"]))  # type: ignore[arg-type]
        log.warning("session %s ended while the gateway was down (last motion %.0f s ago): closing it", sid, still_s)
        self._marker(
            "session_end",
            now,
            session=sid,
            positions=positions,
            t_utc_s=max(mapped) if mapped else None,  # its last sample's time, not the restart's
            state={"session": {"id": None, "counter": self.session.counter, "last_motion_utc_s": None}},
        )

    def _open_session(self, now: float, source: str = "gateway") -> None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self.clock.utc())) if self.clock.utc_synced() else None
        sid = f"{self.config.subject}-{stamp or f'm{int(now)}'}-{self.session.counter + 1}"
        self.session.open(sid, now)
        self._last_window_s = now
        self._marker("session_start", now, source=source, state={"session": self._session_state()})

    def _close_session(self, now: float, source: str = "gateway") -> str | None:
        closed = {"id": None, "counter": self.session.counter, "last_motion_utc_s": None}
        self._marker("session_end", now, source=source, state={"session": closed})
        return self.session.close()

    def _sessions(self, now: float) -> None:
        if self.session.session is None:
            return
        # A window refers to samples already published (in batches ahead of it in the outbox), so a worker can
        # analyse it on arrival instead of waiting for a batch still open here (up to batch_s more). One goes
        # out as soon as a sensor published a batch since the previous window, at least window_s apart.
        published = {p: s.published for p, s in self.sensors.items() if s.published is not None}
        if published != self._last_window and now - self._last_window_s >= self.config.window_s:
            self._last_window_s, self._last_window = now, published
            self._marker("window", now, positions=published)
        if self.session.due_to_close(now):
            self._close_session(now)

    def _marker(
        self,
        type_: str,
        now: float,
        source: str = "gateway",
        positions: dict[str, env.SensorPosition] | None = None,
        session: str | None = None,
        t_utc_s: float | _Now | None = _NOW,
        state: dict[str, object] | None = None,
        **activity: object,
    ) -> None:
        """Publish a marker of ``session`` (default: the open one) referring to ``positions`` (default: each
        sensor's newest sample), stamped ``t_utc_s`` (default: now, when the clock is synchronised); ``state``
        is committed in the marker's own transaction."""
        sid = session or self.session.session
        if sid is None:
            return
        last = (
            positions
            if positions is not None
            else {
                p: env.SensorPosition(s.info.serial, s.info.boot_epoch, s.stream.last_seq)
                for p, s in self.sensors.items()
                if s.info is not None and s.stream is not None and s.stream.last_seq is not None
            }
        )
        key = ",".join(f"{p}={pos.seq}" for p, pos in sorted(last.items()))
        marker = env.Marker(
            kind="marker",
            msg_id=f"marker:{sid}:{type_}:{key}:{activity.get('set', '')}",
            subject=self.config.subject,
            session=sid,
            type=type_,
            t_utc_s=(self.clock.utc() if self.clock.utc_synced() else None) if isinstance(t_utc_s, _Now) else t_utc_s,
            last_seq=last,
            exercise=activity.get("exercise"),  # type: ignore[arg-type]
            side=activity.get("side"),  # type: ignore[arg-type]
            set=activity.get("set"),  # type: ignore[arg-type]
            source=source,
        )
        self._put(marker.msg_id, topic(self.config.subject, "marker"), env.encode(marker), "marker", state=state)

    # ------------------------------------------------------------------------------------------- MQTT

    def _on_message(self, m: Incoming) -> None:
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
        if cmd.action == "session_start":
            if self.session.session is not None:
                return True, f"session {self.session.session} already open"
            self._open_session(now, source="command")
            return True, f"session {self.session.session} started"
        if self.session.session is None:
            return False, "no session is open"
        if cmd.action == "session_stop":
            return True, f"session {self._close_session(now, source='command')} closed"
        self._marker(cmd.action, now, source="command", exercise=cmd.exercise, side=cmd.side, set=cmd.set or 1)
        return True, f"{cmd.action} {cmd.exercise} {cmd.side} set {cmd.set or 1}"

    def _publish_pending(self, now: float) -> None:
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
                jitter_ms=_published_jitter_ms(fit) if fit else None,
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


_MAX_BATCH_PAYLOAD_BYTES = env.MAX_PAYLOAD_BYTES - 4096
"""Room a raw batch's packets may take in its payload; the rest of the envelope (ids, sensor, clock) is < 1 kB."""
_MAX_BATCH_SPAN_US = 2**31
"""Sensor time a raw batch may span: the worker unwraps each packet's u32 timestamp forward from the batch's
first, exact within 2**32 µs (a batch spans that much only when the host stood still, e.g. suspended)."""


def _payload_bytes(packet: bytes) -> int:
    """What one packet adds to a raw batch's JSON: its base64 text, two quotes and a comma."""
    return 4 * ((len(packet) + 2) // 3) + 3


def _first_or_power_of_two(count: int) -> bool:
    """Log the 1st, 2nd, 4th, 8th ... occurrence: a sensor that does it on every packet cannot flood the log."""
    return count > 0 and count & (count - 1) == 0


def _published_jitter_ms(fit: ClockFit) -> float:
    """The fit's residual as the uplink carries it: within the contract's bound, which it reaches only for a
    clock no line can follow (one that runs at a rate far from its nominal one: not a crystal's drift)."""
    return min(max(fit.jitter_ms, -env.MAX_JITTER_MS), env.MAX_JITTER_MS)


def _peak_gyro_dps(pkt: ImuPacket) -> float:
    peak = max(gx * gx + gy * gy + gz * gz for _, _, _, gx, gy, gz in pkt.samples)
    return math.sqrt(peak) * pkt.gyr_scale_dps


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
