"""The hostile-neighbour scenario (tests/hostile/test_hostile_neighbour.py, bench/fuzz_campaign.py): a neighbour on the
same broker, on its own topics, while an honest subject streams through the production gateway on the virtual kit
to a real `gaitsym worker` process and its store.

The neighbour (subject N001, anonymous like everyone on the loopback broker) first sends valid-looking raw batches
whose serials, boot epochs and sequence numbers are the honest kit's (hence the honest batches' msg_ids: BLE v1 is
open, any central nearby reads a sensor's info) with mapped times overlapping the honest stream's, then, while
the honest subject streams, poison: 30,000 levels of nesting, a 5,000-digit number, sequences and sensor times
past 2**63, clock values that overflow, a lone surrogate in a serial, a marker whose id cannot be acknowledged in
one payload, a gap and a marker past 2**63, wrong types, invalid UTF-8 (each under 64 KiB: the broker's packet
limit is tested in tests/broker/).

`run_neighbour` checks: every sample the honest gateway published is stored exactly once (stored (serial, boot,
seq) against what it published); the honest outbox drains (every honest message acknowledged end to end); the
worker process is alive at the end; every named poison payload is in the worker's quarantine, and nothing of the
honest subject is. Every problem found is listed in `NeighbourOutcome.problems`.
"""

from __future__ import annotations

import base64
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from analytics.stores import open_store
from analytics.worker.decode import batch_samples
from gaitsym_common.uplink import envelope as env
from testing.fuzz.poison import imu_packet
from testing.gateway.loopback import unbundled
from testing.worker.harness import (
    UTC0,
    HomeSession,
    WorkerProcess,
    home_sessions,
    quarantine_entries,
    stop_gateways,
    stream,
)

HONEST, NEIGHBOUR = "S001", "N001"
NESTING = 30_000


def _raw(placement: str, serial: str, boot: int, seq_first: int, n: int, t_first: int, **over: Any) -> dict[str, Any]:
    """A consistent one-packet raw batch of the neighbour's (its mapping lands on the honest stream's times)."""
    packet = imu_packet(seq_first, t_first, bytes(range(12)) * n)
    doc: dict[str, Any] = {
        "v": 1,
        "kind": "raw",
        "msg_id": f"raw:{serial}:{boot}:{seq_first}",
        "subject": NEIGHBOUR,
        "session": None,
        "placement": placement,
        "sensor": {
            "serial": serial,
            "boot_epoch": boot,
            "sample_rate_hz": 100.0,
            "acc_range_g": 16,
            "gyr_range_dps": 2000,
        },
        "seq_first": seq_first,
        "seq_last": seq_first + n - 1,
        "n_samples": n,
        "t_sensor_us_first": t_first,
        "clock": {
            "utc_synced": True,
            "ref_sensor_us": t_first,
            "ref_utc_s": UTC0 + 5.0,
            "rate": 1.0,
            "drift_ppm": 0.0,
            "jitter_ms": 0.5,
        },
        "packets": [base64.b64encode(packet).decode()],
    }
    for key, value in over.items():
        if "." in key:
            outer, inner = key.split(".")
            doc[outer][inner] = value
        else:
            doc[key] = value
    return doc


def _text(name: str, doc: dict[str, Any], replace: dict[str, str] | None = None) -> bytes:
    """The payload with ``"poison"`` first (so the quarantine's copy names it) and placeholders swapped for text
    json.dumps cannot produce."""
    text = json.dumps({"poison": name, **doc}, separators=(",", ":"), ensure_ascii=False)
    for placeholder, poison in (replace or {}).items():
        text = text.replace(json.dumps(placeholder), poison)
    return text.encode("utf-8")


