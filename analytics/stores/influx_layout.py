"""Which raw layout an InfluxDB store writes (docs/raw-layout-packed.md): one point per sample (``points``, the
``raw`` measurement) or one per batch part (``packed``, ``raw_packed`` with its display series).

Every reader reads both layouts; only the writer chooses. A worker older than the packed layout does not read
``raw_packed``: its write check would not see packed samples and could store a colliding sample over them, and its
analyses would miss them. So a clinic's workers must switch together, after every one of them reads both: the
choice is a marker in the database (`RAW_LAYOUT`, in the results policy, kept forever), which every worker reads,
not a setting of each worker. A store whose ``raw_layout`` is ``auto`` (the default) follows the marker, read when
it first writes and again every ``layout_recheck_s``: a clinic switches without restarting its workers. No marker
means ``points`` (a database from before the marker, whose workers may be older); `influx_setup` marks a database
nothing was written to yet ``packed`` (no older worker writes to it). ``points`` or ``packed`` in the store's URL
overrides the marker (benches, tests, a clinic that must pin one).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Literal

from analytics.stores.errors import InvalidLayoutMarker, StoreConfigError, StoreError
from analytics.stores.influx_codec import from_clause
from analytics.stores.influx_transport import InfluxConfig, InfluxTransport
from analytics.stores.points import RAW_LAYOUT, Point, point_line

log = logging.getLogger("gaitsym.stores")

Layout = Literal["points", "packed"]
LAYOUTS: tuple[Layout, ...] = ("points", "packed")
UNMARKED: Layout = "points"
"""What a database without a marker is written in (its workers may predate the packed layout)."""


def marker_line(layout: str, time_us: int) -> str:
    """The marker point saying that from ``time_us`` on raw samples are written in ``layout``."""
    if layout not in LAYOUTS:
        raise StoreConfigError(f"raw layout {layout!r} is neither points nor packed")
    return point_line(Point(RAW_LAYOUT, (), {"layout": layout}, time_us))


def marker_query(config: InfluxConfig) -> str:
    return f'SELECT last("layout") FROM {from_clause(config.database, config.results_rp, RAW_LAYOUT)}'


class RawLayout:
    """The layout one store writes (module docstring). Thread-safe: a worker's writer and its other threads share
    a store."""

    def __init__(
        self, config: InfluxConfig, transport: InfluxTransport, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config
        self.transport = transport
        self._clock = clock
        self._lock = threading.Lock()
        self._followed: Layout = UNMARKED
        self._read_at: float | None = None

    def _latest(self) -> tuple[object, int] | None:
        """The latest marker point as stored (its value unchecked, its time µs), None when there is none."""
        for series in self.transport.query(marker_query(self.config)):
            for t, value in series.get("values") or []:
                return value, int(t)
        return None

    def marker(self) -> tuple[Layout, int] | None:
        """The database's marker: (layout, µs since 1970 it was set), None when unmarked. StoreError when the
        server cannot be asked; InvalidLayoutMarker names a value that is no layout (the database is shared: read
        as untrusted)."""
        found = self._latest()
        if found is None:
            return None
        value, t = found
        if value not in LAYOUTS:
            raise InvalidLayoutMarker(value)
        return value, t  # type: ignore[return-value]

    def writes(self) -> Layout:
        """The layout this store writes now."""
        if self.config.raw_layout != "auto":
            return self.config.raw_layout
        with self._lock:
            now = self._clock()
            if self._read_at is None or now - self._read_at >= self.config.layout_recheck_s:
                self._read_at = now
                try:
                    found = self.marker()
                except StoreError as exc:  # kept as it was; asked again at the next recheck
                    log.warning("raw layout marker not read (writing %s meanwhile): %s", self._followed, exc)
                else:
                    layout = UNMARKED if found is None else found[0]
                    if layout != self._followed:
                        log.info("raw layout: writing %s from now on (the database's marker)", layout)
                    self._followed = layout
            return self._followed

    def mark(self, layout: str, now_us: int | None = None) -> tuple[Layout, int]:
        """Set the database's marker to ``layout``: every store following it writes so at its next recheck. Written
        after the latest marker even when that one is dated ahead of this machine's clock (the latest is the one in
        force), then read back; returns it. StoreError when the server refused it or another marker came after."""
        now = time.time_ns() // 1000 if now_us is None else now_us
        latest = self._latest()
        t = now if latest is None else max(now, latest[1] + 1)
        line = marker_line(layout, t)  # StoreConfigError for a layout that is neither
        report = self.transport.write_lines(self.config.results_rp, [line], RAW_LAYOUT, None)
        if report.quarantined:
            raise StoreError(f"the server refused the {RAW_LAYOUT} marker")
        with self._lock:
            self._read_at = None  # read again at the next write
        found = self.marker()
        if found is None or found[0] != layout:
            raise StoreError(f"the {RAW_LAYOUT} marker reads {found!r} after writing {layout!r}: set again")
        return found


__all__ = ["LAYOUTS", "UNMARKED", "Layout", "RawLayout", "marker_line", "marker_query"]
