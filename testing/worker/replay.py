"""Recorded gateways for the real-time benches: what N subjects' production gateway cores publish, recorded once
faster than real time (`record_sessions`, cached on disk), then published at the recorded instants on the real
clock with UTC moved to now, one MQTT connection per subject (`Replay`). The worker, the broker and InfluxDB see
the same messages at the same cadence as from live gateways; the gateways' own work is left out.

Used by `testing.worker.realtime.RealTimeBench`.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gaitsym_common.mqtt.client import Connected, Incoming, MqttEvent
from gaitsym_common.uplink import envelope as env
from gaitsym_common.uplink.topics import gateway_subscriptions, topic
from testing.worker.harness import ROOT

GATEWAY_TICK_S = 0.05
"""Virtual seconds per gateway step (as `HomeSession.step`)."""


@dataclass(frozen=True)
class Published:
    """One message a gateway handed to MQTT: virtual seconds since its session started, topic, payload, and for
    each raw batch it holds (itself, or a bundle's parts) (placement, UTC of its last sample, s)."""

    t_s: float
    topic: str
    payload: bytes
    retain: bool
    raw_ends: tuple[tuple[str, float], ...] = ()


@dataclass
class Recorded:
    """What N gateway cores published, per subject, with the UTC their clocks started from."""

    utc0: float
    subjects: dict[str, list[Published]]


class RecordingLink:
    """An `MqttLink` that keeps what is published and acknowledges every durable message at once (as a worker
    would), so the gateway's outbox never re-sends."""

    def __init__(self, subject: str, clock: Any) -> None:
        self.subject = subject
        self.clock = clock
        self.start_s = clock.monotonic()
        self.published: list[Published] = []
        self._events: list[MqttEvent] = []
        self.connected = True

    def connect(self, will: tuple[str, bytes] | None = None) -> None:
        self._events.append(Connected(session_present=False))

    def subscribe(self, topics: list[str], qos: int = 1) -> None:
        pass

    def publish(self, topic_: str, payload: bytes, qos: int = 1, retain: bool = False) -> bool:
        from analytics.worker.decode import batch_samples
        from testing.gateway.loopback import unbundled

        raw_ends = []
        for _, body in unbundled(topic_, payload):
            message = env.decode(body)
            if isinstance(message, env.RawBatch) and message.clock.utc_synced:
                raw_ends.append((message.placement, float(batch_samples(message).time_us()[-1]) / 1e6))
            msg_id = getattr(message, "msg_id", None)
            if msg_id is not None and not isinstance(message, env.Ack):
                ack = env.Ack("ack", self.subject, (msg_id,), "recorder")
                self._events.append(Incoming(topic(self.subject, "ack"), env.encode(ack)))
        t_s = self.clock.monotonic() - self.start_s
        self.published.append(Published(t_s, topic_, payload, retain, tuple(raw_ends)))
        return True

    def events(self) -> list[MqttEvent]:
        out, self._events = self._events, []
        return out

    def close(self, last_words: tuple[str, bytes] | None = None) -> None:
        pass


def _source_digest() -> str:
    """Digest of the code that shapes what a gateway publishes (a cached recording of other code is not reused)."""
    h = hashlib.sha256()
    for folder in ("sensor_gateway", "simulator", "gaitsym_common/uplink", "firmware_protocol"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def record_sessions(
    n: int,
    seconds: float,
    *,
    window_s: float,
    batch_s: float,
    seed0: int = 11,
    cache_dir: Path | None = None,
) -> Recorded:
    """What ``n`` subjects' production gateway cores publish over ``seconds`` (the virtual kit's walk script, seeds
    ``seed0 + i``), run faster than real time on `RecordingLink`; cached in ``cache_dir`` (default
    ``$GAITSYM_BENCH_CACHE`` or /tmp/gaitsym-bench-cache) keyed by the arguments and the code."""
    import random
    import tempfile

    from sensor_gateway.core import Gateway, GatewayConfig, run_for
    from sensor_gateway.outbox import Outbox
    from sensor_gateway.timing import VirtualHostClock
    from simulator.virtual_kit_source import virtual_kit

    cache = cache_dir or Path(os.environ.get("GAITSYM_BENCH_CACHE", "/tmp/gaitsym-bench-cache"))
    key = f"{n}-{seconds:g}-{window_s:g}-{batch_s:g}-{seed0}-{_source_digest()}"
    path = cache / f"recorded-{key}.pickle"
    if path.exists():
        with path.open("rb") as f:
            recorded: Recorded = pickle.load(f)
        return recorded
    utc0 = 1_800_000_000.0
    out: dict[str, list[Published]] = {}
    with tempfile.TemporaryDirectory(prefix="gaitsym-record-") as tmp:
        for i in range(n):
            subject = f"S{i + 1:03d}"
            clock = VirtualHostClock(start_s=1000.0, utc_at_start_s=utc0)
            kit = virtual_kit(clock, seed=seed0 + i, minutes=seconds / 60.0 + 0.2, script="walk")
            link = RecordingLink(subject, clock)
            config = GatewayConfig(
                subject=subject, window_s=window_s, batch_s=batch_s, ack_timeout_s=600.0, still_timeout_s=600.0
            )
            outbox = Outbox(Path(tmp) / f"outbox-{subject}.db", synchronous="NORMAL")
            gateway = Gateway(config, kit.transport, link, outbox, clock)  # type: ignore[arg-type]
            gateway._rng = random.Random(seed0 + i)
            gateway.start()
            run_for(gateway, kit.transport, clock, seconds, tick_s=GATEWAY_TICK_S)
            gateway.stop(end_session=False)  # (closes the outbox)
            out[subject] = link.published
    recorded = Recorded(utc0, out)
    cache.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    with partial.open("wb") as f:
        pickle.dump(recorded, f, protocol=pickle.HIGHEST_PROTOCOL)
    partial.replace(path)
    return recorded


def gateway_phases(subjects: list[str], batch_s: float) -> dict[str, float]:
    """Per subject, when (s, within one batch) its gateway starts: spread evenly over ``batch_s``.

    A gateway closes its batches at whole multiples of ``batch_s`` on its own monotonic clock (seconds since it
    booted, `sensor_gateway.core.ingest.batch_closes_at`); gateways in different homes booted at unrelated
    instants, so a clinic's batches arrive spread over the second, not all at once. Recorded from one virtual
    clock, every subject would close on the same instant (the worst case, kept as the bench's ``--aligned``).
    The golden-ratio sequence spreads any number of subjects evenly and the same way every run.
    """
    golden = (5**0.5 - 1) / 2
    return {subject: ((i * golden) % 1.0) * batch_s for i, subject in enumerate(subjects)}


_UTC_FIELD = re.compile(rb'(\\?)"(ref_utc_s|t_utc_s)\\?":(-?[0-9][0-9.eE+-]*)')
"""A UTC field and its value, its quotes escaped (``\\"``) inside a bundle's part."""


def shift_utc(payload: bytes, shift_s: float) -> bytes:
    """The payload with every UTC instant it carries (clock mappings' ``ref_utc_s``, markers' and statuses'
    ``t_utc_s``) moved by ``shift_s``; nothing else changes."""
    return _UTC_FIELD.sub(
        lambda m: m[1] + b'"' + m[2] + m[1] + b'":' + repr(float(m[3]) + shift_s).encode(),
        payload,
    )


class Replay:
    """Recorded subjects published on the real clock (module docstring), one MQTT connection per subject."""

    def __init__(self, recorded: Recorded, port: int, seconds: float, phase_s: dict[str, float] | None = None) -> None:
        """``phase_s``: per subject, how much later than the first its gateway started (default: all at once)."""
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        self.recorded = recorded
        self.seconds = seconds
        self.phase_s = dict(phase_s or {})
        self.clients: dict[str, Any] = {}
        self.acks = 0
        lock = threading.Lock()

        def on_message(client: Any, userdata: Any, msg: Any) -> None:
            nonlocal lock
            with lock:
                self.acks += 1

        for subject in recorded.subjects:
            client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"replay-{subject}")
            client.max_inflight_messages_set(100)
            client.on_message = on_message
            client.connect("127.0.0.1", port)
            for t in gateway_subscriptions(subject):
                client.subscribe(t, qos=1)
            client.loop_start()
            self.clients[subject] = client
        self.published: dict[tuple[str, str], list[tuple[float, float]]] = {}
        """(subject, placement) -> (real UTC handed to MQTT, UTC of the batch's last sample)."""

    def run(self, on_tick: Callable[[], None] | None = None) -> None:
        """Publish everything recorded within ``seconds``, each message at its instant (UTC moved to now)."""
        schedule = sorted(
            (
                (p.t_s + self.phase_s.get(subject, 0.0), i, subject, p)
                for subject, items in self.recorded.subjects.items()
                for i, p in enumerate(items)
            ),
            key=lambda item: (item[0], item[1]),
        )
        t0 = time.monotonic()
        shift0 = time.time() - self.recorded.utc0
        for t_s, _i, subject, p in schedule:
            if t_s > self.seconds:
                break
            wait = t0 + t_s - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            shift = shift0 + self.phase_s.get(subject, 0.0)  # the whole session later: data and publishing alike
            self.clients[subject].publish(p.topic, shift_utc(p.payload, shift), qos=1, retain=p.retain)
            for placement, end_s in p.raw_ends:
                self.published.setdefault((subject, placement), []).append((time.time(), end_s + shift))
        rest = t0 + self.seconds - time.monotonic()
        if rest > 0:
            time.sleep(rest)

    def close(self) -> None:
        for client in self.clients.values():
            client.loop_stop()
            client.disconnect()


__all__ = [
    "GATEWAY_TICK_S",
    "Published",
    "Recorded",
    "RecordingLink",
    "Replay",
    "gateway_phases",
    "record_sessions",
    "shift_utc",
]
