"""What the gateway keeps per placement (`SensorState`): the link, the stream's timing, the open batch, and the
last sample handed to the outbox. Ingest writes it; window markers and the status read it."""

from __future__ import annotations

from dataclasses import dataclass, field

from firmware_protocol.sensor_info import SensorInfo
from gaitsym_common.uplink import envelope as env
from sensor_gateway.timing.continuity import MappingContinuity
from sensor_gateway.timing.stream import SensorStream


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
    continuity: MappingContinuity = field(default_factory=MappingContinuity)
    """Keeps the published UTC mappings of consecutive batches in time order (per placement, across boots:
    the store keys samples by placement and time)."""
