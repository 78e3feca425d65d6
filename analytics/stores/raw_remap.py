"""Moving one sensor boot's sensor-time samples to UTC (`Store.remap_raw`): the batches the moved samples are
written as, and the batch-index points kept for other sensors. Pure: each store reads what it holds, calls these,
and writes what they return.

The index moves with the samples. Each stored batch-index point of the boot (`raw_batch`, in sensor time) becomes
the index point of the same samples in UTC, keeping what only it knows (the uplink message id, the session, what
the sensor declared, and that the batch came with its gateway's clock not synchronised: ``utc_synced`` false) and
taking the mapping that now places them, and the sensor-time point goes. So the index
counts every stored sample once (`raw_progress`), a session moved to UTC is found by its UTC day
(`raw_sessions`), and an export's batch table lists each batch once, at the time its samples now have.

Units as in `raw_model`: timestamps µs, seq in samples since boot, acc m/s², gyr deg/s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from analytics.stores.export_reads import BatchRecord
from analytics.stores.points import Point
from analytics.stores.raw_model import RawSamples, index_point, samples_from_arrays
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
) -> list[RawSamples]:
    """The boot's stored sensor-time samples (any order) as batches mapped with ``clock``: one per index point of
    the boot (the samples of its session in its sequence range, with its message id and declarations, so its UTC
    index point says what the sensor-time one said), in sequence order. Samples no index point covers (a writer
    stopped between the samples and their index) are grouped per session, without a message id: indexed now,
    since they are stored. An index point whose samples are all gone indexes nothing and is left out."""
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
        made = samples_from_arrays(
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
        return replace(made, moved_to_utc=True)

    out: list[tuple[int, RawSamples]] = []
    mine = [r for r in index if r.placement == placement and r.serial == serial and r.boot_epoch == boot_epoch]
    for r in sorted(mine, key=lambda r: (r.seq_first, r.seq_last)):
        keep = (seq_a >= r.seq_first) & (seq_a <= r.seq_last) & ~taken & (sessions == r.session)
        if keep.any():
            out.append((r.seq_first, batch(keep, r.session, r.msg_id or "", declared_sensor(r))))
    for sess in dict.fromkeys(sessions[~taken].tolist()):
        keep = ~taken & (sessions == sess)
        out.append((int(seq_a[keep][0]), batch(keep, sess, "", None)))
    out.sort(key=lambda item: item[0])
    return [b for _, b in out]


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
        utc_synced=record.clock.utc_synced,
        session=record.session,
        msg_id=record.msg_id or "",
        sensor=declared_sensor(record),
    )
