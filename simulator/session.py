"""simulate_session: script -> segment motion -> sensor signals + truth, without any file IO.

Data flow: session_script.build_script (activities) -> gait_model.plan_bout for every walking bout ->
gait_model.impose_stance_asymmetry over the whole session -> per activity a local motion block (gait_model,
exercises) placed one after the other in the home (heading and position carry over), joined by C2-smooth
transitions -> imu_model (mounting, acc/gyr, noise, bias) -> truth.build_truth.

Random streams are independent per concern (numpy SeedSequence(seed).spawn): gait, exercises, mounting and
biases, noise, packets. So the truth depends only on the seed and the movement settings, never on mounting,
noise or the packet link.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from analytics.recording.io import ExerciseMarker, Recording

from . import exercises as ex
from .config import SessionConfig
from .gait_model import BoutPlan, impose_stance_asymmetry, plan_bout, walk_bout_pose
from .imu_model import SensorModel, draw_sensors, measure
from .kinematics import THIGHS, BodyMotion, Pose, pose_at, transition, write_pose
from .session_script import POSTURE, TRANSITION_S, Activity, build_script, plan_walk
from .truth import MarkedSet, build_truth

STREAMS = ("gait", "exercises", "sensors", "noise", "packets", "walker")
"""Independent random streams; ``walker`` draws only what walkers beyond the default adult add
(simulator.walkers), so the default adult's sessions never move with it."""


def random_streams(seed: int) -> dict[str, np.random.Generator]:
    children = np.random.SeedSequence(seed).spawn(len(STREAMS))
    return {name: np.random.default_rng(child) for name, child in zip(STREAMS, children, strict=True)}


@dataclass
class SimulatedSession:
    """A simulated session: the recording as the sensors saw it, and the truth behind it."""

    config: SessionConfig
    recording: Recording
    truth: dict[str, Any]
    motion: BodyMotion
    """True segment orientations (world <- segment) and sensor-point positions."""
    sensors: dict[str, SensorModel]
    """Mounting (segment <- sensor) and biases per placement."""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Block:
    """One piece of the timeline before placement."""

    posture: str
    pose: Pose
    impacts: np.ndarray | None = None
    turn_rad: float = 0.0
    end_xy: np.ndarray | None = None
    activity: Activity | None = None
    exercise_block: ex.ExerciseBlock | None = None
    bout: BoutPlan | None = None
    walk_id: int | None = None