def poison(serial: str, boot: int) -> list[tuple[str, str, bytes]]:
    """(name, topic, payload) of every poison payload, all on the neighbour's own topics."""
    raw_topic = f"gaitsym/v1/{NEIGHBOUR}/raw/pelvis"
    gap_topic = f"gaitsym/v1/{NEIGHBOUR}/gap/pelvis"
    marker_topic = f"gaitsym/v1/{NEIGHBOUR}/marker"
    base = _raw("pelvis", serial, boot, 10, 10, 1_000_000)
    big = 2**70
    marker = {
        "v": 1,
        "kind": "marker",
        "msg_id": "mk:n:1",
        "subject": NEIGHBOUR,
        "session": "n-1",
        "type": "session_start",
        "t_utc_s": None,
        "last_seq": {"pelvis": {"serial": serial, "boot_epoch": boot, "seq": 19}},
    }
    gap = {
        "v": 1,
        "kind": "gap",
        "msg_id": f"gap:{serial}:{boot}:{big}",
        "subject": NEIGHBOUR,
        "session": None,
        "placement": "pelvis",
        "serial": serial,
        "boot_epoch": boot,
        "seq_first_missing": big,
        "seq_last_missing": big + 5,
        "duration_s": 0.06,
        "reason": "packet_lost",
    }
    return [
        ("nesting", raw_topic, _text("nesting", {**base, "packets": "@@"}, {"@@": "[" * NESTING + "]" * NESTING})),
        ("5000 digits", raw_topic, _text("5000 digits", {**base, "seq_last": "@@"}, {"@@": "7" * 5000})),
        ("seq past 2**63", raw_topic, _text("seq past 2**63", _raw("pelvis", serial, boot, big, 10, 1_000_000))),
        ("sensor time past 2**63", raw_topic, _text("sensor time past 2**63", {**base, "t_sensor_us_first": big})),
        (
            "clock rate 1e300",
            raw_topic,
            _text("clock rate 1e300", _raw("pelvis", serial, boot, 30, 10, 1, **{"clock.rate": 1e300})),
        ),
        (
            "ref_utc_s 1e300",
            raw_topic,
            _text("ref_utc_s 1e300", _raw("pelvis", serial, boot, 40, 10, 1, **{"clock.ref_utc_s": 1e300})),
        ),
        (
            "sample rate 1e-300",
            raw_topic,
            _text("sample rate 1e-300", _raw("pelvis", serial, boot, 50, 10, 1, **{"sensor.sample_rate_hz": 1e-300})),
        ),
        (
            "lone surrogate serial",
            raw_topic,
            _text("lone surrogate serial", _raw("pelvis", "@@", boot, 60, 10, 1), {'"@@"': '"GS\\ud800"'}).replace(
                b":@@:", b":GS\\ud800:"
            ),
        ),
        ("wrong types", raw_topic, _text("wrong types", {**base, "packets": {"a": [1, 2]}, "n_samples": "10"})),
        ("8000 packets", raw_topic, _text("8000 packets", {**base, "packets": ["AQ=="] * 8_000})),
        ("invalid utf-8", raw_topic, b'{"poison":"invalid utf-8","v":1,"kind":"raw\xff\xfe"}'),
        ("gap past 2**63", gap_topic, _text("gap past 2**63", gap)),
        (
            "marker seq past 2**63",
            marker_topic,
            _text(
                "marker seq past 2**63",
                {
                    **marker,
                    "type": "window",
                    "msg_id": "mk:n:2",
                    "last_seq": {"pelvis": {"serial": serial, "boot_epoch": boot, "seq": big}},
                },
            ),
        ),
    ] + [  # three ids whose acknowledgement, one payload, exceeds any payload limit (15,000 emoji: 12 bytes each in
        # JSON's escapes, 4 in UTF-8)
        (
            f"marker id too long to ack {i}",
            marker_topic,
            _text(f"marker id too long to ack {i}", {**marker, "msg_id": f"mk:{i}:" + "\U0001f600" * 15_000}),
        )
        for i in range(3)
    ]


def _publish_all(client: paho.Client, messages: list[tuple[str, bytes]]) -> None:
    infos = [client.publish(topic, payload, qos=1) for topic, payload in messages]
    for info in infos:
        info.wait_for_publish(30)


