"""`gaitsym simulate OUT_DIR`: simulate a session and write a recording folder with truth.json.

Import-light: gaitsym.cli calls `register` at parser-build time, so nothing here imports
numpy at module level; `simulate_command` imports the simulator when it runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from sensor_gateway.errors import SimulationError

from .config import DEFAULT_MINUTES, MOUNTINGS, SCRIPTS, SessionConfig
from .walkers import PROFILES


def _options(d: SessionConfig) -> tuple[tuple[str, str, dict[str, Any]], ...]:
    """Each option of `gaitsym simulate`, in --help order: its flag, the SessionConfig field it sets (its
    default is the field's), and its other argparse settings."""
    return (
        ("--seed", "seed", {"type": int, "help": f"random seed (default {d.seed})"}),
        (
            "--script",
            "script",
            {
                "choices": SCRIPTS,
                "help": "home: stand 10 s, walk, the study's exercises per side, walk, stand (default); "
                "walk: stand + a walk",
            },
        ),
        (
            "--minutes",
            "minutes",
            {
                "type": float,
                "help": "session length in minutes; extra time goes to walking "
                f"(default {DEFAULT_MINUTES['home']:g} for home, {DEFAULT_MINUTES['walk']:g} for walk)",
            },
        ),
        ("--rate", "rate_hz", {"type": float, "metavar": "RATE", "help": f"sampling rate, Hz (default {d.rate_hz:g})"}),
        (
            "--stance-asymmetry",
            "stance_asymmetry_pct",
            {
                "type": float,
                "metavar": "PCT",
                "help": "truth stance-time symmetry index 100 (L - R) / (0.5 (L + R)) over included strides, %% "
                "(positive: longer left stance; default 0)",
            },
        ),
        (
            "--pelvic-drop-left",
            "pelvic_drop_left_deg",
            {
                "type": float,
                "metavar": "DEG",
                "help": "mean peak drop of the right hemipelvis during LEFT stance in walking, deg "
                f"(left abductor control; default {d.pelvic_drop_left_deg:g})",
            },
        ),
        (
            "--pelvic-drop-right",
            "pelvic_drop_right_deg",
            {
                "type": float,
                "metavar": "DEG",
                "help": f"likewise for RIGHT stance, deg (default {d.pelvic_drop_right_deg:g})",
            },
        ),
        (
            "--mounting",
            "mounting",
            {
                "choices": MOUNTINGS,
                "help": "random: a random fixed rotation of each sensor on its segment (default); "
                "aligned: sensor axes = body axes",
            },
        ),
        (
            "--noise",
            "noise",
            {
                "type": float,
                "metavar": "X",
                "help": "white-noise scale: 1 = typical MEMS (acc 160 ug/sqrt(Hz), gyro 0.008 deg/s/sqrt(Hz)); "
                "0 = none",
            },
        ),
        (
            "--gyro-bias",
            "gyro_bias_dps",
            {
                "type": float,
                "metavar": "DPS",
                "help": f"sd of each sensor's constant gyro bias per axis, deg/s (default {d.gyro_bias_dps:g})",
            },
        ),
        (
            "--acc-bias",
            "acc_bias_mps2",
            {
                "type": float,
                "metavar": "MPS2",
                "help": "sd of each sensor's constant accelerometer bias per axis, m/s^2 "
                f"(default {d.acc_bias_mps2:g})",
            },
        ),
        (
            "--drift-ppm",
            "drift_ppm",
            {
                "metavar": "PPM[,PPM,PPM]",
                "help": "sensor clock drift in ppm, one value for all or pelvis,left_thigh,right_thigh "
                "(packet stream only; default drawn in +-20 ppm)",
            },
        ),
        (
            "--packet-loss",
            "packet_loss",
            {
                "type": float,
                "metavar": "P",
                "help": "probability that a packet is lost (packet stream only; default 0)",
            },
        ),
        (
            "--walker",
            "walker",
            {
                "choices": tuple(PROFILES),
                "help": "who walks and how the kit is worn, at that walker's published pace (simulator/walkers.py; "
                "default adult)",
            },
        ),
    )


def add_simulate_arguments(parser: argparse.ArgumentParser) -> None:
    d = SessionConfig()
    for flag, name, settings in _options(d):
        parser.add_argument(flag, dest=name, default=getattr(d, name), **settings)


def _drift(text: str | None) -> tuple[float, float, float] | None:
    if text is None:
        return None
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError as exc:
        raise SimulationError(
            f"drift_ppm (--drift-ppm): {text!r} is not a number or 3 comma-separated numbers"
        ) from exc
    if len(values) == 1:
        values *= 3
    if len(values) != 3:
        raise SimulationError(f"drift_ppm (--drift-ppm): give 1 or 3 values, got {len(values)}")
    return (values[0], values[1], values[2])


def config_from_args(args: argparse.Namespace) -> SessionConfig:
    values = {name: getattr(args, name) for _, name, _ in _options(SessionConfig())}
    values["drift_ppm"] = _drift(values["drift_ppm"])
    return SessionConfig.for_walker(values.pop("walker"), **values).validate()


def simulate_command(args: argparse.Namespace) -> int:
    from analytics.errors import RecordingError
    from analytics.recording.io import write_recording

    from .session import simulate_session

    try:
        config = config_from_args(args)
        session = simulate_session(config)
        folder = write_recording(args.out_dir, session.recording, truth=session.truth)
    except (SimulationError, RecordingError) as exc:
        print(f"gaitsym simulate: error: {exc}", file=sys.stderr)
        return 2
    summary = session.truth["gait"]["summary"]
    print(
        f"wrote {folder}: {session.recording.duration_s / 60.0:.1f} min at {session.recording.sampling_rate_hz:g} Hz, "
        f"{len(session.truth['gait']['strides'])} strides, stance SI {summary['stance_si_pct']:+.2f} %, "
        f"pelvic drop L {summary['pelvic_drop_deg']['left']:.2f} / R {summary['pelvic_drop_deg']['right']:.2f} deg"
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """`gaitsym simulate OUT_DIR [options]`."""
    simulate = sub.add_parser(
        "simulate",
        help="simulate a home session with pelvis and thigh sensors; writes a recording + truth.json",
    )
    simulate.add_argument("out_dir", help="recording folder to create")
    add_simulate_arguments(simulate)
    simulate.set_defaults(handler=simulate_command)
