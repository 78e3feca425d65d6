"""What the stores hold: raw sample batches, result points, their timestamps and line-protocol form.

Units: timestamps are integer microseconds (UTC since 1970, or sensor time placed before 1970, see
`raw_time_us`); acc in m/s² (gravity included), gyr in deg/s, t_sensor_us in sensor microseconds since the
sensor's clock origin of that boot, seq in samples since boot (unwrapped, 64-bit). Result values keep the
units of gaitsym.result/1 (s, deg, %). SCHEMA.md describes every measurement, tag and field.

A point is identified, as in InfluxDB, by measurement + tag set + timestamp: writing it again overwrites
it. Tags are only what dashboards group by (subject, side, placement, exercise). A raw *sample* is identified
by (subject, sensor serial, boot epoch, sequence): a new sample whose point (subject, placement, time) already
holds another sample is never written over it (`plan_raw_writes`: refused, quarantined and recorded as a gap),
and a sample already stored at another time nearby (a replay re-encoded with a moved clock mapping) is not
stored again.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from analytics.stores.errors import InvalidBatch
from gaitsym_common.uplink.envelope import ClockMapping
from gaitsym_common.uplink.vocabulary import PLACEMENTS

STORE_SCHEMA = "gaitsym.store/1"
RAW = "raw"
RAW_BATCH = "raw_batch"
STRIDE = "stride"
EXERCISE_SET = "exercise_set"
SESSION_SUMMARY = "session_summary"
RESULT_MEASUREMENTS = (STRIDE, EXERCISE_SET, SESSION_SUMMARY)
STRIDE_LIVE = "stride_live"
EXERCISE_SET_LIVE = "exercise_set_live"
LIVE_MEASUREMENTS = (STRIDE_LIVE, EXERCISE_SET_LIVE)
"""Provisional results of live segments: their own measurements, appended (never a DELETE while a session runs),
removed by the session's final `Store.replace_results`. Final results are never touched by a live analysis."""
LIVE_OF = {STRIDE: STRIDE_LIVE, EXERCISE_SET: EXERCISE_SET_LIVE}
GAP = "gap"
"""Samples known to be missing (uplink ``gap`` messages), kept with the results (no retention)."""
MEASUREMENTS = (RAW, RAW_BATCH, *RESULT_MEASUREMENTS, *LIVE_MEASUREMENTS, GAP)

SENSOR_SLOT_US = 1 << 40
"""Sensor-time points of one boot epoch live in one slot of 2**40 µs (12.7 days) before 1970."""
SENSOR_SLOTS = 4096
"""Boot epochs are placed modulo 4096 slots: all sensor-time points lie in [-4096·2**40 µs, 0), 1827..1970."""
RAW_FIELDS = ("acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z")

FieldValue = float | int | str | bool
Int64Array = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def sensor_slot_start_us(boot_epoch: int) -> int:
    """First timestamp (µs, negative) of the sensor-time slot of a boot epoch."""
    return -(SENSOR_SLOTS - boot_epoch % SENSOR_SLOTS) * SENSOR_SLOT_US


def raw_time_us(t_sensor_us: npt.ArrayLike, clock: ClockMapping, boot_epoch: int) -> Int64Array:
    """Point timestamps (µs) of samples: a pure function of the sensor ticks and the batch's clock mapping.

    Synchronised: ``round(ref_utc_s·1e6) + rint((t_sensor_us − ref_sensor_us)·rate)``, the uplink formula in
    integer µs, so the same batch (a replay from the gateway's outbox is byte-identical) always gives the same
    timestamps, in any worker. Not synchronised: sensor time in the boot epoch's slot before 1970
    (``sensor_slot_start_us(boot_epoch) + t_sensor_us mod 2**40``): never mistaken for UTC, never colliding
    with another boot of the sensor; `Store.remap_raw` moves such points to UTC once a mapping exists.
    """
    ticks = np.asarray(t_sensor_us, dtype=np.int64)
    if clock.utc_synced and clock.ref_utc_s is not None:
        ref_utc_us = round(clock.ref_utc_s * 1e6)
        offset = np.rint((ticks - clock.ref_sensor_us).astype(np.float64) * clock.rate).astype(np.int64)
        return (ref_utc_us + offset).astype(np.int64)
    return (sensor_slot_start_us(boot_epoch) + ticks % SENSOR_SLOT_US).astype(np.int64)


