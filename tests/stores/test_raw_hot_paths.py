"""The raw-sample hot paths give exactly what the plain code they replaced gave.

The line protocol (`raw_lines`) writes what the sensor sent: the same bytes as one ``repr`` per float, for decoded
sensor batches and arbitrary floats. Rows read back (`raw_series_from_values`) become the same arrays, in the same
(stable) time order, whether InfluxDB answered them in time order or not."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from analytics.stores import model, points
from analytics.stores.influx_codec import raw_series_from_values
from analytics.stores.model import RAW, RawSamples, RawSeries, float_texts, raw_lines, samples_from_arrays
from analytics.worker.decode import batch_samples, decode_message
from firmware_protocol.packet import ImuPacket, encode_packet
from gaitsym_common.uplink import envelope as env
from gaitsym_common.uplink.topics import topic

CLOCK = env.ClockMapping(True, 123_456, 1_764_000_000.123456, 1.0000123, -12.3, 0.4)


def reference_lines(samples: RawSamples) -> list[str]:
    """The formatting before the text cache (kept here as the definition of the stored bytes)."""
    times = samples.time_us()
    head = f"{RAW},placement={model._escape_key(samples.placement)},subject={model._escape_key(samples.subject)} "
    const = f"boot_epoch={samples.boot_epoch}i,serial={model._escape_string(samples.serial)}"
    if samples.session is not None:
        const += f",session={model._escape_string(samples.session)}"
    rows = np.column_stack([samples.acc_mps2, samples.gyr_dps]).tolist()
    return [
        f"{head}acc_x={r[0]!r},acc_y={r[1]!r},acc_z={r[2]!r},{const},gyr_x={r[3]!r},gyr_y={r[4]!r},"
        f"gyr_z={r[5]!r},seq={s}i,t_sensor_us={t}i {ts}"
        for r, s, t, ts in zip(rows, samples.seq.tolist(), samples.t_sensor_us.tolist(), times.tolist(), strict=True)
    ]


def sensor_batch(
    rng: np.random.Generator, seq0: int, acc_range_g: int = 16, session: str | None = "S1-1"
) -> RawSamples:
    """A raw batch as a gateway publishes it (10 packets of 10 samples), decoded as the worker decodes it."""
    packets = []
    for k in range(10):
        counts = rng.integers(-32768, 32768, size=(10, 6))
        counts[0] = (0, -1, 1, 32767, -32768, 0)
        samples = tuple(tuple(int(v) for v in row) for row in counts)
        seq = seq0 + 10 * k
        packets.append(
            encode_packet(
                ImuPacket(
                    sequence=seq,
                    timestamp_us=seq * 10_000,
                    acc_range_g=acc_range_g,
                    gyr_range_dps=2000,
                    samples=samples,  # type: ignore[arg-type]
                )
            )
        )
    sensor = env.SensorIdentity("GS24-A0001", 7, 100.0, acc_range_g, 2000, "1.0.0")
    batch = env.RawBatch(
        "raw",
        env.raw_batch_id("GS24-A0001", 7, seq0),
        "S001",
        session,
        "pelvis",
        sensor,
        seq0,
        seq0 + 99,
        100,
        seq0 * 10_000,
        CLOCK,
        tuple(packets),
    )
    message = decode_message(topic("S001", "raw", "pelvis"), env.encode(batch))
    assert isinstance(message, env.RawBatch)
    return batch_samples(message)


@pytest.mark.parametrize("acc_range_g", [2, 16])
def test_decoded_sensor_batches_format_exactly_as_before(acc_range_g: int) -> None:
    rng = np.random.default_rng(acc_range_g)
    model._FLOAT_TEXT.clear()
    for i in range(3):  # first with an empty cache, then with every value cached, then mixed
        samples = sensor_batch(rng if i != 1 else np.random.default_rng(acc_range_g), 1000 + 100 * i, acc_range_g)
        assert raw_lines(samples) == reference_lines(samples)
    no_session = sensor_batch(rng, 5000, acc_range_g, session=None)
    assert raw_lines(no_session) == reference_lines(no_session)


def test_arbitrary_floats_keep_their_exact_text() -> None:
    rng = np.random.default_rng(3)
    values = np.concatenate(
        [
            rng.normal(0, 1, 300),
            rng.normal(0, 1e6, 60) * 10.0 ** rng.integers(-300, 300, 60),
            [0.0, -0.0, 1e-310, -5e-324, 1.7976931348623157e308, 0.1, 1 / 3, 100.0, -2.5],
        ]
    )
    rng.shuffle(values)
    n = len(values) // 6
    acc, gyr = values[: 3 * n].reshape(n, 3), values[3 * n : 6 * n].reshape(n, 3)
    samples = samples_from_arrays(
        subject="S-1_x",
        session='we"ird, sess=ion',
        placement="left_thigh",
        serial="A B\\C",
        boot_epoch=3,
        seq=np.arange(n) + 2**33,
        t_sensor_us=np.arange(n) * 10_000 + 2**40,
        acc_mps2=acc,
        gyr_dps=gyr,
        clock=CLOCK,
    )
    for _ in range(2):  # cache empty, then filled
        assert raw_lines(samples) == reference_lines(samples)
    assert float_texts([0.0, -0.0, -0.0, 0.0]) == ["0.0", "-0.0", "-0.0", "0.0"]
    assert float_texts(np.zeros((0, 6))) == []


def test_the_text_cache_is_bounded_and_starts_over(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(points, "_FLOAT_TEXT_MAX", 50)  # the cache lives in `points`
    model._FLOAT_TEXT.clear()
    values = np.arange(200) * 0.1
    assert float_texts(values[:100]) == [repr(v) for v in values[:100].tolist()]
    assert float_texts(values[100:]) == [repr(v) for v in values[100:].tolist()]
    assert len(model._FLOAT_TEXT) <= 100


def reference_series(values: list[list[Any]]) -> RawSeries:
    """`raw_series_from_values` before it skipped sorting rows that InfluxDB already answered in time order."""
    values = sorted(values, key=lambda v: v[0])
    cols = list(zip(*values, strict=True))
    numbers = np.array([cols[i] for i in (6, 7, 8, 9, 10, 11)], dtype=np.float64).T
    return RawSeries(
        time_us=np.array(cols[0], dtype=np.int64),
        seq=np.array(cols[1], dtype=np.int64),
        t_sensor_us=np.array(cols[2], dtype=np.int64),
        boot_epoch=np.array(cols[3], dtype=np.int64),
        serial=tuple(str(v) for v in cols[4]),
        session=tuple(cols[5]),
        acc_mps2=np.ascontiguousarray(numbers[:, :3]),
        gyr_dps=np.ascontiguousarray(numbers[:, 3:]),
    )


def assert_same_series(a: RawSeries, b: RawSeries) -> None:
    for name in ("time_us", "seq", "t_sensor_us", "boot_epoch", "acc_mps2", "gyr_dps"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y), name
        assert x.flags.c_contiguous, name
    assert a.serial == b.serial and a.session == b.session


@pytest.mark.parametrize("shuffle", [False, True])
def test_rows_read_back_become_the_same_series(shuffle: bool) -> None:
    rng = np.random.default_rng(5)
    rows: list[list[Any]] = []
    for i in range(300):  # UTC rows, then sensor-time rows of another policy (negative times), a repeated time
        t = 1_764_000_000_000_000 + 10_000 * i if i < 200 else -(2**52) + 10_000 * i
        rows.append([t, i, 10_000 * i, 7, "GS24-A", "S1-1" if i % 7 else None, *rng.normal(0, 3, 6).tolist()])
    rows.append([rows[5][0], 999, 0, 8, "GS24-B", "S1-2", 1, 2, 3, 4, 5, 6])  # ints, as InfluxDB's JSON writes 4.0
    if shuffle:
        order = rng.permutation(len(rows))
        rows = [rows[i] for i in order]
    assert_same_series(raw_series_from_values([list(r) for r in rows]), reference_series(rows))
    assert len(raw_series_from_values([])) == 0
