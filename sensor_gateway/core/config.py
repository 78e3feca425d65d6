"""The gateway loop's settings (`GatewayConfig`): batching, windows, sessions, acks, time sync, reconnection."""

from __future__ import annotations

from dataclasses import dataclass

from gaitsym_common.uplink.vocabulary import PLACEMENTS


@dataclass(frozen=True)
class GatewayConfig:
    subject: str
    placements: tuple[str, ...] = PLACEMENTS
    batch_s: float = 1.0
    """Batches close at the whole multiples of this on the host clock, the same instants for every sensor, s."""
    window_s: float = 0.25
    """Shortest pause between window markers, s. A window marker lets the worker analyse the session so far (live
    results); it refers only to samples already published (each sensor's last closed batch), so the worker
    can analyse it as soon as it arrives. One goes out once every connected sensor published a new batch (one
    per ``batch_s``), or ``window_wait_s`` after the first did. A stride's provisional result waits for the
    batch holding its last sample (up to ``batch_s``, plus a packet), then for the worker (bench/RESULTS.md,
    "Worker: real time, what a clinic sees")."""
    window_wait_s: float = 0.25
    """How long a window marker waits for the other connected sensors' batches after the first one's, s: more
    than one packet interval (up to 19 samples at 100 Hz, 0.19 s; batches close on the first packet at or after
    the instant), so the batches closed at one instant normally go in one window; a sensor that fell silent
    delays the markers by this much at most."""
    bundle: bool = True
    """Pending raw batches, gaps and markers go out together as one MQTT message (a ``bundle``, UPLINK.md; each
    keeps its msg_id and is acknowledged on its own): one message a second for the three sensors and the window
    marker instead of four, which is what a worker and the broker pay for per message. False: one message each,
    for a worker older than bundles."""
    bundle_hold_s: float = 0.3
    """How long pending raw batches and gaps wait for a marker (or more rows) before going out without one, s: longer
    than ``window_wait_s``, so the window marker that ends a wait for a silent sensor goes with the batches."""

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

    def __post_init__(self) -> None:
        if self.bundle and not self.bundle_hold_s > self.window_wait_s:
            raise ValueError(
                f"bundle_hold_s ({self.bundle_hold_s} s) must be longer than window_wait_s ({self.window_wait_s} s): "
                "batches would go out without the window marker that follows them"
            )
