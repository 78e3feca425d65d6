"""Settings of one simulated session, with their units, defaults and allowed ranges.

Every setting is checked by `SessionConfig.validate`, which raises SimulationError naming the setting (its
Python field and its `gaitsym simulate` flag). No numpy here: the CLI imports this module at parser-build time.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from firmware_protocol.sensor_info import PLACEMENTS
from sensor_gateway.errors import SimulationError

from .walkers import PROFILES, walker_profile

SCRIPTS = ("home", "walk")
MOUNTINGS = ("random", "aligned")

DEFAULT_MINUTES = {"home": 15.0, "walk": 1.5}
"""Session length (min) when none is asked for."""

ACC_NOISE_DENSITY_MPS2_RTHZ = 0.0016
"""Accelerometer white-noise density at --noise 1: 160 ug/sqrt(Hz) (Bosch BMI270 datasheet class), m/s^2/sqrt(Hz)."""
GYR_NOISE_DENSITY_DPS_RTHZ = 0.008
"""Gyroscope white-noise density at --noise 1: 0.008 deg/s/sqrt(Hz) (BMI270 class)."""


@dataclass(frozen=True)
class SessionConfig:
    """What to simulate. Units are in the names; see `gaitsym simulate --help` for the same in words."""

    seed: int = 1
    script: str = "home"
    minutes: float | None = None
    """Session length in minutes (None: the script's default). Extra time goes to walking."""
    rate_hz: float = 100.0
    stance_asymmetry_pct: float = 0.0
    """Truth stance-time symmetry index SI = 100 (L - R) / (0.5 (L + R)) over included strides, %."""
    pelvic_drop_left_deg: float = 3.0
    """Mean peak drop of the right hemipelvis during left stance in walking, deg (left abductor control)."""
    pelvic_drop_right_deg: float = 3.0
    mounting: str = "random"
    noise: float = 1.0
    """Multiplier of the typical MEMS noise densities (0 = noiseless)."""
    gyro_bias_dps: float = 0.5
    """Standard deviation of each sensor's constant gyro bias per axis, deg/s."""
    acc_bias_mps2: float = 0.02
    """Standard deviation of each sensor's constant accelerometer bias per axis, m/s^2."""
    drift_ppm: tuple[float, float, float] | None = None
    """Clock drift of (pelvis, left_thigh, right_thigh) in ppm; None: drawn from the seed in +-20 ppm."""
    packet_loss: float = 0.0
    """Probability that a packet is lost on the radio link (packet stream only)."""
    cadence_steps_per_min: float = 105.0
    walking_speed_mps: float = 1.25
    stance_pct: float = 61.0
    """Stance share of the gait cycle, % (normal adults 60-62 %, Perry & Burnfield 2010)."""
    standing_obliquity_deg: float = 0.5
    """Raw pelvic obliquity of quiet standing (e.g. from a leg length inequality), deg."""
    walker: str = "adult"
    """Who walks and how the kit is worn (simulator.walkers): the model parts beyond the default adult. The pace
    settings above stay as given; ``SessionConfig.for_walker`` takes the walker's published pace too."""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def for_walker(cls, walker: str, **overrides: Any) -> SessionConfig:
        """A config for the named walker with its pace (cadence, speed, stance share), then ``overrides``."""
        return cls(**{"walker": walker, **walker_profile(walker).pace(), **overrides})

    @property
    def session_minutes(self) -> float:
        return DEFAULT_MINUTES[self.script] if self.minutes is None else float(self.minutes)

    def settings(self) -> dict[str, Any]:
        """The settings as plain JSON values (for truth.json's generator.settings)."""
        out = asdict(self)
        out["minutes"] = self.session_minutes
        out["drift_ppm"] = None if self.drift_ppm is None else list(self.drift_ppm)
        return out

    def validate(self) -> SessionConfig:
        _choice("script", "--script", self.script, SCRIPTS)
        _choice("mounting", "--mounting", self.mounting, MOUNTINGS)
        _choice("walker", "--walker", self.walker, tuple(PROFILES))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            _fail("seed", "--seed", f"must be a non-negative integer, got {self.seed!r}")
        if self.minutes is not None:
            _number("minutes", "--minutes", self.minutes, 0.5, 240.0, "min")
        _number("rate_hz", "--rate", self.rate_hz, 25.0, 1000.0, "Hz")
        _number("stance_asymmetry_pct", "--stance-asymmetry", self.stance_asymmetry_pct, -25.0, 25.0, "%")
        _number("pelvic_drop_left_deg", "--pelvic-drop-left", self.pelvic_drop_left_deg, -3.0, 15.0, "deg")
        _number("pelvic_drop_right_deg", "--pelvic-drop-right", self.pelvic_drop_right_deg, -3.0, 15.0, "deg")
        _number("noise", "--noise", self.noise, 0.0, 100.0, "x typical")
        _number("gyro_bias_dps", "--gyro-bias", self.gyro_bias_dps, 0.0, 20.0, "deg/s")
        _number("acc_bias_mps2", "--acc-bias", self.acc_bias_mps2, 0.0, 2.0, "m/s^2")
        _number("packet_loss", "--packet-loss", self.packet_loss, 0.0, 0.9, "(probability)")
        _number("cadence_steps_per_min", "cadence", self.cadence_steps_per_min, 70.0, 140.0, "steps/min")
        _number("walking_speed_mps", "walking speed", self.walking_speed_mps, 0.4, 2.0, "m/s")
        _number("stance_pct", "stance share", self.stance_pct, 55.0, 68.0, "%")
        _number("standing_obliquity_deg", "standing obliquity", self.standing_obliquity_deg, -5.0, 5.0, "deg")
        if self.drift_ppm is not None:
            if len(self.drift_ppm) != len(PLACEMENTS):
                _fail("drift_ppm", "--drift-ppm", f"needs one value per sensor {PLACEMENTS}")
            for value in self.drift_ppm:
                _number("drift_ppm", "--drift-ppm", value, -500.0, 500.0, "ppm")
        return self


def _fail(name: str, flag: str, message: str) -> None:
    raise SimulationError(f"{name} ({flag}): {message}")


def _choice(name: str, flag: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        _fail(name, flag, f"must be one of {', '.join(allowed)}, got {value!r}")


def _number(name: str, flag: str, value: Any, lo: float, hi: float, unit: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        _fail(name, flag, f"must be a finite number ({unit}), got {value!r}")
    if not lo <= value <= hi:
        _fail(name, flag, f"must be within {lo:g}..{hi:g} {unit}, got {value:g}")
