"""Sessions without typing (pure): a session opens when the kit streams and the patient moves, and closes
after ``still_timeout_s`` seconds of stillness; commands may also start/stop it explicitly.

Motion = any sensor's gyroscope magnitude above ``motion_dps`` (deg/s) in a batch. Times are host seconds.
A restarted gateway hands back the session it had open (`resume`), with the time of its last motion, so the
stillness timeout counts from that motion and not from the restart.
"""

from __future__ import annotations

from dataclasses import dataclass


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
