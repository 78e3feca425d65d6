"""Regenerate the packed raw parts' golden vectors: `python -m analytics.stores.vectors.make_vectors`.

Deterministic. Each vector: name, the batch (`batch`: its identity, clock mapping, what its sensor declared and its
arrays as lists; acc and gyr as the float64 values' hex, so every bit is pinned) and the points `raw_packed.pack`
makes of it (measurement, tags, fields, time). Each malformed one: name, a stored point (time, fields) and the
field `unpack` must name.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from analytics.stores.model import samples_from_arrays
from analytics.stores.raw_model import RawSamples
from analytics.stores.raw_packed import pack
from firmware_protocol.packet import ImuPacket
from gaitsym_common.uplink.envelope import ClockMapping, SensorIdentity

HERE = Path(__file__).parent
CLOCK = ClockMapping(True, 4_294_960_000, 1_795_800_000.25, 1.0 / (1.0 + 20.0e-6), 20.0, 0.4)


def _scales(acc_range_g: int, gyr_range_dps: int) -> tuple[float, float]:
    packet = ImuPacket(sequence=0, timestamp_us=0, acc_range_g=acc_range_g, gyr_range_dps=gyr_range_dps, samples=())
    return packet.acc_scale_mps2, packet.gyr_scale_dps


def batches() -> list[tuple[str, RawSamples]]:
    """Three batches: int16 counts as the decoder scales them (one part, ``i2``); values that are no counts
    (``f8``); counts with samples skipped (refused by the write rule) and a clock jump (two parts)."""
    rng = np.random.default_rng(20261206)
    acc_scale, gyr_scale = _scales(16, 2000)
    seq = np.arange(1_000, 1_012, dtype=np.int64)
    ticks = 4_294_960_000 + (seq - 1_000) * 10_000
    counts = rng.integers(-32768, 32768, (12, 6))
    sensor = SensorIdentity("GS-000042", 7, 100.0, 16, 2000, "1.0.0")

    def batch(seq: Any, ticks: Any, acc: Any, gyr: Any, session: str | None) -> RawSamples:
        return samples_from_arrays(
            subject="P001",
            session=session,
            placement="pelvis",
            serial="GS-000042",
            boot_epoch=7,
            seq=seq,
            t_sensor_us=ticks,
            acc_mps2=acc,
            gyr_dps=gyr,
            clock=CLOCK,
            msg_id="raw:GS-000042:7:1000",
            sensor=sensor,
        )

    counted = batch(seq, ticks, counts[:, :3] * acc_scale, counts[:, 3:] * gyr_scale, "S1")
    floats = batch(seq, ticks, rng.normal(0, 9.8, (12, 3)), rng.normal(0, 200, (12, 3)), None)
    keep = np.array([True, True, False, True, True, True, False, True, True, True, True, True])
    jumped = ticks.copy()
    jumped[8:] += 400_000  # 0.4 s further on: a part of its own
    skipped = batch(seq, jumped, counts[:, :3] * acc_scale, counts[:, 3:] * gyr_scale, "S1").take(keep)
    return [("int16 counts, one part", counted), ("float values", floats), ("samples skipped, a clock jump", skipped)]


def batch_json(samples: RawSamples) -> dict[str, Any]:
    return {
        "subject": samples.subject,
        "session": samples.session,
        "placement": samples.placement,
        "serial": samples.serial,
        "boot_epoch": samples.boot_epoch,
        "clock": asdict(samples.clock),
        "sensor": None if samples.sensor is None else asdict(samples.sensor),
        "seq": samples.seq.tolist(),
        "t_sensor_us": samples.t_sensor_us.tolist(),
        "acc_hex": [float(v).hex() for v in samples.acc_mps2.reshape(-1)],
        "gyr_hex": [float(v).hex() for v in samples.gyr_dps.reshape(-1)],
    }


def batch_from_json(doc: dict[str, Any]) -> RawSamples:
    """The batch of a vector."""
    return samples_from_arrays(
        subject=doc["subject"],
        session=doc["session"],
        placement=doc["placement"],
        serial=doc["serial"],
        boot_epoch=doc["boot_epoch"],
        seq=np.array(doc["seq"], dtype=np.int64),
        t_sensor_us=np.array(doc["t_sensor_us"], dtype=np.int64),
        acc_mps2=np.array([float.fromhex(v) for v in doc["acc_hex"]]).reshape(-1, 3),
        gyr_dps=np.array([float.fromhex(v) for v in doc["gyr_hex"]]).reshape(-1, 3),
        clock=ClockMapping(**doc["clock"]),
        msg_id="raw:GS-000042:7:1000",
        sensor=None if doc["sensor"] is None else SensorIdentity(**doc["sensor"]),
    )


def point_json(point: Any) -> dict[str, Any]:
    return {
        "measurement": point.measurement,
        "tags": dict(point.tags),
        "fields": dict(point.fields),
        "time": point.time_us,
    }


def malformed(valid: dict[str, Any]) -> list[dict[str, Any]]:
    """Stored points an honest writer never makes, each with the field `unpack` must name."""
    fields = valid["fields"]
    cases = [
        ("n larger than the samples", {"n": fields["n"] + 1}, "samples"),
        ("n zero", {"n": 0}, "n"),
        ("not base64", {"samples": fields["samples"][:-4] + "!!!!"}, "samples"),
        ("unknown encoding", {"enc": "f4"}, "enc"),
        ("scale zero", {"acc_scale": 0.0}, "acc_scale"),
        ("last time not the part's", {"time_last_us": fields["time_last_us"] + 1}, "time_last_us"),
        ("last sequence number not the part's", {"seq_last": fields["seq_last"] - 1}, "seq_last"),
        ("boot epoch a text", {"boot_epoch": "7"}, "boot_epoch"),
    ]
    return [
        {"name": name, "time": valid["time"], "fields": {**fields, **change}, "field": field}
        for name, change, field in cases
    ]


def main() -> None:
    valid: list[dict[str, Any]] = [
        {"name": name, "batch": batch_json(samples), "points": [point_json(p) for p in pack(samples)]}
        for name, samples in batches()
    ]
    doc = {"valid": valid, "malformed": malformed(valid[0]["points"][0])}
    (HERE / "raw_packed.json").write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
