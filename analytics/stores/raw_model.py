"""Raw samples: the decoded batches the worker writes, their timestamps, their points and lines, gaps, and the
columns read back.

Units: timestamps are integer microseconds (UTC since 1970, or sensor time placed before 1970, see
`raw_time_us`); acc in m/s² (gravity included), gyr in deg/s, t_sensor_us in sensor microseconds since the
sensor's clock origin of that boot, seq in samples since boot (unwrapped, 64-bit).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from analytics.stores.errors import InvalidBatch, StoreConfigError
from analytics.stores.points import GAP, RAW, RAW_BATCH, FieldValue, Point, _escape_key, _escape_string, float_texts
from gaitsym_common.uplink.envelope import ClockMapping, SensorIdentity
from gaitsym_common.uplink.vocabulary import PLACEMENTS

SENSOR_SLOT_US = 1 << 40
"""Sensor-time points of one boot epoch live in one slot of 2**40 µs (12.7 days) before 1970."""
SENSOR_SLOTS = 4096
"""Boot epochs are placed modulo 4096 slots: all sensor-time points lie in [-4096·2**40 µs, 0), 1827..1970."""
RAW_FIELDS = ("acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z")

Int64Array = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def sensor_slot_start_us(boot_epoch: int) -> int:
    """First timestamp (µs, negative) of the sensor-time slot of a boot epoch."""
    return -(SENSOR_SLOTS - boot_epoch % SENSOR_SLOTS) * SENSOR_SLOT_US


def maps_to_utc(clock: ClockMapping) -> bool:
    """Whether a clock mapping places samples in UTC (synchronised, with a reference); else they keep sensor time,
    before 1970 (`raw_time_us`)."""
    return bool(clock.utc_synced) and clock.ref_utc_s is not None


def require_utc_mapping(clock: ClockMapping) -> None:
    """Refuse a mapping that cannot move sensor-time samples to UTC (`Store.remap_raw`)."""
    if not maps_to_utc(clock):
        raise StoreConfigError("clock: remapping needs a synchronised mapping (utc_synced, ref_utc_s)")


def raw_time_us(t_sensor_us: npt.ArrayLike, clock: ClockMapping, boot_epoch: int) -> Int64Array:
    """Point timestamps (µs) of samples: a pure function of the sensor ticks and the batch's clock mapping.

    Synchronised: ``round(ref_utc_s·1e6) + rint((t_sensor_us − ref_sensor_us)·rate)``, the uplink formula in
    integer µs, so the same batch (a replay from the gateway's outbox is byte-identical) always gives the same
    timestamps, in any worker. Not synchronised: sensor time in the boot epoch's slot before 1970
    (``sensor_slot_start_us(boot_epoch) + t_sensor_us mod 2**40``): never mistaken for UTC, never colliding
    with another boot of the sensor; `Store.remap_raw` moves such points to UTC once a mapping exists.
    """
    ticks = np.asarray(t_sensor_us, dtype=np.int64)
    if clock.utc_synced and clock.ref_utc_s is not None:  # `maps_to_utc` spelled out: mypy narrows ref_utc_s
        ref_utc_us = round(clock.ref_utc_s * 1e6)
        offset = np.rint((ticks - clock.ref_sensor_us).astype(np.float64) * clock.rate).astype(np.int64)
        return ref_utc_us + offset  # int64 already: no copy
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
    sensor: SensorIdentity | None = None
    """What the sensor declared for the batch (rate, ranges, firmware: the uplink's `SensorIdentity`), kept in the
    batch index (`batch_point`); None where unknown."""

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
            self.sensor,
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
    sensor: SensorIdentity | None = None,
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
    if n > 1 and bool((np.subtract(seq_a[1:], seq_a[:-1]) <= 0).any()):  # `np.diff`'s arithmetic, without its overhead
        raise InvalidBatch("seq: not strictly increasing (one sensor boot epoch, in sequence order)")
    return RawSamples(subject, session, placement, serial, int(boot_epoch), seq_a, t_a, acc, gyr, clock, msg_id, sensor)


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
    """The batch index point: which samples of which sensor boot are stored, the clock mapping used, and what the
    sensor declared (rate, ranges, firmware: additive fields, absent on batches stored before they existed)."""
    times = samples.time_us()
    return index_point(
        subject=samples.subject,
        placement=samples.placement,
        time_us=int(times[0]),
        time_last_us=int(times[-1]),
        serial=samples.serial,
        boot_epoch=samples.boot_epoch,
        seq_first=int(samples.seq[0]),
        seq_last=int(samples.seq[-1]),
        n_samples=len(samples),
        t_sensor_us_first=int(samples.t_sensor_us[0]),
        clock=samples.clock,
        moved_to_utc=False,  # a move writes its own index points (`raw_remap.moved_index`)
        session=samples.session,
        msg_id=samples.msg_id,
        sensor=samples.sensor,
    )


def index_point(
    *,
    subject: str,
    placement: str,
    time_us: int,
    time_last_us: int,
    serial: str,
    boot_epoch: int,
    seq_first: int,
    seq_last: int,
    n_samples: int,
    t_sensor_us_first: int,
    clock: ClockMapping,
    moved_to_utc: bool,
    session: str | None,
    msg_id: str,
    sensor: SensorIdentity | None,
) -> Point:
    """A `raw_batch` point (`batch_point`'s fields, each typed as the index has always written it): ``clock`` the
    mapping that placed the samples; ``moved_to_utc`` (a field written only when true) that they were stored in
    sensor time first and moved by that mapping later (`raw_remap`)."""
    c = clock
    fields: dict[str, FieldValue] = {
        "serial": serial,
        "boot_epoch": int(boot_epoch),
        "seq_first": int(seq_first),
        "seq_last": int(seq_last),
        "n_samples": int(n_samples),
        "t_sensor_us_first": int(t_sensor_us_first),
        "time_last_us": int(time_last_us),
        "utc_synced": maps_to_utc(c),
        "ref_sensor_us": int(c.ref_sensor_us),
        "rate": float(c.rate),
        "drift_ppm": float(c.drift_ppm),
        "jitter_ms": float(c.jitter_ms),
    }
    if c.ref_utc_s is not None:
        fields["ref_utc_s"] = float(c.ref_utc_s)
    if moved_to_utc:
        fields["moved_to_utc"] = True
    if session is not None:
        fields["session"] = session
    if msg_id:
        fields["msg_id"] = msg_id
    if sensor is not None:
        fields["sample_rate_hz"] = float(sensor.sample_rate_hz)
        fields["acc_range_g"] = int(sensor.acc_range_g)
        fields["gyr_range_dps"] = int(sensor.gyr_range_dps)
        if sensor.firmware:
            fields["firmware"] = sensor.firmware
    return Point(RAW_BATCH, (("placement", placement), ("subject", subject)), fields, int(time_us))


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
