"""The display series of packed raw samples (`raw_display`): what Grafana's one-session raw panels plot.

InfluxQL cannot unpack a packed part's string field (`raw_packed`), so a panel asking ``MEAN("acc_x")`` of a
session's samples would see nothing of them. Beside a batch's parts the writer stores one point per run of its
samples within one `DISPLAY_PERIOD_US` of the 1970 grid: their means, at the run's first sample's time (a sample's
time is its own, so two display points never share a time and overwrite each other), with the field names the
per-sample layout uses (``acc_x`` ... ``gyr_z``, ``session``) and ``n``, the samples averaged.

Why 0.1 s on the grid: it is below what a session-long panel resolves (a 10-min session over ~1,000 pixels is 0.6 s
a pixel), it is about 5 % of the per-sample layout's field values at 100 Hz (30 points of 7 fields per
subject-second instead of 300 of 11), and Grafana's intervals from 0.1 s up are whole multiples of it on the same
grid: a panel bucket holds whole display periods, so it plots what the per-sample layout plots (a batch ending
inside a period splits it in two points, weighted alike by ``MEAN``: the only difference). Zoomed in below 0.1 s
a pixel, the panels show those means, not samples. The display series is derived data: never read back as samples,
never exported, written again whenever its samples are (a move to UTC writes it with the moved parts).

Units: acc m/s^2, gyr deg/s, times µs since 1970 (or the sensor-time slot's); values rounded to 4 decimals (a
display needs no more, and shorter lines cost the database less to parse).
"""

from __future__ import annotations

import numpy as np

from analytics.stores.points import RAW_DISPLAY, _escape_key, _escape_string

DISPLAY_PERIOD_US = 100_000
"""The samples within one such period of the 1970 grid (µs) are averaged into one display point."""
FIELDS = ("acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z")
"""The per-sample layout's value fields, in the columns' order (acc x y z, gyr x y z)."""


def display_means(times_us: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run starts (indices), means (k, 6) and counts (k,) of ``values`` (n, 6) in runs of consecutive samples
    within one `DISPLAY_PERIOD_US` (``times_us`` (n,) µs, in the batch's order)."""
    period = np.asarray(times_us, dtype=np.int64) // DISPLAY_PERIOD_US
    edge = np.empty(len(period), dtype=bool)
    edge[0] = True
    np.not_equal(period[1:], period[:-1], out=edge[1:])
    starts = np.flatnonzero(edge)
    counts = np.diff(starts, append=len(period))
    means = np.add.reduceat(values, starts, axis=0) / counts[:, None]
    return starts, means, counts


def display_lines(
    subject: str, placement: str, session: str | None, times_us: np.ndarray, values: np.ndarray
) -> list[str]:
    """The line protocol of the display points of a batch's samples (``times_us`` (n,) µs, ``values`` (n, 6): acc
    m/s^2 then gyr deg/s)."""
    if len(times_us) == 0:
        return []
    starts, means, counts = display_means(times_us, np.asarray(values, dtype=np.float64))
    head = f"{RAW_DISPLAY},placement={_escape_key(placement)},subject={_escape_key(subject)} "
    tail = "" if session is None else f",session={_escape_string(session)}"
    times = np.asarray(times_us)[starts].tolist()
    rows = np.round(means, 4).tolist()
    # one f-string per point, the field names written out (`FIELDS`' order): this runs for every batch stored
    return [
        f"{head}acc_x={ax!r},acc_y={ay!r},acc_z={az!r},gyr_x={gx!r},gyr_y={gy!r},gyr_z={gz!r},n={c}i{tail} {t}"
        for t, c, (ax, ay, az, gx, gy, gz) in zip(times, counts.tolist(), rows, strict=True)
    ]


__all__ = ["DISPLAY_PERIOD_US", "FIELDS", "display_lines", "display_means"]
