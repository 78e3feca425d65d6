"""Uplink v1 messages: one frozen dataclass per payload kind, the field vocabularies the readers check
against, and the msg_ids that make durable kinds idempotent.

A raw batch's ``clock`` maps sensor time to UTC, valid for that sensor's boot epoch:

    t_utc_s = clock.ref_utc_s + (t_sensor_us - clock.ref_sensor_us) * 1e-6 * clock.rate

where ``t_sensor_us`` is the unwrapped (64-bit) sensor time of a sample. ``rate`` is host seconds per sensor
second; ``drift_ppm`` is how fast the sensor's clock runs, positive when fast (rate = 1 / (1 + drift_ppm 1e-6));
``utc_synced`` is false while the gateway's own clock is not synchronised, and then
``ref_utc_s`` is null: the worker keeps sensor time and maps it when a later batch of the same boot epoch
brings a synchronised mapping.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

MARKER_TYPES = ("session_start", "session_end", "set_start", "set_end", "window")
COMMAND_ACTIONS = ("session_start", "session_stop", "set_start", "set_end")
LINK_STATES = ("connected", "connecting", "lost", "unpaired")


@dataclass(frozen=True)
class SensorIdentity:
    """Which physical sensor and which of its boots: (serial, boot_epoch) scopes every sequence number."""

    serial: str
    boot_epoch: int
    sample_rate_hz: float
    acc_range_g: int
    gyr_range_dps: int
    firmware: str = ""


@dataclass(frozen=True)
class ClockMapping:
    """Sensor time -> UTC for one boot epoch (see the module docstring for the formula and units)."""

    utc_synced: bool
    ref_sensor_us: int
    ref_utc_s: float | None
    rate: float
    drift_ppm: float
    jitter_ms: float

    def to_utc_s(self, t_sensor_us: int) -> float | None:
        if self.ref_utc_s is None:
            return None
        return self.ref_utc_s + (t_sensor_us - self.ref_sensor_us) * 1e-6 * self.rate


@dataclass(frozen=True)
class RawBatch:
    kind: Literal["raw"]
    msg_id: str
    subject: str
    session: str | None
    placement: str
    sensor: SensorIdentity
    seq_first: int
    seq_last: int
    n_samples: int
    t_sensor_us_first: int
    clock: ClockMapping
    packets: tuple[bytes, ...]


@dataclass(frozen=True)
class Gap:
    """Samples a sensor's stream is known to be missing (never papered over)."""

    kind: Literal["gap"]
    msg_id: str
    subject: str
    session: str | None
    placement: str
    serial: str
    boot_epoch: int
    seq_first_missing: int
    seq_last_missing: int
    duration_s: float
    reason: str


@dataclass(frozen=True)
class SensorPosition:
    """The last sample of one sensor that a marker refers to; on a ``session_end`` marker also, optionally, the
    first sample of that sensor boot in the session (``session_seq_first``: the session's data starts there, so
    the worker knows what it must hold before it analyses the session; absent from older gateways)."""

    serial: str
    boot_epoch: int
    seq: int
    session_seq_first: int | None = None


@dataclass(frozen=True)
class Marker:
    kind: Literal["marker"]
    msg_id: str
    subject: str
    session: str
    type: str
    t_utc_s: float | None
    last_seq: dict[str, SensorPosition]
    exercise: str | None = None
    side: str | None = None
    set: int | None = None
    source: str = "gateway"


@dataclass(frozen=True)
class SensorStatus:
    link: str
    serial: str | None = None
    battery_pct: int | None = None
    rssi_dbm: int | None = None
    boot_epoch: int | None = None
    last_seq: int | None = None
    drift_ppm: float | None = None
    jitter_ms: float | None = None
    samples_received: int = 0
    gaps: int = 0


@dataclass(frozen=True)
class Status:
    kind: Literal["status"]
    subject: str
    state: Literal["online", "offline"]
    t_utc_s: float | None = None
    gateway: dict[str, str] = field(default_factory=dict)
    session: str | None = None
    sensors: dict[str, SensorStatus] = field(default_factory=dict)
    outbox: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Command:
    kind: Literal["cmd"]
    cmd_id: str
    subject: str
    action: str
    exercise: str | None = None
    side: str | None = None
    set: int | None = None


@dataclass(frozen=True)
class CommandReply:
    kind: Literal["cmd/reply"]
    cmd_id: str
    subject: str
    ok: bool
    message: str = ""


@dataclass(frozen=True)
class Ack:
    kind: Literal["ack"]
    subject: str
    msg_ids: tuple[str, ...]
    worker: str = ""


@dataclass(frozen=True)
class BundlePart:
    """One message of a bundle: the topic it would have been published on alone, and its payload, byte for byte."""

    topic: str
    payload: bytes


@dataclass(frozen=True)
class Bundle:
    """Several durable messages of one subject (raw, gap, marker) in one MQTT message: the gateway's pending
    outbox rows, each verbatim. A bundle has no identity of its own: each part keeps its msg_id, is read, stored and
    acknowledged end to end as if it had come alone, and is sent again (alone or in another bundle) until it is."""

    kind: Literal["bundle"]
    subject: str
    parts: tuple[BundlePart, ...]


Message = RawBatch | Gap | Marker | Status | Command | CommandReply | Ack | Bundle


def raw_batch_id(serial: str, boot_epoch: int, seq_first: int) -> str:
    """The msg_id of a raw batch: identical on every replay of the same samples."""
    return f"raw:{serial}:{boot_epoch}:{seq_first}"


def gap_id(serial: str, boot_epoch: int, seq_first_missing: int) -> str:
    return f"gap:{serial}:{boot_epoch}:{seq_first_missing}"
