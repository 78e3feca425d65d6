"""Which of a call's raw samples to write: a raw *sample* is identified by (subject, sensor serial, boot epoch,
sequence). A new sample whose point (subject, placement, time) already holds another sample is never written
over it (`plan_raw_writes`: refused, quarantined and recorded as a gap), and a sample already stored at another
time nearby (a replay re-encoded with a moved clock mapping) is not stored again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from analytics.stores.raw_model import GapRecord, Int64Array, RawSamples, raw_lines

if TYPE_CHECKING:
    from analytics.stores.quarantine import Quarantine

SampleId = tuple[str, int, int]
"""A raw sample's identity within a subject: (sensor serial, boot epoch, sequence)."""
TIME_COLLISION = "time_collision"
"""Gap reason of samples refused because their point already held another sample (`plan_raw_writes`)."""
STORE_REFUSED = "store_refused"
"""Gap reason of samples the server refused as bad data (InfluxDB 400/422: beyond the retention policy, a field
type conflict): kept in the quarantine, never stored, so an analysis must know they are missing."""


@dataclass(frozen=True)
class TimeCollision:
    """A new sample mapped onto a point (subject, placement, time) that already holds a sample of another identity:
    the stored sample is kept, the new one is refused (quarantined, recorded as a gap)."""

    subject: str
    placement: str
    time_us: int
    stored: SampleId
    """The sample the point holds (kept)."""
    refused: SampleId
    """The new sample that was not written."""

    def describe(self) -> str:
        s, r = self.stored, self.refused
        return (
            f"subject={self.subject} placement={self.placement} time_us={self.time_us}: holds "
            f"serial={s[0]} boot_epoch={s[1]} seq={s[2]}, refused serial={r[0]} boot_epoch={r[1]} seq={r[2]}"
        )


@dataclass(frozen=True)
class MovedReplay:
    """Samples of one batch already stored at other times nearby (a replay whose clock mapping moved between
    sends): not written again, the stored copies kept. Nothing is missing, so no gap and no quarantine."""

    subject: str
    placement: str
    serial: str
    boot_epoch: int
    seq: tuple[int, ...]
    """Sequence numbers of the samples not written again (their identities are stored)."""
    shift_us: tuple[int, int]
    """Smallest and largest (new time − stored time), µs: how far the mapping moved."""

    def __len__(self) -> int:
        return len(self.seq)

    def describe(self) -> str:
        return (
            f"subject={self.subject} placement={self.placement} serial={self.serial} boot_epoch={self.boot_epoch} "
            f"seq={self.seq[0]}..{self.seq[-1]} ({len(self)} samples) already stored "
            f"{self.shift_us[0]}..{self.shift_us[1]} µs away"
        )


@dataclass(frozen=True)
class RawPlan:
    """What to do with a call's raw batches (`plan_raw_writes`)."""

    write: tuple[RawSamples, ...]
    """The batches to write, each without its refused samples (a batch with none left is absent)."""
    refused: tuple[tuple[RawSamples, tuple[TimeCollision, ...]], ...]
    """Per batch that lost samples: the refused samples and their collisions."""
    gaps: tuple[GapRecord, ...]
    """The refused samples as gaps (reason ``time_collision``), one per run of consecutive sequence numbers."""
    moved: tuple[MovedReplay, ...] = ()
    """Per batch that had some: samples not written because their identity is stored at another time."""

    @property
    def collisions(self) -> list[TimeCollision]:
        return [c for _, cs in self.refused for c in cs]


