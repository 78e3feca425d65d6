"""The worker's per-message and per-window shortcuts give exactly what the plain code gives: a batch of equal
packets decodes to the values each packet decodes to on its own; the bounded JSON loader's decoders made once
refuse what `json.loads` refuses, with its words; the cache's slices are its masks; a lacking range is judged from
the chunks that overlap it as from all of them."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from analytics.worker.raw_ingest import _uncovered
from analytics.worker.recent import RecentSamples, RecentStream
from firmware_protocol.packet import ImuPacket, decode_packet, encode_packet
from firmware_protocol.packet_arrays import decode_packets
from firmware_protocol.wire import U32_MODULUS
from gaitsym_common.errors import UplinkError
from gaitsym_common.uplink import limits


def packets(rng: random.Random, sizes: list[int], ranges: list[tuple[int, int]], seq0: int) -> list[bytes]:
    out, seq = [], seq0
    for n, (acc_g, gyr_dps) in zip(sizes, ranges, strict=True):
        samples = tuple(tuple(rng.randint(-32768, 32767) for _ in range(6)) for _ in range(n))
        packet = ImuPacket(
            sequence=seq % U32_MODULUS,
            timestamp_us=(seq * 9_615) % U32_MODULUS,
            acc_range_g=acc_g,
            gyr_range_dps=gyr_dps,
            samples=samples,  # type: ignore[arg-type]
        )
        out.append(encode_packet(packet))
        seq += n
    return out


def one_by_one(data: list[bytes], seq0: int, rate_hz: float) -> tuple[np.ndarray, ...]:
    """Each packet decoded on its own (`decode_packet`), unwrapped and timed as `decode_packets` documents it."""
    seq, ticks, acc, gyr = [], [], [], []
    t0 = seq0 * 9_615
    for d in data:
        p = decode_packet(d)
        s = seq0 + (p.sequence - seq0) % U32_MODULUS
        t = t0 + (p.timestamp_us - t0) % U32_MODULUS
        for i, row in enumerate(p.samples):
            seq.append(s + i)
            ticks.append(t + int(np.rint(i * 1e6 / rate_hz)))
            acc.append([float(v) * p.acc_scale_mps2 for v in row[:3]])
            gyr.append([float(v) * p.gyr_scale_dps for v in row[3:]])
    return np.array(seq), np.array(ticks), np.array(acc), np.array(gyr)


@pytest.mark.parametrize(
    ("sizes", "ranges"),
    [
        ([10] * 10, [(16, 2000)] * 10),  # the usual batch: one packet size, one range setting
        ([19] * 5, [(2, 250)] * 5),
        ([1], [(4, 500)]),
        ([10, 10, 7], [(16, 2000)] * 3),  # a short last packet
        ([10, 10], [(16, 2000), (8, 2000)]),  # ranges changed mid-batch
        ([10, 10], [(16, 2000), (16, 1000)]),
    ],
)
@pytest.mark.parametrize("rate_hz", [100.0, 104.0, 333.0])
def test_a_batch_decodes_to_what_each_packet_decodes_to(
    sizes: list[int], ranges: list[tuple[int, int]], rate_hz: float
) -> None:
    rng = random.Random(len(sizes) * 1000 + int(rate_hz))
    seq0 = U32_MODULUS - 25  # across the u32 wrap
    data = packets(rng, sizes, ranges, seq0)
    got = decode_packets(data, seq_first=seq0, timestamp_us_first=seq0 * 9_615, sample_rate_hz=rate_hz)
    want = one_by_one(data, seq0, rate_hz)
    for array, expected, dtype in zip(
        (got.seq, got.t_sensor_us, got.acc_mps2, got.gyr_dps),
        want,
        (np.int64, np.int64, np.float64, np.float64),
        strict=True,
    ):
        assert array.dtype == dtype and array.flags.c_contiguous
        assert array.shape == expected.shape and np.array_equal(array, expected)


@pytest.mark.parametrize("payload", ['\ufeff{"v": 1}', '\ufeff{"v": 1}'.encode(), "\ufeff", b"\xef\xbb\xbf[1]"])
def test_a_byte_order_mark_is_refused_in_json_loads_words(payload: str | bytes) -> None:
    text = payload.decode() if isinstance(payload, bytes) else payload
    with pytest.raises(json.JSONDecodeError) as plain:
        json.loads(text)
    with pytest.raises(UplinkError) as bounded:
        limits.load_bounded_json(payload)
    assert str(bounded.value) == str(UplinkError("payload", f"not JSON ({plain.value.msg} at char {plain.value.pos})"))


@pytest.mark.parametrize(
    ("text", "deep"),
    [
        ('{"a": "é[[[[[[[[[[[[[[[[[[[["}', False),  # brackets in a string, after a two-byte character
        ("[" * 9 + "]" * 9, True),
        ("[" * 8 + "]" * 8, False),
        ('{"€": ' + "[" * 9 + "]" * 9 + "}", True),
        ("[1, 2] " * 9, False),  # not deep, but more brackets than the quick pass lets through: not JSON
    ],
)
def test_nesting_is_judged_on_the_bytes_as_on_the_text(text: str, deep: bool) -> None:
    try:
        json.loads(text)
        valid = True
    except json.JSONDecodeError:
        valid = False
    for payload in (text, text.encode()):
        if deep:
            with pytest.raises(UplinkError, match="nested deeper"):
                limits.load_bounded_json(payload)
        elif valid:
            assert limits.load_bounded_json(payload) == json.loads(text)
        else:
            with pytest.raises(UplinkError, match="not JSON"):
                limits.load_bounded_json(payload)


class Batch:
    """The parts of `RawSamples` the cache reads."""

    def __init__(self, seq: np.ndarray, session: str) -> None:
        self.seq = seq.astype(np.int64)
        self.t_sensor_us = self.seq * 10_000 + 3
        self.acc_mps2 = np.column_stack([self.seq, -self.seq, self.seq * 2]).astype(np.float64)
        self.gyr_dps = self.acc_mps2 / 7.0
        self.session = session

    def time_us(self) -> np.ndarray:
        return self.seq * 10_000 + 1_700_000_000_000_000


def masked_take(stream: RecentStream, first: int, last: int, session: str) -> tuple[RecentSamples, int | None] | None:
    """`RecentStream.take` as a mask over the overlapping chunks joined (its definition)."""
    start = stream.start()
    if start is None or start > first:
        return None
    parts = stream.overlapping(first, last)
    if not parts:
        return RecentSamples.empty(), None
    seq = np.concatenate([c.seq for c in parts])
    t = np.concatenate([c.time_us for c in parts])
    ticks = np.concatenate([c.t_sensor_us for c in parts])
    acc = np.concatenate([c.acc for c in parts])
    gyr = np.concatenate([c.gyr for c in parts])
    keep = (seq >= first) & (seq <= last)
    out = RecentSamples(seq[keep], t[keep], ticks[keep], acc[keep], gyr[keep])
    own = next((c for c in parts if c.session == session), None)
    if own is None or not len(out):
        return out, None
    at = min(int(np.searchsorted(out.seq, max(own.seq_first, first))), len(out) - 1)
    return out, int(out.time_us[at])


@pytest.mark.parametrize("seed", range(4))
def test_the_caches_slices_are_its_masks_and_its_overlapping_chunks_decide_what_lacks(seed: int) -> None:
    rng = np.random.default_rng(seed)
    stream = RecentStream()
    at = 0
    for k in range(30):
        at += int(rng.integers(-40, 150))  # overlapping batches, holes between batches
        n = int(rng.integers(1, 200))
        seq = at + np.cumsum(rng.integers(1, 3, size=n))  # holes inside a batch too
        stream.add(Batch(seq, f"S-{k % 3}"), keep=100_000)  # type: ignore[arg-type]
    stream.gaps = [(int(a), int(a + rng.integers(0, 30))) for a in rng.integers(0, at, size=5)]
    for _ in range(200):
        first = int(rng.integers(-50, at + 300))
        last = first + int(rng.integers(-2, 400))
        got, want = stream.take(first, last, "S-1"), masked_take(stream, first, last, "S-1")
        if want is None:
            assert got is None
        else:
            assert got is not None and got[1] == want[1]
            for a, b in zip(vars(got[0]).values(), vars(want[0]).values(), strict=True):
                assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
        every = [(c.seq_first, c.seq_last) for c in stream.chunks] + stream.gaps
        near = [(c.seq_first, c.seq_last) for c in stream.overlapping(first, last)] + stream.gaps
        assert _uncovered(first, last, near) == _uncovered(first, last, every)
