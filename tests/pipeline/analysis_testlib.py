"""Helpers for the pipeline tests: simulated walks (cached per settings), recording transforms, matching."""

from __future__ import annotations

from dataclasses import replace
from functools import cache
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from analytics.pipeline.live import LiveGait
from analytics.recording.io import Recording, SensorData
from simulator.session import simulate_session


@cache
def walk(seed: int = 3, si: float = 8.0, drop_left: float = 5.0, drop_right: float = 3.0, minutes: float = 1.0):
    """A short simulated walk session (calibration stand + walking bouts), random mounting, noise, bias."""
    return simulate_session(
        seed=seed,
        script="walk",
        minutes=minutes,
        stance_asymmetry_pct=si,
        pelvic_drop_left_deg=drop_left,
        pelvic_drop_right_deg=drop_right,
    )


def with_sensors(recording: Recording, sensors: dict[str, SensorData]) -> Recording:
    return replace(recording, sensors=sensors)


def rotated(recording: Recording, seed: int) -> Recording:
    """Every sensor turned by its own random fixed rotation (a different way of strapping it on)."""
    rng = np.random.default_rng(seed)
    out = {}
    for placement, data in recording.sensors.items():
        rot = Rotation.random(random_state=rng)
        out[placement] = SensorData(placement, rot.apply(data.acc_mps2), rot.apply(data.gyr_dps))
    return with_sensors(recording, out)


def mirrored(recording: Recording) -> Recording:
    """The mirror image of the walker (reflected through its sagittal plane), seen by right-handed sensors.

    Reflecting the world makes each sensor frame left-handed; flipping its x axis makes it right-handed
    again. Acceleration is a vector (x component negated), angular velocity a pseudovector (y and z negated).
    The left thigh's sensor is now on the right thigh and vice versa.
    """
    out = {}
    names = {"pelvis": "pelvis", "left_thigh": "right_thigh", "right_thigh": "left_thigh"}
    for placement, data in recording.sensors.items():
        acc = data.acc_mps2 * np.array([-1.0, 1.0, 1.0])
        gyr = data.gyr_dps * np.array([1.0, -1.0, -1.0])
        out[names[placement]] = SensorData(names[placement], acc, gyr)
    return with_sensors(recording, out)


def relabelled(recording: Recording, mapping: dict[str, str]) -> Recording:
    """Sensors renamed (e.g. thighs swapped, or a sensor put under another placement's name)."""
    out = {}
    for placement, data in recording.sensors.items():
        name = mapping.get(placement, placement)
        out[name] = SensorData(name, data.acc_mps2, data.gyr_dps)
    return with_sensors(recording, out)


def without(recording: Recording, placement: str) -> Recording:
    return with_sensors(recording, {k: v for k, v in recording.sensors.items() if k != placement})


def match_errors_s(detected: list[dict[str, Any]], reference: list[dict[str, Any]], tol_s: float = 0.2):
    """For each detected contact, (error s, side agrees) against the nearest reference contact within tol."""
    ref_t = np.array([c["t_s"] for c in reference])
    out = []
    for c in detected:
        i = int(np.argmin(np.abs(ref_t - c["t_s"])))
        if abs(ref_t[i] - c["t_s"]) <= tol_s:
            out.append((c["t_s"] - ref_t[i], c["side"] == reference[i]["side"]))
    return out


def flag_codes(doc: dict[str, Any]) -> dict[str, str]:
    return {f["code"]: f["severity"] for f in doc["quality"]["flags"]}


def live_stream(rec: Recording, gait: LiveGait, step_s: float) -> tuple[list[dict[str, object]], list[dict[str, int]]]:
    """Feed a recording to a live analysis ``gait`` in steps of ``step_s`` as a real-time worker would: the
    strides given out, and the counters' change at each step (``new``: the samples the step brought)."""
    k = round(step_s * rec.sampling_rate_hz)
    out: list[dict[str, object]] = []
    deltas = []
    for end in range(k, rec.n_samples + k, k):
        end = min(end, rec.n_samples)
        b = gait.end
        before = dict(vars(gait.counters))
        gait.extend({p: (d.acc_mps2[b:end], d.gyr_dps[b:end]) for p, d in rec.sensors.items()})
        out.extend(gait.step())
        deltas.append({name: value - before[name] for name, value in vars(gait.counters).items()} | {"new": end - b})
    return out, deltas
