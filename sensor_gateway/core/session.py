"""Sessions without typing: a session opens when the kit streams and the patient moves, and closes
after ``still_timeout_s`` seconds of stillness; commands may also start/stop it explicitly.

Motion = any sensor's gyroscope magnitude above ``motion_dps`` (deg/s) in a batch. Times are host seconds.
A restarted gateway hands back the session it had open (`resume`), with the time of its last motion, so the
stillness timeout counts from that motion and not from the restart.

`SessionTracker` decides (pure); `Sessions` carries its decisions out as markers in the outbox: session_start,
session_end (naming, per sensor, the session's first sample as well as its last: the worker's final analysis
waits for the session's start, `SensorState.session_first`), a window marker (up to the samples published) after a
batch closes, at most every ``window_s`` s of a session, and the activity markers of commands. The open
session's last motion is saved with each of its batches (same transaction), and each sensor's cursor keeps the
session's first sample: a restart less than ``still_timeout_s`` after it continues the session; a later one
first sends the session's ``session_end`` (referring to its last committed samples), as the running gateway
would have.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, replace

from gaitsym_common.uplink import envelope as env
from gaitsym_common.uplink.topics import topic
from sensor_gateway.core.config import GatewayConfig
from sensor_gateway.core.pump import Pump
from sensor_gateway.core.sensors import SESSION_START_UNKNOWN, SensorState
from sensor_gateway.timing.host_clock import HostClock

log = logging.getLogger(__name__)


@dataclass
class SessionTracker:
    still_timeout_s: float = 120.0
    motion_dps: float = 15.0
    session: str | None = None
    last_motion_s: float | None = None
    started_s: float | None = None
    counter: int = 0

    def motion(self, peak_dps: float, now_s: float) -> str | None:
        """Feed one batch's peak angular rate; returns "session_start" when a session opens."""
        if peak_dps < self.motion_dps:
            return None
        self.last_motion_s = now_s
        if self.session is None:
            return "session_start"
        return None

    def open(self, session_id: str, now_s: float) -> None:
        self.session = session_id
        self.started_s = now_s
        self.last_motion_s = now_s
        self.counter += 1

    def resume(self, session_id: str, last_motion_s: float, now_s: float) -> None:
        """Continue a session an earlier gateway process opened (no second start; the counter is unchanged)."""
        self.session = session_id
        self.started_s = now_s
        self.last_motion_s = last_motion_s

    def due_to_close(self, now_s: float) -> bool:
        return (
            self.session is not None
            and self.last_motion_s is not None
            and now_s - self.last_motion_s >= self.still_timeout_s
        )

    def close(self) -> str | None:
        ended, self.session, self.started_s = self.session, None, None
        return ended


class _Now:
    """A marker's default time: now (when the clock is synchronised)."""


_NOW = _Now()


