"""The display series of packed raw samples (`raw_display`): what Grafana's one-session raw panels plot.

InfluxQL cannot unpack a packed part's string field (`raw_packed`), so a panel asking ``MEAN("acc_x")`` of a
session's samples would see nothing of them. Beside a batch's parts the writer stores one point per run of its
samples within one `DISPLAY_PERIOD_US` of the 1970 grid: the run's sums (``acc_x_sum`` ... ``gyr_z_sum``) and its
sample count ``n``, at the run's first sample's time (a sample's time is its own, so two display points never share
a time and overwrite each other), with ``session``. A panel plots ``SUM("acc_x_sum") / SUM("n")`` per bucket: the
mean of the bucket's samples, whatever batch boundaries split a period into several runs (means of runs would
weigh a split period twice).

Why 0.1 s on the grid: it is below what a session-long panel resolves (a 10-min session over ~1,000 pixels is 0.6 s
a pixel), it is about 5 % of the per-sample layout's field values at 100 Hz (30 points of 7 fields per
subject-second instead of 300 of 11), and Grafana's intervals from 0.1 s up are whole multiples of it on the same
grid: a panel bucket then holds whole periods, and plots what the per-sample layout plots (to the sums' 4
decimals). Zoomed in below 0.1 s a pixel, the panels show 0.1-s means, not samples. The display series is derived
data: never read back as samples, never exported; written again with its batch whenever the batch is (a replay
repairs a lost one), and moved to UTC with the parts.

Units: acc m/s^2 (sums of), gyr deg/s (sums of), times µs since 1970 (or the sensor-time slot's); sums rounded to
4 decimals (a display needs no more, and shorter lines cost the database less to parse). A run whose sum is not a
finite float64 (values beyond ~1e304, which no sensor range gives) has no display point.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from analytics.stores.points import RAW_DISPLAY, _escape_key, _escape_string

DISPLAY_PERIOD_US = 100_000
"""The samples within one such period of the 1970 grid (µs) are summed into one display point."""
FIELDS = ("acc_x_sum", "acc_y_sum", "acc_z_sum", "gyr_x_sum", "gyr_y_sum", "gyr_z_sum")
"""The display point's sum fields, in the value columns' order (acc x y z, gyr x y z)."""


def display_sums(times_us: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run starts (indices), sums (k, 6) and counts (k,) of ``values`` (n, 6) in runs of consecutive samples
    within one `DISPLAY_PERIOD_US` (``times_us`` (n,) µs, in the batch's order)."""
    period = np.asarray(times_us, dtype=np.int64) // DISPLAY_PERIOD_US
    edge = np.empty(len(period), dtype=bool)
    edge[0] = True
    np.not_equal(period[1:], period[:-1], out=edge[1:])
    starts = edge.nonzero()[0]
    counts = np.empty_like(starts)
    np.subtract(starts[1:], starts[:-1], out=counts[:-1])
    counts[-1] = len(period) - starts[-1]
    with np.errstate(over="ignore", invalid="ignore"):  # an overflowing run is left out (`display_lines`)
        sums = np.add.reduceat(values, starts, axis=0)
    return starts, sums, counts


def display_lines(
    subject: str,
    placement: str,
    session: str | None,
    times_us: np.ndarray,
    values: np.ndarray,
    only: Sequence[tuple[int, int]] | None = None,
) -> list[str]:
    """The line protocol of the display points of a batch's samples (``times_us`` (n,) µs, ``values`` (n, 6): acc
    m/s^2 then gyr deg/s); ``only``: just the points whose time lies in one of these ranges (µs, inclusive)."""
    if len(times_us) == 0:
        return []
    starts, sums, counts = display_sums(times_us, np.asarray(values, dtype=np.float64))
    times = np.asarray(times_us, dtype=np.int64)[starts]
    with np.errstate(over="ignore", invalid="ignore"):
        sums = sums.round(4)
    finite = np.isfinite(sums)
    if only is not None or not finite.all():  # the usual batch: every run kept, no indexing
        keep = finite.all(axis=1)
        if only is not None:
            keep &= np.logical_or.reduce([(times >= lo) & (times <= hi) for lo, hi in only] or [np.zeros_like(keep)])
        times, counts, sums = times[keep], counts[keep], sums[keep]
    head = f"{RAW_DISPLAY},placement={_escape_key(placement)},subject={_escape_key(subject)} "
    tail = "" if session is None else f",session={_escape_string(session)}"
    # one f-string per point, the field names written out (`FIELDS`' order): this runs for every batch stored
    return [
        f"{head}acc_x_sum={ax!r},acc_y_sum={ay!r},acc_z_sum={az!r},gyr_x_sum={gx!r},gyr_y_sum={gy!r},"
        f"gyr_z_sum={gz!r},n={c}i{tail} {t}"
        for t, c, (ax, ay, az, gx, gy, gz) in zip(times.tolist(), counts.tolist(), sums.tolist(), strict=True)
    ]


__all__ = ["DISPLAY_PERIOD_US", "FIELDS", "display_lines", "display_sums"]
