"""The uplink decoder is bounded: hostile payloads (deep nesting, huge numbers, out-of-range counters and clocks,
huge lists and strings) come out as an UplinkError naming the field, never as another exception, and an honest
gateway's largest messages stay well inside every limit."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest

from gaitsym_common.errors import UplinkError
from gaitsym_common.uplink import envelope as env

VECTORS = json.loads(resources.files("gaitsym_common.uplink.vectors").joinpath("uplink.json").read_text())


def _vector(kind: str) -> dict[str, Any]:
    return dict(json.loads(next(v["payload"] for v in VECTORS["valid"] if json.loads(v["payload"])["kind"] == kind)))


def _raw(**changes: Any) -> dict[str, Any]:
    """The golden raw batch with some fields replaced (msg_id kept consistent with serial, boot and seq_first)."""
    doc = _vector("raw")
    for key, value in changes.items():
        if "." in key:
            block, field = key.split(".")
            doc[block] = {**doc[block], field: value}
        else:
            doc[key] = value
    doc["msg_id"] = env.raw_batch_id(doc["sensor"]["serial"], doc["sensor"]["boot_epoch"], doc["seq_first"])
    return doc


def _refused(payload: bytes | str | dict[str, Any]) -> UplinkError:
    if isinstance(payload, dict):
        payload = json.dumps(payload)
    with pytest.raises(UplinkError) as info:
        env.decode(payload)
    return info.value


def test_the_golden_raw_batch_and_its_mutations_below_the_limits_decode() -> None:
    assert isinstance(env.decode(json.dumps(_raw())), env.RawBatch)
    # brackets inside strings are not nesting
    assert env.decode(json.dumps(_raw(**{"sensor.firmware": "[" * 500 + "{" * 100}))).sensor.firmware.startswith("[[")
    assert env.decode(json.dumps(_raw(**{"sensor.boot_epoch": 2**32 - 1}))).sensor.boot_epoch == 2**32 - 1


def test_deep_nesting_is_refused_before_the_parser_recurses() -> None:
    deep = '{"v":1,"kind":"raw","x":' + "[" * 30_000 + "]" * 30_000 + "}"
    assert len(deep) < env.MAX_PAYLOAD_BYTES
    error = _refused(deep.encode())
    assert error.field == "payload" and "nested deeper" in str(error)
    objects = '{"v":1,"kind":"status","a":' + '{"a":' * 9 + "1" + "}" * 9 + "}"
    assert _refused(objects).field == "payload"
    unbalanced = '{"v":1,"kind":"raw","x":' + "[" * 40 + "}" * 41
    assert _refused(unbalanced).field == "payload"


def test_a_5000_digit_integer_is_refused_without_converting_it() -> None:
    for digits in (5_000, 4_000, 41):
        doc = json.dumps(_raw(), separators=(",", ":"))
        assert '"seq_first":4294967293' in doc
        doc = doc.replace('"seq_first":4294967293', '"seq_first":' + "7" * digits)
        error = _refused(doc)
        assert error.field == "payload" and "integer" in str(error), digits
        assert len(str(error)) < 300  # the number itself is not copied into logs
    doc = json.dumps(_raw(), separators=(",", ":"))
    assert '"jitter_ms":0.4' in doc
    doc = doc.replace('"jitter_ms":0.4', '"jitter_ms":0.' + "4" * 5_000)
    assert _refused(doc).field == "payload"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"seq_first": 2**70, "seq_last": 2**70 + 9}, "seq_first"),
        ({"seq_first": 2**53, "seq_last": 2**53 + 9}, "seq_first"),
        ({"seq_first": 0, "seq_last": 2**40}, "seq_last"),
        ({"t_sensor_us_first": 2**63}, "t_sensor_us_first"),
        ({"clock.ref_sensor_us": 2**64}, "clock.ref_sensor_us"),
        ({"clock.ref_utc_s": 1e300}, "clock.ref_utc_s"),
        ({"clock.ref_utc_s": -5.0}, "clock.ref_utc_s"),
        ({"clock.ref_utc_s": 12.0}, "clock.ref_utc_s"),
        ({"sensor.boot_epoch": 2**64}, "sensor.boot_epoch"),
        ({"sensor.boot_epoch": 2**32}, "sensor.boot_epoch"),
        ({"sensor.sample_rate_hz": 1e9}, "sensor.sample_rate_hz"),
        ({"sensor.sample_rate_hz": 0.001}, "sensor.sample_rate_hz"),
        ({"sensor.acc_range_g": 2**40}, "sensor.acc_range_g"),
        ({"clock.rate": 7.0, "clock.drift_ppm": -857142.857}, "clock.rate"),
        ({"clock.drift_ppm": 1e12}, "clock.drift_ppm"),
        ({"clock.jitter_ms": 1e200}, "clock.jitter_ms"),
        ({"n_samples": 100_000, "seq_last": 4294967293 + 100_000}, "n_samples"),
        ({"sensor.serial": "S" * 5_000}, "sensor.serial"),
        ({"session": "s" * 5_000}, "session"),
        ({"sensor.firmware": "f" * 5_000}, "sensor.firmware"),
        ({"packets": ["AA=="] * 5_000}, "packets"),
    ],
    ids=lambda v: str(v)[:40],
)
def test_out_of_range_raw_batch_fields_are_named(changes: dict[str, Any], field: str) -> None:
    error = _refused(_raw(**changes))
    assert error.field == field, str(error)
    assert len(str(error)) < 400


def test_other_kinds_are_bounded_too() -> None:
    ack = _vector("ack")
    assert _refused({**ack, "msg_ids": ["raw:x:1:1"] * (env.MAX_ACK_IDS + 1)}).field == "msg_ids"
    assert _refused({**ack, "msg_ids": ["m" * 5_000]}).field == "msg_ids[0]"
    gap = _vector("gap")
    assert _refused({**gap, "boot_epoch": 2**64}).field == "boot_epoch"
    assert _refused({**gap, "duration_s": 1e300}).field == "duration_s"
    assert _refused({**gap, "seq_first_missing": 2**70, "seq_last_missing": 2**70}).field == "seq_first_missing"
    marker = _vector("marker")
    positions = dict(marker["last_seq"])
    positions["pelvis"] = {**positions["pelvis"], "seq": 2**70}
    assert _refused({**marker, "last_seq": positions}).field == "last_seq.pelvis.seq"
    assert _refused({**marker, "t_utc_s": 1e300}).field == "t_utc_s"
    assert _refused({**marker, "msg_id": "m" * 5_000}).field == "msg_id"
    status = _vector("status")
    assert _refused({**status, "gateway": {f"k{i}": "v" for i in range(100)}}).field == "gateway"
    assert _refused({**status, "outbox": {"rows": 1e300}}).field.startswith("outbox.")


def test_oversized_and_odd_payloads_are_uplink_errors() -> None:
    big = json.dumps({**_raw(), "pad": "x" * env.MAX_PAYLOAD_BYTES})
    assert "exceeds" in str(_refused(big.encode()))
    assert "exceeds" in str(_refused(big))  # a str is measured in UTF-8 bytes too
    # an unterminated string of escaped quotes: linear to scan, refused
    assert _refused('{"v":1,"kind":"raw","x":"' + '\\"' * 20_000).field == "payload"
    assert _refused(b"\xff\xfe").field == "payload"
    surrogate = json.dumps(_raw(**{"sensor.serial": "GS-X"}), separators=(",", ":")).replace("GS-X", "GS\\ud800")
    assert _refused(surrogate).field == "sensor.serial"  # escaped in JSON, but no text: no store can write it
    assert _refused('{"v":1,"kind":"raw","x":NaN}').field == "payload"


def test_the_honest_gateways_largest_messages_stay_well_inside_the_limits() -> None:
    """A 1-s batch at the firmware's top rate (1000 Hz) with one sample per packet (the smallest BLE MTU) and an
    ack of 500 marker ids, the longest ids an honest gateway makes, both encode (encode checks with decode)."""
    from firmware_protocol.packet import ImuPacket, encode_packet

    packets = tuple(
        encode_packet(
            ImuPacket(sequence=i, timestamp_us=1000 * i, acc_range_g=16, gyr_range_dps=2000, samples=((1,) * 6,))
        )
        for i in range(1000)
    )
    batch = env.RawBatch(
        kind="raw",
        msg_id=env.raw_batch_id("GS24-0001ABCD", 4_000_000_000, 2**40),
        subject="p" * 64,
        session="p" * 64 + "-20261126T184233Z-1000",
        placement="right_thigh",
        sensor=env.SensorIdentity("GS24-0001ABCD", 4_000_000_000, 1000.0, 16, 2000, "255.255.255"),
        seq_first=2**40,
        seq_last=2**40 + 999,
        n_samples=1000,
        t_sensor_us_first=2**45,
        clock=env.ClockMapping(True, 2**45, 4_000_000_000.123456, 1.0 / (1.0 + 999e-6), 999.0, 3.25),
        packets=packets,
    )
    assert len(env.encode(batch)) < 0.7 * env.MAX_PAYLOAD_BYTES
    marker_id = "marker:" + "p" * 64 + "-20261126T184233Z-1000:session_end:"
    marker_id += ",".join(f"{p}={2**40}" for p in ("left_thigh", "pelvis", "right_thigh")) + ":1000"
    ack = env.Ack("ack", "p" * 64, tuple(f"{marker_id}{i}" for i in range(500)), "w" * 64)
    assert len(marker_id) < env.MAX_ID_CHARS
    assert len(json.dumps(env._to_doc(ack))) > env.MAX_PAYLOAD_BYTES  # hence the worker splits acks by size
