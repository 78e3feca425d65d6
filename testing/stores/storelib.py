"""Helpers for the storage tests: synthetic sensor batches and result documents (imported by name)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from analytics.stores.model import RawSamples, samples_from_arrays
from gaitsym_common.uplink.envelope import ClockMapping

if TYPE_CHECKING:
    from analytics.recording.io import Recording

T0_UTC_S = float(int(time.time()) // 3600 * 3600 - 3 * 3600)  # a whole hour, within the raw retention
_subjects = itertools.count(1)


def new_subject() -> str:
    """A fresh subject id per test: tests share one server, never one subject."""
    return f"P{next(_subjects):04d}-{np.random.default_rng().integers(1 << 30):x}"


def synced_clock(ref_sensor_us: int = 5_000_000, drift_ppm: float = 12.5) -> ClockMapping:
    return ClockMapping(True, ref_sensor_us, T0_UTC_S, 1.0 / (1.0 + drift_ppm * 1e-6), drift_ppm, 0.8)


def unsynced_clock(ref_sensor_us: int = 5_000_000) -> ClockMapping:
    return ClockMapping(False, ref_sensor_us, None, 1.0, 0.0, 0.0)


def batch(
    subject: str,
    *,
    seq_first: int = 0,
    n: int = 100,
    rate_hz: float = 100.0,
    placement: str = "pelvis",
    serial: str = "GS24-0001",
    boot_epoch: int = 42,
    session: str | None = "S1",
    clock: ClockMapping | None = None,
    t_sensor_first_us: int | None = None,
) -> RawSamples:
    seq = np.arange(seq_first, seq_first + n)
    t0 = 5_000_000 if t_sensor_first_us is None else t_sensor_first_us
    ticks = t0 + np.round((seq - seq_first) * 1e6 / rate_hz).astype(np.int64)
    if t_sensor_first_us is None:
        ticks = 5_000_000 + np.round(seq * 1e6 / rate_hz).astype(np.int64)
    rng = np.random.default_rng(seq_first + boot_epoch)
    acc = np.round(rng.normal(0, 1, (n, 3)) + [0, 0, 9.81], 4)
    gyr = np.round(rng.normal(0, 5, (n, 3)), 3)
    return samples_from_arrays(
        subject=subject,
        session=session,
        placement=placement,
        serial=serial,
        boot_epoch=boot_epoch,
        seq=seq,
        t_sensor_us=ticks,
        acc_mps2=acc,
        gyr_dps=gyr,
        clock=clock or synced_clock(),
        msg_id=f"raw:{serial}:{boot_epoch}:{seq_first}",
    )


def recording_batches(
    rec: Recording,
    subject: str,
    session: str,
    t0_utc_s: float,
    serial_of: Callable[[str], str],
    *,
    boot_epoch: int = 7,
    batch_len: int = 100,
) -> dict[str, list[RawSamples]]:
    """A recording's samples as a gateway sends them: per placement (its sensor's serial ``serial_of(placement)``),
    batches of ``batch_len`` samples, sequence = sample index, under one synced clock mapping that puts the first
    sample at ``t0_utc_s``."""
    clock = ClockMapping(True, 5_000_000, t0_utc_s, 1.0, 0.0, 0.5)
    ticks = 5_000_000 + np.rint(rec.time_s * 1e6).astype(np.int64)
    seq = np.arange(len(ticks))
    out: dict[str, list[RawSamples]] = {}
    for placement, data in rec.sensors.items():
        serial = serial_of(placement)
        out[placement] = [
            samples_from_arrays(
                subject=subject,
                session=session,
                placement=placement,
                serial=serial,
                boot_epoch=boot_epoch,
                seq=seq[i : i + batch_len],
                t_sensor_us=ticks[i : i + batch_len],
                acc_mps2=data.acc_mps2[i : i + batch_len],
                gyr_dps=data.gyr_dps[i : i + batch_len],
                clock=clock,
                msg_id=f"raw:{serial}:{boot_epoch}:{i}",
            )
            for i in range(0, len(ticks), batch_len)
        ]
    return out


def result_doc(n_strides: int = 6, drop_left: float | None = 4.0, duration_s: float = 60.0) -> dict[str, Any]:
    """A small gaitsym.result/1 document: alternating strides, one exercise set, a summary."""
    strides = []
    for i in range(n_strides):
        side = "left" if i % 2 == 0 else "right"
        strides.append(
            {
                "side": side,
                "start_s": 10.0 + 0.55 * i,
                "end_s": 11.1 + 0.55 * i,
                "stance_time_s": 0.66 if side == "left" else 0.62,
                "swing_time_s": 0.44,
                "step_time_s": 0.55,
                "pelvic_drop_deg": (drop_left if side == "left" else 3.0),
                "bout": 0,
                "included": 0 < i < n_strides - 1,
                "flags": [],
            }
        )
    side_block = {"left": 0.66, "right": 0.62}
    return {
        "schema": "gaitsym.result/1",
        "source": "analysis",
        "generator": {"name": "gaitsym-analytics", "version": "0.1.0"},
        "recording": {"duration_s": duration_s, "sampling_rate_hz": 100.0, "placements": ["pelvis"]},
        "gait": {
            "initial_contacts": [],
            "final_contacts": [],
            "bouts": [{"start_s": 10.0, "end_s": 20.0}],
            "strides": strides,
            "summary": {
                "n_strides": {"left": n_strides // 2, "right": n_strides // 2},
                "stance_time_s": side_block,
                "step_time_s": {"left": 0.55, "right": 0.55},
                "stance_si_pct": 6.25,
                "stance_ratio": 1.0645,
                "stance_ga_pct": 6.25,
                "pelvic_drop_deg": {"left": drop_left, "right": 3.0},
                "asymmetry": {
                    "pelvic_drop_deg": {
                        "left": drop_left,
                        "right": 3.0,
                        "n_left": 3,
                        "n_right": 3,
                        "diff": None if drop_left is None else drop_left - 3.0,
                        "si_pct": None,
                        "ratio": None,
                        "ga_pct": None,
                    }
                },
            },
        },
        "exercises": [
            {
                "exercise": "single_leg_bridge",
                "side": "left",
                "set": 1,
                "start_s": 30.0,
                "end_s": 45.0,
                "reps": 5,
                "holds_s": [2.0, 2.1, 1.9, 2.0, 2.0],
                "metrics": {"pelvic_drop_mean_deg": 2.5, "pelvic_drop_peak_deg": 4.1, "time_level_pct": 70.0},
                "flags": [],
            }
        ],
        "quality": {"flags": []},
    }
