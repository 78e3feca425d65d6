"""Live windows: each window marker feeds its session's new samples to the session's live analysis, once.

A worker keeps, per (subject, session) it served recently, a `LiveSession`: the samples of each placement fed so
far, put on the session's common grid (whole sample periods in µs since 1970, linear interpolation between the
two stored samples around each grid instant, exactly as `segments.load_segment` builds a segment's grid), and
the session's `analytics.pipeline.live.LiveGait` (its session estimates, the strides already given out). A window
marker then costs what is new:

1. per placement, the samples after the last one fed up to the marker's are checked stored or known missing
   (`segments.check_complete`, from raw ingest's log when it holds them, else the batch index); a window that
   brings nothing new of the placement the grid waits for (the one fed least far) adds nothing and is done at
   once, and one whose samples wait in this worker for their turn to be written waits for it (no query meanwhile);
2. read from raw ingest's cache when it holds every one of them (this worker stored them, or is writing them:
   `raw_ingest`, in flight), else from the store
   (another worker stored some: shared subscriptions hand batches round-robin; a sample read back short is
   retried, never analysed across);
3. put on the grid and given to `LiveGait.step`, which analyses only a window that can hold a new stride; the
   strides it gives out become ``stride_live`` points (flagged ``provisional``; ``data_gap`` when they overlap
   samples known missing), timestamped at the grid instant nearest their start, so that two workers giving out
   the same stride write the same point.

Without a live session (this worker's first window of the session, a worker restart, a sensor rebooted) the
session is started *cold* from the last ``cold_s`` seconds up to the marker (from
the cache or the store): its estimates are made from them, and the strides given out are those ending after the
newest live stride of the session stored (given out by the worker that served the earlier windows), or in the
last ``new_default_s`` when that one is more recent (every stride of those seconds once more: the same point, or
one 10 ms apart). Until its estimates are made at an instant the other workers' are (the session's next refresh,
within a minute), its strides' contacts may differ from theirs and the final analysis's by up to two samples
(docs/worker-cost-and-live-latency.md). Strides older than the look-back are left to the final analysis. The final
analysis at session end does not use any of this.

Sessions are forgotten once their final analysis is stored here, when another session of the same subject starts,
after ``forget_s`` without a window, and the least recently served past ``MAX_SESSIONS`` (each holds
`LiveSettings.keep_s` of three sensors' samples with room to append, about 1.3 MB, and the pelvis's gyro frame over
twice the context, about 0.13 MB).

Units: timestamps µs (UTC), rates Hz, durations s, as in analytics.stores.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from analytics.pipeline.live import LiveCounters, LiveGait, LiveSettings
from analytics.pipeline.live_grid import RawOnGrid
from analytics.results import RESULT_SCHEMA
from analytics.stores import Store
from analytics.stores.model import LIVE_OF, STRIDE, Point, Provenance
from analytics.worker.errors import SegmentIncomplete
from analytics.worker.live_session import (
    Feed,
    LiveSession,
    LiveWindowCounters,
    estimate_phase_s,
    holes,
    session_from,
)
from analytics.worker.raw_ingest import RawIngest
from analytics.worker.recent import RecentSamples
from analytics.worker.results import analysis_id, live_stride_points
from analytics.worker.segments import (
    LIVE_VERSION,
    ClockNotSynced,
    Segment,
    check_complete,
    check_read_back,
    select_samples,
)
from gaitsym_common.uplink.envelope import SensorPosition

log = logging.getLogger("gaitsym.worker")
MAX_SESSIONS = 1_000
MAX_GAP_SPANS = 64


class LiveWindows:
    """Live sessions of one worker (module docstring)."""

    def __init__(
        self,
        store: Store,
        ingest: RawIngest,
        clock: Callable[[], float],
        *,
        cold_s: float = 40.0,
        new_default_s: float = 2.0,
        forget_s: float = 120.0,
        settings: LiveSettings | None = None,
    ) -> None:
        self.store = store
        self.ingest = ingest
        self.clock = clock
        self.cold_s = cold_s
        self.new_default_s = new_default_s
        self.forget_s = forget_s
        self.settings = settings or LiveSettings()
        self.sessions: OrderedDict[tuple[str, str], tuple[LiveSession, float]] = OrderedDict()
        self.counters = LiveWindowCounters()
        self.totals = LiveCounters()
        """`LiveGait` counters of every session served, added up (sessions forgotten included)."""

    def _step(self, live: LiveSession) -> list[dict[str, Any]]:
        strides = live.gait.step()
        # estimates are made in a step, or while samples go in (`LiveGait.extend_rows`), several at once when a
        # window catches up: each logged once (what other workers made at the same instant is compared with them)
        for at_us, estimates in live.gait.take_made(live.period_us):
            log.debug(
                "%s %s: live estimates at %s: thigh axes %s",
                live.subject,
                live.session,
                at_us,
                {side: [round(float(x), 6) for x in a] for side, a in estimates.flexion_axis.items()},
            )
        # what the analysis counted since the last step, samples going in included (estimates made there)
        for name, value in vars(live.gait.counters).items():
            setattr(self.totals, name, getattr(self.totals, name) + value - live.counted.get(name, 0))
        live.counted = vars(live.gait.counters).copy()
        return strides

    def forget(self, subject: str, session: str) -> None:
        self.sessions.pop((subject, session), None)

    def holds(self, segment: Segment) -> bool:
        """Whether a window marker's session is running here (its next window feeds it; otherwise it starts cold)."""
        held = self.sessions.get((segment.subject, segment.session))
        return held is not None and held[0].matches(segment)

    def window(self, segment: Segment, algorithm: str) -> tuple[LiveSession, list[Point]]:
        """Feed a window marker's new samples to its session and return the live points to write (those given out
        now and those whose write failed before). Raises SegmentIncomplete while samples are neither stored nor
        known missing (ClockNotSynced while they are in sensor time)."""
        key = (segment.subject, segment.session)
        now = self.clock()
        self._prune(now)
        held = self.sessions.get(key)
        live = held[0] if held is not None else None
        self.counters.windows += 1
        if live is None or not live.matches(segment):
            live = self._cold(segment)
            # a subject runs one session at a time: its other sessions go (a gateway inventing session ids
            # cannot hold more than one session's samples here)
            for other in [k for k in self.sessions if k[0] == segment.subject and k != key]:
                del self.sessions[other]
            strides = self._step(live)
        else:
            lagging = min(live.feeds, key=lambda p: live.feeds[p].last[2])
            if segment.positions[lagging].seq <= live.feeds[lagging].seq:
                # nothing new of the placement the common grid waits for (a replayed or older window, or only
                # the other sensors published since): no grid instant can be added; a later window feeds the rest
                strides = []
                self.counters.windows_waiting += 1
            else:
                self._feed(live, segment)
                strides = self._step(live)
        self.sessions[key] = (live, now)
        self.sessions.move_to_end(key)
        while len(self.sessions) > MAX_SESSIONS:
            self.sessions.popitem(last=False)
        points = self._points(live, segment, strides, algorithm)
        self.counters.strides += len(points)
        live.unwritten.extend(points)
        return live, list(live.unwritten)

    # ------------------------------------------------------------------------------------------ samples

    def _read(
        self,
        segment: Segment,
        placement: str,
        pos: SensorPosition,
        first: int,
        missing: list[tuple[int, int]],
        after_us: int | None = None,
    ) -> tuple[RecentSamples, int | None]:
        """Samples ``first..pos.seq`` of one placement (from the cache when it holds every one, else the store; the
        store is read after ``after_us`` when given: the last sample fed), and the time of the first one of the
        window's session (None: none is). SegmentIncomplete when one not known missing was not read back."""
        stream = self.ingest.stream(segment.subject, placement, pos)
        taken = None if stream is None else stream.take(first, pos.seq, segment.session)
        if taken is not None:
            try:
                check_read_back(segment, placement, taken[0].seq, first, pos.seq, missing, strict=True)
                return taken
            except SegmentIncomplete:
                if self.ingest.awaiting_own_write(
                    (segment.subject, placement, pos.serial, pos.boot_epoch), first, pos.seq
                ):
                    raise  # this worker is storing them: in its cache once stored (no read)
                # some of them stored by another worker: read the store
        end_us = round((segment.t_utc_s + 60.0) * 1e6) if segment.t_utc_s is not None else None
        if after_us is not None:
            start_us: int | None = after_us + 1
        elif end_us is not None:  # the marker's instant is not its samples': a minute of margin each side
            start_us = end_us - round(((pos.seq - first + 1) / 100.0 + 120.0) * 1e6)
        else:
            start_us = None
        series = self.store.read_raw(segment.subject, placement, start_us=start_us, end_us=end_us)
        self.counters.store_reads += 1
        idx = select_samples(series, pos, first)
        check_read_back(segment, placement, series.seq[idx], first, pos.seq, missing, strict=True)
        self.counters.samples_from_store += len(idx)
        out = RecentSamples(
            series.seq[idx], series.time_us[idx], series.t_sensor_us[idx], series.acc_mps2[idx], series.gyr_dps[idx]
        )
        own = next((k for k, i in enumerate(idx.tolist()) if series.session[i] == segment.session), None)
        return out, None if own is None else int(out.time_us[own])

    def _cold(self, segment: Segment) -> LiveSession:
        """A live session started from the last ``cold_s`` up to the marker (module docstring)."""
        n_back = round(self.cold_s * 100)
        first = {p: max(0, pos.seq - n_back + 1) for p, pos in segment.positions.items()}
        from_store = self.counters.samples_from_store
        for placement, pos in segment.positions.items():  # reading up to cold_s back, it may ask the store: wait
            if self.ingest.writing((segment.subject, placement, pos.serial, pos.boot_epoch), pos.seq, pos.seq):
                raise SegmentIncomplete(f"{segment.subject} {placement}: being stored by this worker", missing=0)
        known = self._known(segment, first)
        picked: dict[str, RecentSamples] = {}
        own_from: dict[str, int | None] = {}
        for placement, pos in sorted(segment.positions.items()):
            lo, missing = known[placement]
            series, own_from[placement] = self._read(segment, placement, pos, lo, missing)
            if len(series) < 2:
                raise SegmentIncomplete(f"{segment.subject} {placement}: no samples before the window", missing=0)
            if int(series.time_us[0]) < 0:
                raise ClockNotSynced(
                    f"{segment.subject} {placement}: samples of {pos.serial}/{pos.boot_epoch} are in sensor time "
                    "(gateway clock not synchronised): waiting for a synchronised mapping of this boot",
                    missing=0,
                )
            picked[placement] = series
        rates = []
        for s in picked.values():
            span = int(s.t_sensor_us[-1] - s.t_sensor_us[0])
            rates.append(1e6 * (len(s) - 1) / span if span > 0 else 100.0)
        rate_hz = float(round(float(np.median(rates))))
        period_us = 1e6 / rate_hz
        t_first = max(int(s.time_us[0]) for s in picked.values())
        t0 = int(np.ceil(t_first / period_us) * period_us) if period_us == int(period_us) else t_first
        feeds = {}
        for placement, s in picked.items():
            pos = segment.positions[placement]
            raw = RawOnGrid(t0, period_us, capacity=len(s) + 256)
            raw.append(s.time_us, s.acc, s.gyr)
            feeds[placement] = Feed(
                pos.serial,
                int(pos.boot_epoch),
                int(s.seq[-1]),
                raw,
                (int(s.seq[0]), int(s.t_sensor_us[0]), int(s.time_us[0])),
                (int(s.seq[-1]), int(s.t_sensor_us[-1]), int(s.time_us[-1])),
                own_from[placement],
            )
            self.counters.samples_fed += len(s)
        gait = LiveGait(
            tuple(segment.positions),
            rate_hz,
            self.settings,
            origin=round(t0 / period_us),
            phase_s=estimate_phase_s(segment.subject, segment.session, self.settings.refresh_every_s),
        )
        live = LiveSession(segment.subject, segment.session, gait, t0, period_us, feeds)
        session_from(live)
        for s in picked.values():
            live.gap_spans.extend(holes(s.seq, s.time_us))
        self._grid(live)
        gait.skip_before(min(gait.end - round(self.new_default_s * rate_hz), self._given_until(live)))
        self.counters.cold_starts += 1
        log.info(
            "%s %s: live analysis started cold from %d samples on the grid (%d raw samples read from the store)",
            segment.subject,
            segment.session,
            gait.end,
            self.counters.samples_from_store - from_store,
        )
        return live

    def _known(self, segment: Segment, first: dict[str, int]) -> dict[str, tuple[int, list[tuple[int, int]]]]:
        """`check_complete` from ``first`` on, per placement: the first sequence it accounts for and the
        known-missing ranges. It starts at the first sample it knows of from ``first`` on: asked from this worker's
        log of what it stored, that is where this worker's own batches start, while the samples before them may
        be in the store (another worker stored them): then the store is asked."""
        known = check_complete(self.store, segment, index_for=self.ingest.live_index_for(segment), first_seq=first)
        if any(known[p][0] > first[p] for p, pos in segment.positions.items() if pos.seq >= first[p]):
            known = check_complete(self.store, segment, first_seq=first)
        return known

    def _given_until(self, live: LiveSession) -> int:
        """Grid index of the end of the newest live stride of the session stored over the grid so far (0: none):
        a cold start gives out the strides after it. Those no worker gave out (every worker was behind, or down)
        would otherwise be left to the final analysis whenever they end before the cold start's last seconds."""
        rows = self.store.read_results(live.subject, session=live.session, start_us=live.t0_us, live=True)
        ends = [
            r.time_us + float(r.fields["end_s"]) * 1e6  # type: ignore[arg-type]
            for r in rows
            if r.measurement == LIVE_OF[STRIDE] and "end_s" in r.fields
        ]
        return 0 if not ends else int(np.ceil((max(ends) - live.t0_us) / live.period_us))

    def _own_write_pending(self, segment: Segment, first: dict[str, int]) -> None:
        """SegmentIncomplete when samples the window needs are not in this worker's cache while this worker is
        storing batches of that sensor boot (they are there once stored: no store query meanwhile)."""
        for placement, pos in segment.positions.items():
            lo = first.get(placement, pos.seq + 1)
            key = (segment.subject, placement, pos.serial, pos.boot_epoch)
            if lo <= pos.seq and self.ingest.awaiting_own_write(key, lo, pos.seq):
                raise SegmentIncomplete(f"{segment.subject} {placement}: being stored by this worker", missing=0)

    def _feed(self, live: LiveSession, segment: Segment) -> None:
        first = {p: f.seq + 1 for p, f in live.feeds.items()}
        self._own_write_pending(segment, first)
        known = self._known(segment, first)
        for placement, pos in sorted(segment.positions.items()):
            # samples right after the last one fed that neither this worker nor the store knows of are with
            # another worker, not stored yet (or with a killed one: the gateway sends them again). Waited for:
            # the grid would interpolate across them, and a contact on that straight line moves a stride by
            # tens of ms.
            lo = known[placement][0]
            if pos.seq > live.feeds[placement].seq and lo > first[placement]:
                raise SegmentIncomplete(
                    f"{segment.subject} {placement}: samples {first[placement]}..{lo - 1} of "
                    f"{pos.serial}/{pos.boot_epoch} neither stored nor known missing (the live window needs them)",
                    missing=lo - first[placement],
                )
        for placement, pos in sorted(segment.positions.items()):
            f = live.feeds[placement]
            if pos.seq <= f.seq:
                continue
            lo, missing = known[placement]
            s, own_from = self._read(segment, placement, pos, max(lo, f.seq + 1), missing, after_us=f.last[2])
            if not len(s):
                continue
            if int(s.time_us[0]) < 0:
                raise ClockNotSynced(
                    f"{segment.subject} {placement}: samples of {pos.serial}/{pos.boot_epoch} are in sensor time",
                    missing=0,
                )
            if int(s.seq[0]) != f.seq + 1 or int(s.seq[-1]) - int(s.seq[0]) != len(s) - 1:  # a jump somewhere
                live.gap_spans.extend(holes(np.concatenate([[f.seq], s.seq]), np.concatenate([[f.last[2]], s.time_us])))
            f.raw.append(s.time_us, s.acc, s.gyr)
            f.seq = int(s.seq[-1])
            f.last = (int(s.seq[-1]), int(s.t_sensor_us[-1]), int(s.time_us[-1]))
            if f.own_from_us is None:
                f.own_from_us = own_from
            self.counters.samples_fed += len(s)
        del live.gap_spans[:-MAX_GAP_SPANS]
        session_from(live)
        self._grid(live)

    def _grid(self, live: LiveSession) -> None:
        """Interpolate every grid instant the placements' samples now reach, and give them to the analysis."""
        reach = min(f.raw.reach_us for f in live.feeds.values())
        k_end = int(reach // live.period_us) + 1
        if k_end <= live.next_k:
            return
        out = {}
        before = sum(f.raw.interpolated for f in live.feeds.values())
        for placement, f in live.feeds.items():
            # np.interp's linear interpolation between the two samples around each new grid instant, reading only
            # those samples (`RawOnGrid`)
            out[placement] = f.raw.grid(live.next_k, k_end)
        self.counters.samples_interpolated += sum(f.raw.interpolated for f in live.feeds.values()) - before
        if live.next_k != live.gait.end:
            live.gait.restart_at(live.next_k)
        live.gait.extend_rows(out)
        live.next_k = k_end

    # ------------------------------------------------------------------------------------------ results

    def _points(
        self, live: LiveSession, segment: Segment, strides: list[dict[str, Any]], algorithm: str
    ) -> list[Point]:
        """``stride_live`` points of the strides given out (module docstring)."""
        fs = live.gait.fs
        keep = []
        for stride in strides:
            if float(stride["start_s"]) * fs < live.session_from_k:
                continue
            a = live.t0_us + round(float(stride["start_s"]) * 1e6)
            b = live.t0_us + round(float(stride["end_s"]) * 1e6)
            flags = list(stride.get("flags") or [])
            if any(lo <= b and a <= hi for lo, hi in live.gap_spans) and "data_gap" not in flags:
                flags.append("data_gap")
            keep.append({**stride, "flags": [*flags, "provisional"]})
        if not keep:
            return []
        clock = {
            p: {
                "serial": f.serial,
                "boot_epoch": f.boot_epoch,
                "seq_first": f.first[0],
                "seq_last": f.last[0],
                "t_sensor_us_first": f.first[1],
                "time_us_first": f.first[2],
                "t_sensor_us_last": f.last[1],
                "time_us_last": f.last[2],
                "rate": (f.last[2] - f.first[2]) / (f.last[1] - f.first[1]) if f.last[1] > f.first[1] else 1.0,
                "utc_synced": True,
            }
            for p, f in live.feeds.items()
        }
        provenance = Provenance(analysis_id(segment, LIVE_VERSION, algorithm), LIVE_VERSION, algorithm, clock=clock)
        doc = {
            "schema": RESULT_SCHEMA,
            "recording": {"duration_s": 0.0},
            "gait": {"strides": keep, "summary": {"n_strides": {"left": 0, "right": 0}}},
            "exercises": [],
            "quality": {"flags": []},
        }
        return live_stride_points(doc, live.subject, live.session, live.t0_us, live.period_us, provenance)

    def written(self, live: LiveSession, points: list[Point]) -> None:
        """These points are stored: no longer carried with the session."""
        done = {id(p) for p in points}
        live.unwritten = [p for p in live.unwritten if id(p) not in done]

    def _prune(self, now: float) -> None:
        while self.sessions:
            key, (_, touched) = next(iter(self.sessions.items()))
            if now - touched <= self.forget_s:
                break
            del self.sessions[key]


__all__ = ["LiveWindows"]