def plan_raw_writes(batches: Sequence[RawSamples], held: Mapping[tuple[str, str], Mapping[int, SampleId]]) -> RawPlan:
    """Sort a call's samples into written, refused and already stored elsewhere. Pure.

    ``held``: per (subject, placement), stored points (time µs -> identity): at least every point in the batches'
    time spans, and every point within ``REPLAY_MOVE_US`` of them that holds one of the batches' identities
    (`check_windows`). In call order, a sample is
    - written again when its identity is stored (or claimed earlier in this call) at the same time: a replay
      overwrites itself;
    - **not written** when its identity is stored (or claimed earlier in this call) at another time: a replay whose
      clock mapping moved between sends; the first copy is kept (`MovedReplay`, no gap: the sample is stored);
    - refused when its point holds a sample of another identity: stored before, or earlier in this call (another
      batch, or the same batch: its mapped times must strictly increase);
    - otherwise written. Samples mapped out of order onto free points are written (nothing is lost; the
      analysis reads by time)."""
    groups: dict[tuple[str, str], list[int]] = {}
    for i, b in enumerate(batches):
        groups.setdefault((b.subject, b.placement), []).append(i)
    refused_at: dict[int, npt.NDArray[np.bool_]] = {}
    moved_at: dict[int, npt.NDArray[np.bool_]] = {}
    found: dict[int, list[TimeCollision]] = {}
    shifts: dict[int, list[int]] = {}
    for key, idx in groups.items():
        stored = held.get(key) or {}
        if not stored and not _repeats(batches, idx):
            continue  # the usual case: nothing stored nearby, no time and no identity twice in the call
        claims: dict[int, SampleId] = dict(stored)
        placed: dict[SampleId, int] = {ident: t for t, ident in stored.items()}
        for i in idx:
            b = batches[i]
            refused = np.zeros(len(b), dtype=bool)
            moved = np.zeros(len(b), dtype=bool)
            for j, (t, seq) in enumerate(zip(b.time_us().tolist(), b.seq.tolist(), strict=True)):
                mine = (b.serial, b.boot_epoch, seq)
                at = placed.get(mine)
                if at is not None:
                    if at != t:
                        moved[j] = True
                        shifts.setdefault(i, []).append(t - at)
                    continue
                other = claims.setdefault(t, mine)
                if other != mine:
                    refused[j] = True
                    found.setdefault(i, []).append(TimeCollision(b.subject, b.placement, t, other, mine))
                else:
                    placed[mine] = t
            if refused.any():
                refused_at[i] = refused
            if moved.any():
                moved_at[i] = moved
    write = []
    refused_out = []
    gaps: list[GapRecord] = []
    moved_out = []
    for i, b in enumerate(batches):
        if i not in refused_at and i not in moved_at:
            write.append(b)
            continue
        kept = np.ones(len(b), dtype=bool)
        if i in refused_at:
            kept &= ~refused_at[i]
            lost = b.take(refused_at[i])
            refused_out.append((lost, tuple(found[i])))
            gaps.extend(missing_gaps(b, lost, TIME_COLLISION))
        if i in moved_at:
            kept &= ~moved_at[i]
            moves = shifts[i]
            seq = tuple(b.seq[moved_at[i]].tolist())
            moved_out.append(MovedReplay(b.subject, b.placement, b.serial, b.boot_epoch, seq, (min(moves), max(moves))))
        if kept.any():
            write.append(b.take(kept))
    return RawPlan(tuple(write), tuple(refused_out), tuple(gaps), tuple(moved_out))


def not_stored_yet(
    batches: Sequence[RawSamples], held: Mapping[tuple[str, str], Mapping[int, SampleId]]
) -> list[RawSamples | None]:
    """Per batch (in order), its samples not stored yet at their own time with their own identity: neither
    ``held`` nor claimed by an earlier batch of the call (None: every sample is). What the packed layout writes of
    `RawPlan.write`: a packed part's point stands at its first sample's time, and a part written where another
    starts would hide all of the other's samples (docs/raw-layout-packed.md). Pure."""
    out: list[RawSamples | None] = []
    earlier: dict[tuple[str, str], list[tuple[int, int, RawSamples]]] = {}
    for b in batches:
        key = (b.subject, b.placement)
        times = b.time_us()
        lo, hi = int(times.min()), int(times.max())
        stored = held.get(key) or {}
        near = [e for e_lo, e_hi, e in earlier.get(key, []) if e_lo <= hi and e_hi >= lo]
        kept: RawSamples | None = b
        if stored or near:
            claims = dict(stored)
            for e in near:  # samples of the call written before this batch
                ident = zip(e.time_us().tolist(), e.seq.tolist(), strict=True)
                claims.update((t, (e.serial, e.boot_epoch, q)) for t, q in ident)
            pairs = zip(times.tolist(), b.seq.tolist(), strict=True)
            again = np.array([claims.get(t) == (b.serial, b.boot_epoch, q) for t, q in pairs], dtype=bool)
            kept = None if again.all() else b.take(~again) if again.any() else b
        out.append(kept)
        if kept is not None:
            t = kept.time_us()
            earlier.setdefault(key, []).append((int(t.min()), int(t.max()), kept))
    return out


def _repeats(batches: Sequence[RawSamples], idx: Sequence[int]) -> bool:
    """Whether the batches ``idx`` (one subject and placement) map two samples to one time, or hold one sensor
    sample twice (a batch delivered twice in one call, its mapping moved in between)."""
    times = np.concatenate([batches[i].time_us() for i in idx])
    if len(times) > 1 and not bool((np.diff(times) > 0).all()) and len(np.unique(times)) < len(times):
        return True
    seqs: dict[tuple[str, int], list[Int64Array]] = {}
    for i in idx:
        seqs.setdefault((batches[i].serial, batches[i].boot_epoch), []).append(batches[i].seq)
    return any(len(s) > 1 and len(np.unique(np.concatenate(s))) < sum(map(len, s)) for s in seqs.values())


