"""Regenerate uplink golden vectors: `python -m gaitsym_common.uplink.vectors.make_vectors`.

Deterministic. Each valid vector: name, topic, payload (the exact JSON text) and the decoded message as
asdict() (packets as hex). Each malformed one: name, payload, error class and the field it must name.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from firmware_protocol.packet import ImuPacket, encode_packet
from gaitsym_common.uplink import envelope as env
from gaitsym_common.uplink.topics import topic

HERE = Path(__file__).parent


def _packets() -> tuple[bytes, ...]:
    samples = tuple((i, -i, 2048 + i, 10 * i, -10 * i, 0) for i in range(5))
    first = ImuPacket(sequence=4294967293, timestamp_us=4294960000, acc_range_g=16, gyr_range_dps=2000, samples=samples)
    second = ImuPacket(
        sequence=2,
        timestamp_us=4294960000 + 50_000 - 2**32,
        acc_range_g=16,
        gyr_range_dps=2000,
        samples=samples,
    )
    return encode_packet(first), encode_packet(second)


def valid_messages() -> list[tuple[str, env.Message, str]]:
    sensor = env.SensorIdentity("GS-000042", 7, 100.0, 16, 2000, "1.0.0")
    # a sensor clock 20 ppm fast: rate = 1 / (1 + drift_ppm * 1e-6), host seconds per sensor second
    clock = env.ClockMapping(True, 4294960000, 1795800000.25, 1.0 / (1.0 + 20.0e-6), 20.0, 0.4)
    unsynced = env.ClockMapping(False, 4294960000, None, 1.0, 0.0, 0.0)
    raw = env.RawBatch(
        "raw",
        env.raw_batch_id("GS-000042", 7, 4294967293),
        "demo-001",
        "s-20261126T1842Z",
        "pelvis",
        sensor,
        4294967293,
        4294967302,
        10,
        4294960000,
        clock,
        _packets(),
    )
    positions = {
        "pelvis": env.SensorPosition("GS-000042", 7, 4294967302),
        "left_thigh": env.SensorPosition("GS-000043", 3, 1200),
    }
    return [
        ("raw batch across a u32 wrap", raw, topic("demo-001", "raw", "pelvis")),
        (
            "raw batch before the gateway clock is synchronised",
            env.RawBatch(
                "raw",
                raw.msg_id,
                "demo-001",
                None,
                "pelvis",
                sensor,
                raw.seq_first,
                raw.seq_last,
                10,
                raw.t_sensor_us_first,
                unsynced,
                raw.packets,
            ),
            topic("demo-001", "raw", "pelvis"),
        ),
        (
            "gap",
            env.Gap(
                "gap",
                env.gap_id("GS-000043", 3, 1000),
                "demo-001",
                "s-20261126T1842Z",
                "left_thigh",
                "GS-000043",
                3,
                1000,
                1099,
                1.0,
                "link_lost",
            ),
            topic("demo-001", "gap", "left_thigh"),
        ),
        (
            "set start marker",
            env.Marker(
                "marker",
                "mk:s-20261126T1842Z:4",
                "demo-001",
                "s-20261126T1842Z",
                "set_start",
                1795800100.0,
                positions,
                "single_leg_bridge",
                "left",
                1,
                "cmd",
            ),
            topic("demo-001", "marker"),
        ),
        (
            "window marker",
            env.Marker("marker", "mk:s-20261126T1842Z:5", "demo-001", "s-20261126T1842Z", "window", None, positions),
            topic("demo-001", "marker"),
        ),
        (
            "session end marker with each sensor's first sample of the session",
            env.Marker(
                "marker",
                "mk:s-20261126T1842Z:9",
                "demo-001",
                "s-20261126T1842Z",
                "session_end",
                1795800900.0,
                {
                    "pelvis": env.SensorPosition("GS-000042", 7, 4294967302, 4294900000),
                    "left_thigh": env.SensorPosition("GS-000043", 3, 1200, 0),
                    "right_thigh": env.SensorPosition("GS-000044", 5, 90000),  # not known: the field is absent
                },
            ),
            topic("demo-001", "marker"),
        ),
        (
            "status online",
            env.Status(
                "status",
                "demo-001",
                "online",
                1795800100.0,
                {"id": "gw-1", "version": "0.1.0"},
                "s-20261126T1842Z",
                {
                    "pelvis": env.SensorStatus("connected", "GS-000042", 87, -60, 7, 4294967302, 20.0, 0.4, 1000, 0),
                    "right_thigh": env.SensorStatus("lost"),
                },
                {"pending_messages": 3.0},
            ),
            topic("demo-001", "status"),
        ),
        (
            "status offline (last will)",
            env.Status("status", "demo-001", "offline"),
            topic("demo-001", "status"),
        ),
        (
            "command",
            env.Command("cmd", "c-1", "demo-001", "set_start", "clam", "right", 2),
            topic("demo-001", "cmd"),
        ),
        (
            "command reply",
            env.CommandReply("cmd/reply", "c-1", "demo-001", True, "set started"),
            topic("demo-001", "cmd/reply"),
        ),
        (
            "ack",
            env.Ack("ack", "demo-001", (raw.msg_id, "gap:GS-000043:3:1000"), "worker-a"),
            topic("demo-001", "ack"),
        ),
        (
            "bundle of a raw batch and the window marker after it",
            env.Bundle(
                "bundle",
                "demo-001",
                (
                    env.BundlePart(topic("demo-001", "raw", "pelvis"), env.encode(raw)),
                    env.BundlePart(
                        topic("demo-001", "marker"),
                        env.encode(
                            env.Marker(
                                "marker",
                                "mk:s-20261126T1842Z:5",
                                "demo-001",
                                "s-20261126T1842Z",
                                "window",
                                None,
                                positions,
                            )
                        ),
                    ),
                ),
            ),
            topic("demo-001", "bundle"),
        ),
    ]


def _jsonable(message: env.Message) -> dict[str, Any]:
    doc = asdict(message)
    if isinstance(message, env.RawBatch):
        doc["packets"] = [p.hex() for p in message.packets]
    if isinstance(message, env.Ack):
        doc["msg_ids"] = list(message.msg_ids)
    if isinstance(message, env.Bundle):  # each part's payload as the text it is
        doc["parts"] = [{"topic": p.topic, "payload": p.payload.decode("utf-8")} for p in message.parts]
    if isinstance(message, env.Marker):  # as on the wire: an optional field the gateway did not say is absent
        for position in doc["last_seq"].values():
            if position["session_seq_first"] is None:
                del position["session_seq_first"]
    return doc


def malformed() -> list[dict[str, Any]]:
    raw = json.loads(env.encode(valid_messages()[0][1]))

    def mutate(**changes: Any) -> str:
        doc = json.loads(json.dumps(raw))
        for path, value in changes.items():
            target = doc
            keys = path.split("__")
            for key in keys[:-1]:
                target = target[key]
            if value is _DELETE:
                del target[keys[-1]]
            else:
                target[keys[-1]] = value
        return json.dumps(doc)

    return [
        {"name": "not JSON", "payload": "{raw", "field": "payload"},
        {"name": "a JSON array", "payload": "[1]", "field": "payload"},
        {"name": "unknown version", "payload": mutate(v=2), "field": "v"},
        {"name": "unknown kind", "payload": mutate(kind="rawr"), "field": "kind"},
        {"name": "subject with a slash", "payload": mutate(subject="a/b"), "field": "subject"},
        {"name": "unknown placement", "payload": mutate(placement="head"), "field": "placement"},
        {"name": "missing clock", "payload": mutate(clock=_DELETE), "field": "clock"},
        {
            "name": "invented UTC while unsynced",
            "payload": mutate(clock__utc_synced=False),
            "field": "clock.ref_utc_s",
        },
        {
            "name": "negative boot epoch",
            "payload": mutate(sensor__boot_epoch=-1),
            "field": "sensor.boot_epoch",
        },
        {"name": "boolean as sequence", "payload": mutate(seq_first=True), "field": "seq_first"},
        {"name": "bad base64 packet", "payload": mutate(packets=["!!!"]), "field": "packets[0]"},
        {"name": "no packets", "payload": mutate(packets=[]), "field": "packets"},
        {
            "name": "drift_ppm of the wrong sign for the rate",
            "payload": mutate(clock__drift_ppm=-20.0),
            "field": "clock.drift_ppm",
        },
        {
            "name": "more samples than the sequence range",
            "payload": mutate(n_samples=11),
            "field": "seq_last",
        },
        {
            "name": "msg_id not derived from the samples",
            "payload": mutate(msg_id="raw:x:1:2"),
            "field": "msg_id",
        },
        {
            "name": "NaN rate",
            "payload": mutate(clock__rate="NaN").replace('"NaN"', "NaN"),
            "field": "payload",
        },
        {
            "name": "set marker with an unknown exercise",
            "payload": json.dumps(
                {
                    "v": 1,
                    "kind": "marker",
                    "msg_id": "m",
                    "subject": "s1",
                    "session": "x",
                    "type": "set_start",
                    "t_utc_s": None,
                    "last_seq": {},
                    "exercise": "yoga",
                    "side": "left",
                    "set": 1,
                }
            ),
            "field": "exercise",
        },
        {
            "name": "session's first sample after the marker's last",
            "payload": json.dumps(
                {
                    "v": 1,
                    "kind": "marker",
                    "msg_id": "m",
                    "subject": "s1",
                    "session": "x",
                    "type": "session_end",
                    "t_utc_s": None,
                    "last_seq": {"pelvis": {"serial": "A", "boot_epoch": 1, "seq": 100, "session_seq_first": 101}},
                }
            ),
            "field": "last_seq.pelvis.session_seq_first",
        },
        {
            "name": "bilateral exercise with a side",
            "payload": json.dumps(
                {
                    "v": 1,
                    "kind": "cmd",
                    "cmd_id": "c",
                    "subject": "s1",
                    "action": "set_start",
                    "exercise": "pelvic_tilt",
                    "side": "left",
                }
            ),
            "field": "side",
        },
        {
            "name": "ack id not a string",
            "payload": json.dumps({"v": 1, "kind": "ack", "subject": "s1", "msg_ids": [3]}),
            "field": "msg_ids[0]",
        },
        {
            "name": "bundle without a message",
            "payload": json.dumps({"v": 1, "kind": "bundle", "subject": "s1", "parts": []}),
            "field": "parts",
        },
        {
            "name": "bundle holding another subject's message",
            "payload": json.dumps(
                {
                    "v": 1,
                    "kind": "bundle",
                    "subject": "s1",
                    "parts": [{"topic": "gaitsym/v1/s2/marker", "payload": "{}"}],
                }
            ),
            "field": "parts[0].topic",
        },
        {
            "name": "bundle holding an ack",
            "payload": json.dumps(
                {"v": 1, "kind": "bundle", "subject": "s1", "parts": [{"topic": "gaitsym/v1/s1/ack", "payload": "{}"}]}
            ),
            "field": "parts[0].topic",
        },
        {
            "name": "bundle part payload not text",
            "payload": json.dumps(
                {"v": 1, "kind": "bundle", "subject": "s1", "parts": [{"topic": "gaitsym/v1/s1/marker", "payload": 5}]}
            ),
            "field": "parts[0].payload",
        },
    ]


_DELETE = object()


def build() -> str:
    """The exact text of uplink.json (a test checks the committed file is this)."""
    valid = []
    for name, message, topic_name in valid_messages():
        valid.append(
            {
                "name": name,
                "topic": topic_name,
                "payload": env.encode(message).decode("utf-8"),
                "decoded": _jsonable(message),
            }
        )
    bad = [{**m, "error": "UplinkError"} for m in malformed()]
    doc = {"contract": "gaitsym uplink v1", "valid": valid, "malformed": bad}
    return json.dumps(doc, indent=1) + "\n"


def main() -> None:
    (HERE / "uplink.json").write_text(build(), "utf-8")


if __name__ == "__main__":
    main()
