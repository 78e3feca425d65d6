"""The third-party-gateway conformance scenario (tests/hostile/test_thirdparty_gateway_conformance.py,
bench/fuzz_campaign.py): the gateway of testing/thirdparty_gateway.py, written from UPLINK.md and SPEC.md alone,
streams to a real `gaitsym worker` process (embedded store) through a real Mosquitto; `run_conformance` checks,
sample by sample (serial, boot, seq), that every sample it sent is stored exactly once or reported (inside a
recorded gap, or named by a quarantine record that gives a reason), that every gap it reported is recorded, and
that nothing of its stays unacknowledged unless quarantined. Problems found: `ConformanceOutcome.problems`.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analytics.stores import open_store
from testing.thirdparty_gateway import ThirdPartyGateway, kit
from testing.worker.harness import UTC0, WorkerProcess, quarantine_entries

SUBJECT = "T001"
SampleKey = tuple[str, str, int, int]
_DESCRIBED = re.compile(r"placement=(\S+) serial=(\S+) boot_epoch=(\d+) seq=(\d+)\.\.(\d+)")


def _msg_id(line: str) -> str | None:
    """The msg_id of a payload the worker kept in its quarantine (None: not a JSON object naming one)."""
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    msg_id = doc.get("msg_id") if isinstance(doc, dict) else None
    return msg_id if isinstance(msg_id, str) else None


def reported_by_quarantine(entries: list[Any], sent: dict[str, list[SampleKey]]) -> tuple[set[SampleKey], list[str]]:
    """Samples a quarantine record names (a whole payload kept by the worker, or samples the store refused), and
    the records that give no reason."""
    out: set[SampleKey] = set()
    silent = []
    for e in entries:
        if not (e.reason.strip() or e.server_message.strip()):
            silent.append(e.what)
        for line in e.lines:
            out.update(sent.get(_msg_id(line) or "", ()))
        for placement, serial, boot, first, last in _DESCRIBED.findall(e.what):
            out.update((placement, serial, int(boot), q) for q in range(int(first), int(last) + 1))
    return out, silent


def overlapping_boundaries(payloads: dict[str, tuple[str, bytes]]) -> int:
    """Batch boundaries where a batch's first sample maps (UPLINK.md's formula) at or before the previous batch's
    last sample of the same sensor: what the scenario is about."""
    by_sensor: dict[str, list[tuple[int, float, float]]] = {}
    for topic, payload in payloads.values():
        doc = json.loads(payload)
        if doc["kind"] != "raw":
            continue
        c = doc["clock"]
        first = c["ref_utc_s"] + (doc["t_sensor_us_first"] - c["ref_sensor_us"]) * 1e-6 * c["rate"]
        span_us = (doc["seq_last"] - doc["seq_first"]) * 1e6 / doc["sensor"]["sample_rate_hz"]
        last = first + span_us * 1e-6 * c["rate"]
        by_sensor.setdefault(topic, []).append((doc["seq_first"], first, last))
    n = 0
    for batches in by_sensor.values():
        batches.sort()
        n += sum(1 for a, b in itertools.pairwise(batches) if b[1] <= a[2])
    return n


def _start_worker(worker: WorkerProcess) -> None:
    """Start the worker process and wait for its MQTT connection (the log keeps earlier runs' lines)."""
    before = worker.log().count("MQTT connected") if worker.log_path.exists() else 0
    worker.start()
    deadline = time.monotonic() + 60.0
    while worker.log().count("MQTT connected") <= before:
        assert time.monotonic() < deadline and _alive(worker), worker.log()[-3000:]
        time.sleep(0.2)


def _alive(worker: WorkerProcess) -> bool:
    return worker.proc is not None and worker.proc.poll() is None


def _settle(gateway: ThirdPartyGateway, state: Path, worker: WorkerProcess, problems: list[str], **resend: Any) -> None:
    """Until everything the gateway sent is acknowledged or kept aside by the worker (never acknowledged: it never
    becomes good), re-sending what waits too long."""
    deadline = time.monotonic() + 60.0
    while True:
        kept = {_msg_id(line) for e in quarantine_entries(state) for line in e.lines}
        left = gateway.unacked() - kept
        if not left:
            return
        if time.monotonic() > deadline or not _alive(worker):
            problems.append(f"{len(left)} messages neither acknowledged nor quarantined, e.g. {sorted(left)[:3]}")
            return
        gateway.resend_due(**resend)
        time.sleep(0.5)


def _check_samples(gateway: ThirdPartyGateway, store_path: Path, state: Path, out: ConformanceOutcome) -> None:
    """Sample by sample: stored exactly once, or in a recorded gap, or in a quarantine record with a reason."""
    problems = out.problems
    sent_samples = Counter(k for keys in gateway.sent.samples.values() for k in keys)
    store = open_store(str(store_path))
    try:
        stored: Counter[SampleKey] = Counter()
        recorded_gaps: set[SampleKey] = set()
        for s in gateway.sensors:
            raw = store.read_raw(SUBJECT, s.placement)
            stored.update(
                zip([s.placement] * len(raw), raw.serial, raw.boot_epoch.tolist(), raw.seq.tolist(), strict=True)
            )
            index = store.raw_index(SUBJECT, s.placement, s.serial, s.boot_epoch, None, 1 << 62)
            for a, b in index.gaps:
                recorded_gaps.update((s.placement, s.serial, s.boot_epoch, q) for q in range(a, b + 1))
    finally:
        store.close()
    quarantined, silent = reported_by_quarantine(quarantine_entries(state), gateway.sent.samples)
    unreported = [k for k in sent_samples if stored[k] == 0 and k not in recorded_gaps and k not in quarantined]
    twice = [k for k, n in stored.items() if n > 1]
    foreign = [k for k in stored if k not in sent_samples]
    out.sent, out.stored, out.distinct = sum(sent_samples.values()), sum(stored.values()), len(stored)
    out.quarantined, out.unreported, out.twice = len(quarantined & set(sent_samples)), len(unreported), len(twice)
    if unreported:
        problems.append(f"{len(unreported)} samples sent, neither stored nor reported, e.g. {sorted(unreported)[:3]}")
    if twice:
        problems.append(f"{len(twice)} samples stored more than once, e.g. {sorted(twice)[:3]}")
    if foreign:
        problems.append(f"{len(foreign)} stored samples were never sent, e.g. {sorted(foreign)[:3]}")
    if silent:
        problems.append(f"quarantine records without a reason: {silent[:3]}")
    for placement, serial, boot, first, last in gateway.sent.gaps:
        missing = [q for q in range(first, last + 1) if (placement, serial, boot, q) not in recorded_gaps]
        if missing:
            problems.append(f"gap {placement} {first}..{last} reported by the gateway, not recorded: {missing[:3]}")


@dataclass
class ConformanceOutcome:
    problems: list[str] = field(default_factory=list)
    sent: int = 0
    """Samples the gateway sent (each once, replays not counted)."""
    stored: int = 0
    distinct: int = 0
    quarantined: int = 0
    """Sent samples named by a quarantine record."""
    unreported: int = 0
    twice: int = 0
    overlaps: int = 0
    """Batch boundaries where the next batch maps at or before the previous one's last sample."""
    gaps: int = 0

    def summary(self) -> str:
        return (
            f"{self.sent} samples sent, {self.gaps} gaps, {self.overlaps} overlapping batch boundaries; stored "
            f"{self.stored} ({self.distinct} distinct), quarantined {self.quarantined}, neither stored nor reported "
            f"{self.unreported}, stored twice {self.twice}"
        )


def run_conformance(
    tmp_path: Path, port: int, seed: int, seconds: float = 40.0, replay_refit: bool = False
) -> ConformanceOutcome:
    """The third-party gateway (seeded) streams ``seconds`` of three sensors to a `gaitsym worker` process with an
    embedded store; the outcome is checked sample by sample.

    ``replay_refit``: the gateway was offline while the worker acknowledged (a clean MQTT session: those acks are
    gone), the worker was restarted meanwhile (an update: its memory of stored msg_ids is gone), and the gateway,
    back, re-sends everything unacknowledged under the same msg_ids, built with its clock fit as it is by then:
    against UPLINK.md's rule that a re-sent batch is the identical payload. The samples land on other microseconds
    than the first time; the worker must still store each one once."""
    out = ConformanceOutcome()
    store_path, state = tmp_path / "state" / "store.sqlite", tmp_path / "state"
    worker = WorkerProcess(port, str(store_path), "worker-1", tmp_path, "--no-live")
    gateway = None
    try:
        _start_worker(worker)
        gateway = ThirdPartyGateway(
            SUBJECT, port, kit(seed), seconds=seconds, seed=seed, utc0_s=UTC0, listen_acks=not replay_refit
        )
        gateway.run()
        out.overlaps, out.gaps = overlapping_boundaries(gateway.sent.payloads), len(gateway.sent.gaps)
        if replay_refit:
            expected = sum(len(v) for v in gateway.sent.samples.values())
            deadline = time.monotonic() + 60.0
            while time.monotonic() < deadline and _alive(worker):  # the first copies stored (or set aside)
                kept = {_msg_id(line) for e in quarantine_entries(state) for line in e.lines}
                held = sum(len(v) for k, v in gateway.sent.samples.items() if k in kept)
                store = open_store(str(store_path))
                try:
                    stored = sum(len(store.read_raw(SUBJECT, s.placement)) for s in gateway.sensors)
                finally:
                    store.close()
                if stored + held >= expected:
                    break
                time.sleep(0.5)
            worker.stop()
            _start_worker(worker)
            gateway.listen_acks()
            gateway.resend_due(refit=True, older_than_s=0.0)
        _settle(gateway, state, worker, out.problems, refit=replay_refit)
        _check_samples(gateway, store_path, state, out)
        if not _alive(worker):
            out.problems.append(f"the worker process is not alive at the end: {worker.log()[-2500:]}")
    finally:
        if gateway is not None:
            gateway.close()
        worker.stop()
    return out