REPLAY_MOVE_US = 1_000_000
"""The largest move of a sample's mapped time between two sends of its batch that is still recognised as a
replay (`plan_raw_writes`, `check_windows`): 1 s. A running clock fit moves a sample's mapped time by tens of ms
(BLE arrival jitter, the rate re-estimated; UPLINK.md "Mapped times only move forward"); the uplink's limits allow
a rate anywhere in 0.98..1.02, so re-fitting the rate alone moves the samples of a 1-s batch by up to 40 ms around
its reference. 1 s is well beyond both and costs the check only a wider range read by the server, filtered by the
batches' identities (answered empty for new data). Farther moves are not recognised: the replay is stored a
second time (SCHEMA.md, "Replays whose clock mapping moved")."""


def check_windows(batch: RawSamples) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Per time span of the batch (`time_spans`): the span, where another identity on a new sample's point is a
    collision, and the span widened by ``REPLAY_MOVE_US`` on each side, where the batch's own identities
    (serial, boot epoch, sequence in ``[seq[0], seq[-1]]``) are looked for."""
    return [((lo, hi), (lo - REPLAY_MOVE_US, hi + REPLAY_MOVE_US)) for lo, hi in time_spans(batch.time_us())]


SPAN_JOIN_US = 50_000
"""Sample times closer than this are looked up as one span (`time_spans`)."""


def time_spans(times: npt.ArrayLike, join_us: int = SPAN_JOIN_US) -> list[tuple[int, int]]:
    """[first, last] µs spans covering the times, split wherever two consecutive times (sorted) are more than
    ``join_us`` apart: a batch of one sensor is one span, and a batch whose times were mapped far apart (a
    broken clock or a hostile gateway) never makes the collision check read everything in between."""
    t = np.sort(np.asarray(times, dtype=np.int64).reshape(-1))
    if not len(t):
        return []
    cuts = np.flatnonzero(np.diff(t) > join_us)
    starts = [0, *(cuts + 1).tolist()]
    ends = [*cuts.tolist(), len(t) - 1]
    return [(int(t[a]), int(t[b])) for a, b in zip(starts, ends, strict=True)]


def missing_gaps(batch: RawSamples, lost: RawSamples, reason: str) -> list[GapRecord]:
    """The gaps recording ``lost`` (samples of ``batch`` refused, for ``reason``): one per run of consecutive
    sequence numbers; duration from their ticks plus one sample period (the batch's median tick step)."""
    period_us = float(np.median(np.diff(batch.t_sensor_us))) if len(batch) > 1 else 0.0
    seq = lost.seq.tolist()
    ticks = lost.t_sensor_us.tolist()
    out = []
    start = 0
    for k in range(1, len(seq) + 1):
        if k == len(seq) or seq[k] != seq[k - 1] + 1:
            duration_s = max(0.0, (ticks[k - 1] - ticks[start] + period_us) * 1e-6)
            out.append(
                GapRecord(
                    batch.subject,
                    batch.session,
                    batch.placement,
                    batch.serial,
                    batch.boot_epoch,
                    seq[start],
                    seq[k - 1],
                    duration_s,
                    reason,
                    batch.msg_id,
                )
            )
            start = k
    return out


def quarantine_refused(plan: RawPlan, quarantine: Quarantine) -> list[str]:
    """Keep each batch's refused samples (`RawPlan.refused`) in the quarantine, their collisions named; returns
    what was kept (for ``WriteReport.quarantined``). Every store does this before it writes the rest, so refused
    samples are kept whatever happens to the others."""
    kept = []
    for lost, collisions in plan.refused:
        what = f"{lost.describe()} (time collision)"
        quarantine.put(what, None, collision_reason(collisions), "", raw_lines(lost), lost.subject)
        kept.append(what)
    return kept


def collision_reason(collisions: Sequence[TimeCollision], shown: int = 5) -> str:
    """The quarantine reason of a batch's refused samples: each collision named (the first ``shown``)."""
    head = "; ".join(c.describe() for c in collisions[:shown])
    more = f"; and {len(collisions) - shown} more" if len(collisions) > shown else ""
    return (
        f"mapped-time collision: {len(collisions)} sample(s) land on points already holding another sample "
        f"(kept; these were not written, recorded as gaps with reason {TIME_COLLISION}): {head}{more}"
    )
