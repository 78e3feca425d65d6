"""Live gait of one session: samples in as they arrive, each stride out once, at a cost that follows the new data.

The session's final analysis (`analyze`) runs every step once over the whole session. Live strides must come
within about a second of their last sample, and running `analyze` over the last seconds at every window marker
re-estimated the sensors' axes, the thigh side check, the gyro bias and the standing reference from nearly the same
seconds several times a second: about 7 ms of CPU a window, most of it a fixed cost of each call, whatever the
window's length. `LiveGait` splits the analysis in two, both made of the pipeline's own steps:

- **session estimates** (`LiveEstimates`): by the pipeline's steps 1-3 (`check_streams`, `analyze_pelvis`,
  `analyze_thighs`) over the ``estimate_span_s`` before an instant that is a whole multiple of
  ``estimate_every_s`` (``refresh_every_s`` once complete) on the 1970 grid plus the session's phase (whole
  seconds every worker derives alike from the session, `LiveGait`'s ``phase_s``), kept when that span holds
  ``min_walking_s`` of walking: which thighs are usable and each one's flexion axis, whether the sides are
  trusted, the pelvis's axes, gyro bias and quiet-standing reference (estimates without quiet standing keep the
  reference they had). Every worker serving the session picks the same instants, so from the same samples it
  makes the same estimates and finds the same contacts (a worker that starts mid-session, without the samples
  before the other's instant, makes its own until the session's next refresh: its contacts may differ by
  up to two samples meanwhile). No stride is given out before the first ones.
- **per window**, only what depends on the new samples, over the samples no stride was looked for in yet plus
  ``context_s`` before them (what the filters need to settle and the event rules need to see: the stride and its
  bout's earlier contacts): stream quality (step 1, every sensor in one pass: `stream_quality_side_by_side`), the
  pelvis's gait events and tilt as `pelvis_signals` makes them (the events with the estimates' pelvis axes, never
  estimated again from the window's few seconds; the tilt's gyro frame carried on over the new samples,
  `live_tilt.TiltTrack`, only its low-pass over the window done again), each usable thigh's contacts as
  `analyze_thighs` makes them (`detect_thigh_events` on the flexion velocity about the established axis, within
  walking: the selection of the swings a `ThighTrack` keeps, filtered once when new and kept once settled, shared
  with the readiness check, not found again over the window's span), then steps 4 and 5 unchanged
  (`events_per_bout`, and of `summarise_gait` the strides alone: `gait_strides`, without the summaries a window
  would throw away): the contact, bout, confirmation and plausibility rules are the pipeline's own code, so live
  strides follow whatever those rules are. A window runs only when a stride can have become ready (a usable thigh
  shows a new contact: the thigh contact rule over the last seconds, a cheap check), and one without pelvis
  walking stops after the first, cheap pass of the pelvis detector.

A stride is given out once (`LiveGait.step`): when its last contact lies at least ``settle_s`` before the newest
sample (the zero-phase filters' edge, and the pelvis's loading peak after a contact, no longer move it), it does
not start in the window's first ``EDGE_S`` (its earlier contacts were cut off), no plausibility rule flags it
(`stride_checks.STRIDE_FLAGS`: seen through a window, such a stride is mostly the window's artifact, e.g. a
contact the pelvis could not confirm yet; the final analysis keeps it, flagged), and no stride of its side
starting within ``SAME_STRIDE_S`` of it was given out before (`skip_before` marks what an earlier worker gave out).

What a live stride may still differ in from the final analysis's: its contacts by a fraction of a sample (axes
estimated from the latest half minute, not the whole session; measured on simulated sessions:
tests/pipeline/test_live.py); whether it exists at all at a walking bout's end (live, a bout's end is seen before
it is known); and its summary-level fields (``included`` by the first/last-stride rule and the
bout's rhythm as far as the window sees them; pelvic drop against the standing reference seen so far). The
final analysis replaces every live stride at session end.

Counters (`LiveCounters`) say how much work each window did, so that tests can pin that a window analyses the
new samples plus context, never the session again, and that each thigh's samples are filtered about once
(``samples_thigh``: per step the new samples plus `live_thighs.THIGH_BACK_S`, `MAX_SWING_S` and
`live_thighs.THIGH_EDGE_S` at most) and each pelvis sample's gyro frame about once (``samples_tilt_framed``).

Times: samples are counted from the first sample given (index 0); stride times are seconds from it; rates Hz.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from analytics.algorithms.gait_events import detect_gait_events
from analytics.algorithms.pelvic_obliquity import PelvisSignals, obliquity_deg
from analytics.algorithms.signal_quality import stream_quality_side_by_side
from analytics.algorithms.stride_checks import STRIDE_FLAGS
from analytics.algorithms.thigh_events import (
    MIN_STRIDE_S,
    ThighEvents,
)
from analytics.algorithms.tilt import BIAS_CORRECTED_CUTOFF_HZ, GRAVITY_CUTOFF_HZ
from analytics.errors import InsufficientData, InvalidSignal
from analytics.pipeline.events import events_per_bout
from analytics.pipeline.live_buffer import SampleBuffer
from analytics.pipeline.live_estimates import session_estimates, walking_events, walking_mask
from analytics.pipeline.live_settings import LiveCounters, LiveEstimates, LiveSettings
from analytics.pipeline.live_thighs import ThighTrack
from analytics.pipeline.live_tilt import TiltTrack
from analytics.pipeline.pelvis import PelvisStep
from analytics.pipeline.result import Flags, Record
from analytics.pipeline.streams import StreamCheck
from analytics.pipeline.strides import gait_strides
from analytics.pipeline.thighs import THIGHS, ThighStep
from analytics.recording.io import Recording, SensorData

EDGE_S = 1.0
"""A stride starting in a window's first second is not given out (the window cut its earlier contacts off)."""
SAME_STRIDE_S = 0.15
"""Two strides of one side starting closer than this (s) are the same stride seen twice."""
MAX_ESTIMATE_TRIES = 60
"""Instants tried at most in one window when several passed since the last estimates (each without walking before
it costs one pass of the pelvis detector): a worker that served fewer windows finds the same first instant."""
TRIGGER_LOOKBACK_S = 2.0
"""Seconds before the readiness mark the thigh check filters (the contact rule needs the swing before a contact)."""
TRIGGER_SLACK_S = 0.05
"""A contact this close before the last readiness mark still triggers a window (the check's edge may move it)."""


