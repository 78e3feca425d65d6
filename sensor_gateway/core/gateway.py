"""The gateway loop, one `step` at a time (no threads of its own; transport and paho enqueue into it).

Per step: drain transport events (connect, reboot, packets) -> decode (malformed packets are counted and
dropped, the next sequence gap accounts for them) -> unwrap and time-map (`timing.SensorStream`) ->
append to the sensor's open batch; a batch closes after ``batch_s`` host seconds (or at a gap / reboot)
and is committed to the outbox with a `ClockMapping`; lost samples become a Gap message. Then: drain MQTT
events (acks delete from the outbox, commands become markers and replies), publish pending outbox rows
(QoS 1, at most ``max_inflight`` unacknowledged), re-send rows with no ack after ``ack_timeout_s``, emit
window markers every ``window_s`` s of a session, close a session after stillness, and publish the
retained status every ``status_every_s`` s. Times: host monotonic seconds of the `HostClock`.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

from firmware_protocol.errors import ProtocolError
from firmware_protocol.packet import ImuPacket, decode_packet
from firmware_protocol.sensor_info import SensorInfo
from sensor_gateway.core.session import SessionTracker
from sensor_gateway.errors import UplinkError
from sensor_gateway.mqtt.client import Connected, Disconnected, Incoming, MqttLink
from sensor_gateway.outbox.store import Outbox, OutboxFull
from sensor_gateway.timing.host_clock import HostClock
from sensor_gateway.timing.stream import SensorStream
from sensor_gateway.transport.base import EventQueue, LinkEvent, PacketEvent, Transport
from sensor_gateway.uplink import envelope as env
from sensor_gateway.uplink.topics import gateway_subscriptions, parse_topic, topic
from sensor_gateway.uplink.vocabulary import PLACEMENTS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GatewayConfig:
    subject: str
    placements: tuple[str, ...] = PLACEMENTS
    batch_s: float = 1.0
    window_s: float = 5.0
    still_timeout_s: float = 120.0
    motion_dps: float = 15.0
    ack_timeout_s: float = 30.0
    max_inflight: int = 200
    status_every_s: float = 10.0
    version: str = "0.1.0"


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
    n_samples: int = 0
    opened_s: float = 0.0
    peak_dps: float = 0.0
    malformed: int = 0
    gaps: int = 0


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
        self._last_status_s = -math.inf
        self._latency_s: list[float] = []  # packet arrival -> publish, for the bench
        self._arrival_of: dict[str, float] = {}
        self.published = 0

    # ------------------------------------------------------------------------------------------- lifecycle

    def start(self) -> None:
        self.transport.open(self.events)
        self.link.subscribe(gateway_subscriptions(self.config.subject))
        self.link.connect(will=(topic(self.config.subject, "status"), self._status_payload("offline")))
        for placement in self.config.placements:
            self.transport.connect(placement)

    def stop(self) -> None:
        now = self.clock.monotonic()
        for s in self.sensors.values():
            self._close_batch(s, now)
        if self.session.session is not None:
            self._marker("session_end", now)
            self.session.close()
        self._publish_pending(now)
        self.transport.close()
        self.link.close(last_words=(topic(self.config.subject, "status"), self._status_payload("offline")))
        self.outbox.close()

    def step(self) -> None:
        now = self.clock.monotonic()
        for event in self.events.drain():
            if isinstance(event, PacketEvent):
                self._on_packet(event)
            else:
                self._on_link(event)
        for s in self.sensors.values():
            if s.packets and now - s.opened_s >= self.config.batch_s:
                self._close_batch(s, now)
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
        s.link = event.state
        if event.battery_pct is not None:
            s.battery_pct = event.battery_pct
        if event.state == "connected" and event.info is not None:
            info = event.info
            if s.info is None or (s.info.serial, s.info.boot_epoch) != (info.serial, info.boot_epoch):
                self._close_batch(s, self.clock.monotonic())
                s.stream = SensorStream(info.boot_epoch, info.sample_rate_hz)
            s.info = info
            self.transport.start_streaming(event.placement)
        elif event.state == "lost":
            self._close_batch(s, self.clock.monotonic())

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
            return
        if timing.clock_restarted or timing.lost_before:
            self._close_batch(s, event.arrival_s)
        if timing.lost_before:
            self._gap(s, timing.seq - timing.lost_before, timing.seq - 1, timing.lost_before / s.info.sample_rate_hz)
        if not s.packets:
            s.seq_first, s.t_first_us, s.opened_s, s.n_samples, s.peak_dps = (
                timing.seq,
                timing.t_sensor_us,
                event.arrival_s,
                0,
                0.0,
            )
            self._arrival_of[env.raw_batch_id(s.info.serial, s.info.boot_epoch, timing.seq)] = event.arrival_s
        s.packets.append(bytes(event.data))
        s.n_samples += pkt.sample_count
        s.seq_last = timing.seq + pkt.sample_count - 1
        s.peak_dps = max(s.peak_dps, _peak_gyro_dps(pkt))

    def _close_batch(self, s: _Sensor, now: float) -> None:
        if not s.packets or s.info is None or s.stream is None:
            return
        fit = s.stream.fit()
        synced = self.clock.utc_synced()
        clock = env.ClockMapping(
            utc_synced=synced,
            ref_sensor_us=fit.sensor_ref_us,
            ref_utc_s=fit.host_ref_s + (self.clock.utc() - self.clock.monotonic()) if synced else None,
            rate=fit.rate,
            drift_ppm=fit.drift_ppm,
            jitter_ms=fit.jitter_ms,
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
        self._put(
            batch.msg_id,
            topic(self.config.subject, "raw", s.placement),
            env.encode(batch),
            "raw",
            seq=(s, batch.seq_first, batch.seq_last),
        )
        if self.session.motion(peak, now) == "session_start":
            self._open_session(now)

    def _gap(self, s: _Sensor, first: int, last: int, duration_s: float, reason: str = "link") -> None:
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
        self._put(gap.msg_id, topic(self.config.subject, "gap", s.placement), env.encode(gap), "gap")

    def _put(
        self, msg_id: str, topic_: str, payload: bytes, kind: str, seq: tuple[_Sensor, int, int] | None = None
    ) -> None:
        try:
            self.outbox.put(msg_id, topic_, payload, kind)
        except OutboxFull as exc:
            log.error("outbox full, %s refused: %s", msg_id, exc)
            self._arrival_of.pop(msg_id, None)
            if seq is not None:
                sensor, first, last = seq
                self._gap(sensor, first, last, (last - first + 1) / 100.0, reason="outbox_full")

    # ------------------------------------------------------------------------------------------- sessions

    def _open_session(self, now: float, source: str = "gateway") -> None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self.clock.utc())) if self.clock.utc_synced() else None
        sid = f"{self.config.subject}-{stamp or f'm{int(now)}'}-{self.session.counter + 1}"
        self.session.open(sid, now)
        self._last_window_s = now
        self._marker("session_start", now, source=source)

    def _sessions(self, now: float) -> None:
        if self.session.session is None:
            return
        if now - self._last_window_s >= self.config.window_s:
            self._last_window_s = now
            self._marker("window", now)
        if self.session.due_to_close(now):
            self._marker("session_end", now)
            self.session.close()

    def _marker(self, type_: str, now: float, source: str = "gateway", **activity: object) -> None:
        sid = self.session.session
        if sid is None:
            return
        last = {
            p: env.SensorPosition(s.info.serial, s.info.boot_epoch, s.stream.last_seq)
            for p, s in self.sensors.items()
            if s.info is not None and s.stream is not None and s.stream.last_seq is not None
        }
        key = ",".join(f"{p}={pos.seq}" for p, pos in sorted(last.items()))
        marker = env.Marker(
            kind="marker",
            msg_id=f"marker:{sid}:{type_}:{key}:{activity.get('set', '')}",
            subject=self.config.subject,
            session=sid,
            type=type_,
            t_utc_s=self.clock.utc() if self.clock.utc_synced() else None,
            last_seq=last,
            exercise=activity.get("exercise"),  # type: ignore[arg-type]
            side=activity.get("side"),  # type: ignore[arg-type]
            set=activity.get("set"),  # type: ignore[arg-type]
            source=source,
        )
        self._put(marker.msg_id, topic(self.config.subject, "marker"), env.encode(marker), "marker")

    # ------------------------------------------------------------------------------------------- MQTT

    def _on_message(self, m: Incoming) -> None:
        try:
            kind = parse_topic(m.topic).kind
            msg = env.decode(m.payload)
        except UplinkError as exc:
            log.warning("ignored malformed message on %s: %s", m.topic, exc)
            return
        if kind == "ack" and isinstance(msg, env.Ack):
            self.outbox.ack(msg.msg_ids)
        elif kind == "cmd" and isinstance(msg, env.Command):
            ok, text = self._command(msg)
            reply = env.CommandReply("cmd/reply", msg.cmd_id, self.config.subject, ok, text)
            self.link.publish(topic(self.config.subject, "cmd/reply"), env.encode(reply))

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
            self._marker("session_end", now, source="command")
            return True, f"session {self.session.close()} closed"
        self._marker(cmd.action, now, source="command", exercise=cmd.exercise, side=cmd.side, set=cmd.set or 1)
        return True, f"{cmd.action} {cmd.exercise} {cmd.side} set {cmd.set or 1}"

    def _publish_pending(self, now: float) -> None:
        if not self.link.connected:
            return
        room = self.config.max_inflight - self.outbox.stats().inflight
        if room <= 0:
            return
        items = self.outbox.pending(limit=room)
        sent = []
        for item in items:
            if not self.link.publish(item.topic, item.payload, qos=1):
                break
            sent.append(item)
            arrival = self._arrival_of.pop(item.msg_id, None)
            if arrival is not None:
                self._latency_s.append(now - arrival)
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
                jitter_ms=fit.jitter_ms if fit else None,
                samples_received=s.stream.samples if s.stream else 0,
                gaps=s.gaps,
            )
        status = env.Status(
            kind="status",
            subject=self.config.subject,
            state=state,  # type: ignore[arg-type]
            t_utc_s=self.clock.utc() if self.clock.utc_synced() else None,
            gateway={"version": self.config.version, "utc_synced": str(self.clock.utc_synced()).lower()},
            session=self.session.session,
            sensors=sensors if state == "online" else {},
            outbox=self.outbox.stats().as_status() if state == "online" else {},
        )
        return env.encode(status)


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
    """Drive a gateway over a virtual-kit transport: advance a `VirtualHostClock` by ``tick_s`` per turn
    (sleeping so virtual time runs ``speed`` x real time; None = as fast as possible)."""
    from sensor_gateway.timing.host_clock import VirtualHostClock
    from sensor_gateway.transport.virtual import VirtualKitTransport

    assert isinstance(transport, VirtualKitTransport) and isinstance(clock, VirtualHostClock)
    end = clock.monotonic() + duration_s
    real0, virt0 = time.monotonic(), clock.monotonic()
    while clock.monotonic() < end:
        target = min(end, clock.monotonic() + tick_s)
        transport.pump(target)
        clock.set(target)
        gateway.step()
        if speed:
            lag = (target - virt0) / speed - (time.monotonic() - real0)
            if lag > 0:
                time.sleep(lag)
