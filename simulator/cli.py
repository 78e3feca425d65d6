"""`gaitsym simulate OUT_DIR`: simulate a session and write a recording folder with truth.json.

Import-light: gaitsym.cli calls `register` at parser-build time, so nothing here imports
numpy at module level; `simulate_command` imports the simulator when it runs.
"""

from __future__ import annotations

import argparse
import sys

from sensor_gateway.errors import SimulationError

from .config import DEFAULT_MINUTES, MOUNTINGS, SCRIPTS, SessionConfig


def add_simulate_arguments(parser: argparse.ArgumentParser) -> None:
    d = SessionConfig()
    parser.add_argument("--seed", type=int, default=d.seed, help=f"random seed (default {d.seed})")
    parser.add_argument(
        "--script",
        choices=SCRIPTS,
        default=d.script,
        help="home: stand 10 s, walk, the study's exercises per side, walk, stand (default); walk: stand + a walk",
    )
    parser.add_argument(
        "--minutes",
        type=float,
        default=None,
        help="session length in minutes; extra time goes to walking "
        f"(default {DEFAULT_MINUTES['home']:g} for home, {DEFAULT_MINUTES['walk']:g} for walk)",
    )
    parser.add_argument("--rate", type=float, default=d.rate_hz, help=f"sampling rate, Hz (default {d.rate_hz:g})")
    parser.add_argument(
        "--stance-asymmetry",
        type=float,
        default=d.stance_asymmetry_pct,
        metavar="PCT",
        help="truth stance-time symmetry index 100 (L - R) / (0.5 (L + R)) over included strides, %% "
        "(positive: longer left stance; default 0)",
    )
    parser.add_argument(
        "--pelvic-drop-left",
        type=float,
        default=d.pelvic_drop_left_deg,
        metavar="DEG",
        help="mean peak drop of the right hemipelvis during LEFT stance in walking, deg "
        f"(left abductor control; default {d.pelvic_drop_left_deg:g})",
    )
    parser.add_argument(
        "--pelvic-drop-right",
        type=float,
        default=d.pelvic_drop_right_deg,
        metavar="DEG",
        help=f"likewise for RIGHT stance, deg (default {d.pelvic_drop_right_deg:g})",
    )
    parser.add_argument(
        "--mounting",
        choices=MOUNTINGS,
        default=d.mounting,
        help="random: a random fixed rotation of each sensor on its segment (default); "
        "aligned: sensor axes = body axes",
    )
    parser.add_argument(
        "--noise",
        type=float,
        default=d.noise,
        metavar="X",
        help="white-noise scale: 1 = typical MEMS (acc 160 ug/sqrt(Hz), gyro 0.008 deg/s/sqrt(Hz)); 0 = none",
    )
    parser.add_argument(
        "--gyro-bias",
        type=float,
        default=d.gyro_bias_dps,
        metavar="DPS",
        help=f"sd of each sensor's constant gyro bias per axis, deg/s (default {d.gyro_bias_dps:g})",
    )
    parser.add_argument(
        "--acc-bias",
        type=float,
        default=d.acc_bias_mps2,
        metavar="MPS2",
        help=f"sd of each sensor's constant accelerometer bias per axis, m/s^2 (default {d.acc_bias_mps2:g})",
    )
    parser.add_argument(
        "--drift-ppm",
        default=None,
        metavar="PPM[,PPM,PPM]",
        help="sensor clock drift in ppm, one value for all or pelvis,left_thigh,right_thigh "
        "(packet stream only; default drawn in +-20 ppm)",
    )
    parser.add_argument(
        "--packet-loss",
        type=float,
        default=d.packet_loss,
        metavar="P",
        help="probability that a packet is lost (packet stream only; default 0)",
    )


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
    return SessionConfig(
        seed=args.seed,
        script=args.script,
        minutes=args.minutes,
        rate_hz=args.rate,
        stance_asymmetry_pct=args.stance_asymmetry,
        pelvic_drop_left_deg=args.pelvic_drop_left,
        pelvic_drop_right_deg=args.pelvic_drop_right,
        mounting=args.mounting,
        noise=args.noise,
        gyro_bias_dps=args.gyro_bias,
        acc_bias_mps2=args.acc_bias,
        drift_ppm=_drift(args.drift_ppm),
        packet_loss=args.packet_loss,
    ).validate()


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
