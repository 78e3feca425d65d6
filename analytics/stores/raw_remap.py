"""Moving one sensor boot's sensor-time samples to UTC (`Store.remap_raw`): the batches the moved samples are
written as, their batch-index points, and the index points kept where they were. Pure: each store reads what it
holds, calls these, and writes what they return.

The index moves with the samples. Each stored batch-index point of the boot (`raw_batch`, in sensor time) whose
samples are moved becomes the index point of the same samples in UTC: what only it knows is kept (the uplink
message id, the session, what the sensor declared), the mapping that now places them is taken, and it says they
were moved (``moved_to_utc``). So the index counts every stored sample once (`raw_progress`), a session moved to
UTC is found by its UTC day (`raw_sessions`), and an export's batch table lists each batch once.

The moved index claims what is stored once the move's write is over: samples it refused (another sample's point
at their time: recorded as gaps) are not claimed, and a run of samples a UTC index point of the boot claims
already (moved before: a move run again, a re-sent batch stored in sensor time again and moved once more, an
earlier layout's point) gets no second one, so no index point is narrowed and none counted twice. Samples the
write found stored at nearby times (a move run again with another mapping) are claimed at the new mapping's
times, within the replay bound of where they are. An index point of the boot with no sample left in sensor time
(moved by a store that did not move the index) stays where it is.

Units as in `raw_model`: timestamps µs, seq in samples since boot, acc m/s², gyr deg/s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import numpy.typing as npt

from analytics.stores.export_reads import BatchRecord
from analytics.stores.points import Point
from analytics.stores.raw_model import RawSamples, index_point, samples_from_arrays
from analytics.stores.write_report import WriteReport
from gaitsym_common.uplink.envelope import ClockMapping, SensorIdentity


def declared_sensor(record: BatchRecord) -> SensorIdentity | None:
    """What the sensor declared for a stored batch (None when its index point predates those fields)."""
    if record.sample_rate_hz is None or record.acc_range_g is None or record.gyr_range_dps is None:
        return None
    return SensorIdentity(
        record.serial,
        record.boot_epoch,
        record.sample_rate_hz,
        record.acc_range_g,
        record.gyr_range_dps,
        record.firmware or "",
    )


def _runs(seq: npt.NDArray[np.int64]) -> list[slice]:
    """Slices of runs of consecutive sequence numbers in a sorted array."""
    breaks = (np.flatnonzero(np.diff(seq) != 1) + 1).tolist()
    edges = [0, *breaks, len(seq)]
    return [slice(a, b) for a, b in pairwise(edges) if b > a]


@dataclass(frozen=True)
class Move:
    """A boot's sensor-time samples as the batches the move writes (`remapped_batches`)."""

    batches: list[RawSamples]
    stay: list[BatchRecord]
    """Index points of the boot none of whose samples is in sensor time: left where they are."""


def remapped_batches(
    *,
    subject: str,
    placement: str,
    serial: str,
    boot_epoch: int,
    seq: npt.ArrayLike,
    t_sensor_us: npt.ArrayLike,
    session: Sequence[str | None],
    acc_mps2: npt.ArrayLike,
    gyr_dps: npt.ArrayLike,
    index: Sequence[BatchRecord],
    clock: ClockMapping,
) -> Move:
    """The boot's stored sensor-time samples (any order) as batches mapped with ``clock``, in
    sequence order, and the boot's index points that stay where they are.

    One batch per index point of the boot (the samples of its session in its sequence range, with its message id
    and declarations); samples no index point covers (a writer stopped between the samples and their index, or
    a sample of another session) one batch per run of consecutive sequence numbers of a session, without a
    message id: indexed now, since they are stored. An index point of the boot none of whose samples is here
    stays (its samples were moved without it, or are gone)."""
    seq_a = np.asarray(seq, dtype=np.int64).reshape(-1)
    ticks = np.asarray(t_sensor_us, dtype=np.int64).reshape(-1)
    acc = np.asarray(acc_mps2, dtype=np.float64).reshape(-1, 3)
    gyr = np.asarray(gyr_dps, dtype=np.float64).reshape(-1, 3)
    order = np.argsort(seq_a, kind="stable")
    sessions = np.array([session[i] for i in order.tolist()], dtype=object)
    seq_a, ticks, acc, gyr = seq_a[order], ticks[order], acc[order], gyr[order]
    taken = np.zeros(len(seq_a), dtype=bool)

    def batch(keep: npt.NDArray[np.bool_], sess: str | None, msg_id: str, sensor: SensorIdentity | None) -> RawSamples:
        taken[keep] = True
        return samples_from_arrays(
            subject=subject,
            session=sess,
            placement=placement,
            serial=serial,
            boot_epoch=boot_epoch,
            seq=seq_a[keep],
            t_sensor_us=ticks[keep],
            acc_mps2=acc[keep],
            gyr_dps=gyr[keep],
            clock=clock,
            msg_id=msg_id,
            sensor=sensor,
        )

    out: list[RawSamples] = []
    stay: list[BatchRecord] = []
    mine = [r for r in index if r.placement == placement and r.serial == serial and r.boot_epoch == boot_epoch]
    for r in sorted(mine, key=lambda r: (r.seq_first, r.seq_last)):
        keep = (seq_a >= r.seq_first) & (seq_a <= r.seq_last) & ~taken & (sessions == r.session)
        if keep.any():
            out.append(batch(keep, r.session, r.msg_id or "", declared_sensor(r)))
        else:
            stay.append(r)
    for sess in dict.fromkeys(sessions[~taken].tolist()):
        left = np.flatnonzero(~taken & (sessions == sess))
        for run in _runs(seq_a[left]):
            keep = np.zeros(len(seq_a), dtype=bool)
            keep[left[run]] = True
            out.append(batch(keep, sess, "", None))
    out.sort(key=lambda b: int(b.seq[0]))
    return Move(out, stay)