class Sessions:
    """The gateway's sessions: opened and closed through `tracker`, announced by markers committed to the outbox
    (through ``pump``) that refer to the samples of ``sensors``."""

    def __init__(
        self,
        config: GatewayConfig,
        clock: HostClock,
        tracker: SessionTracker,
        sensors: dict[str, SensorState],
        pump: Pump,
    ) -> None:
        self.config = config
        self.clock = clock
        self.tracker = tracker
        self.sensors = sensors
        self.pump = pump
        self._last_window_s = 0.0
        self._last_window: dict[str, env.SensorPosition] = {}
        self._first_new_s: float | None = None
        """When a sensor first published a batch since the last window marker (None: none has)."""

    def _utc_of(self, host_s: float) -> float:
        return self.clock.utc() - (self.clock.monotonic() - host_s)

    def state(self) -> dict[str, object]:
        """The ``session`` entry of the gateway state: the open session and the UTC time of its last motion
        (written with every batch of the session, in the batch's own transaction), so that a restarted
        gateway knows whether the stillness timeout passed while it was down."""
        last = self.tracker.last_motion_s
        return {
            "id": self.tracker.session,
            "counter": self.tracker.counter,
            "last_motion_utc_s": self._utc_of(last) if self.tracker.session and last is not None else None,
        }

    def restore(self, saved: dict[str, object], cursors: dict[str, dict[str, object]]) -> None:
        """The session an earlier process of this gateway left open (a restart, a crash, kill -9, a power cut):
        continue it when its last motion is less than ``still_timeout_s`` ago on a synchronised clock (the running
        gateway would still have it open), else send its ``session_end`` now, before anything else, referring to
        the last samples of it the outbox committed (the ``cursors``), so that the worker runs its final
        analysis."""
        counter = saved.get("counter", 0)
        self.tracker.counter = int(counter) if isinstance(counter, int | float) else 0
        sid = saved.get("id")
        if not isinstance(sid, str) or not sid:
            return
        for placement, first in _session_firsts(sid, cursors).items():
            if placement in self.sensors:
                self.sensors[placement].session_first = (sid, first)
        # older gateways saved only the session's opening time ("utc_s"); an unsynchronised clock (a computer
        # that just booted after a power cut, before NTP) cannot say how long the gateway was down: the session
        # is ended then (two parts with final results each, rather than a later visit merged into it)
        last = saved.get("last_motion_utc_s", saved.get("utc_s"))
        still_s = self.clock.utc() - float(last) if isinstance(last, int | float) else math.inf
        now = self.clock.monotonic()
        if still_s < self.config.still_timeout_s and self.clock.utc_synced():
            self.tracker.resume(sid, now - max(still_s, 0.0), now)
            log.info("continuing session %s (last motion %.0f s ago)", sid, still_s)
            return
        positions: dict[str, env.SensorPosition] = {}
        mapped: list[float] = []
        for placement, cur in cursors.items():
            serial, boot, next_seq = cur.get("serial"), cur.get("boot_epoch"), cur.get("next_seq")
            # a cursor written before the session opened (a sensor that sent nothing in it) is not part of it
            if placement not in self.sensors or cur.get("session", sid) != sid:
                continue
            if not isinstance(serial, str) or not isinstance(boot, int) or not isinstance(next_seq, int):
                continue
            end = env.SensorPosition(serial, boot, next_seq - 1)
            positions[placement] = replace(end, session_seq_first=self.sensors[placement].session_seq_first(sid, end))
            if isinstance(cur.get("mapped_last_utc_s"), int | float):
                mapped.append(float(cur["mapped_last_utc_s"]))  # type: ignore[arg-type]
        log.warning("session %s ended while the gateway was down (last motion %.0f s ago): closing it", sid, still_s)
        self.marker(
            "session_end",
            now,
            session=sid,
            positions=positions,
            t_utc_s=max(mapped) if mapped else None,  # its last sample's time, not the restart's
            state={"session": {"id": None, "counter": self.tracker.counter, "last_motion_utc_s": None}},
        )

    def open(self, now: float, source: str = "gateway") -> None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self.clock.utc())) if self.clock.utc_synced() else None
        sid = f"{self.config.subject}-{stamp or f'm{int(now)}'}-{self.tracker.counter + 1}"
        self.tracker.open(sid, now)
        self._first_new_s = None  # a window of the session before waits for no sensor of this one
        self._last_window_s = now
        self.marker("session_start", now, source=source, state={"session": self.state()})

    def close(self, now: float, source: str = "gateway") -> str | None:
        closed = {"id": None, "counter": self.tracker.counter, "last_motion_utc_s": None}
        self.marker("session_end", now, source=source, state={"session": closed})
        return self.tracker.close()

    def tick(self, now: float) -> None:
        """A window marker when one is due; the session's end after stillness."""
        if self.tracker.session is None:
            return
        self._window_if_due(now)
        if self.tracker.due_to_close(now):
            self.close(now)

    def _window_if_due(self, now: float) -> None:
        # A window refers to samples already published (in batches ahead of it in the outbox), so a worker can
        # analyse it on arrival instead of waiting for a batch still open here (up to batch_s more). Batches of
        # all sensors close at the same instants (`ingest.batch_closes_at`) and the worker's analysis needs every
        # sensor's samples: one goes out once every connected sensor published since the previous window, or
        # window_wait_s after the first one did (a silent sensor), at least window_s apart.
        published = {p: s.published for p, s in self.sensors.items() if s.published is not None}
        new = {p for p, pos in published.items() if self._last_window.get(p) != pos}
        if not new:
            return
        if self._first_new_s is None:
            self._first_new_s = now
        connected = {p for p, s in self.sensors.items() if s.link == "connected"}
        waited = now - self._first_new_s >= self.config.window_wait_s
        if (connected <= new or waited) and now - self._last_window_s >= self.config.window_s:
            self._last_window_s, self._last_window, self._first_new_s = now, published, None
            self.marker("window", now, positions=published)

    def marker(
        self,
        type_: str,
        now: float,
        source: str = "gateway",
        positions: dict[str, env.SensorPosition] | None = None,
        session: str | None = None,
        t_utc_s: float | _Now | None = _NOW,
        state: dict[str, object] | None = None,
        **activity: object,
    ) -> None:
        """Publish a marker of ``session`` (default: the open one) referring to ``positions`` (default: each
        sensor's newest sample), stamped ``t_utc_s`` (default: now, when the clock is synchronised); ``state``
        is committed in the marker's own transaction."""
        sid = session or self.tracker.session
        if sid is None:
            return
        last = (
            positions
            if positions is not None
            else {
                p: env.SensorPosition(s.info.serial, s.info.boot_epoch, s.stream.last_seq)
                for p, s in self.sensors.items()
                if s.info is not None and s.stream is not None and s.stream.last_seq is not None
            }
        )
        if type_ == "session_end" and positions is None:
            # where the session starts per sensor: the worker's final analysis waits for the samples from there
            last = {
                p: replace(pos, session_seq_first=self.sensors[p].session_seq_first(sid, pos))
                for p, pos in last.items()
            }
        key = ",".join(f"{p}={pos.seq}" for p, pos in sorted(last.items()))
        marker = env.Marker(
            kind="marker",
            msg_id=f"marker:{sid}:{type_}:{key}:{activity.get('set', '')}",
            subject=self.config.subject,
            session=sid,
            type=type_,
            t_utc_s=(self.clock.utc() if self.clock.utc_synced() else None) if isinstance(t_utc_s, _Now) else t_utc_s,
            last_seq=last,
            exercise=activity.get("exercise"),  # type: ignore[arg-type]
            side=activity.get("side"),  # type: ignore[arg-type]
            set=activity.get("set"),  # type: ignore[arg-type]
            source=source,
        )
        self.pump.put(marker.msg_id, topic(self.config.subject, "marker"), env.encode(marker), "marker", state=state)


def _session_firsts(session: str, cursors: dict[str, dict[str, object]]) -> dict[str, env.SensorPosition]:
    """Per placement, the first sample of ``session`` in the sensor boot of the last batch committed (from the
    cursors an earlier gateway process committed with it; `SESSION_START_UNKNOWN` from a gateway that did not record
    it)."""
    out = {}
    for placement, cur in cursors.items():
        serial, boot, first = cur.get("serial"), cur.get("boot_epoch"), cur.get("session_seq_first")
        if cur.get("session") != session or not isinstance(serial, str) or not isinstance(boot, int):
            continue
        # a cursor of the session without it (a gateway version before it was kept): unknown, not the next batch
        known = first if isinstance(first, int) and not isinstance(first, bool) and first >= 0 else None
        out[placement] = env.SensorPosition(serial, boot, SESSION_START_UNKNOWN if known is None else known)
    return out