@dataclass(frozen=True)
class RawSamples:
    """Decoded samples of one sensor (one boot epoch), in sequence order, with the batch's clock mapping.

    `samples_from_arrays` builds one and checks shapes; the worker builds it from an uplink raw batch.
    """

    subject: str
    session: str | None
    placement: str
    serial: str
    boot_epoch: int
    seq: Int64Array
    t_sensor_us: Int64Array
    acc_mps2: FloatArray
    """(n, 3) m/s², gravity included."""
    gyr_dps: FloatArray
    """(n, 3) deg/s."""
    clock: ClockMapping
    msg_id: str = ""

    def __len__(self) -> int:
        return len(self.seq)

    def time_us(self) -> Int64Array:
        """Point timestamps (µs) of the samples (`raw_time_us`), computed once."""
        cached: Int64Array | None = self.__dict__.get("_time_us")
        if cached is None:
            cached = raw_time_us(self.t_sensor_us, self.clock, self.boot_epoch)
            object.__setattr__(self, "_time_us", cached)
        return cached

    def take(self, keep: npt.NDArray[np.bool_]) -> RawSamples:
        """The samples where ``keep`` is true (same batch facts: clock mapping, session, msg_id)."""
        return RawSamples(
            self.subject,
            self.session,
            self.placement,
            self.serial,
            self.boot_epoch,
            self.seq[keep],
            self.t_sensor_us[keep],
            self.acc_mps2[keep],
            self.gyr_dps[keep],
            self.clock,
            self.msg_id,
        )

    def describe(self) -> str:
        """Names the batch in logs: subject, placement, sensor sample identity range."""
        first = int(self.seq[0]) if len(self) else None
        last = int(self.seq[-1]) if len(self) else None
        return (
            f"raw subject={self.subject} placement={self.placement} serial={self.serial} "
            f"boot_epoch={self.boot_epoch} seq={first}..{last}" + (f" msg_id={self.msg_id}" if self.msg_id else "")
        )


def samples_from_arrays(
    *,
    subject: str,
    session: str | None,
    placement: str,
    serial: str,
    boot_epoch: int,
    seq: npt.ArrayLike,
    t_sensor_us: npt.ArrayLike,
    acc_mps2: npt.ArrayLike,
    gyr_dps: npt.ArrayLike,
    clock: ClockMapping,
    msg_id: str = "",
) -> RawSamples:
    """Build a `RawSamples`, checking that every array has one row per sample (raises InvalidBatch)."""
    seq_a = np.asarray(seq, dtype=np.int64).reshape(-1)
    n = len(seq_a)
    t_a = np.asarray(t_sensor_us, dtype=np.int64).reshape(-1)
    acc = np.asarray(acc_mps2, dtype=np.float64)
    gyr = np.asarray(gyr_dps, dtype=np.float64)
    if placement not in PLACEMENTS:
        raise InvalidBatch(f"placement: {placement!r} is not one of {', '.join(PLACEMENTS)}")
    if not subject or any(c in subject for c in " ,=\"'\\\n"):
        raise InvalidBatch(f"subject: {subject!r} is empty or holds a character not allowed in an id")
    if len(t_a) != n or acc.shape != (n, 3) or gyr.shape != (n, 3):
        raise InvalidBatch(
            f"arrays: seq has {n} samples but t_sensor_us {len(t_a)}, acc {acc.shape}, gyr {gyr.shape} (want (n, 3))"
        )
    if not (np.isfinite(acc).all() and np.isfinite(gyr).all()):
        raise InvalidBatch("acc/gyr: NaN or infinite value")
    if n > 1 and bool((np.diff(seq_a) <= 0).any()):
        raise InvalidBatch("seq: not strictly increasing (one sensor boot epoch, in sequence order)")
    return RawSamples(subject, session, placement, serial, int(boot_epoch), seq_a, t_a, acc, gyr, clock, msg_id)


@dataclass(frozen=True)
class Point:
    """One point: measurement, tags (dashboards group by them), fields (values), timestamp in µs."""

    measurement: str
    tags: tuple[tuple[str, str], ...]
    fields: Mapping[str, FieldValue]
    time_us: int

    @property
    def series(self) -> str:
        return ",".join([self.measurement, *(f"{k}={v}" for k, v in self.tags)])


# ------------------------------------------------------------------------------------------ line protocol


