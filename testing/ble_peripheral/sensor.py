"""One emulated gaitsym sensor's firmware behaviour, independent of the BLE stack that carries it.

Used by the BlueZ/bluezoo kit (`kit.py`) and the Bumble kit (`bumble_kit.py`): the transport calls `handle_control` for
a write to the control characteristic (and notifies the reply it returns), `sensor_info` for a read, and asks
`next_due_ns` / `take_due` when to send which IMU data packets.

Time: the transport's clock is `clock_ns` (default `time.monotonic_ns`, ns). The sensor clock (`timestamp_us`,
TIME_SYNC replies) is µs since boot + `clock_offset_us`, mod 2**32. Sample k of a streaming run that started
at host time t0 is taken at t0 + k / sample_rate_hz; a packet is due when its last sample has been taken.
`sequence` counts samples taken since boot (the sensor samples only while streaming), so it restarts at 0
after `reboot`, which also increments `boot_epoch`.

Control behaviour (firmware_protocol/control.py): every command gets one reply; START/STOP are idempotent (OK);
SET_SAMPLE_RATE and SET_SAMPLES_PER_PACKET while streaming reply BUSY; a malformed command replies
UNSUPPORTED (unknown opcode) or BAD_ARGUMENT. Stopping the IMU notifications (link loss) stops streaming.

Fault injection for tests: `silent` (samples are taken and lost, sequence advances: the gateway sees a gap),
`inject_malformed(kind)` (the next due packet is sent corrupted; its samples are lost).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from firmware_protocol.control import (
    ControlReply,
    Opcode,
    Reply,
    SetPlacement,
    SetSampleRate,
    SetSamplesPerPacket,
    StartStreaming,
    Status,
    StopStreaming,
    TimeSyncReply,
    TimeSyncRequest,
    decode_control,
    encode_reply,
    reply_for_invalid_command,
)
from firmware_protocol.errors import ProtocolError
from firmware_protocol.packet import ImuPacket, PacketFlags, encode_packet
from firmware_protocol.sensor_info import Placement, SensorInfo, encode_sensor_info
from firmware_protocol.wire import U32_MODULUS

from .samples import SampleSource, StillSource, to_counts

__all__ = ["EmulatedSensor", "Malformation", "OutgoingPacket", "SensorIdentity"]

_NS_PER_S = 1_000_000_000


class Malformation(StrEnum):
    """How `inject_malformed` corrupts the next packet."""

    BAD_CRC = "bad_crc"
    """Last CRC byte flipped."""
    TRUNCATED = "truncated"
    """Last 5 bytes cut (what a too-small ATT MTU does)."""
    UNSUPPORTED_VERSION = "unsupported_version"
    """protocol_version byte set to 2."""
    BAD_LENGTH = "bad_length"
    """One extra byte appended."""


@dataclass(frozen=True)
class SensorIdentity:
    serial: str
    """1..16 printable ASCII; advertised as gaitsym-<serial>."""
    placement: Placement
    boot_epoch: int
    """Boot epoch at emulator start (u32); +1 on every `reboot`."""
    firmware_version: tuple[int, int, int] = (1, 0, 0)
    battery_percent: int = 87
    key: str = ""
    """The kit's name for this sensor (D-Bus path element); default: the placement name. A second sensor
    with the same placement (a neighbour's kit) needs its own key."""

    @property
    def kit_key(self) -> str:
        return self.key or str(self.placement)


@dataclass(frozen=True)
class OutgoingPacket:
    data: bytes
    """Notification value (an encoded IMU packet, or a corrupted one)."""
    sequence: int
    """Sequence of its first sample."""
    sample_count: int
    due_ns: int
    """Host time (clock_ns) its last sample was taken, ns."""
    malformed: bool = False


class EmulatedSensor:
    def __init__(
        self,
        identity: SensorIdentity,
        source: SampleSource | None = None,
        *,
        sample_rate_hz: int = 100,
        samples_per_packet: int = 1,
        acc_range_g: int = 8,
        gyr_range_dps: int = 1000,
        clock_offset_us: int = 0,
        clock_ns: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self.identity = identity
        self.source: SampleSource = source if source is not None else StillSource(seed=identity.boot_epoch)
        self.sample_rate_hz = sample_rate_hz
        self.samples_per_packet = samples_per_packet
        self.acc_range_g = acc_range_g
        self.gyr_range_dps = gyr_range_dps
        self.clock_offset_us = clock_offset_us
        self.clock_ns = clock_ns
        self.placement = identity.placement
        self.boot_epoch = identity.boot_epoch
        self.battery_percent = identity.battery_percent
        self.silent = False
        self._malformations: deque[Malformation] = deque()
        self.boot_ns = clock_ns()
        self.sequence = 0
        """Sequence of the next sample to be taken (samples since boot, unwrapped)."""
        self.streaming = False
        self._run_start_ns = 0
        self._run_start_sequence = 0

    # -- reads -----------------------------------------------------------------------------------------------
    def info(self) -> SensorInfo:
        return SensorInfo(
            placement=self.placement,
            sample_rate_hz=self.sample_rate_hz,
            acc_range_g=self.acc_range_g,
            gyr_range_dps=self.gyr_range_dps,
            samples_per_packet=self.samples_per_packet,
            firmware_version=self.identity.firmware_version,
            boot_epoch=self.boot_epoch,
            serial=self.identity.serial,
        )

    def sensor_info(self) -> bytes:
        """Value of the sensor info characteristic (30 bytes)."""
        return encode_sensor_info(self.info())

    def battery_level(self) -> bytes:
        """Value of the Battery Level characteristic: u8 percent."""
        return bytes((self.battery_percent,))

    def clock_us_at(self, host_ns: int) -> int:
        """Sensor clock (µs, u32) at host time `host_ns`."""
        return ((host_ns - self.boot_ns) // 1000 + self.clock_offset_us) % U32_MODULUS

    # -- control ---------------------------------------------------------------------------------------------
    def handle_control(self, data: bytes) -> bytes:
        """A write to the control characteristic -> the reply to notify on it."""
        now_ns = self.clock_ns()
        try:
            cmd = decode_control(data)
        except ProtocolError:
            return encode_reply(reply_for_invalid_command(data))
        reply: Reply
        if isinstance(cmd, StartStreaming):
            self.start_streaming(now_ns)
            reply = ControlReply(Opcode.START_STREAMING)
        elif isinstance(cmd, StopStreaming):
            self.stop_streaming()
            reply = ControlReply(Opcode.STOP_STREAMING)
        elif isinstance(cmd, SetSampleRate):
            if self.streaming:
                reply = ControlReply(Opcode.SET_SAMPLE_RATE, Status.BUSY)
            else:
                self.sample_rate_hz = cmd.sample_rate_hz
                reply = ControlReply(Opcode.SET_SAMPLE_RATE)
        elif isinstance(cmd, SetSamplesPerPacket):
            if self.streaming:
                reply = ControlReply(Opcode.SET_SAMPLES_PER_PACKET, Status.BUSY)
            else:
                self.samples_per_packet = cmd.samples_per_packet
                reply = ControlReply(Opcode.SET_SAMPLES_PER_PACKET)
        elif isinstance(cmd, TimeSyncRequest):
            reply = TimeSyncReply(request_id=cmd.request_id, timestamp_us=self.clock_us_at(now_ns))
        elif isinstance(cmd, SetPlacement):
            self.placement = cmd.placement
            reply = ControlReply(Opcode.SET_PLACEMENT)
        else:  # pragma: no cover - decode_control returns only the types above
            raise AssertionError(cmd)
        return encode_reply(reply)

    def start_streaming(self, now_ns: int | None = None) -> None:
        if self.streaming:
            return
        self.streaming = True
        self._run_start_ns = self.clock_ns() if now_ns is None else now_ns
        self._run_start_sequence = self.sequence

    def stop_streaming(self) -> None:
        self.streaming = False

    def reboot(self) -> None:
        """New boot: boot_epoch + 1, sequence and sensor clock restart at 0, not streaming, faults cleared."""
        self.streaming = False
        self.boot_epoch = (self.boot_epoch + 1) % U32_MODULUS
        self.boot_ns = self.clock_ns()
        self.sequence = 0
        self.silent = False
        self._malformations.clear()
        self.source.restart()

    def inject_malformed(self, kind: Malformation | str) -> None:
        self._malformations.append(Malformation(kind))

    # -- streaming -------------------------------------------------------------------------------------------
    def _sample_time_ns(self, sequence: int) -> int:
        k = sequence - self._run_start_sequence
        return self._run_start_ns + k * _NS_PER_S // self.sample_rate_hz

    def next_due_ns(self) -> int | None:
        """Host time the next packet is due (its last sample taken), ns; None when not streaming."""
        if not self.streaming:
            return None
        return self._sample_time_ns(self.sequence + self.samples_per_packet - 1)

    def take_due(self, now_ns: int) -> list[OutgoingPacket]:
        """Every packet due by `now_ns`, oldest first (a late transport gets a burst, as from a FIFO).

        Packets taken while `silent` are dropped here (their sequence numbers are used up).
        """
        out: list[OutgoingPacket] = []
        while (due := self.next_due_ns()) is not None and due <= now_ns:
            n = self.samples_per_packet
            first_ns = self._sample_time_ns(self.sequence)
            flags = PacketFlags(0)
            samples = []
            read_at = getattr(self.source, "read_at", None)  # sources that follow the clock (ArraySource)
            rows = read_at(first_ns, n, self.sample_rate_hz) if read_at else self.source.read(n, self.sample_rate_hz)
            for physical in rows:
                counts, acc_sat, gyr_sat = to_counts(physical, self.acc_range_g, self.gyr_range_dps)
                if acc_sat:
                    flags |= PacketFlags.ACC_SATURATED
                if gyr_sat:
                    flags |= PacketFlags.GYR_SATURATED
                samples.append(counts)
            packet = ImuPacket(
                flags=flags,
                sequence=self.sequence % U32_MODULUS,
                timestamp_us=self.clock_us_at(first_ns),
                acc_range_g=self.acc_range_g,
                gyr_range_dps=self.gyr_range_dps,
                samples=tuple(samples),
            )
            data = encode_packet(packet)
            malformed = False
            if self._malformations:
                data = _corrupt(data, self._malformations.popleft())
                malformed = True
            self.sequence += n
            if not self.silent:
                out.append(OutgoingPacket(data, packet.sequence, n, due, malformed))
        return out


def _corrupt(data: bytes, kind: Malformation) -> bytes:
    if kind is Malformation.BAD_CRC:
        return data[:-1] + bytes((data[-1] ^ 0xFF,))
    if kind is Malformation.TRUNCATED:
        return data[:-5]
    if kind is Malformation.UNSUPPORTED_VERSION:
        return bytes((2,)) + data[1:]
    return data + b"\x00"  # BAD_LENGTH
