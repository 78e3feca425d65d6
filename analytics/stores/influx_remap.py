"""Moving a sensor boot's sensor-time samples to UTC on InfluxDB (`Store.remap_raw`, SCHEMA.md "Gateway clock not
synchronised"): both raw layouts, one point per sample (``raw``) and packed parts (``raw_packed``).

The UTC copies go first (in the store's layout), then the sensor-time points moved are deleted by time ranges
(`raw_remap.delete_ranges`) and another sensor's points those ranges held are written back: its per-sample points
as they were read, its packed parts whole (a part starting in a range is deleted with all its samples). A crash in
between leaves two copies of the moved samples (a rerun moves them again); between the delete and the write-back,
loses those other points (the rare swap).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import numpy as np

from analytics.stores import influx_packed, influx_reads
from analytics.stores.export_reads import BatchRecord
from analytics.stores.influx_codec import raw_slot_lines
from analytics.stores.influx_transport import InfluxConfig, InfluxTransport
from analytics.stores.points import RAW, RAW_BATCH, RAW_DISPLAY, point_line
from analytics.stores.raw_model import (
    SENSOR_SLOT_US,
    RawSamples,
    RawSeries,
    require_utc_mapping,
    sensor_slot_start_us,
)
from analytics.stores.raw_packed import RAW_PACKED, merge
from analytics.stores.raw_remap import delete_ranges, moved_index, record_point, remapped_batches, within
from analytics.stores.write_report import WriteReport
from gaitsym_common.uplink.envelope import ClockMapping


class _Store(Protocol):
    """What a move needs of `InfluxStore` (which imports this module)."""

    config: InfluxConfig
    transport: InfluxTransport

    def query(self, q: str, rp: str | None = None) -> list[dict[str, Any]]: ...

    def rows(self, q: str) -> Iterator[dict[str, Any]]: ...

    def retention_policies(self) -> dict[str, str]: ...

    def read_raw_points(
        self,
        subject: str,
        placement: str,
        *,
        start_us: int | None = None,
        end_us: int | None = None,
        session: str | None = None,
    ) -> list[RawSeries]: ...

    def raw_batches(
        self, subject: str, *, start_us: int | None = None, end_us: int | None = None, session: str | None = None
    ) -> list[BatchRecord]: ...

    def write_raw_many(self, batches: Sequence[RawSamples], *, index: bool = True) -> WriteReport: ...

    def _write_lines(self, rp: str, lines: list[str], what: str, subject: str | None = None) -> WriteReport: ...


def remap_raw(store: _Store, subject: str, placement: str, serial: str, boot_epoch: int, clock: ClockMapping) -> int:
    """Move a boot epoch's sensor-time samples and index to UTC; returns samples moved."""
    require_utc_mapping(clock)
    slot = sensor_slot_start_us(boot_epoch)
    last = slot + SENSOR_SLOT_US - 1
    rp = store.config.sensor_time_rp
    (points,) = store.read_raw_points(subject, placement, start_us=slot, end_us=last)
    unreadable: list[tuple[str, str, int, Any]] = []  # parts that do not unpack: written back as they were
    parts = influx_packed.read_parts(store.transport, rp, subject, placement, slot, last, bad=unreadable)
    series: RawSeries = merge([points, *(p.samples for p in parts)], slot, last) if parts else points
    n, seq = len(series), series.seq.tolist()
    ours = [series.serial[i] == serial and int(series.boot_epoch[i]) == boot_epoch for i in range(n)]
    mine = [i for i in range(n) if ours[i]]
    if not mine:
        return 0
    index = [b for b in store.raw_batches(subject, start_us=slot, end_us=last) if b.placement == placement]
    move = remapped_batches(
        subject=subject,
        placement=placement,
        serial=serial,
        boot_epoch=boot_epoch,
        seq=series.seq[mine],
        t_sensor_us=series.t_sensor_us[mine],
        session=[series.session[i] for i in mine],
        acc_mps2=series.acc_mps2[mine],
        gyr_dps=series.gyr_dps[mine],
        index=index,
        clock=clock,
    )
    claimed = influx_reads.utc_claims(store, subject, placement, serial, boot_epoch)
    moved = moved_index(move, store.write_raw_many(move.batches, index=False), claimed)
    what = f"raw subject={subject} placement={placement}"
    store._write_lines(store.config.raw_rp, [point_line(p) for p in moved], what + " (moved index)")
    mine_b = [(b.serial, b.boot_epoch) == (serial, boot_epoch) for b in index]
    gone = [m and b not in move.stay for m, b in zip(mine_b, index, strict=True)]
    seqs = [b.seq_first for b in index], [b.seq_last for b in index]
    samples = delete_ranges(series.time_us.tolist(), ours, seq, seq, ours)
    records = delete_ranges([b.time_us for b in index], gone, *seqs, mine_b)
    tags = {"subject": subject, "placement": placement}
    for measurements, ranges, held in (
        ((RAW,), samples, len(points)),
        ((RAW_PACKED, RAW_DISPLAY), samples, len(parts) + len(unreadable)),  # the display written again below
        ((RAW_BATCH,), records, 1),
    ):
        if not held:  # the slot holds none of this layout
            continue
        for lo, hi in ranges:
            store.transport.delete(rp, measurements, tags, lo, hi)
    theirs = [p for p in parts if p.identity != (serial, boot_epoch) and within(samples, p.time_us)]
    back = [
        i
        for i in range(len(points))
        if (points.serial[i], int(points.boot_epoch[i])) != (serial, boot_epoch)
        and within(samples, int(points.time_us[i]))
    ]
    kept = [b for m, b in zip(mine_b, index, strict=True) if not m and within(records, b.time_us)]
    lines = raw_slot_lines(points, back, subject, placement)
    lines += [influx_packed.part_line(subject, placement, p.time_us, p.fields) for p in theirs]
    # another sensor's display points a range holds went too, also those of a part starting before the range: its
    # runs' points there written again (a part's runs are its batch's, but where the batch was cut into parts
    # inside a 0.1-s period: derived data, at most that period's plot)
    shown = [p for p in parts if p.identity != (serial, boot_epoch) and _touches(samples, p.samples.time_us)]
    lines += [line for p in shown for line in influx_packed.part_display_lines(subject, placement, p, samples)]
    lines += [influx_packed.part_line(subject, placement, t, row) for _, _, t, row in unreadable if within(samples, t)]
    lines += [point_line(record_point(subject, b)) for b in kept]
    store._write_lines(rp, lines, f"{what} (kept)")
    return len(mine)


def _touches(ranges: list[tuple[int, int]], times_us: np.ndarray) -> bool:
    """Whether any of the times (µs) lies in one of the ranges (inclusive)."""
    return any(bool(((times_us >= lo) & (times_us <= hi)).any()) for lo, hi in ranges)
