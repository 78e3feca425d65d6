"""The worker's settings (`WorkerConfig`), its counters (`WorkerStats`) and its rate-limited log (`SubjectLog`):
shared by the consumer (`worker`), raw ingest (`raw_ingest`) and the segment jobs (`segment_jobs`).

Times: seconds of `time.monotonic` unless named ``_utc_s``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from analytics.pipeline.live import LiveSettings
from analytics.worker.budget import BudgetConfig, LogLimiter
from analytics.worker.idle_sessions import IdleClose

log = logging.getLogger("gaitsym.worker")


@dataclass(frozen=True)
class WorkerConfig:
    worker_id: str = "worker-1"
    group: str = "gaitsym-workers"
    segment_wait_s: float = 10.0
    """How long a closing marker waits for its samples to be stored before it is deferred, s."""
    defer_for_s: float = 600.0
    """How long a deferred segment is retried before it is left to the gateway's re-send, s."""
    poll_s: float = 0.1
    """Interval between completeness checks of a waiting segment, s."""
    lookback_s: Mapping[str, float | None] = field(default_factory=lambda: {"set": 240.0, "session": None})
    """Seconds of data a set end and a session end analyse (None: the whole session). Window markers feed the
    session's live analysis instead (`live_windows`, `live`)."""
    live_new_default_s: float = 2.0
    """A worker that starts a session's live analysis cold (no earlier window of it here) gives out only the
    strides ending in this many seconds before the marker, s (the earlier ones came from other windows)."""
    live_cold_s: float = 40.0
    """Seconds up to the marker a cold start reads (the session estimates come from them: at least
    `LiveSettings.estimate_span_s` and the time between two estimates' instants), s."""
    live: LiveSettings = field(default_factory=LiveSettings)
    """How much the live analysis looks at (`analytics.pipeline.live.LiveSettings`)."""
    turn_budget_s: float = 0.25
    """Analysis time per turn before the worker goes back to storing and acknowledging raw data, s (session
    ends first, then set ends, then live windows; what is left waits for the next turn, windows coalescing). A
    turn stores at most ``turn_max_work`` samples, so this bounds how far raw data falls behind when the live
    analyses alone would take the whole CPU (in real time, 100 subjects bring 30,000 samples a second)."""
    recent_s: float = 30.0
    """Seconds of its own stored samples per sensor boot the worker keeps in memory (a cache, about 2 MB per
    subject); a boot that sent nothing for that long is forgotten."""
    live_segments: bool = True
    """Analyse window and set markers while the session runs (provisional results, version 1, replaced by the
    session's final analysis); False: session ends only. (Once off by default: on InfluxDB 1.6.7 the repeated
    delete-then-write hid re-written strides from the index; fixed in `analytics.stores.influx` by anchor
    points, see its ``ANCHOR_US`` and docs/influxdb-index-loss.md.)"""
    live_sweep_after_s: float = 30.0
    """After a session's final analysis, its range's provisional points are removed once more this much later:
    a live window of another worker that was still being analysed may have written them after the final
    analysis (best effort: a sweep is not persisted across a restart). A window that was deferred checks the
    store for the session's final results before writing instead."""
    dedup_capacity: int = 200_000
    """(subject, msg_id) of stored batches remembered to skip replays (a cache: correctness never depends on it).
    The subject is part of the identity: two kits may share serials (two virtual kits, or a kit handed from one
    patient to the next), and one subject's batches must never pass for another's replays."""
    quarantine_path: str | None = None
    idle_close: IdleClose | None = field(default_factory=IdleClose)
    """Final analysis of sessions that never get a ``session_end`` (`idle_sessions`); None: off."""
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    """Per-subject token buckets (payload bytes, work) past which deliveries are shed (`budget`)."""
    turn_gather_s: float = 0.1
    """A turn starts this long after the oldest delivery waiting for it arrived (or once a turn's work waits):
    the batches of every subject that arrived meanwhile go in one store write and one set of acks (in real time
    deliveries trickle in; a request per batch or two cost InfluxDB more than the samples), at the price of up to
    this much more latency, s."""
    raw_write_async: bool = True
    """A turn's raw write runs in a thread of its own while the worker analyses (acknowledged when it is over);
    False: the turn waits for it."""
    raw_writes_in_flight: int = 2
    """Turns whose raw writes may be under way at once (with ``raw_write_async``): the server works on one while
    the next is formatted and sent; finished (acknowledged) in order."""
    ack_every_s: float = 0.5
    """End-to-end acks are published once the oldest waiting one is this old (per subject, one message for
    several turns), s."""
    turn_max_work: int = 20_000
    """Work units (samples; gaps and markers count as several, `budget`) taken from the carry per turn, round
    robin across subjects (at least one delivery): bounds a turn's store write to about 0.1-0.3 s, so a subject's
    backlog delays another subject's batch by a turn at most."""
    turn_max_work_per_subject: int = 4_096
    """One subject's share of a turn (at least one delivery; 4,096 is the largest raw batch): a subject with a
    backlog adds at most one large batch to the turn's write, which every other subject's batches wait for."""
    max_carry_work: int = 1_000_000
    """Work units (samples, `budget`) waiting for a turn past which a subject adds only up to an equal share, and
    twice which nobody adds (`carry`): what a worker that falls behind holds, 125-210 bytes a sample by the batches'
    shape (tracemalloc: 10 and 1 samples per packet), so 125-210 MB at the bound and 250-420 MB at twice it, plus
    the turns being written or put back after a failed write. Large enough for ~30 s of 100 subjects' data (180
    subjects starting at once in real time: the carry peaked at 790k; a bound of 240k shed 3,699 deliveries the
    worker would have stored within the minute); bounded where it used to grow with what the broker sent. Past it
    deliveries are shed: the gateways send them again."""
    max_carry_bytes: int = 128 * 1024 * 1024
    """The same bound on the payload bytes waiting for a turn (what raw batches of one sample per packet, or
    large markers, hold beyond their work)."""
    live_pause_after_shed_s: float = 40.0
    """After the carry had no room for one of a subject's deliveries, its window markers are acknowledged without a
    live analysis for this long, s (0: never): a window behind a shed batch or gap would wait for it, asking the
    store again and again, until the gateway sent it again (after its ack timeout, 30 s by default), which a worker
    behind can least afford; acknowledged, they are not sent again either. Live results are what such a worker gives
    up first (the window after the pause analyses every sample since the last one fed, up to
    `LiveSettings.max_window_s`); raw data and final analyses are not."""
    max_held_markers_per_subject: int = 8
    max_held_markers: int = 32
    """Waiting markers whose broker delivery stays unacknowledged, all subjects together: well below the broker's
    in-flight window (``max_inflight_messages``, 100), so the raw batches the markers wait for still come in."""
    max_pending_per_subject: int = 64
    log_every_s: float = 10.0
    """At most one log line per subject and kind of event (malformed, shed, gap) this often; the others counted."""


