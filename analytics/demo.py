"""`gaitsym demo` (what `make demo` runs): the longest real chain that exists, on an embedded default.

Today's chain, every step the production code:

1. the virtual sensor kit simulates a home session of subject ``demo-001`` (standing, walking, the study's
   exercises per side) wearing pelvis and thigh sensors, strapped on at random angles;
2. the session is written as a recording folder and read back by the validating recording reader;
3. its sensor packets go over the (simulated) radio with each sensor's own drifting clock, are decoded by
   the firmware_protocol decoder and time-mapped by the gateway's clock estimator, as a gateway does.

What the simulated patient was set to do is printed as *simulator settings*, never as a measurement.
The analysis, the gateway's MQTT uplink and the worker join this chain as they land.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

SUBJECT = "demo-001"


def _step(n: int, total: int, text: str) -> None:
    print(f"[{n}/{total}] {text}", flush=True)


def demo_command(args: argparse.Namespace) -> int:
    from analytics.recording import read_recording, write_recording
    from firmware_protocol.errors import ProtocolError
    from firmware_protocol.packet import decode_packet
    from sensor_gateway.timing import SensorStream
    from sensor_gateway.virtual_kit.packets import iter_packets, simulated_sensors
    from sensor_gateway.virtual_kit.session import simulate_session

    total = 3
    out_root = Path(args.out)
    folder = out_root / f"{SUBJECT}-seed{args.seed}-{time.strftime('%Y%m%dT%H%M%S')}"
    overrides = {} if args.minutes is None else {"minutes": args.minutes}

    _step(1, total, f"simulating a home session of {SUBJECT} (seed {args.seed}) ...")
    t0 = time.perf_counter()
    session = simulate_session(seed=args.seed, **overrides)
    rec = session.recording
    print(
        f"      {rec.duration_s / 60:.1f} min at {rec.sampling_rate_hz:g} Hz, sensors on "
        f"{', '.join(rec.sensors)}, simulated in {time.perf_counter() - t0:.1f} s"
    )

    _step(2, total, f"writing the recording to {folder}/ and reading it back through the validating reader ...")
    write_recording(folder, rec, truth=session.truth)
    back = read_recording(folder)
    sets = [m for m in back.markers if m.event == "start" and m.exercise not in ("stand", "walk")]
    print(
        f"      valid recording/1: {back.n_samples} samples x {len(back.sensors)} sensors, "
        f"{len(sets)} exercise sets marked in events.csv"
    )
    for name in sorted(p.name for p in folder.iterdir()):
        print(f"        {name:<16} {(folder / name).stat().st_size / 1e6:7.2f} MB")

    _step(
        3, total, "sending its packets over the simulated radio, decoding and time-mapping them as the gateway does ..."
    )
    sensors = simulated_sensors(session)
    streams = {p: SensorStream(s.info.boot_epoch, s.info.sample_rate_hz) for p, s in sensors.items()}
    count: dict[str, int] = defaultdict(int)
    size: dict[str, int] = defaultdict(int)
    saturated: dict[str, int] = defaultdict(int)
    rejected = 0
    example = b""
    for arrival_s, placement, data in iter_packets(session, sensors):
        try:
            packet = decode_packet(data)
        except ProtocolError:
            rejected += 1
            continue
        streams[placement].observe(packet.sequence, packet.timestamp_us, packet.sample_count, arrival_s)
        count[placement] += 1
        size[placement] += len(data)
        saturated[placement] += packet.acc_saturated or packet.gyr_saturated
        example = example or data
    print(
        f"      {'placement':<12} {'serial':<14} {'packets':>8} {'kB':>8} {'lost':>6} {'saturated':>9} "
        f"{'drift (measured)':>17} {'jitter':>8}"
    )
    for placement, stream in streams.items():
        fit = stream.fit()
        print(
            f"      {placement:<12} {sensors[placement].info.serial:<14} {count[placement]:>8} "
            f"{size[placement] / 1e3:>8.0f} {stream.lost:>6} {saturated[placement]:>9} "
            f"{fit.drift_ppm:>+13.1f} ppm {fit.jitter_ms:>5.2f} ms"
        )
    print(f"      malformed packets rejected: {rejected}")
    print(f"      one packet as a firmware author would inspect it:  gaitsym protocol decode {example[:26].hex()}...")
    print(f"        (full: {len(example)} bytes; try `gaitsym protocol decode {example.hex()}`)")

    cfg = session.config
    drifts = ", ".join(f"{p} {s.drift_ppm:+.1f}" for p, s in sensors.items())
    print()
    print("Simulator settings (what the virtual patient was told to do; inputs, not measurements):")
    print(
        f"  stance-time asymmetry {cfg.stance_asymmetry_pct:+.1f} %, pelvic drop left {cfg.pelvic_drop_left_deg:g} deg"
        f" / right {cfg.pelvic_drop_right_deg:g} deg, sensor clock drift (ppm) {drifts}"
    )
    print(f"  ground truth for checking the analysis: {folder / 'truth.json'}")
    print()
    print(f"Recording: {folder}   (check it with: gaitsym recording check {folder})")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """`gaitsym demo [--out DIR --seed N --minutes M]`."""
    demo = sub.add_parser("demo", help="run the longest real chain that exists, on an embedded default")
    demo.add_argument("--out", default="out/demo", help="working folder (default: out/demo)")
    demo.add_argument("--seed", type=int, default=1, help="simulation seed (default: 1)")
    demo.add_argument("--minutes", type=float, default=None, help="session length (default: the script's)")
    demo.set_defaults(handler=demo_command)


if __name__ == "__main__":
    from analytics.cli import main

    sys.exit(main(["demo", *sys.argv[1:]]))
