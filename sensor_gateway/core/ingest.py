"""Ingest: transport events -> decode -> time mapping -> batches -> outbox, one `SensorState` per placement.

Per event: link changes, packets, time-sync round trips. A packet is decoded (malformed packets are counted and
dropped, the next sequence gap accounts for them), unwrapped and time-mapped (`timing.SensorStream`: arrival
bounds + TIME_SYNC round trips, asked right after a packet) and appended to the sensor's open batch. A batch
closes on the first packet at or after the next whole multiple of ``batch_s`` on the host clock, the same
instants for every sensor (`batch_closes_at`; or at a gap, a reboot, a link loss, or ``batch_grace_s`` after that
instant when the sensor went silent) and is committed to the outbox with a
`ClockMapping` (the fit, its offset raised when needed so that the batch's first sample maps after the previous
batch's last one: `timing.continuity`) and the sensor's cursor (same transaction, with that last mapped time, so
the rule holds across a restart); lost samples become a Gap message (reason packet_lost, link_lost,
sensor_fifo_overflow or queue_full). A lost link is re-connected with exponential backoff (``reconnect_min_s`` ..
``reconnect_max_s``); the stream resumes where it was and the gap is recorded. After a restart the persisted
cursors make the samples sent while the gateway was down a link_lost gap too.

A sensor's packets never stop the loop: a clock that jumps without a new boot epoch starts a new mapping segment
(the open batch is closed with the old fit; the sequence, the samples' identity, goes on, so losses stay gaps and
repeats stay dropped), and every batch is closed before it would pass the uplink's limits (samples, payload bytes,
sensor-time span); the published ``jitter_ms`` is kept within the contract's bound.
"""

from __future__ import annotations

import logging
import math
import random

from firmware_protocol.errors import ProtocolError
from firmware_protocol.packet import ImuPacket, PacketFlags, decode_packet
from gaitsym_common.uplink import envelope as env
from gaitsym_common.uplink.topics import topic
from sensor_gateway.core.config import GatewayConfig
from sensor_gateway.core.pump import Pump
from sensor_gateway.core.sensors import SensorState
from sensor_gateway.core.session import Sessions
from sensor_gateway.timing.clock_fit import ClockFit
from sensor_gateway.timing.host_clock import HostClock
from sensor_gateway.timing.stream import SensorStream
from sensor_gateway.transport.base import EventQueue, LinkEvent, PacketEvent, TimeSyncEvent, Transport

log = logging.getLogger(__name__)


def batch_closes_at(opened_s: float, batch_s: float) -> float:
    """Host time (s) at which a batch opened at ``opened_s`` closes: the next whole multiple of ``batch_s`` on the
    host clock. Every sensor's batches close at the same instants, so a stride's samples from all three sensors
    are published together (the worker's analysis waits for the last of them) instead of up to ``batch_s``
    apart; a sensor's first batch after a pause is shorter."""
    return (math.floor(opened_s / batch_s) + 1) * batch_s