def simulate_session(config: SessionConfig | None = None, **overrides: Any) -> SimulatedSession:
    """Simulate one session (see the package docstring); raises SimulationError for bad settings."""
    cfg = replace(config or SessionConfig(), **overrides).validate()
    rate = float(cfg.rate_hz)
    rng = random_streams(cfg.seed)
    script = build_script(cfg)

    # 1. timing of every walking bout first: the stance asymmetry is imposed over the whole session
    plans: list[tuple[str, Any]] = []
    bouts: list[BoutPlan] = []
    for item_index, activity in enumerate(script):
        if activity.exercise != "walk":
            plans.append(("activity", activity))
            continue
        leading = "left"
        for n_steps, pause_s in plan_walk(activity.duration_s, cfg.cadence_steps_per_min, rng["gait"]):
            bout = plan_bout(cfg, rng["gait"], n_steps, leading, turn=n_steps >= 16, walker_rng=rng["walker"])
            bouts.append(bout)
            plans.append(("bout", (bout, item_index)))
            if pause_s > 0:
                plans.append(("pause", pause_s))
            leading = "right" if leading == "left" else "left"
    impose_stance_asymmetry(bouts, cfg.stance_asymmetry_pct)

    # 2. local motion of each block
    blocks: list[_Block] = []
    for kind, payload in plans:
        if kind == "bout":
            bout, item_index = payload
            pose, impacts, turn, end = walk_bout_pose(bout, cfg, rng["gait"], rate)
            blocks.append(_Block("upright", pose, impacts, turn, end[:2], bout=bout, walk_id=item_index))
        elif kind == "pause":
            pause = ex.stand(cfg, rng["gait"], rate, float(payload))
            blocks.append(_Block("upright", pause.pose, exercise_block=pause))
        else:
            activity = payload
            done = _exercise_block(activity, cfg, rng["exercises"], rate)
            blocks.append(_Block(POSTURE[activity.exercise], done.pose, activity=activity, exercise_block=done))

    # 3. place the blocks one after the other, with transitions between them
    gaps = [0] + [
        round(TRANSITION_S[a.posture == b.posture and a.posture != "side"] * rate)
        for a, b in itertools.pairwise(blocks)
    ]
    starts, cursor = [], 0
    for block, gap in zip(blocks, gaps, strict=True):
        cursor += gap
        starts.append(cursor)
        cursor += len(block.pose.pelvis)
    motion = BodyMotion.empty(cursor, rate)
    heading, origin = 0.0, np.zeros(3)
    for block, start in zip(blocks, starts, strict=True):
        write_pose(motion, start, block.pose, heading, origin)
        if block.impacts is not None:
            n = len(block.pose.pelvis)
            motion.impacts_mps2[start : start + n] = Rotation.from_euler("z", heading).apply(block.impacts)
        if block.bout is not None:
            block.bout.start_s = start / rate
        if block.end_xy is not None:
            origin = origin + Rotation.from_euler("z", heading).apply([*block.end_xy, 0.0])
            heading += block.turn_rad
    for start, gap in zip(starts[1:], gaps[1:], strict=True):
        if gap:
            bridge = transition(pose_at(motion, start - gap - 1), pose_at(motion, start), gap + 2)
            bridge = Pose(
                bridge.pelvis[1:-1], bridge.pelvis_position_m[1:-1], {k: v[1:-1] for k, v in bridge.thigh.items()}
            )
            write_pose(motion, start - gap, bridge, 0.0, np.zeros(3))

    for bout in bouts:
        for t_ic, side in zip(bout.ic_s, bout.ic_side, strict=True):
            motion.heel_strikes_s.setdefault(THIGHS[side], []).append(bout.start_s + float(t_ic))

    # 4. markers and marked sets
    marked: list[MarkedSet] = []
    set_counter: dict[tuple[str, str], int] = {}
    calibration: tuple[float, float] | None = None
    walk_spans: dict[int, list[float]] = {}
    for block, start in zip(blocks, starts, strict=True):
        t0, t1 = start / rate, (start + len(block.pose.pelvis) - 1) / rate
        if block.walk_id is not None:
            span = walk_spans.setdefault(block.walk_id, [t0, t1])
            span[1] = t1
            continue
        act = block.activity
        if act is None or not act.marked:
            continue
        key = (act.exercise, act.side)
        set_counter[key] = set_counter.get(key, 0) + 1
        marked.append(MarkedSet(act.exercise, act.side, set_counter[key], t0, t1, block.exercise_block))
        if act.exercise == "stand" and calibration is None:
            calibration = (t0, t1)
    for t0, t1 in walk_spans.values():
        key = ("walk", "none")
        set_counter[key] = set_counter.get(key, 0) + 1
        marked.append(MarkedSet("walk", "none", set_counter[key], t0, t1, None))
    marked.sort(key=lambda m: m.start_s)
    assert calibration is not None  # every script starts with a calibration stand

    # 5. sensors and truth
    sensors = draw_sensors(cfg, rng["sensors"])
    data = measure(motion, sensors, cfg, rng["noise"], walker_rng=rng["walker"])
    subject = f"sim-{cfg.seed}"
    task = f"simulated {cfg.script} session"
    truth = build_truth(
        settings=cfg.settings(),
        motion=motion,
        bouts=bouts,
        marked=marked,
        calibration=calibration,
        subject=subject,
        task=task,
    )
    markers = []
    for m in marked:
        markers.append(ExerciseMarker(round(m.start_s, 3), "start", m.exercise, m.side, m.set))
        markers.append(ExerciseMarker(round(m.end_s, 3), "end", m.exercise, m.side, m.set))
    recording = Recording(
        sampling_rate_hz=rate,
        time_s=np.arange(motion.n_samples) / rate,
        sensors=data,
        subject={"id": subject},
        task=task,
        markers=tuple(sorted(markers, key=lambda m: (m.t_s, m.event != "end"))),
        meta={"generator": truth["generator"], "mounting": cfg.mounting},
    )
    return SimulatedSession(cfg, recording, truth, motion, sensors)


def _exercise_block(activity: Activity, cfg: SessionConfig, rng: np.random.Generator, rate: float) -> ex.ExerciseBlock:
    name, side, reps, hold = activity.exercise, activity.side, activity.reps, activity.hold_s
    if name == "stand":
        return ex.stand(cfg, rng, rate, activity.duration_s)
    if name == "pelvic_tilt":
        return ex.pelvic_tilt(cfg, rng, rate, reps, hold)
    if name == "lunge":
        return ex.lunge(cfg, rng, rate, side, reps)
    generator = {
        "single_leg_stance": ex.single_leg_stance,
        "single_leg_bridge": ex.single_leg_bridge,
        "clam": ex.clam,
        "quadruped_leg_raise": ex.quadruped_leg_raise,
    }[name]
    return generator(cfg, rng, rate, side, reps, hold)