@dataclass
class WorkerStats:
    deliveries: int = 0
    """MQTT deliveries (a bundle counts once)."""
    bundles: int = 0
    """Of ``deliveries``: bundles, each taken as its parts (`bundles`)."""
    batches_stored: int = 0
    samples_stored: int = 0
    replays_skipped: int = 0
    gaps: int = 0
    malformed: int = 0
    """Malformed deliveries (each quarantined once: see ``malformed_repeats``)."""
    malformed_repeats: int = 0
    """Malformed deliveries identical to one already quarantined (acknowledged, not written again)."""
    shed: int = 0
    """Deliveries acknowledged to the broker without being stored (their subject past its budget, too many of its
    segments waiting, or the carry full): the gateway re-sends them."""
    shed_carry_full: int = 0
    """Of ``shed``: deliveries that found the carry full (`carry`: the worker behind, or the store down)."""
    windows_paused: int = 0
    """Window markers acknowledged without a live analysis, their subject's live results paused
    (``live_pause_after_shed_s``)."""
    carry_peak_work: int = 0
    """The most work units the carry held at once (`WorkerConfig.max_carry_work`)."""
    carry_peak_bytes: int = 0
    quarantined: int = 0
    store_retries: int = 0
    segments_analysed: int = 0
    segments_empty: int = 0
    segments_deferred: int = 0
    segments_superseded: int = 0
    segments_unsynced: int = 0
    windows_coalesced: int = 0
    acks_sent: int = 0
    live_windows: int = 0
    """Window markers fed to a live session (`live_windows`)."""
    live_cold_starts: int = 0
    live_store_reads: int = 0
    """Store reads of live windows (samples another worker stored, cold starts)."""
    live_samples_from_store: int = 0
    live_analyses: int = 0
    """Live windows that ran the gait analysis (the others had no new stride to look for)."""
    live_samples_analysed: int = 0
    """Sample instants those analyses covered (new samples plus context)."""
    live_samples_new: int = 0
    live_estimates: int = 0
    turns: int = 0
    """Turns that stored raw batches."""
    raw_write_wall_s: float = 0.0
    """Wall time in raw writes (the store's requests, waits included), s."""
    live_wall_s: float = 0.0
    """Wall time in live windows (store reads and waits included), s."""
    live_write_wall_s: float = 0.0
    analysis_cpu_s: float = 0.0
    """CPU time of this thread in the analyses (`analyzer_for`), s: benches tell the worker's own cost from the
    pipeline's (whose share depends on how many live windows coalesce under load)."""


class SubjectLog:
    """Log lines about one subject, at most one per ``every_s`` for each kind of event (the others counted and
    mentioned in the next line): one subject's flood never floods the log."""

    def __init__(self, worker_id: str, every_s: float, clock: Callable[[], float]) -> None:
        self.worker_id = worker_id
        self.clock = clock
        self._limiter = LogLimiter(every_s)

    def __call__(self, subject: str, kind: str, message: str, *args: object, level: int = logging.WARNING) -> None:
        held = self._limiter.allow((subject, kind), self.clock())
        if held is not None:
            suffix = f" ({held} more since the last line)" if held else ""
            log.log(level, "%s: %s: " + message + suffix, self.worker_id, subject, *args)