def _wait(what: str, done: Any, timeout_s: float, worker: WorkerProcess) -> str | None:
    """Poll ``done()`` until true; a problem text if it times out or the worker process died first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if done():
            return None
        if worker.proc is not None and worker.proc.poll() is not None:
            return f"{what}: the worker process died (exit {worker.proc.returncode})"
        time.sleep(0.2)
    return f"{what}: not within {timeout_s:.0f} s"


@dataclass
class NeighbourOutcome:
    problems: list[str] = field(default_factory=list)
    published: int = 0
    """Honest samples its gateway published."""
    stored: int = 0
    lost: int = 0
    twice: int = 0
    extra: int = 0
    worker_alive: bool = False
    poison: int = 0
    poison_quarantined: int = 0
    quarantine_entries: int = 0


def run_neighbour(
    tmp_path: Path, port: int, store_path: str, extra: list[tuple[str, bytes]] | tuple[()] = ()
) -> NeighbourOutcome:
    """The scenario of the module docstring on a broker at ``port`` with the store at ``store_path`` (a path or an
    influx:// URL); ``extra``: more (topic, payload) the neighbour sends while the honest subject streams."""
    out = NeighbourOutcome()
    problems = out.problems
    worker = WorkerProcess(port, store_path, "worker-1", tmp_path, "--no-live").start()
    sessions: list[HomeSession] = []
    neighbour = paho.Client(CallbackAPIVersion.VERSION2, client_id="neighbour")
    published: list[env.RawBatch] = []
    try:
        problem = _wait("worker connected", lambda: "MQTT connected" in worker.log(), 60.0, worker)
        assert problem is None, problem + "\n" + worker.log()[-3000:]
        sessions = home_sessions(tmp_path, port, 1, minutes=0.7)
        honest = sessions[0]
        link_publish = honest.gateway.link.publish

        def recording_publish(topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> bool:
            for name, body in unbundled(topic, payload):
                if "/raw/" in name:
                    published.append(env.decode(body))  # type: ignore[arg-type]
            return link_publish(topic, payload, qos=qos, retain=retain)

        honest.gateway.link.publish = recording_publish  # type: ignore[method-assign]
        neighbour.connect("127.0.0.1", port)
        neighbour.loop_start()

        # 1. the neighbour takes the honest batches' identities first, mapped onto the honest stream's times
        spray = []
        for placement, sensor in honest.kit.sensors.items():
            first = sensor.sequence_start
            for k in range(0, 4400, 10):
                doc = _raw(
                    placement,
                    sensor.info.serial,
                    sensor.info.boot_epoch,
                    first + k,
                    10,
                    5_000_000 + k * 10_000,
                    **{"clock.ref_utc_s": UTC0 + k / 100.0 + 0.003},  # on the honest samples' times
                )
                spray.append((f"gaitsym/v1/{NEIGHBOUR}/raw/{placement}", json.dumps(doc).encode()))
        _publish_all(neighbour, spray)
        store = open_store(store_path)
        try:
            expected = len(spray) // 3

            def sprayed() -> bool:
                return all(
                    store.raw_progress(NEIGHBOUR, p, s.info.serial, s.info.boot_epoch).n_batches >= expected
                    for p, s in honest.kit.sensors.items()
                )

            if (problem := _wait("the neighbour's batches stored", sprayed, 60.0, worker)) is not None:
                problems.append(problem)
        finally:
            store.close()

        # 2. the honest subject streams; the poison arrives in the middle of it
        pelvis = honest.kit.sensors["pelvis"].info
        stream(sessions, 10.0)
        poisons = poison(pelvis.serial, pelvis.boot_epoch)
        _publish_all(neighbour, [(topic, payload) for _, topic, payload in poisons])
        for i in range(0, len(extra), 200):  # more hostile payloads, as they come (bench/fuzz_campaign.py)
            _publish_all(neighbour, list(extra[i : i + 200]))
            if not honest.done:
                stream(sessions, 1.0)
        while not honest.done and worker.proc is not None and worker.proc.poll() is None:
            stream(sessions, 5.0)
        honest.close_session()

        def drained() -> bool:
            honest.step(0.2)
            return honest.backlog == 0

        if (problem := _wait("the honest outbox drained", drained, 60.0, worker)) is not None:
            problems.append(f"{problem} ({honest.backlog} honest messages unacknowledged)")

        # 3. what the store holds of the honest subject, against what its gateway published
        sent = Counter(
            (b.placement, b.sensor.serial, b.sensor.boot_epoch, int(q))
            for b in {m.msg_id: m for m in published}.values()
            for q in batch_samples(b).seq
        )
        store = open_store(store_path)
        try:
            stored: Counter[tuple[str, str, int, int]] = Counter()
            for placement in honest.kit.sensors:
                raw = store.read_raw(HONEST, placement)
                stored.update(
                    zip([placement] * len(raw), raw.serial, raw.boot_epoch.tolist(), raw.seq.tolist(), strict=True)
                )
        finally:
            store.close()
        lost = sent - stored
        twice = {k: n for k, n in stored.items() if n > 1}
        unsent = stored - sent
        out.published, out.stored = sum(sent.values()), sum(stored.values())
        out.lost, out.twice, out.extra = sum(lost.values()), len(twice), sum(unsent.values())
        if lost:
            problems.append(
                f"{sum(lost.values())} of {sum(sent.values())} honest samples not stored, e.g. {sorted(lost)[:3]}"
            )
        if twice:
            problems.append(f"{len(twice)} honest samples stored more than once, e.g. {sorted(twice)[:3]}")
        if unsent:
            problems.append(
                f"{sum(unsent.values())} stored honest samples its gateway never sent, e.g. {sorted(unsent)[:3]}"
            )
        if sum(s.gaps for s in honest.gateway.sensors.values()):
            problems.append("the honest gateway reported gaps (the kit streams without loss here)")

        # 4. the worker kept going, and set every poison payload aside
        out.worker_alive = worker.proc is not None and worker.proc.poll() is None
        if not out.worker_alive:
            problems.append(f"the worker process is not alive at the end: {worker.log()[-2500:]}")
        entries = quarantine_entries(tmp_path / "state")
        texts = "\n".join(line for e in entries for line in e.lines)
        missing = [name for name, _, _ in poisons if f'"poison":"{name}"' not in texts]
        out.poison, out.poison_quarantined = len(poisons), len(poisons) - len(missing)
        out.quarantine_entries = len(entries)
        if missing:
            problems.append(f"poison payloads not in the worker's quarantine: {missing}")
        if any(f"/{HONEST}/" in e.what or f"subject={HONEST}" in e.what for e in entries):
            problems.append(f"honest data quarantined: {[e.what for e in entries if HONEST in e.what][:3]}")
    finally:
        neighbour.loop_stop()
        neighbour.disconnect()
        stop_gateways(sessions)
        worker.stop()
    return out