class LiveGait:
    """The live gait analysis of one session (module docstring). ``placements``: the sensors of the session
    (the pelvis among them); ``rate_hz``: the common grid's rate; ``origin``: the sample periods since 1970 of
    sample 0 (the instants estimates are made at are counted from 1970); ``phase_s``: whole seconds those instants
    lie after the whole multiples of the estimates' period (the session's own, the same for every worker: so the
    sessions of a clinic do not all make their estimates at the same instant)."""

    def __init__(
        self,
        placements: tuple[str, ...],
        rate_hz: float,
        settings: LiveSettings | None = None,
        origin: int = 0,
        phase_s: int = 0,
    ) -> None:
        if "pelvis" not in placements:
            raise InvalidSignal(f"live gait needs a pelvis sensor (placements: {', '.join(placements) or 'none'})")
        if not (rate_hz > 0 and np.isfinite(rate_hz)):
            raise InvalidSignal(f"rate_hz must be positive, got {rate_hz!r}")
        self.placements = tuple(sorted(placements))
        self.origin = int(origin)
        self.phase = round(int(phase_s) * float(rate_hz))
        """Sample periods the estimates' instants lie after the 1970 grid's whole multiples."""
        self.fs = float(rate_hz)
        self.settings = settings or LiveSettings()
        self.counters = LiveCounters()
        self.estimates: LiveEstimates | None = None
        self._buf = SampleBuffer(self.placements, round(self.settings.keep_s * self.fs))
        self._seen = 0
        """Absolute index up to which a window has looked at the samples."""
        self._pending = 0
        """Absolute index up to which the last window looked for ready strides (the next one looks from
        ``context_s`` before it: a stride the rules could not see yet, at a bout's start, is given out late)."""
        self._skip_before = 0
        self._estimated_at: int | None = None
        """The instant (sample periods since 1970) of the last estimates tried."""
        self._tries = 0
        """Estimates made in a row that lacked a thigh or the standing reference."""
        self._given: dict[str, deque[float]] = {"left": deque(maxlen=64), "right": deque(maxlen=64)}
        self._last_contact: dict[str, float] = {}
        """Per leg, the absolute index of the newest contact the readiness check saw."""
        self._thighs: dict[str, ThighTrack] = {}
        """Per usable leg, its swing candidates so far (with the current estimates' flexion axis)."""
        self._tilt: TiltTrack | None = None
        """The pelvis's gyro frame so far (with the current estimates' gyro bias)."""
        self._made: list[tuple[int, LiveEstimates]] = []
        """Every estimates made, with its instant (sample periods since 1970), oldest first: a window catching up
        may make several in one call. Handed out and emptied by `take_made`."""

    # ------------------------------------------------------------------------------------------ samples

    @property
    def end(self) -> int:
        """Absolute index one past the newest sample."""
        return self._buf.end

    @property
    def first(self) -> int:
        """Absolute index of the oldest sample kept."""
        return self._buf.first

    def extend(self, sensors: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> None:
        """Append the next samples of every placement (``acc`` (m, 3) m/s^2, ``gyr`` (m, 3) deg/s; the same m for
        all), then forget those older than ``keep_s``. Raises InvalidSignal for anything else."""
        if set(sensors) != set(self.placements):
            raise InvalidSignal(f"live samples for {sorted(sensors)}, expected {list(self.placements)}")
        rows = {}
        for placement, (acc, gyr) in sensors.items():
            a, g = np.asarray(acc, dtype=np.float64), np.asarray(gyr, dtype=np.float64)
            if a.ndim != 2 or a.shape[1:] != (3,) or g.shape != a.shape:
                raise InvalidSignal(f"{placement}: live samples must be (m, 3) acc and gyr, got {a.shape} {g.shape}")
            rows[placement] = np.hstack([a, g])
        self.extend_rows(rows)

    def extend_rows(self, rows: Mapping[str, np.ndarray]) -> None:
        """`extend` with each placement's samples as one (m, 6) float64 array (acc x y z, gyr x y z), as the
        worker's grid makes them (no copy before the buffer's)."""
        if set(rows) != set(self.placements):
            raise InvalidSignal(f"live samples for {sorted(rows)}, expected {list(self.placements)}")
        sizes = set()
        for placement, r in rows.items():
            if r.ndim != 2 or r.shape[1:] != (6,) or r.dtype != np.float64:
                raise InvalidSignal(f"{placement}: live sample rows must be (m, 6) float64, got {r.shape} {r.dtype}")
            if not np.isfinite(r).all():
                raise InvalidSignal(f"{placement}: live samples contain NaN or infinite values")
            sizes.add(r.shape[0])
        if len(sizes) != 1:
            raise InvalidSignal(f"live samples of unequal lengths {sorted(sizes)}")
        m = sizes.pop()
        a = 0
        while a < m:
            # estimates are made in `step`, from the `estimate_span_s` before their instant: rows that would push
            # out of the buffer part of that span for an instant already due go in up to that instant, and its
            # estimates are made first. Otherwise a window bringing more than `keep_s` - `estimate_span_s` at once
            # (a worker catching up after a wait or a restart) would estimate from fewer samples than every other
            # worker does at that instant, and give out other contacts until the session's next refresh
            at = self._due_before_dropped(m - a)
            if at is None:
                self._buf.append({p: r[a:] for p, r in rows.items()} if a else rows)
                return
            b = a + (at - self.end)
            appended = b > a
            if appended:
                self._buf.append({p: r[a:b] for p, r in rows.items()})
                a = b
            tried = self._estimated_at
            for due in self._estimates_due(self.end):
                if self._estimate(due):
                    break
            if self._estimated_at == tried and not appended:  # nothing left to try before these rows
                self._buf.append({p: r[a:] for p, r in rows.items()})
                return

    def _due_before_dropped(self, m: int) -> int | None:
        """The first instant (relative index, at or before the newest sample once ``m`` more rows are in) whose
        estimates are due and whose span those rows would partly push out of the buffer; None if none."""
        end = self.end + m
        dropped = end - self._buf.keep
        span = round(self.settings.estimate_span_s * self.fs)
        for at in self._estimates_due(end):
            if max(at - span, self.first) < dropped:
                return max(at, self.end)
        return None

    def restart_at(self, index: int) -> None:
        """Start the buffer over at absolute ``index`` (the samples before it are not coming: a hole the caller
        could not fill). Strides are looked for from there on; estimates are kept."""
        self._buf.clear(index)
        self._thighs.clear()  # the samples before the hole do not continue into those after it
        self._tilt = None
        self._seen = max(self._seen, index)
        self._pending = max(self._pending, index)

    def take_made(self, period_us: float) -> list[tuple[int, LiveEstimates]]:
        """The estimates made since the last call, each with its instant (µs since 1970), oldest first."""
        made, self._made = self._made, []
        return [(round(at * period_us), est) for at, est in made]

    def estimated_at_us(self, period_us: float) -> int | None:
        """The instant (µs since 1970) of the last estimates tried (None: none yet)."""
        return None if self._estimated_at is None else round(self._estimated_at * period_us)

    def skip_before(self, index: int) -> None:
        """Strides ending before absolute ``index`` count as given out (by an earlier worker: a cold start)."""
        self._skip_before = max(self._skip_before, index)
        self._pending = max(self._pending, index)

    # ------------------------------------------------------------------------------------------ windows

    def step(self) -> list[Record]:
        """Analyse the samples not yet seen (plus context) and return the strides ready to give out, each once:
        the pipeline's stride records (``start_s``/``end_s`` in s from index 0, ``flags``, ``included`` ...).

        The window runs only when a stride can have become ready: a usable thigh shows a contact between the
        last window's readiness mark and ``settle_s`` before the newest sample (a cheap check: the thigh contact
        rule over those seconds), or, without usable thighs, once ``quiet_step_s`` of samples arrived since the
        last window. Otherwise nothing is analysed and the samples wait for the next call."""
        s = self.settings
        end = self.end
        if end <= self._seen:
            return []
        if not self._due(end):
            return []
        start = max(self.first, self._pending - round(s.context_s * self.fs), end - round(s.max_window_s * self.fs))
        n = end - start
        new = end - max(self._seen, start)
        self._seen = end
        if n < round((EDGE_S + 1.0) * self.fs):
            return []
        for at in self._estimates_due(end):  # in order, until estimates are made (the first instant that has them)
            if self._estimate(at):
                break
        rec = self._recording(start, end)
        pelvis = rec.sensors["pelvis"]
        est = self.estimates
        axes = None if est is None else est.event_axes
        events = detect_gait_events(pelvis.acc_mps2, pelvis.gyr_dps, self.fs, axes=axes)
        if axes is None and events.axes is not None:
            self.counters.windows_axes_estimated += 1
        self.counters.samples_new += new
        ready = end - round(s.settle_s * self.fs)
        if not events.walking_bouts:
            self.counters.windows_still += 1
            self._pending = max(self._pending, ready)
            return []
        self.counters.windows += 1
        self.counters.samples_analysed += n
        walking = walking_mask(events, n, self.fs)
        if est is None:
            return []
        strides = self._strides(rec, start, events, walking, est, lambda stride: self._ready(stride, start, ready))
        out = []
        for stride in strides:
            if not self._ready(stride, start, ready):
                continue
            abs_start = float(stride["start_s"]) + start / self.fs
            self._given[stride["side"]].append(abs_start)
            out.append({**stride, "start_s": abs_start, "end_s": float(stride["end_s"]) + start / self.fs})
        self._pending = max(self._pending, ready)
        self.counters.strides_out += len(out)
        return out

    def _ready(self, stride: Record, start: int, ready: int) -> bool:
        """A stride of a window starting at absolute ``start`` is given out now (see `step`)."""
        if any(code in STRIDE_FLAGS for code in stride.get("flags") or ()):
            return False
        t_start = float(stride["start_s"])
        end = (float(stride["end_s"]) * self.fs) + start
        if t_start < EDGE_S or end > ready or end < self._skip_before:
            return False
        abs_start = t_start + start / self.fs
        # newest first: a window's older strides were given out last
        return not any(abs(abs_start - g) < SAME_STRIDE_S for g in reversed(self._given[stride["side"]]))

    def _due(self, end: int) -> bool:
        """Whether a window should run now (see `step`); counts the samples the check itself filtered. A leg
        whose last contact lies less than the contact rule's shortest stride (`MIN_STRIDE_S`) before the
        readiness mark cannot have a new one: it is not checked."""
        s = self.settings
        est = self.estimates
        if end - self._seen < round(s.min_step_s * self.fs):
            return False
        if est is None or not est.flexion_axis:
            return end - self._seen >= round(s.quiet_step_s * self.fs)
        ready = end - round(s.settle_s * self.fs)
        lo = max(self.first, min(self._pending, ready) - round(TRIGGER_LOOKBACK_S * self.fs))
        if ready <= self._pending or end - lo < round(TRIGGER_LOOKBACK_S * self.fs):
            return end - self._seen >= round(s.quiet_step_s * self.fs)
        for side, axis in est.flexion_axis.items():
            placement = THIGHS[side]
            last = self._last_contact.get(side)
            if placement not in self._buf.data or (last is not None and ready < last + MIN_STRIDE_S * self.fs):
                continue
            track = self._thigh(side, axis, lo, end)
            if track is None:
                continue
            self.counters.samples_checked += end - lo
            contacts = track.events(lo, end, self.fs).initial_contact_s * self.fs + lo
            seen = contacts[contacts <= ready]
            if seen.size:
                self._last_contact[side] = max(float(seen.max()), last if last is not None else -np.inf)
            if (seen > self._pending - TRIGGER_SLACK_S * self.fs).any():
                return True
        return end - self._seen >= round(s.quiet_step_s * self.fs * 4)

    def _thigh(self, side: str, axis: np.ndarray, start: int, end: int) -> ThighTrack | None:
        """The leg's swing candidates up to ``end``, covering ``start`` on (begun again there when the track began
        later, or with another axis: new estimates); None when too few samples to filter."""
        track = self._thighs.get(side)
        if track is None or track.begin > start or track.axis is not axis:
            track = self._thighs[side] = ThighTrack(axis, start)
        placement = THIGHS[side]
        try:
            self.counters.samples_thigh += track.update(
                lambda a, b: self._buf.rows(placement, a, b)[:, 3:], self.first, end, self.fs
            )
        except InvalidSignal:
            return None
        if track.end < end:
            return None
        track.forget_before(self.first)
        return track

    def _pelvis_up(self, bias: np.ndarray | None, start: int, end: int, cutoff_hz: float) -> np.ndarray:
        """`estimate_tilt`'s ``up`` over the pelvis's samples ``start..end`` with ``bias``, from the gyro frame carried
        on over the new samples (`live_tilt.TiltTrack`; begun again at ``start`` when it began later, or with
        another bias: new estimates)."""
        track = self._tilt
        span = end - start
        if (
            track is None
            or track.bias is not bias
            or track.first > start
            or track.end <= self.first
            or span > track.keep
        ):
            # kept for twice the context (a window's usual span), or a longer window's span (after a pause: begun again)
            track = self._tilt = TiltTrack(bias, start, max(span, round(2 * self.settings.context_s * self.fs)))
        self.counters.samples_tilt_framed += track.update(lambda a, b: self._buf.rows("pelvis", a, b), end, self.fs)
        return track.up(start, end, self.fs, cutoff_hz)

    def _recording(self, start: int, end: int) -> Recording:
        rows = {p: self._buf.rows(p, start, end) for p in self.placements}
        sensors = {p: SensorData(p, r[:, :3], r[:, 3:]) for p, r in rows.items()}
        return Recording(self.fs, np.arange(end - start) / self.fs, sensors, task="live window")

    def _estimates_due(self, end: int) -> list[int]:
        """The instants (relative indices) estimates are due at since the last ones tried, oldest first, at most
        ``MAX_ESTIMATE_TRIES`` (see ``estimate_every_s``). Every one, not only the newest: the first instant whose
        span holds enough walking is then the same for a worker that runs fewer windows, and for one that starts
        the session cold (it tries from its oldest sample on, as a worker that was there would have)."""
        s = self.settings
        complete = self.estimates is not None and not self._tries
        every = s.refresh_every_s if complete else min(s.refresh_every_s, s.estimate_every_s * 2 ** min(6, self._tries))
        period = max(1, round(every * self.fs))
        ph = self.phase % period
        newest = (self.origin + end - ph) // period * period + ph
        tried = (self.origin + self.first) if self._estimated_at is None else self._estimated_at
        oldest = ((tried - ph) // period + 1) * period + ph
        oldest = max(oldest, newest - (MAX_ESTIMATE_TRIES - 1) * period)
        return [a - self.origin for a in range(oldest, newest + 1, period) if a - self.origin > self.first]

    def _estimate(self, at: int) -> bool:
        """The session estimates from the ``estimate_span_s`` before relative index ``at`` (steps 1-3 of the
        pipeline), kept when that span holds at least ``min_walking_s`` of walking (thigh axes from less moved
        contacts by over a sample); otherwise tried again at the next instant."""
        self._estimated_at = self.origin + at
        start = max(self.first, at - round(self.settings.estimate_span_s * self.fs))
        rec = self._recording(start, at)
        if rec.n_samples < 2 * self.fs:
            return False
        events = walking_events(rec, self.fs, self.settings.min_walking_s)
        if events is None:
            return False
        self.counters.estimates += 1
        self.counters.samples_estimated += at - start
        made = session_estimates(rec, self.fs, events, self.placements, self.settings.min_walking_s, self.estimates)
        if made is None:
            return False  # kept as they were (or none yet)
        self.estimates, complete = made
        self._tries = 0 if complete else self._tries + 1
        self._made.append((self.origin + at, self.estimates))
        return True

    def _strides(
        self,
        rec: Recording,
        start: int,
        events: Any,
        walking: np.ndarray,
        est: LiveEstimates,
        wanted: Callable[[Record], bool],
    ) -> list[Record]:
        """Steps 1, 4 and 5 of the pipeline over one window, with the session estimates for steps 2 and 3; step 5
        (and the tilt it needs) only when step 4 found a stride ``wanted`` now."""
        n, fs = rec.n_samples, self.fs
        flags = Flags()
        # step 1's masks as `check_streams` makes them, for every placement in one pass (its flags are not kept)
        quality = stream_quality_side_by_side(np.hstack([self._buf.rows(p, start, start + n) for p in rec.sensors]), fs)
        saturated_any = np.zeros(n, dtype=bool)
        for q in quality:
            saturated_any |= q.saturated
        streams = StreamCheck({p: q.stuck for p, q in zip(rec.sensors, quality, strict=True)}, saturated_any)
        in_bout = np.zeros(n, dtype=bool)
        for b in events.walking_bouts:
            in_bout[round(b.start_s * fs) : round(b.end_s * fs) + 1] = True
        empty = np.zeros(n, dtype=bool)
        signals = PelvisSignals(
            events,
            est.gyro_bias_dps,
            np.zeros((n, 3)),
            est.pelvis_axes,
            est.up_axis,
            walking,
            in_bout,
            np.zeros(n),
            empty,
            None,
        )
        pelvis = PelvisStep(signals, est.reference, est.on_pelvis, est.alignment["pelvis"])
        thigh_events: dict[str, ThighEvents] = {}
        for side, axis in est.flexion_axis.items():
            if THIGHS[side] not in rec.sensors:
                continue
            track = self._thigh(side, axis, start, start + n)
            if track is None:
                continue
            thigh_events[side] = track.events(start, start + n, fs, walking & ~streams.stuck[THIGHS[side]])
        thighs = ThighStep(thigh_events, est.sides_trusted, {k: v for k, v in est.alignment.items() if k != "pelvis"})
        bouts = events_per_bout(n, fs, streams, pelvis, thighs, flags)
        if not any(wanted(stride) for stride in bouts.strides):
            return []
        self.counters.windows_summarised += 1
        if est.reference is not None and est.pelvis_axes is not None:
            bias = est.gyro_bias_dps
            cutoff = GRAVITY_CUTOFF_HZ if bias is None else BIAS_CORRECTED_CUTOFF_HZ
            try:
                up = self._pelvis_up(bias, start, start + n, cutoff)
            except (InsufficientData, InvalidSignal):
                up = None
            if up is not None:
                raw = obliquity_deg(up, np.asarray(est.pelvis_axes.left))
                pelvis = replace(pelvis, signals=replace(signals, up=up, obliquity_raw_deg=raw))
            else:
                pelvis = replace(pelvis, reference=None)
        else:
            pelvis = replace(pelvis, reference=None)
        return gait_strides(fs, streams, pelvis, bouts, est.sides_trusted)


__all__ = ["EDGE_S", "SAME_STRIDE_S", "LiveCounters", "LiveEstimates", "LiveGait", "LiveSettings"]
