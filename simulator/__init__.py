"""The virtual sensor kit: a simulated chronic-low-back-pain patient wearing pelvis and thigh IMUs.

Public API (imports numpy on use, not on `import simulator`):

- `SessionConfig` (config.py): what to simulate; `simulate_session(config, **overrides) -> SimulatedSession`
  (session.py): the Recording (analytics.recording.io) and truth (gaitsym.result/1) without any IO.
- `packets.simulated_sensors(session)`, `packets.iter_packets(session)`: the firmware_protocol packet stream
  as it reaches the host, merged over sensors in arrival order.
- `gaitsym simulate OUT_DIR` (cli.py) writes the recording folder with truth.json.

Modules follow the data flow: session_script -> gait_model / exercises -> kinematics -> imu_model -> truth,
then packets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import SessionConfig

if TYPE_CHECKING:
    from .session import SimulatedSession


def simulate_session(config: SessionConfig | None = None, **overrides: Any) -> SimulatedSession:
    from .session import simulate_session as run

    return run(config, **overrides)


__all__ = ["SessionConfig", "SimulatedSession", "simulate_session"]
