"""A minimal third-party home gateway, written from gaitsym_common/uplink/UPLINK.md and firmware_protocol/SPEC.md
alone: it imports nothing of gaitsym (the sensor's packets are encoded here from SPEC.md §3-5 too), so a test can
check that the worker accepts what anyone implementing the documents may send.

What it does, plainly, as a first implementation would:

- simulated sensors (SPEC.md): 100 Hz, 10 samples per packet, u32 sequence from 0 and a u32 µs clock that starts
  anywhere (here near its wrap) and runs ``drift_ppm`` fast; packets reach the gateway bursty (BLE connection
  events every 30-50 ms, now and then a stall of 60-150 ms), and a fraction is lost on the air;
- a plain running clock fit (UPLINK.md "clock"): offset and rate by least squares over every packet arrival seen
  so far (arrival vs the sensor time of the packet's last sample), re-fitted and published with each batch, so the
  early batches' mappings move by tens of ms as the arrival jitter averages out. No continuity rule, nothing that
  keeps consecutive batches' mapped times apart;
- ``ref_utc_s`` rounded to the millisecond (``utc_resolution_s``): UTC kept in ms, as many IoT stacks do;
- batches of ``batch_s`` (1 s); a lost packet becomes a ``gap`` (reason ``packet_lost``); msg_ids as UPLINK.md
  says; QoS 1; acks on its ``ack`` topic delete from its in-memory outbox; whatever is unacknowledged after
  ``ack_timeout_s`` is re-sent: the same bytes, or (``resend_due(refit=True)``) the same msg_id and packets with
  the clock fit as it is by then, as a gateway that keeps packets rather than payloads does.

Units: host and UTC times in s, sensor times in µs, rates in Hz.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import random
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

U32 = 1 << 32
G_MPS2 = 9.80665


# ------------------------------------------------------------------------------------------ SPEC.md: the sensor


def imu_packet(sequence: int, timestamp_us: int, counts: list[tuple[int, ...]], ranges: int = 0x43) -> bytes:
    """SPEC.md §3: version 1, flags 0, n samples, ranges (acc code 3 = ±16 g, gyr code 4 = ±2000 deg/s),
    u32 sequence and timestamp, n x 6 int16, then CRC-16/CCITT-FALSE (§4) little-endian."""
    body = struct.pack("<BBBBII", 1, 0, len(counts), ranges, sequence % U32, timestamp_us % U32)
    body += b"".join(struct.pack("<6h", *c) for c in counts)
    return body + struct.pack("<H", binascii.crc_hqx(body, 0xFFFF))


@dataclass
class Sensor:
    """One simulated sensor: the packets it sends and when each reaches the gateway."""

    placement: str
    serial: str
    boot_epoch: int
    drift_ppm: float
    clock0_us: int
    rate_hz: int = 100
    per_packet: int = 10

    def packet(self, k: int) -> tuple[bytes, int, int, float]:
        """Packet k: (bytes, unwrapped seq of its first sample, unwrapped sensor µs of its first sample, true time
        in s of its last sample since the start)."""
        seq = k * self.per_packet
        counts = []
        for i in range(self.per_packet):
            t = (seq + i) / self.rate_hz
            acc = (0.3 * math.sin(2 * math.pi * 1.8 * t), 0.2 * math.cos(2 * math.pi * 0.9 * t), 1.0)
            gyr = (40 * math.sin(2 * math.pi * 0.9 * t), 10.0, -5.0)
            counts.append(tuple(round(a * 32768 / 16) for a in acc) + tuple(round(g * 32768 / 2000) for g in gyr))
        t_first_us = self.clock0_us + round(seq / self.rate_hz * 1e6 * (1 + self.drift_ppm * 1e-6))
        true_last_s = (seq + self.per_packet - 1) / self.rate_hz
        return imu_packet(seq, t_first_us, counts), seq, t_first_us, true_last_s


def arrivals(n_packets: int, period_s: float, rng: random.Random) -> list[float]:
    """Host arrival times of packets ready every ``period_s``: they leave at the next connection event (every
    30-50 ms), now and then after a stall; never before an earlier packet."""
    out, event, last = [], 0.0, 0.0
    for k in range(n_packets):
        ready = (k + 1) * period_s
        while event < ready:
            event += rng.uniform(0.030, 0.050)
        stall = rng.uniform(0.060, 0.150) if rng.random() < 0.08 else 0.0
        last = max(last, event + stall + 0.004)
        out.append(last)
    return out


# ------------------------------------------------------------------------------------------ UPLINK.md: clock fit


class RunningFit:
    """Least squares host_s = a + b·sensor_s over every arrival so far (b: host seconds per sensor second)."""

    def __init__(self) -> None:
        self.points: list[tuple[float, float]] = []

    def add(self, sensor_us: int, host_s: float) -> None:
        self.points.append((sensor_us * 1e-6, host_s))

    def mapping(self, ref_sensor_us: int) -> tuple[float, float, float]:
        """(host s at ref_sensor_us, rate, jitter_ms) from the points so far."""
        x0, y0 = self.points[0]
        xs = [x - x0 for x, _ in self.points]
        ys = [y - y0 for _, y in self.points]
        n = len(xs)
        mx, my = sum(xs) / n, sum(ys) / n
        sxx = sum((x - mx) ** 2 for x in xs)
        rate = 1.0 if sxx == 0 else sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
        offset = my - rate * mx
        residuals = [y - (offset + rate * x) for x, y in zip(xs, ys, strict=True)]
        jitter_ms = 1e3 * math.sqrt(sum(r * r for r in residuals) / n)
        return y0 + offset + rate * (ref_sensor_us * 1e-6 - x0), rate, jitter_ms


# ------------------------------------------------------------------------------------------ the gateway


@dataclass
class Sent:
    """What the gateway published: every raw batch (msg_id -> samples) and every gap, for the test to check."""

    samples: dict[str, list[tuple[str, str, int, int]]] = field(default_factory=dict)
    """msg_id -> [(placement, serial, boot_epoch, seq)] of a raw batch."""
    gaps: list[tuple[str, str, int, int, int]] = field(default_factory=list)
    """(placement, serial, boot_epoch, first missing, last missing)."""
    payloads: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    """msg_id -> (topic, payload): the outbox."""


@dataclass
class _OpenBatch:
    """One sensor's batch being filled: (packet bytes, seq of its first sample, sensor µs of its first sample)."""

    packets: list[tuple[bytes, int, int]] = field(default_factory=list)
    opened_s: float = 0.0
    next_seq: int = 0