def moved_index(move: Move, written: WriteReport, claimed: Sequence[tuple[int, int]]) -> list[Point]:
    """After the move's write (``written``: its report), the UTC index points to write: one per run of a batch's
    samples the write did not refuse, claiming that run at its first sample's mapped time, unless a UTC index
    point of the boot already claims the whole run (``claimed``: their ``(seq_first, seq_last)``, read before)."""
    points = []
    for b in move.batches:
        lost = np.zeros(len(b), dtype=bool)
        for g in written.gaps:
            if (g.subject, g.placement, g.serial, g.boot_epoch) == (b.subject, b.placement, b.serial, b.boot_epoch):
                lost |= (b.seq >= g.seq_first) & (b.seq <= g.seq_last)
        kept = np.flatnonzero(~lost)
        times = b.time_us()
        for run in _runs(kept):
            i, j = int(kept[run][0]), int(kept[run][-1])
            if any(a <= b.seq[i] and b.seq[j] <= z for a, z in claimed):
                continue  # indexed in UTC already (moved before, or by an earlier layout): never narrowed, never twice
            points.append(
                index_point(
                    subject=b.subject,
                    placement=b.placement,
                    time_us=int(times[i]),
                    time_last_us=int(times[j]),
                    serial=b.serial,
                    boot_epoch=b.boot_epoch,
                    seq_first=int(b.seq[i]),
                    seq_last=int(b.seq[j]),
                    n_samples=j - i + 1,
                    t_sensor_us_first=int(b.t_sensor_us[i]),
                    clock=b.clock,
                    moved_to_utc=True,
                    session=b.session,
                    msg_id=b.msg_id,
                    sensor=b.sensor,
                )
            )
    return points


def delete_ranges(
    times: Sequence[int], going: Sequence[bool], seq_first: Sequence[int], seq_last: Sequence[int], boot: Sequence[bool]
) -> list[tuple[int, int]]:
    """Time ranges (µs, inclusive) holding the boot's points that go, from the points read in time order (their
    times, whether each goes, its sequence range, whether it is of the moved boot): one per run of the boot's
    points that all go and whose sequence numbers follow on. Another sensor's points (a boot epoch equal mod 4096)
    neither end a run nor go: the caller writes back those a range holds. So a batch of the boot another writer
    stores after the read (filling a sequence gap, or after it) falls between ranges or after them, and stays;
    another sensor's point stored meanwhile inside a range does not (the rare swap, stored at that very moment)."""
    ranges: list[tuple[int, int]] = []
    prev = None  # the boot's previous point
    for k, t in enumerate(times):
        if not boot[k]:
            continue
        if going[k] and prev is not None and going[prev] and seq_first[k] == seq_last[prev] + 1:
            ranges[-1] = (ranges[-1][0], int(t))
        elif going[k]:
            ranges.append((int(t), int(t)))
        prev = k
    return ranges


def within(ranges: Sequence[tuple[int, int]], t: int) -> bool:
    """Whether time ``t`` lies in one of the ranges."""
    return any(lo <= t <= hi for lo, hi in ranges)


def record_point(subject: str, record: BatchRecord) -> Point:
    """A batch-index point read back, as it was written (to write it back after its slot was cleared)."""
    return index_point(
        subject=subject,
        placement=record.placement,
        time_us=record.time_us,
        time_last_us=record.time_last_us,
        serial=record.serial,
        boot_epoch=record.boot_epoch,
        seq_first=record.seq_first,
        seq_last=record.seq_last,
        n_samples=record.n_samples,
        t_sensor_us_first=record.t_sensor_us_first,
        clock=record.clock,
        moved_to_utc=record.moved_to_utc,
        session=record.session,
        msg_id=record.msg_id or "",
        sensor=declared_sensor(record),
    )
