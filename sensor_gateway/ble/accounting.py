"""`StreamLedger`: accounts for every sample a transport's events carry, per (serial, boot epoch): delivered,
or recorded as a gap (placement, serial, boot epoch, first/last missing sequence, duration). A pure consumer
of `PacketEvent`/`LinkEvent` (decoding happens here, never in a bleak callback); the gateway core does the same
accounting on its own path (Gap uplink messages). Used by the BLE tests, benches and `gaitsym gateway pair`
diagnostics. Sequences are unwrapped (SPEC section 5); durations in s at the sensor's sample rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from firmware_protocol.errors import ProtocolError
from firmware_protocol.packet import ImuPacket, decode_packet
from firmware_protocol.sensor_info import SensorInfo
from firmware_protocol.wire import unwrap_u32
from sensor_gateway.transport.base import LinkEvent, PacketEvent, TransportEvent

__all__ = ["GapRecord", "SensorLedger", "StreamLedger"]


@dataclass(frozen=True)
class GapRecord:
    placement: str
    serial: str
    boot_epoch: int
    seq_first_missing: int
    seq_last_missing: int
    duration_s: float

    @property
    def samples(self) -> int:
        return self.seq_last_missing - self.seq_first_missing + 1


@dataclass
class SensorLedger:
    """One (serial, boot epoch) stream."""

    placement: str
    info: SensorInfo
    first_seq: int | None = None
    next_seq: int | None = None
    """Unwrapped sequence expected next."""
    delivered: int = 0
    duplicates: int = 0
    packets: int = 0
    max_packet_bytes: int = 0

    @property
    def lost(self) -> int:
        return 0 if self.first_seq is None or self.next_seq is None else self.next_seq - self.first_seq - self.delivered


@dataclass
class StreamLedger:
    ledgers: dict[tuple[str, int], SensorLedger] = field(default_factory=dict)
    current: dict[str, tuple[str, int]] = field(default_factory=dict)
    """placement -> (serial, boot epoch) of its last connection."""
    gaps: list[GapRecord] = field(default_factory=list)
    malformed: dict[str, dict[str, int]] = field(default_factory=dict)
    """placement -> error class name -> count."""
    link_events: list[LinkEvent] = field(default_factory=list)
    last_packet: dict[str, ImuPacket] = field(default_factory=dict)

    def feed(self, event: TransportEvent) -> None:
        if isinstance(event, LinkEvent):
            self.link_events.append(event)
            if event.state == "connected" and event.info is not None:
                key = (event.info.serial, event.info.boot_epoch)
                self.current[event.placement] = key
                ledger = self.ledgers.setdefault(key, SensorLedger(event.placement, event.info))
                ledger.info = event.info
            return
        if not isinstance(event, PacketEvent):
            return
        key_now = self.current.get(event.placement)
        if key_now is None:
            return
        ledger = self.ledgers[key_now]
        try:
            pkt = decode_packet(event.data)
        except ProtocolError as exc:
            per = self.malformed.setdefault(event.placement, {})
            per[type(exc).__name__] = per.get(type(exc).__name__, 0) + 1
            return
        self.last_packet[event.placement] = pkt
        ledger.packets += 1
        ledger.max_packet_bytes = max(ledger.max_packet_bytes, len(event.data))
        if ledger.next_seq is None:
            seq = pkt.sequence
            ledger.first_seq = seq
        else:
            seq = unwrap_u32(ledger.next_seq, pkt.sequence)
            if seq < ledger.next_seq:
                ledger.duplicates += 1
                return
            if seq > ledger.next_seq:
                self.gaps.append(
                    GapRecord(
                        event.placement,
                        ledger.info.serial,
                        ledger.info.boot_epoch,
                        ledger.next_seq,
                        seq - 1,
                        (seq - ledger.next_seq) / ledger.info.sample_rate_hz,
                    )
                )
        ledger.delivered += pkt.sample_count
        ledger.next_seq = seq + pkt.sample_count

    def ledger(self, placement: str) -> SensorLedger:
        return self.ledgers[self.current[placement]]

    def gaps_of(self, placement: str) -> list[GapRecord]:
        return [g for g in self.gaps if g.placement == placement]

    def states(self, placement: str) -> list[str]:
        return [e.state for e in self.link_events if e.placement == placement]
