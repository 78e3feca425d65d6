"""The uplink contract agrees with itself: UPLINK.md, uplink-v1.json, the golden vectors, the decoder and what the
gateway's own timing code produces (clock rate vs drift, status fields, unwrapped gap ranges)."""

from __future__ import annotations

import dataclasses
import json
import random
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from gaitsym_common.errors import UplinkError
from gaitsym_common.uplink import envelope as env
from sensor_gateway.timing import ClockEstimator, SensorStream

VECTORS = json.loads(resources.files("gaitsym_common.uplink.vectors").joinpath("uplink.json").read_text())
SCHEMA = json.loads(resources.files("gaitsym_common.uplink").joinpath("uplink-v1.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
UPLINK_MD = Path(env.__file__).with_name("UPLINK.md").read_text(encoding="utf-8")


def _raw_vector() -> env.RawBatch:
    message = env.decode(VECTORS["valid"][0]["payload"])
    assert isinstance(message, env.RawBatch)
    return message


def _with_clock(rate: float, drift_ppm: float) -> bytes:
    raw = _raw_vector()
    clock = dataclasses.replace(raw.clock, rate=rate, drift_ppm=drift_ppm)
    return json.dumps({**json.loads(env.encode(raw)), "clock": dataclasses.asdict(clock)}).encode()


# --- clock: rate and drift_ppm --------------------------------------------------------------------------------


def test_every_raw_vector_has_a_drift_that_matches_its_rate() -> None:
    """UPLINK.md: rate = 1 / (1 + drift_ppm * 1e-6). The vectors once had drift +20 ppm with rate 1.00002."""
    raws = [v for v in VECTORS["valid"] if v["decoded"]["kind"] == "raw"]
    assert raws
    for vector in raws:
        clock = vector["decoded"]["clock"]
        assert clock["rate"] * (1 + clock["drift_ppm"] * 1e-6) == pytest.approx(1.0, abs=1e-12), vector["name"]


def test_decoder_refuses_a_drift_that_contradicts_the_rate() -> None:
    for rate, drift in ((1.00002, 20.0), (0.99998, -20.0), (1.0, 5.0), (1.0 / (1 + 500e-6), -500.0)):
        with pytest.raises(UplinkError) as info:
            env.decode(_with_clock(rate, drift))
        assert info.value.field == "clock.drift_ppm", str(info.value)
        assert "contradicts" in str(info.value)


@pytest.mark.parametrize("drift", [-1000.0, -50.0, -0.4, 0.0, 0.4, 20.0, 50.0, 1000.0])
def test_decoder_admits_rounded_or_first_order_drift(drift: float) -> None:
    rate = 1.0 / (1.0 + drift * 1e-6)
    for reported in (drift, float(round(drift)), (1.0 - rate) * 1e6):
        message = env.decode(_with_clock(rate, reported))
        assert isinstance(message, env.RawBatch) and message.clock.rate == rate


def test_extreme_finite_clock_values_are_refused_not_crashing() -> None:
    for rate, drift in ((1e-300, 0.0), (1e300, 1e300), (1.0, -1e6), (5e-324, 1e308)):
        with pytest.raises(UplinkError):
            env.decode(_with_clock(rate, drift))


def _simulated_fit(drift_ppm: float, seconds: float, seed: int, syncs: bool) -> env.ClockMapping:
    """The gateway's own estimator fed by a sensor whose clock runs ``drift_ppm`` fast, with BLE-like delays."""
    rng = random.Random(seed)
    est = ClockEstimator()
    t = 0.0
    while t < seconds:
        ticks = round(t * (1 + drift_ppm * 1e-6) * 1e6)
        est.add(ticks, 100.0 + t + rng.choice((rng.uniform(0, 0.002), rng.uniform(0.03, 0.08))))
        if syncs and rng.random() < 0.3:
            rtt = rng.uniform(0.015, 0.06)
            est.add_sync(ticks, 100.0 + t - rtt / 2, 100.0 + t + rtt / 2)
        t += 0.1
    fit = est.fit()
    # exactly how the gateway publishes it (sensor_gateway/core/gateway.py)
    return env.ClockMapping(True, fit.sensor_ref_us, 1_795_800_000.0, fit.rate, fit.drift_ppm, fit.jitter_ms)


@pytest.mark.parametrize("drift", [-50.0, -20.0, 0.0, 20.0, 50.0, 400.0])
def test_what_the_gateway_fit_publishes_passes_the_check_and_has_the_documented_sign(drift: float) -> None:
    raw = _raw_vector()
    for seconds, syncs in ((0.3, False), (3.0, True), (40.0, False), (40.0, True)):
        clock = _simulated_fit(drift, seconds, seed=int(drift * 10) + int(seconds), syncs=syncs)
        decoded = env.decode(env.encode(dataclasses.replace(raw, clock=clock)))
        assert isinstance(decoded, env.RawBatch) and decoded.clock == clock
        if seconds >= 40.0:  # fitted: positive drift_ppm is a fast sensor clock, as UPLINK.md says
            assert clock.drift_ppm == pytest.approx(drift, abs=5.0)
            assert clock.rate == pytest.approx(1.0 / (1.0 + drift * 1e-6), abs=5e-6)


# --- every field is described, both ways -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("definition", "cls"),
    [
        ("raw", env.RawBatch),
        ("gap", env.Gap),
        ("marker", env.Marker),
        ("status", env.Status),
        ("cmd", env.Command),
        ("cmd_reply", env.CommandReply),
        ("ack", env.Ack),
    ],
)
def test_schema_describes_every_field_the_decoder_reads(definition: str, cls: type) -> None:
    described = set(SCHEMA["$defs"][definition]["properties"])
    assert {f.name for f in dataclasses.fields(cls)} <= described


def test_schema_and_uplink_md_describe_every_status_sensor_field() -> None:
    sensor_schema = SCHEMA["$defs"]["status"]["properties"]["sensors"]["additionalProperties"]["properties"]
    status_text = UPLINK_MD.split("**status**", 1)[1].split("\n\n", 1)[0]
    for field in dataclasses.fields(env.SensorStatus):
        assert field.name in sensor_schema, field.name
        assert f"`{field.name}`" in status_text, field.name
    for key in ("pending", "inflight", "bytes", "budget_bytes", "full", "refused", "acked"):
        assert f"`{key}`" in status_text, key


def _status_vector() -> dict[str, object]:
    doc: dict[str, object] = json.loads(next(v["payload"] for v in VECTORS["valid"] if v["name"] == "status online"))
    return doc


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("battery_pct", 101),
        ("battery_pct", "87"),
        ("rssi_dbm", "strong"),
        ("rssi_dbm", -201),
        ("boot_epoch", -1),
        ("last_seq", 1.5),
        ("drift_ppm", "fast"),
        ("jitter_ms", [1]),
        ("samples_received", -3),
        ("gaps", True),
        ("serial", ""),
        ("link", "asleep"),
    ],
)
def test_status_sensor_field_faults_fail_schema_and_decoder_alike(field: str, value: object) -> None:
    doc = _status_vector()
    VALIDATOR.validate(doc)
    sensors = doc["sensors"]
    assert isinstance(sensors, dict)
    sensors["pelvis"][field] = value
    assert not VALIDATOR.is_valid(doc)
    with pytest.raises(UplinkError) as info:
        env.decode(json.dumps(doc))
    assert info.value.field == f"sensors.pelvis.{field}"