class Ingest:
    def __init__(
        self,
        config: GatewayConfig,
        clock: HostClock,
        transport: Transport,
        events: EventQueue,
        sensors: dict[str, SensorState],
        cursors: dict[str, dict[str, object]],
        pump: Pump,
        sessions: Sessions,
    ) -> None:
        """``cursors``: per placement, what an earlier process of this gateway committed with its last batch."""
        self.config = config
        self.clock = clock
        self.transport = transport
        self.events = events
        self.sensors = sensors
        self.cursors = cursors
        self.pump = pump
        self.sessions = sessions
        self.rng = random.Random()
        """Reconnect backoffs and time-sync moments (a test seeds it to make a run reproducible)."""
        self._sync_id = 0
        self.closed_batch = False
        self.streaming = True
        """Whether a sensor that (re)connects is asked to stream (False once `Gateway.stop_streaming` ran)."""
        """A batch was committed since the loop last cleared this: publish it right away."""
        for placement, cur in cursors.items():
            if placement in sensors and isinstance(cur.get("mapped_last_utc_s"), int | float):
                sensors[placement].continuity.seed(float(cur["mapped_last_utc_s"]))  # type: ignore[arg-type]

    def tick(self, now: float) -> None:
        for s in self.sensors.values():
            if s.packets and now >= batch_closes_at(s.opened_s, self.config.batch_s) + self.config.batch_grace_s:
                self.close_batch(s, now)  # the sensor went quiet: do not hold its last samples back
            self._keep_linked(s, now)

    def on_link(self, event: LinkEvent) -> None:
        s = self.sensors.get(event.placement)
        if s is None:
            return
        now = self.clock.monotonic()
        if event.battery_pct is not None:
            s.battery_pct = event.battery_pct
        if event.state == "connected" and event.info is not None:
            info = event.info
            if s.info is None or (s.info.serial, s.info.boot_epoch) != (info.serial, info.boot_epoch):
                self.close_batch(s, now)
                s.stream = SensorStream(info.boot_epoch, info.sample_rate_hz, max_counter=env.MAX_COUNTER)
                s.resumed = self._resume(s, info.serial, info.boot_epoch, now)
            s.info = info
            s.link = "connected"
            s.reconnect_at, s.backoff_s, s.sync_pending = None, 0.0, None
            s.last_packet_s, s.connected_s = None, now
            s.next_sync_s = now + self.rng.uniform(0.0, max(self.config.time_sync_every_s, 0.0))
            if s.lost_at_s is not None:
                log.info("%s: link back after %.1f s", s.placement, now - s.lost_at_s)
            if self.streaming:
                self.transport.start_streaming(event.placement)
        elif event.state == "lost":
            self.close_batch(s, now)
            if s.link == "connected":
                s.lost_at_s = now
                s.link_lost_since_packet = True
                log.warning("%s: link lost (%s)", s.placement, event.reason)
            s.link = "lost"
            s.backoff_s = (
                self.config.reconnect_min_s if s.backoff_s <= 0 else min(2 * s.backoff_s, self.config.reconnect_max_s)
            )
            s.reconnect_at = now + s.backoff_s * self.rng.uniform(0.8, 1.2)
        else:
            s.link = event.state

    def _keep_linked(self, s: SensorState, now: float) -> None:
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

    def on_time_sync(self, event: TimeSyncEvent) -> None:
        s = self.sensors.get(event.placement)
        if s is None or s.stream is None:
            return
        if s.sync_pending is not None and s.sync_pending[0] == event.request_id:
            s.sync_pending = None
            # the next request leaves a random time after this reply, never right behind it: a reply comes
            # just after the sensor's connection event, and a request sent then waits a whole interval
            s.next_sync_s = self.clock.monotonic() + self.config.time_sync_every_s * self.rng.uniform(0.5, 1.5)
        if event.timestamp_us is not None:
            s.stream.observe_sync(event.timestamp_us, event.sent_s, event.received_s)

    def _resume(self, s: SensorState, serial: str, boot_epoch: int, now: float) -> bool:
        """Seed a fresh stream from the cursor an earlier gateway process committed, if it is this boot."""
        cur = self.cursors.get(s.placement)
        if not cur or cur.get("serial") != serial or cur.get("boot_epoch") != boot_epoch or s.stream is None:
            return False
        ago = self.clock.utc() - float(cur["utc_s"])  # type: ignore[arg-type]
        s.stream.resume(int(cur["next_seq"]), int(cur["last_t_us"]), ago, now)  # type: ignore[call-overload]
        log.info("%s: resuming %s boot %d at sequence %s", s.placement, serial, boot_epoch, cur["next_seq"])
        return True

    def on_packet(self, event: PacketEvent) -> None:
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
            self.close_batch(s, event.arrival_s, fit=timing.ended_fit)
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
            self.close_batch(s, event.arrival_s)
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
            self.close_batch(s, event.arrival_s)  # a batch the worker can read: within the uplink's limits
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
        if event.arrival_s >= batch_closes_at(s.opened_s, self.config.batch_s):
            self.close_batch(s, event.arrival_s, by_packet=True)
        self._maybe_time_sync(s, self.clock.monotonic())

    def _maybe_time_sync(self, s: SensorState, now: float) -> None:
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
            s.next_sync_s = now + self.config.time_sync_every_s * self.rng.uniform(0.5, 1.5)
            time_sync(s.placement, self._sync_id)

    def close_batch(self, s: SensorState, now: float, by_packet: bool = False, fit: ClockFit | None = None) -> None:
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
            jitter_ms=published_jitter_ms(fit),
        )
        info = s.info
        tracker = self.sessions.tracker
        batch = env.RawBatch(
            kind="raw",
            msg_id=env.raw_batch_id(info.serial, info.boot_epoch, s.seq_first),
            subject=self.config.subject,
            session=tracker.session,
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
        self.closed_batch = True
        opens = tracker.motion(peak, now) == "session_start"
        session_seq_first = None
        if batch.session is not None:
            session_seq_first = s.session_batch(batch.session, info.serial, info.boot_epoch, batch.seq_first)
        cursor = {
            "serial": info.serial,
            "boot_epoch": info.boot_epoch,
            "next_seq": batch.seq_last + 1,
            "last_t_us": s.t_last_us,  # the batch's last sample: where a restarted gateway's stream goes on
            "utc_s": self.clock.utc() - (self.clock.monotonic() - s.last_arrival_s),
            "mapped_last_utc_s": s.continuity.last_s,  # the continuity floor survives a restart
            "session": batch.session,
            "session_seq_first": session_seq_first,  # the session's end names it, after a restart too
        }
        state: dict[str, object] = {f"cursor:{s.placement}": cursor}
        if tracker.session is not None:
            state["session"] = self.sessions.state()  # its last motion, durable with the batch (no extra fsync)
        committed = self.pump.put(
            batch.msg_id,
            topic(self.config.subject, "raw", s.placement),
            env.encode(batch),
            "raw",
            state=state,
            arrivals=(s.first_arrival_s, s.last_arrival_s if by_packet else math.nan),
        )
        if not committed:
            first, last = batch.seq_first, batch.seq_last
            self._gap(s, first, last, (last - first + 1) / info.sample_rate_hz, reason="queue_full")
        s.published = env.SensorPosition(info.serial, info.boot_epoch, batch.seq_last)
        if opens and self.streaming:  # once stopping, the packets still in the air are stored in no new session
            self.sessions.open(now)

    def _gap(self, s: SensorState, first: int, last: int, duration_s: float, reason: str = "packet_lost") -> None:
        assert s.info is not None
        s.gaps += 1
        gap = env.Gap(
            kind="gap",
            msg_id=env.gap_id(s.info.serial, s.info.boot_epoch, first),
            subject=self.config.subject,
            session=self.sessions.tracker.session,
            placement=s.placement,
            serial=s.info.serial,
            boot_epoch=s.info.boot_epoch,
            seq_first_missing=first,
            seq_last_missing=last,
            duration_s=duration_s,
            reason=reason,
        )
        log.warning("%s: gap of %d samples (%s)", s.placement, last - first + 1, reason)
        self.pump.put(gap.msg_id, topic(self.config.subject, "gap", s.placement), env.encode(gap), "gap")


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


def published_jitter_ms(fit: ClockFit) -> float:
    """The fit's residual as the uplink carries it: within the contract's bound, which it reaches only for a
    clock no line can follow (one that runs at a rate far from its nominal one: not a crystal's drift)."""
    return min(max(fit.jitter_ms, -env.MAX_JITTER_MS), env.MAX_JITTER_MS)


def _peak_gyro_dps(pkt: ImuPacket) -> float:
    peak = max(gx * gx + gy * gy + gz * gz for _, _, _, gx, gy, gz in pkt.samples)
    return math.sqrt(peak) * pkt.gyr_scale_dps