class ThirdPartyGateway:
    """See the module docstring. ``run`` publishes the whole stream; ``unacked`` and ``resend_due`` follow the
    worker's acknowledgements."""

    def __init__(
        self,
        subject: str,
        port: int,
        sensors: list[Sensor],
        seconds: float,
        seed: int,
        utc0_s: float,
        batch_s: float = 1.0,
        packet_loss: float = 0.01,
        utc_resolution_s: float = 1e-3,
        ack_timeout_s: float = 20.0,
        listen_acks: bool = True,
    ) -> None:
        self.subject, self.sensors, self.seconds = subject, sensors, seconds
        self.rng = random.Random(seed)
        self.utc0_s, self.batch_s, self.packet_loss = utc0_s, batch_s, packet_loss
        self.utc_resolution_s, self.ack_timeout_s = utc_resolution_s, ack_timeout_s
        self.sent = Sent()
        self._unacked: dict[str, float] = {}
        self._lock = threading.Lock()
        self._batches: dict[str, tuple[Sensor, list[tuple[bytes, int, int]]]] = {}
        self._fits: dict[str, RunningFit] = {}
        # a gateway that listens to acks from the start keeps a persistent session (acks sent while it is away
        # wait for it); one that does not models a gateway that was away with a clean session: those acks are gone
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"thirdparty-{subject}", clean_session=not listen_acks
        )
        self.client.on_message = self._on_ack
        self.client.connect("127.0.0.1", port)
        if listen_acks:
            self.listen_acks()
        self.client.loop_start()

    def listen_acks(self) -> None:
        """Subscribe to the worker's acknowledgements (a gateway that was offline while they were sent, with a
        clean session, never gets those: it subscribes again when it is back)."""
        self.client.subscribe(f"gaitsym/v1/{self.subject}/ack", qos=1)

    def _on_ack(self, client: Any, userdata: Any, msg: Any) -> None:
        try:
            doc = json.loads(msg.payload)
            ids = doc["msg_ids"] if doc.get("kind") == "ack" and doc.get("subject") == self.subject else []
        except (ValueError, KeyError, TypeError):
            return
        with self._lock:
            for msg_id in ids:
                self._unacked.pop(msg_id, None)

    def _publish(self, msg_id: str, topic: str, doc: dict[str, Any]) -> None:
        payload = json.dumps({"v": 1, **doc}, separators=(",", ":")).encode()
        self.sent.payloads[msg_id] = (topic, payload)
        with self._lock:
            self._unacked[msg_id] = time.monotonic()
        self.client.publish(topic, payload, qos=1)

    def run(self) -> None:
        """Simulate and publish every sensor's stream, batch by batch in arrival order."""
        events = []
        for sensor in self.sensors:
            n = int(self.seconds * sensor.rate_hz / sensor.per_packet)
            times = arrivals(n, sensor.per_packet / sensor.rate_hz, self.rng)
            for k, t in enumerate(times):
                if self.rng.random() >= self.packet_loss:
                    events.append((t, sensor, k))
        events.sort(key=lambda e: e[0])
        self._fits = {s.placement: RunningFit() for s in self.sensors}
        state = {s.placement: _OpenBatch() for s in self.sensors}
        for t, sensor, k in events:
            st = state[sensor.placement]
            data, seq, t_first_us, _ = sensor.packet(k)
            if seq > st.next_seq:  # packets lost on the air: say so
                self._close(sensor, st)
                self._gap(sensor, st.next_seq, seq - 1)
            st.next_seq = seq + sensor.per_packet
            self._fits[sensor.placement].add(t_first_us + round((sensor.per_packet - 1) * 1e6 / sensor.rate_hz), t)
            if not st.packets:
                st.opened_s = t
            st.packets.append((data, seq, t_first_us))
            if t - st.opened_s >= self.batch_s:
                self._close(sensor, st)
        for sensor in self.sensors:
            self._close(sensor, state[sensor.placement])

    def _close(self, sensor: Sensor, st: _OpenBatch) -> None:
        batch, st.packets = st.packets, []
        if not batch:
            return
        msg_id = f"raw:{sensor.serial}:{sensor.boot_epoch}:{batch[0][1]}"
        self._batches[msg_id] = (sensor, batch)
        self.sent.samples[msg_id] = [
            (sensor.placement, sensor.serial, sensor.boot_epoch, seq)
            for _, first, _ in batch
            for seq in range(first, first + sensor.per_packet)
        ]
        self._publish(msg_id, f"gaitsym/v1/{self.subject}/raw/{sensor.placement}", self._raw_doc(msg_id))

    def _raw_doc(self, msg_id: str) -> dict[str, Any]:
        """A raw batch with the clock fit as it is now (UPLINK.md "raw" and "clock")."""
        sensor, batch = self._batches[msg_id]
        seq_first, t_first_us = batch[0][1], batch[0][2]
        host_s, rate, jitter_ms = self._fits[sensor.placement].mapping(t_first_us)
        step = self.utc_resolution_s
        return {
            "kind": "raw",
            "msg_id": msg_id,
            "subject": self.subject,
            "session": None,
            "placement": sensor.placement,
            "sensor": {
                "serial": sensor.serial,
                "boot_epoch": sensor.boot_epoch,
                "sample_rate_hz": float(sensor.rate_hz),
                "acc_range_g": 16,
                "gyr_range_dps": 2000,
            },
            "seq_first": seq_first,
            "seq_last": batch[-1][1] + sensor.per_packet - 1,
            "n_samples": len(batch) * sensor.per_packet,
            "t_sensor_us_first": t_first_us,
            "clock": {
                "utc_synced": True,
                "ref_sensor_us": t_first_us,
                "ref_utc_s": round((self.utc0_s + host_s) / step) * step,
                "rate": rate,
                "drift_ppm": (1.0 / rate - 1.0) * 1e6,
                "jitter_ms": jitter_ms,
            },
            "packets": [base64.b64encode(data).decode("ascii") for data, _, _ in batch],
        }

    def _gap(self, sensor: Sensor, first: int, last: int) -> None:
        msg_id = f"gap:{sensor.serial}:{sensor.boot_epoch}:{first}"
        doc = {
            "kind": "gap",
            "msg_id": msg_id,
            "subject": self.subject,
            "session": None,
            "placement": sensor.placement,
            "serial": sensor.serial,
            "boot_epoch": sensor.boot_epoch,
            "seq_first_missing": first,
            "seq_last_missing": last,
            "duration_s": (last - first + 1) / sensor.rate_hz,
            "reason": "packet_lost",
        }
        self.sent.gaps.append((sensor.placement, sensor.serial, sensor.boot_epoch, first, last))
        self._publish(msg_id, f"gaitsym/v1/{self.subject}/gap/{sensor.placement}", doc)

    def unacked(self) -> set[str]:
        with self._lock:
            return set(self._unacked)

    def resend_due(self, refit: bool = False, older_than_s: float | None = None) -> int:
        """Re-send what stayed unacknowledged for ``ack_timeout_s`` (or ``older_than_s``); returns how many. The
        same bytes, or with ``refit`` the raw batches re-encoded with the clock fit as it is now: a careless
        gateway that keeps packets rather than payloads in its outbox builds the message when it sends it,
        breaking UPLINK.md's rule that a re-sent batch is the identical payload."""
        now = time.monotonic()
        wait = self.ack_timeout_s if older_than_s is None else older_than_s
        with self._lock:
            due = [m for m, t in self._unacked.items() if now - t >= wait]
            for msg_id in due:
                self._unacked[msg_id] = now
        for msg_id in due:
            topic, payload = self.sent.payloads[msg_id]
            if refit and msg_id in self._batches:
                payload = json.dumps({"v": 1, **self._raw_doc(msg_id)}, separators=(",", ":")).encode()
                self.sent.payloads[msg_id] = (topic, payload)
            self.client.publish(topic, payload, qos=1)
        return len(due)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def kit(seed: int) -> list[Sensor]:
    """Three sensors with different drifts, clocks starting near the u32 wrap (SPEC.md §5)."""
    rng = random.Random(seed)
    return [
        Sensor(
            placement,
            f"TP{seed:03d}-{i}",
            rng.randrange(1, 5000),
            rng.choice((-1, 1)) * rng.uniform(10.0, 40.0),
            U32 - rng.randrange(5_000_000, 60_000_000),
        )
        for i, placement in enumerate(("pelvis", "left_thigh", "right_thigh"))
    ]