def test_status_blocks_hold_only_their_documented_types() -> None:
    for block, value in (("gateway", 3), ("outbox", "many"), ("outbox", True)):
        doc = _status_vector()
        doc[block] = {"x": value}
        assert not VALIDATOR.is_valid(doc)
        with pytest.raises(UplinkError):
            env.decode(json.dumps(doc))


# --- sequence numbers are unwrapped: a gap across the sensor's u32 wrap is one range --------------------------


def test_gap_across_the_u32_wrap_is_one_unwrapped_range() -> None:
    stream = SensorStream(boot_epoch=3, sample_rate_hz=100.0)
    stream.observe(2**32 - 20, 1_000_000, 10, 100.0)
    timing = stream.observe(5, 1_000_000 + 250_000, 10, 100.25)  # 15 samples lost across the wrap
    first, last = timing.seq - timing.lost_before, timing.seq - 1
    assert (first, last) == (2**32 - 10, 2**32 + 4)
    gap = env.Gap(
        "gap", env.gap_id("GS-1", 3, first), "s1", None, "pelvis", "GS-1", 3, first, last, 0.15, "packet_lost"
    )
    payload = env.encode(gap)
    VALIDATOR.validate(json.loads(payload))
    assert env.decode(payload) == gap
    assert "never two ranges" in UPLINK_MD


def test_committed_vectors_are_what_the_generator_writes() -> None:
    from gaitsym_common.uplink.vectors import make_vectors

    committed = resources.files("gaitsym_common.uplink.vectors").joinpath("uplink.json").read_text()
    assert committed == make_vectors.build(), "regenerate with python -m gaitsym_common.uplink.vectors.make_vectors"
