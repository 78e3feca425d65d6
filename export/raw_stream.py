"""One sensor's raw samples of one session, read from the store in chunks and annotated for the writers: the batch
each sample came in (its clock mapping, the sensor's declared rate and ranges), how many samples are missing just
before it (sequence numbers jump across a gap; a sensor restart starts a new boot), and the gaps listed where they
are, with the reason the gateway or store recorded. Nothing is interpolated or filled: the writers decide how a
gap shows (a row in the gap table; n/a rows in Motion-BIDS).

Bounded memory: one store chunk at a time, plus a few numbers per sensor boot and one row per gap.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from analytics.stores import Store
from analytics.stores.export_reads import BatchRecord
from analytics.stores.model import GapRecord
from export.plan import SessionPlan

I64 = npt.NDArray[np.int64]
SENSOR_RESTART = "sensor_restart"
NOT_RECORDED = "not_recorded"


@dataclass
class GapFound:
    placement: str
    boot_epoch: int
    seq_first_missing: int | None
    seq_last_missing: int | None
    n_missing: int
    time_before_us: int | None
    time_after_us: int | None
    duration_s: float | None
    reason: str

    def row(self) -> dict[str, Any]:
        return {
            "placement": self.placement,
            "boot_epoch": self.boot_epoch,
            "seq_first_missing": self.seq_first_missing,
            "seq_last_missing": self.seq_last_missing,
            "n_missing": self.n_missing,
            "time_before_utc_us": self.time_before_us,
            "time_after_utc_us": self.time_after_us,
            "duration_s": self.duration_s,
            "reason": self.reason,
        }


@dataclass
class BootSpan:
    """UTC extent of one sensor boot's samples: the clock mapping's effective rate comes from it."""

    first_seq: int
    last_seq: int
    first_us: int
    last_us: int


@dataclass
class SensorSummary:
    placement: str
    declared_rate_hz: float | None
    index_rate_hz: float | None
    """Samples per second the batch index shows (for data stored before sensors' declared rates were kept)."""
    n_samples: int = 0
    n_sensor_time: int = 0
    """Samples never mapped to UTC (the gateway's clock was not synchronised): no UTC time."""
    n_duplicates: int = 0
    """Samples whose sequence does not increase within their boot (a replay stored twice, SCHEMA.md)."""
    first_utc_us: int | None = None
    last_utc_us: int | None = None
    boots: dict[tuple[int, int], BootSpan] = field(default_factory=dict)
    gaps: list[GapFound] = field(default_factory=list)
    serials: list[str] = field(default_factory=list)

    def effective_rate_hz(self) -> float | None:
        """Samples per UTC second as the clock mapping placed them: sequence span over mapped-time span, over every
        boot (missing samples counted by sequence, so gaps do not lower it)."""
        seqs = sum(b.last_seq - b.first_seq for b in self.boots.values())
        secs = sum(b.last_us - b.first_us for b in self.boots.values()) / 1e6
        return seqs / secs if secs > 0 and seqs > 0 else None

    def nominal_rate_hz(self) -> float:
        """The sensor's declared rate, else the rate the batch index or the samples show, rounded to whole Hz
        (sensors run at whole Hz)."""
        if self.declared_rate_hz:
            return self.declared_rate_hz
        seen = self.index_rate_hz or self.effective_rate_hz()
        return float(max(1, round(seen))) if seen else 100.0


def index_rate_hz(batches: list[BatchRecord]) -> float | None:
    """Samples per UTC second over a sensor's synchronised batches (sequence span over mapped-time span)."""
    seqs = sum(b.seq_last - b.seq_first for b in batches if b.clock.utc_synced)
    secs = sum(b.time_last_us - b.time_us for b in batches if b.clock.utc_synced) / 1e6
    return seqs / secs if secs > 0 and seqs > 0 else None


def _distinct(values: I64) -> I64:
    """The distinct values, sorted (a chunk usually holds one sensor boot: no sort then)."""
    if len(values) and values.min() == values.max():
        return values[:1]
    return np.unique(values)


@dataclass
class Chunk:
    """A store chunk (`analytics.stores.export_reads.raw_chunk_schema`) and what the writers need beside it."""

    raw: Any
    time_us: I64
    utc: npt.NDArray[np.bool_]
    """Rows with a UTC time (the others keep sensor time only)."""
    batch_key: I64
    """Row of the session's batches table that delivered each sample, -1 when none claims it."""
    missing_before: I64
    """Samples missing just before each row (0 normally)."""
    duplicate: npt.NDArray[np.bool_]

    @property
    def n(self) -> int:
        return int(self.raw.num_rows)


class SensorStream:
    """Iterate `chunks()` once; `summary` is complete when it ends."""

    def __init__(
        self,
        store: Store,
        plan: SessionPlan,
        placement: str,
        recorded_gaps: list[GapRecord],
        batch_keys: dict[int, int],
        chunk_samples: int,
    ) -> None:
        self.store = store
        self.plan = plan
        self.placement = placement
        self.chunk_samples = chunk_samples
        mine = plan.batches_of(placement)
        declared = [b.sample_rate_hz for b in mine if b.sample_rate_hz]
        self.summary = SensorSummary(placement, declared[0] if declared else None, index_rate_hz(mine))
        self._period_us = 1e6 / self.summary.nominal_rate_hz()
        self._serial_codes: dict[str, int] = {}
        # per sensor boot: batches sorted by first sequence, with their keys in the session's batches table
        self._index: dict[tuple[str, int], tuple[I64, I64, I64]] = {}
        by_boot: dict[tuple[str, int], list[BatchRecord]] = {}
        for b in mine:
            by_boot.setdefault((b.serial, b.boot_epoch), []).append(b)
        for ident, group in by_boot.items():
            group.sort(key=lambda b: b.seq_first)
            self._index[ident] = (
                np.array([b.seq_first for b in group], dtype=np.int64),
                np.array([b.seq_last for b in group], dtype=np.int64),
                np.array([batch_keys[id(b)] for b in group], dtype=np.int64),
            )
        self._recorded: dict[tuple[str, int], list[GapRecord]] = {}
        for g in recorded_gaps:
            if g.placement == placement:
                self._recorded.setdefault((g.serial, g.boot_epoch), []).append(g)
        self._used: set[int] = set()
        self._last: tuple[int, int, int, bool] | None = None
        """(identity code, seq, time µs, utc) of the last sample seen."""

    def chunks(self) -> Iterator[Chunk]:
        ranges = [*self.plan.sensor_time_ranges.get(self.placement, []), (self.plan.read_from_us, self.plan.read_to_us)]
        for lo, hi in ranges:
            for raw in self.store.raw_chunks(
                self.plan.subject,
                self.placement,
                start_us=lo,
                end_us=hi,
                session=self.plan.session,
                chunk_samples=self.chunk_samples,
            ):
                yield self._annotate(raw)
        self._recorded_only()

    # ------------------------------------------------------------------------------------------ per chunk

    def _identities(self, raw: Any) -> tuple[I64, list[tuple[str, int]]]:
        """A code per row for its (serial, boot epoch), stable across chunks, and the pairs behind the codes."""
        import pyarrow.compute as pc

        serial = pc.dictionary_encode(raw.column("serial"))
        names = serial.dictionary.to_pylist()
        for s in names:
            if s not in self._serial_codes:
                self._serial_codes[s] = len(self._serial_codes)
                self.summary.serials.append(s)
        remap = np.array([self._serial_codes[s] for s in names], dtype=np.int64)
        codes = remap[serial.indices.to_numpy(zero_copy_only=False)]
        boots = raw.column("boot_epoch").to_numpy()
        ident = (codes << 33) | boots  # boot epochs are u32 (< 2**33)
        return ident, self._decode(_distinct(ident))

    def _decode(self, idents: I64) -> list[tuple[str, int]]:
        return [(self.summary.serials[int(i) >> 33], int(i) & ((1 << 33) - 1)) for i in idents]

    def _annotate(self, raw: Any) -> Chunk:
        t = raw.column("time_us").to_numpy()
        seq = raw.column("seq").to_numpy()
        ident, pairs = self._identities(raw)
        utc = t >= 0
        n = len(t)
        s = self.summary
        s.n_samples += n
        s.n_sensor_time += int(n - np.count_nonzero(utc))
        key = self._batch_keys(ident, seq, pairs)
        # holes: against the previous row (the last one of the previous chunk first)
        if n == 0:
            return Chunk(raw, t, utc, np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, bool))
        # the stream's first sample is compared with itself one sequence number earlier: no hole before it
        p_ident, p_seq, p_t, p_utc = self._last or (int(ident[0]), int(seq[0]) - 1, int(t[0]), bool(utc[0]))
        dseq = np.empty(n, dtype=np.int64)
        dseq[0] = seq[0] - p_seq
        np.subtract(seq[1:], seq[:-1], out=dseq[1:])
        one_boot = len(pairs) == 1 and p_ident == ident[0]
        if one_boot and int(dseq.min()) == 1 == int(dseq.max()):  # the usual chunk: one boot, no hole, no replay
            missing = np.zeros(n, dtype=np.int64)
            duplicate = np.zeros(n, dtype=bool)
            self._boot_spans(ident, seq, t, utc, pairs)
            self._keep_last(ident, seq, t, utc)
            return Chunk(raw, t, utc, key, missing, duplicate)
        prev_ident = np.concatenate([[p_ident], ident[:-1]])
        prev_seq = np.concatenate([[p_seq], seq[:-1]])
        prev_t = np.concatenate([[p_t], t[:-1]])
        prev_utc = np.concatenate([[p_utc], utc[:-1]])
        same = prev_ident == ident
        missing = np.where(same & (dseq > 1), dseq - 1, 0).astype(np.int64)
        duplicate = same & (dseq <= 0)
        s.n_duplicates += int(np.count_nonzero(duplicate))
        restart = ~same
        if restart.any():
            for i in np.flatnonzero(restart):
                both_utc = bool(utc[i] and prev_utc[i])
                n_gap = 0
                if both_utc and self._period_us:
                    n_gap = max(0, round((int(t[i]) - int(prev_t[i])) / self._period_us) - 1)
                missing[i] = n_gap
                _, boot = self._decode(np.array([ident[i]]))[0]
                s.gaps.append(
                    GapFound(
                        self.placement,
                        boot,
                        None,
                        None,
                        n_gap,
                        int(prev_t[i]) if prev_utc[i] else None,
                        int(t[i]) if utc[i] else None,
                        None,
                        SENSOR_RESTART,
                    )
                )
        for i in np.flatnonzero(same & (dseq > 1)):
            serial, boot = self._decode(np.array([ident[i]]))[0]
            a, b = int(prev_seq[i]) + 1, int(seq[i]) - 1
            reason, duration = self._recorded_reason(serial, boot, a, b)
            s.gaps.append(
                GapFound(
                    self.placement,
                    boot,
                    a,
                    b,
                    b - a + 1,
                    int(prev_t[i]) if prev_utc[i] else None,
                    int(t[i]) if utc[i] else None,
                    duration,
                    reason,
                )
            )
        self._boot_spans(ident, seq, t, utc, pairs)
        self._keep_last(ident, seq, t, utc)
        return Chunk(raw, t, utc, key, missing, duplicate)

    def _batch_keys(self, ident: I64, seq: I64, pairs: list[tuple[str, int]]) -> I64:
        """The batch of each sample: the last batch of its boot starting at or before it, if it reaches that far
        (-1: none)."""
        key = np.full(len(seq), -1, dtype=np.int64)
        for serial, boot in pairs:
            found = self._index.get((serial, boot))
            if found is None:
                continue
            first, last, keys = found
            if len(pairs) == 1:  # one boot in the chunk (the usual case): every row, without selecting them
                k = np.searchsorted(first, seq, side="right") - 1
                ok = (k >= 0) & (seq <= last[np.maximum(k, 0)])
                return np.where(ok, keys[np.maximum(k, 0)], key)
            rows = np.flatnonzero(ident == ((self._serial_codes[serial] << 33) | boot))
            k = np.searchsorted(first, seq[rows], side="right") - 1
            ok = (k >= 0) & (seq[rows] <= last[np.maximum(k, 0)])
            key[rows[ok]] = keys[k[ok]]
        return key

    def _keep_last(self, ident: I64, seq: I64, t: I64, utc: npt.NDArray[np.bool_]) -> None:
        """The chunk's last sample (the next chunk's holes are found against it) and the UTC extent so far."""
        s = self.summary
        self._last = (int(ident[-1]), int(seq[-1]), int(t[-1]), bool(utc[-1]))
        if utc[0] and utc[-1]:
            first, last = int(t[0]), int(t[-1])
        elif utc.any():
            tu = t[utc]
            first, last = int(tu[0]), int(tu[-1])
        else:
            return
        s.first_utc_us = first if s.first_utc_us is None else min(s.first_utc_us, first)
        s.last_utc_us = last if s.last_utc_us is None else max(s.last_utc_us, last)

    def _boot_spans(
        self, ident: I64, seq: I64, t: I64, utc: npt.NDArray[np.bool_], pairs: list[tuple[str, int]]
    ) -> None:
        all_utc = bool(utc.all())
        if not all_utc and not utc.any():
            return
        for code in ident[:1] if len(pairs) == 1 else _distinct(ident[utc]):
            if len(pairs) == 1 and all_utc:  # one boot, every row in UTC: its first and last row
                a, b = 0, len(ident) - 1
            else:
                rows = np.flatnonzero((ident == code) & utc)
                a, b = rows[0], rows[-1]
            serial, boot = self._decode(np.array([code]))[0]
            key = (self._serial_codes[serial], boot)
            span = self.summary.boots.get(key)
            if span is None:
                self.summary.boots[key] = BootSpan(int(seq[a]), int(seq[b]), int(t[a]), int(t[b]))
            else:
                span.last_seq, span.last_us = max(span.last_seq, int(seq[b])), max(span.last_us, int(t[b]))

    # ------------------------------------------------------------------------------------------ recorded gaps

    def _recorded_reason(self, serial: str, boot: int, a: int, b: int) -> tuple[str, float | None]:
        hits = [g for g in self._recorded.get((serial, boot), []) if g.seq_first <= b and a <= g.seq_last]
        if not hits:
            return NOT_RECORDED, None
        self._used.update(id(g) for g in hits)
        return ",".join(sorted({g.reason for g in hits})), sum(g.duration_s for g in hits)

    def _recorded_only(self) -> None:
        """Recorded gaps no hole in the exported samples showed (before the first or after the last sample)."""
        for (_, boot), group in self._recorded.items():
            for g in group:
                if id(g) not in self._used:
                    self.summary.gaps.append(
                        GapFound(
                            self.placement,
                            boot,
                            g.seq_first,
                            g.seq_last,
                            g.seq_last - g.seq_first + 1,
                            None,
                            None,
                            g.duration_s,
                            g.reason,
                        )
                    )