@functools.lru_cache(maxsize=4096)
def _escape_key(text: str) -> str:
    """Keys, tag values and measurement names repeat from point to point: escaped once (cached)."""
    return text.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def _escape_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_field(value: FieldValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidBatch(f"field value {value!r}: line protocol has no NaN or infinity")
        return repr(value)
    return _escape_string(str(value))


def point_line(point: Point) -> str:
    """One line of InfluxDB line protocol (precision µs); fields sorted, tags sorted as InfluxDB keys them."""
    head = _escape_key(point.measurement) + "".join(
        f",{_escape_key(k)}={_escape_key(v)}" for k, v in sorted(point.tags) if v != ""
    )
    body = ",".join(f"{_escape_key(k)}={format_field(v)}" for k, v in sorted(point.fields.items()))
    if not body:
        raise InvalidBatch(f"{point.series}: a point needs at least one field")
    return f"{head} {body} {point.time_us}"


_FLOAT_TEXT: dict[int, str] = {}
"""repr() of float64 values seen in raw samples, keyed by their bit pattern (so 0.0 and -0.0 stay apart)."""
_FLOAT_TEXT_MAX = 1 << 18
"""Entries kept before the cache starts over (about 35 MB at most). Sensor values are int16 counts times a
per-range scale, so a worker meets a bounded set of values (65,536 per range): once a value has been seen, its text
is a lookup instead of a shortest-repr conversion (the costly part of the line protocol)."""


def float_texts(values: npt.ArrayLike) -> list[str]:
    """``repr(float(v))`` of every value (flattened, C order): the text `format_field` writes for a float.

    The same strings as ``[repr(v) for v in values]``, from a cache keyed by each float64's bits."""
    flat = np.ascontiguousarray(values, dtype=np.float64).reshape(-1)
    keys = flat.view(np.int64).tolist()
    cache = _FLOAT_TEXT
    try:
        return list(map(cache.__getitem__, keys))
    except KeyError:
        pass
    if len(cache) > _FLOAT_TEXT_MAX:
        cache.clear()
    out = []
    for key, value in zip(keys, flat.tolist(), strict=True):
        text = cache.get(key)
        if text is None:
            text = cache[key] = repr(value)
        out.append(text)
    return out


def raw_lines(samples: RawSamples) -> list[str]:
    """Line protocol of raw samples (the hot path: one formatted string per sample, no Point objects).

    Floats are written as ``repr`` (shortest round-trip text, `format_field`), taken from `float_texts`."""
    times = samples.time_us()
    head = f"{RAW},placement={_escape_key(samples.placement)},subject={_escape_key(samples.subject)} "
    const = f"boot_epoch={samples.boot_epoch}i,serial={_escape_string(samples.serial)}"
    if samples.session is not None:
        const += f",session={_escape_string(samples.session)}"
    texts = iter(float_texts(np.column_stack([samples.acc_mps2, samples.gyr_dps])))
    return [
        f"{head}acc_x={ax},acc_y={ay},acc_z={az},{const},gyr_x={gx},gyr_y={gy},gyr_z={gz},"
        f"seq={s}i,t_sensor_us={t}i {ts}"
        for ax, ay, az, gx, gy, gz, s, t, ts in zip(
            texts,
            texts,
            texts,
            texts,
            texts,
            texts,
            samples.seq.tolist(),
            samples.t_sensor_us.tolist(),
            times.tolist(),
            strict=False,  # six texts per sample: the last three iterables end together
        )
    ]


def batch_point(samples: RawSamples) -> Point:
    """The batch index point: which samples of which sensor boot are stored, and the clock mapping used."""
    times = samples.time_us()
    c = samples.clock
    fields: dict[str, FieldValue] = {
        "serial": samples.serial,
        "boot_epoch": samples.boot_epoch,
        "seq_first": int(samples.seq[0]),
        "seq_last": int(samples.seq[-1]),
        "n_samples": len(samples),
        "t_sensor_us_first": int(samples.t_sensor_us[0]),
        "time_last_us": int(times[-1]),
        "utc_synced": bool(c.utc_synced and c.ref_utc_s is not None),
        "ref_sensor_us": int(c.ref_sensor_us),
        "rate": float(c.rate),
        "drift_ppm": float(c.drift_ppm),
        "jitter_ms": float(c.jitter_ms),
    }
    if c.ref_utc_s is not None:
        fields["ref_utc_s"] = float(c.ref_utc_s)
    if samples.session is not None:
        fields["session"] = samples.session
    if samples.msg_id:
        fields["msg_id"] = samples.msg_id
    return Point(RAW_BATCH, (("placement", samples.placement), ("subject", samples.subject)), fields, int(times[0]))


@dataclass(frozen=True)
class GapRecord:
    """Samples ``seq_first..seq_last`` (inclusive) of one sensor boot epoch known to be missing (uplink gap)."""

    subject: str
    session: str | None
    placement: str
    serial: str
    boot_epoch: int
    seq_first: int
    seq_last: int
    duration_s: float
    reason: str
    msg_id: str = ""


def gap_point(gap: GapRecord) -> Point:
    """The gap's point: timestamp ``sensor_slot_start_us(boot_epoch) + seq_first`` (before 1970, unique per boot
    epoch and first missing sample, so a replayed gap overwrites itself)."""
    fields: dict[str, FieldValue] = {
        "serial": gap.serial,
        "boot_epoch": int(gap.boot_epoch),
        "seq_first_missing": int(gap.seq_first),
        "seq_last_missing": int(gap.seq_last),
        "duration_s": float(gap.duration_s),
        "reason": gap.reason,
    }
    if gap.session is not None:
        fields["session"] = gap.session
    if gap.msg_id:
        fields["msg_id"] = gap.msg_id
    time_us = sensor_slot_start_us(gap.boot_epoch) + int(gap.seq_first) % SENSOR_SLOT_US
    return Point(GAP, (("placement", gap.placement), ("subject", gap.subject)), fields, time_us)


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


def collision_reason(collisions: Sequence[TimeCollision], shown: int = 5) -> str:
    """The quarantine reason of a batch's refused samples: each collision named (the first ``shown``)."""
    head = "; ".join(c.describe() for c in collisions[:shown])
    more = f"; and {len(collisions) - shown} more" if len(collisions) > shown else ""
    return (
        f"mapped-time collision: {len(collisions)} sample(s) land on points already holding another sample "
        f"(kept; these were not written, recorded as gaps with reason {TIME_COLLISION}): {head}{more}"
    )


@dataclass(frozen=True)
class RawIndex:
    """What the store knows of a sensor boot epoch's samples in a sequence range: stored batches
    ``(seq_first, seq_last, n_samples)`` and known-missing ranges ``(seq_first, seq_last)`` from gaps."""

    batches: tuple[tuple[int, int, int], ...]
    gaps: tuple[tuple[int, int], ...]


# ------------------------------------------------------------------------------------------ read side


@dataclass(frozen=True)
class RawSeries:
    """Raw samples read back (columns, sorted by time); the same units as `RawSamples`."""

    time_us: Int64Array
    seq: Int64Array
    t_sensor_us: Int64Array
    boot_epoch: Int64Array
    serial: tuple[str, ...]
    session: tuple[str | None, ...]
    acc_mps2: FloatArray
    gyr_dps: FloatArray

    def __len__(self) -> int:
        return len(self.time_us)

    @staticmethod
    def from_rows(rows: Iterable[Mapping[str, Any]]) -> RawSeries:
        """Rows with keys time (µs) and the raw fields; sorted by time, one row per timestamp."""
        rows = sorted(rows, key=lambda r: int(r["time"]))

        def ints(key: str) -> Int64Array:
            return np.array([int(r[key]) for r in rows], dtype=np.int64)

        def floats(keys: Sequence[str]) -> FloatArray:
            return np.array([[float(r[k]) for k in keys] for r in rows], dtype=np.float64).reshape(-1, len(keys))

        return RawSeries(
            time_us=ints("time"),
            seq=ints("seq"),
            t_sensor_us=ints("t_sensor_us"),
            boot_epoch=ints("boot_epoch"),
            serial=tuple(str(r["serial"]) for r in rows),
            session=tuple(r.get("session") for r in rows),
            acc_mps2=floats(RAW_FIELDS[:3]),
            gyr_dps=floats(RAW_FIELDS[3:]),
        )


@dataclass(frozen=True)
class SessionSensor:
    """One placement's sensor in a session's raw data: the boot epoch of its newest batch there, with the first
    and last sequence of that boot's batches in the session."""

    serial: str
    boot_epoch: int
    seq_first: int
    seq_last: int


@dataclass(frozen=True)
class RawSession:
    """What the batch index holds of one session's raw data within a time range (`Store.raw_sessions`)."""

    subject: str
    session: str
    first_us: int
    """Timestamp of the first sample of its first batch, µs."""
    last_us: int
    """Timestamp of the last sample of its newest batch, µs."""
    sensors: Mapping[str, SessionSensor]
    """Per placement."""


def raw_sessions_from_batches(
    rows: Iterable[tuple[str, str, str | None, str, int, int, int, int, int]],
) -> list[RawSession]:
    """Fold batch-index rows ``(subject, placement, session, serial, boot_epoch, seq_first, seq_last, first_us,
    last_us)`` (single batches, or groups of one sensor boot's batches) into sessions, sorted by first sample.
    Rows of no session are left out. Pure function (shared by the stores)."""
    spans: dict[tuple[str, str], list[int]] = {}
    boots: dict[tuple[str, str, str], dict[tuple[str, int], list[int]]] = {}
    for subject, placement, session, serial, boot, seq_first, seq_last, first_us, last_us in rows:
        if not session:
            continue
        span = spans.setdefault((subject, session), [first_us, last_us])
        span[0], span[1] = min(span[0], first_us), max(span[1], last_us)
        got = boots.setdefault((subject, session, placement), {}).setdefault((serial, boot), [seq_first, seq_last, 0])
        got[0], got[1], got[2] = min(got[0], seq_first), max(got[1], seq_last), max(got[2], last_us)
    out = []
    for (subject, session), (first_us, last_us) in spans.items():
        sensors = {}
        for (subj, sess, placement), by_boot in boots.items():
            if (subj, sess) != (subject, session):
                continue
            (serial, boot), (lo, hi, _) = max(by_boot.items(), key=lambda kv: kv[1][2])  # the newest boot
            sensors[placement] = SessionSensor(serial, boot, lo, hi)
        out.append(RawSession(subject, session, first_us, last_us, dict(sorted(sensors.items()))))
    out.sort(key=lambda s: (s.first_us, s.subject, s.session))
    return out


@dataclass(frozen=True)
class RawProgress:
    """How far one sensor boot epoch has arrived in the store (from the batch index)."""

    n_batches: int
    n_samples: int
    seq_first: int | None
    seq_last: int | None


@dataclass(frozen=True)
class ResultRow:
    measurement: str
    time_us: int
    tags: Mapping[str, str]
    fields: Mapping[str, FieldValue]


@dataclass
class WriteReport:
    """What a write did. ``quarantined`` names what the server refused (kept in the quarantine, not retried)."""

    points_written: int = 0
    requests: int = 0
    retries: int = 0
    splits: int = 0
    quarantined: list[str] = field(default_factory=list)
    superseded: bool = False
    """replace_results only: a newer result_version is already stored; nothing was written."""
    collisions: list[TimeCollision] = field(default_factory=list)
    """Raw writes: samples refused because their point holds another sample (also in ``quarantined``)."""
    gaps: list[GapRecord] = field(default_factory=list)
    """Raw writes: the refused samples as the gaps recorded for them (reason ``time_collision``, or
    ``store_refused`` for a batch the server refused as bad data)."""
    moved: list[MovedReplay] = field(default_factory=list)
    """Raw writes: samples not written again because their identity is stored at another time nearby (a replay
    whose clock mapping moved); `moved_samples` counts them."""

    @property
    def moved_samples(self) -> int:
        return sum(len(m) for m in self.moved)

    def merge(self, other: WriteReport) -> None:
        self.points_written += other.points_written
        self.requests += other.requests
        self.retries += other.retries
        self.splits += other.splits
        self.quarantined.extend(other.quarantined)
        self.collisions.extend(other.collisions)
        self.gaps.extend(other.gaps)
        self.moved.extend(other.moved)


# ------------------------------------------------------------------------------------------ results


@dataclass(frozen=True)
class Provenance:
    """Where a result comes from: stored as fields on every result point."""

    analysis_id: str
    """Unique id of this analysis run (a field, never a tag)."""
    result_version: int
    """Increases with every re-analysis of a session; a lower version never replaces a higher one."""
    algorithm: str
    """Generator name and version, e.g. ``gaitsym-analytics 0.1.0``."""
    result_schema: str = "gaitsym.result/1"
    clock: Mapping[str, Any] = field(default_factory=dict)
    """Clock mapping used per placement (ClockMapping fields), stored as compact JSON."""

    def fields(self) -> dict[str, FieldValue]:
        return {
            "analysis_id": self.analysis_id,
            "result_version": int(self.result_version),
            "algorithm": self.algorithm,
            "result_schema": self.result_schema,
            "store_schema": STORE_SCHEMA,
            "clock": json.dumps(dict(self.clock), sort_keys=True, separators=(",", ":")),
        }


@dataclass(frozen=True)
class SessionResults:
    """The result points of one analysed session (or segment) and the time range they replace."""

    subject: str
    session: str
    start_us: int
    end_us: int
    result_version: int
    points: tuple[Point, ...]


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def results_from_document(
    doc: Mapping[str, Any], *, subject: str, session: str, t0_us: int, provenance: Provenance
) -> SessionResults:
    """Turn a gaitsym.result/1 document into stride, exercise-set and session-summary points.

    ``t0_us`` is the timestamp (µs) of the recording's first sample: result times (s from that sample) are
    placed at ``t0_us + round(t_s·1e6)``. Null values are left out (a withheld number is absent, not zero).
    """
    if doc.get("schema") != "gaitsym.result/1":
        raise InvalidBatch(f"schema: {doc.get('schema')!r} is not gaitsym.result/1")
    common = {**provenance.fields(), "session": session}
    points: list[Point] = []

    def at(t_s: float) -> int:
        return t0_us + round(float(t_s) * 1e6)

    for stride in doc["gait"]["strides"]:
        fields: dict[str, FieldValue] = dict(common)
        for key in ("start_s", "end_s", "stance_time_s", "swing_time_s", "step_time_s", "pelvic_drop_deg"):
            value = _num(stride.get(key))
            if value is not None:
                fields[key] = value
        fields["bout"] = int(stride["bout"])
        fields["included"] = bool(stride["included"])
        if stride.get("flags"):
            fields["flags"] = ",".join(stride["flags"])
        points.append(Point(STRIDE, (("side", stride["side"]), ("subject", subject)), fields, at(stride["start_s"])))
    for ex in doc["exercises"]:
        fields = dict(common)
        fields.update({"set": int(ex["set"]), "start_s": float(ex["start_s"]), "end_s": float(ex["end_s"])})
        if ex.get("reps") is not None:
            fields["reps"] = int(ex["reps"])
        holds = [float(h) for h in ex.get("holds_s", [])]
        fields["n_holds"] = len(holds)
        if holds:
            fields["hold_mean_s"] = sum(holds) / len(holds)
        for name, value in sorted(ex.get("metrics", {}).items()):
            num = _num(value)
            if num is not None:
                fields[name] = num
        if ex.get("flags"):
            fields["flags"] = ",".join(ex["flags"])
        tags = (("exercise", ex["exercise"]), ("side", ex["side"]), ("subject", subject))
        points.append(Point(EXERCISE_SET, tags, fields, at(ex["start_s"])))
    summary = doc["gait"]["summary"]
    duration_s = float(doc["recording"]["duration_s"])
    for side in ("left", "right"):
        fields = {**common, "n_strides": int(summary["n_strides"][side]), "duration_s": duration_s}
        for key in ("stance_time_s", "step_time_s", "pelvic_drop_deg"):
            value = _num((summary.get(key) or {}).get(side))
            if value is not None:
                fields[key] = value
        points.append(Point(SESSION_SUMMARY, (("side", side), ("subject", subject)), fields, t0_us))
    both: dict[str, FieldValue] = {**common, "duration_s": duration_s}
    for key in ("stance_si_pct", "stance_ratio", "stance_ga_pct"):
        value = _num(summary.get(key))
        if value is not None:
            both[key] = value
    for metric, block in sorted((summary.get("asymmetry") or {}).items()):
        for key in ("diff", "si_pct", "ratio", "ga_pct"):
            value = _num(block.get(key))
            if value is not None:
                both[f"{metric}_{key}"] = value
    both["n_flags"] = len(doc["quality"]["flags"])
    if doc["quality"]["flags"]:
        both["flags"] = ",".join(sorted({str(f["code"]) for f in doc["quality"]["flags"]}))
    gap_notes = [str(f.get("message", "")) for f in doc["quality"]["flags"] if f.get("code") == "data_gap"]
    if gap_notes:
        both["gaps"] = "; ".join(gap_notes)
    points.append(Point(SESSION_SUMMARY, (("side", "none"), ("subject", subject)), both, t0_us))
    end_us = max([t0_us + round(duration_s * 1e6), *(p.time_us for p in points)])
    return SessionResults(subject, session, t0_us, end_us, int(provenance.result_version), tuple(points))
