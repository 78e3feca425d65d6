"""The worker's cache of what it stored (`analytics.worker.recent.RecentStream`) answers a range from its newest
chunks back, and joins the batches being written without a sort when they follow those stored: the answers must be
those of a scan of every chunk, whatever the batches' lengths, order of arrival and overlaps."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.worker.recent import RecentStream


class Batch:
    """The parts of `RawSamples` the cache reads."""

    def __init__(self, first: int, n: int, session: str) -> None:
        self.seq = np.arange(first, first + n, dtype=np.int64)
        self.t_sensor_us = self.seq * 10_000
        self.acc_mps2 = np.column_stack([self.seq, self.seq, self.seq]).astype(np.float64)
        self.gyr_dps = -self.acc_mps2
        self.session = session

    def time_us(self) -> np.ndarray:
        return self.seq * 10_000 + 1_700_000_000_000_000


def scan(stream: RecentStream, first: int, last: int) -> list[int]:
    """Sequence numbers of ``first..last`` in every chunk, by a scan of all of them."""
    return sorted({int(s) for c in stream.chunks for s in c.seq if first <= s <= last})


@pytest.mark.parametrize("seed", range(6))
def test_ranges_from_the_newest_chunks_back_are_what_a_scan_of_every_chunk_finds(seed: int) -> None:
    rng = np.random.default_rng(seed)
    stored, writing = RecentStream(), RecentStream()
    firsts = np.cumsum(rng.integers(1, 120, size=40))
    lengths = rng.integers(1, 400, size=40)  # one long batch makes older chunks reach far forward
    order = rng.permutation(40) if seed % 2 else np.arange(40)
    for k in order:
        target = writing if k >= 34 else stored
        target.add(Batch(int(firsts[k]), int(lengths[k]), f"S-{k % 2}"), keep=100_000)  # type: ignore[arg-type]
    joined = stored.joined(writing)
    assert [c.seq_first for c in joined.chunks] == sorted(c.seq_first for c in joined.chunks)
    top = int(firsts[-1] + lengths[-1])
    for _ in range(60):
        first = int(rng.integers(0, top))
        last = first + int(rng.integers(0, 300))
        for stream in (stored, writing, joined):
            want = scan(stream, first, last)
            index = stream.index(first, last)
            taken = stream.take(first, last, "S-1")
            if stream.start() is None or stream.start() > first:  # type: ignore[operator]
                assert index is None and taken is None
                continue
            assert index is not None and taken is not None
            held = sorted(
                {s for a, b, _ in index.batches for s in range(a, b + 1) if first <= s <= last}
                & {int(s) for c in stream.chunks for s in c.seq}
            )
            assert held == want
            samples, _ = taken
            assert sorted(set(samples.seq.tolist())) == want
            assert np.array_equal(samples.acc[:, 0], samples.seq.astype(np.float64))
