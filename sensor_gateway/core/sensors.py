"""What the gateway keeps per placement (`SensorState`): the link, the stream's timing, the open batch, and the
last sample handed to the outbox. Ingest writes it; window markers and the status read it."""

from __future__ import annotations

from dataclasses import dataclass, field

from firmware_protocol.sensor_info import SensorInfo
from gaitsym_common.uplink import envelope as env
from sensor_gateway.timing.continuity import MappingContinuity
from sensor_gateway.timing.stream import SensorStream

SESSION_START_UNKNOWN = -1
"""`SensorState.session_first`'s sample when the session's first sample in that sensor boot is not known."""


@dataclass
class SensorState:
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
    published: env.SensorPosition | None = None
    """Last sample of the last raw batch handed to the outbox (what a window marker may refer to)."""
    session_first: tuple[str, env.SensorPosition] | None = None
    """(session, first sample of this sensor boot in it): the first sample of the sensor's first raw batch of the
    session, which the session's end names (uplink ``session_seq_first``) so the worker waits for the session's
    start before its final analysis. A negative sample (`SESSION_START_UNKNOWN`): the session's start in that boot is
    not known (a session continued from a gateway version that did not record it), so none is named."""
    continuity: MappingContinuity = field(default_factory=MappingContinuity)
    """Keeps the published UTC mappings of consecutive batches in time order (per placement, across boots:
    the store keys samples by placement and time)."""

    def session_batch(self, session: str, serial: str, boot_epoch: int, seq_first: int) -> int:
        """A raw batch of ``session`` starting at ``seq_first`` was closed (committed, or refused and reported as a
        gap): returns the session's first sample in
        this sensor boot (this batch's first when it is the boot's first batch of the session)."""
        first = self.session_first
        if first is None or (first[0], first[1].serial, first[1].boot_epoch) != (session, serial, boot_epoch):
            first = self.session_first = (session, env.SensorPosition(serial, boot_epoch, seq_first))
        return first[1].seq

    def session_seq_first(self, session: str, pos: env.SensorPosition) -> int | None:
        """The first sample of ``session`` in the sensor boot ``pos`` names, when known and not after ``pos``."""
        first = self.session_first
        if first is None or (first[0], first[1].serial, first[1].boot_epoch) != (session, pos.serial, pos.boot_epoch):
            return None
        return first[1].seq if 0 <= first[1].seq <= pos.seq else None
