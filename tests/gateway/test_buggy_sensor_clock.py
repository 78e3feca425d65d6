"""A buggy sensor's clock never stops the gateway, never gives a sample two identities, never hides a loss.

The sensor's clock is the mapping's input, its sequence the samples' identity (serial, boot_epoch, sequence).
A clock that jumps without a new boot epoch (a firmware fault: SPEC.md section 5 restarts it only with a new
boot) starts a new mapping segment; the sequence goes on, so lost samples are still a gap and samples already
delivered are never published again. Whatever the clock does, every message the gateway publishes is one the
worker accepts (its own decoder, `analytics.worker.decode.batch_samples`), and each sample maps to a UTC time
after the previous one.

One scripted sensor on the virtual clock; MQTT is an in-memory link that keeps every payload; the outbox is the
real SQLite file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from analytics.worker.decode import batch_samples
from firmware_protocol.packet import ImuPacket, encode_packet
from firmware_protocol.sensor_info import Placement, SensorInfo
from gaitsym_common.uplink import envelope as env
from sensor_gateway.core.gateway import Gateway, GatewayConfig
from sensor_gateway.outbox.store import Outbox
from sensor_gateway.timing import SensorStream
from sensor_gateway.timing.host_clock import VirtualHostClock
from sensor_gateway.transport.base import EventQueue, LinkEvent, PacketEvent
from testing.gateway.loopback import LoopbackLink

SUBJECT = "B1"
UTC0 = 1_767_225_600.0
T0 = 1000.0


class OneSensor:
    def __init__(self, rate_hz: int) -> None:
        self.info = SensorInfo(
            placement=Placement.PELVIS,
            sample_rate_hz=rate_hz,
            acc_range_g=16,
            gyr_range_dps=2000,
            samples_per_packet=10,
            firmware_version=(1, 0, 0),
            boot_epoch=7,
            serial="GS-BUG",
        )
        self.events: EventQueue | None = None

    def open(self, events: EventQueue) -> None:
        self.events = events

    def connect(self, placement: str) -> None:
        assert self.events is not None
        self.events.put(LinkEvent(placement, "connected", info=self.info))

    def start_streaming(self, placement: str) -> None: ...
    def stop_streaming(self, placement: str) -> None: ...
    def disconnect(self, placement: str) -> None: ...
    def close(self) -> None: ...


class Bench:
    """The production gateway with one sensor; `send` hands it packets at chosen host times."""

    def __init__(self, folder: Path, rate_hz: int = 100) -> None:
        self.clock = VirtualHostClock(start_s=T0, utc_at_start_s=UTC0)
        self.link = LoopbackLink(SUBJECT)
        self.rate_hz = rate_hz
        self.gw = Gateway(
            GatewayConfig(subject=SUBJECT, placements=("pelvis",), time_sync_every_s=0.0),
            OneSensor(rate_hz),  # type: ignore[arg-type]
            self.link,
            Outbox(folder / "outbox.db"),
            self.clock,
        )
        self.gw.start()
        self.gw.step()

    def send(self, arrival_s: float, seq: int, timestamp_us: int, n: int = 10, step: bool = True) -> None:
        """One packet of ``n`` samples, arriving at host ``arrival_s`` (a step follows unless ``step`` is False)."""
        data = encode_packet(
            ImuPacket(
                sequence=seq % 2**32,
                timestamp_us=timestamp_us % 2**32,
                acc_range_g=16,
                gyr_range_dps=2000,
                samples=((0, 0, 2048, 1600, 0, 0),) * n,
            )
        )
        self.clock.set(max(arrival_s, self.clock.monotonic()))
        self.gw.events.put(PacketEvent("pelvis", arrival_s, data))
        if step:
            self.gw.step()

    def finish(self) -> tuple[list[env.RawBatch], list[env.Gap]]:
        """Stop the gateway; every raw batch and gap it published (each once), checked the way the worker does."""
        self.clock.set(self.clock.monotonic() + 5.0)
        self.gw.step()
        env.decode(self.gw._status_payload("online"))
        self.gw.stop(end_session=False)
        seen: dict[str, env.RawBatch | env.Gap] = {}
        for _, payload in self.link.published:
            message = env.decode(payload)  # what the worker and every reader accept
            if isinstance(message, env.RawBatch | env.Gap):
                seen.setdefault(message.msg_id, message)
        raws = [m for m in seen.values() if isinstance(m, env.RawBatch)]
        gaps = [m for m in seen.values() if isinstance(m, env.Gap)]
        return raws, gaps


def published_seqs(raws: list[env.RawBatch]) -> list[int]:
    return sorted(int(q) for b in raws for q in batch_samples(b).seq)


def mapped_times_us(raws: list[env.RawBatch]) -> np.ndarray:
    """Every published sample's stored time (the worker's key), in sequence order."""
    samples = [batch_samples(b) for b in sorted(raws, key=lambda b: b.seq_first)]
    return np.concatenate([s.time_us() for s in samples])


def test_a_2_31_us_jump_of_the_sensor_clock_starts_a_new_mapping_and_every_sample_is_delivered_once(
    tmp_path: Path,
) -> None:
    """The firmware bug the fuzz campaign found: the clock jumps 35.8 min ahead between two packets 0.1 s apart.
    The fit fed that point had a residual of 2,147,483 ms, beyond the uplink's 60,000, and the gateway's own
    encode raised inside its loop."""
    bench = Bench(tmp_path)
    jump = 2**31
    for k in range(400):  # 40 s; the clock jumps at 20 s
        ts = k * 100_000 + (jump if k >= 200 else 0)
        bench.send(T0 + k * 0.1 + 0.095, k * 10, ts)  # the packet leaves 5 ms after its last sample
    raws, gaps = bench.finish()
    assert published_seqs(raws) == list(range(4000)) and gaps == []
    assert bench.gw.sensors["pelvis"].clock_jumps == 1
    assert all(abs(b.clock.jitter_ms) <= env.MAX_JITTER_MS for b in raws)
    times = mapped_times_us(raws)
    truth = round(UTC0 * 1e6) + np.arange(4000) * 10_000  # sample k taken at UTC0 + k * 10 ms
    assert bool((np.diff(times) > 0).all())
    assert float(np.max(np.abs(times - truth))) < 20_000  # both sides of the jump mapped where they were taken


def test_samples_lost_just_before_a_clock_restart_are_a_gap_and_none_is_published_twice(tmp_path: Path) -> None:
    """The clock restarts at 0 without a new boot epoch just after three packets were lost; the packet after the
    restart repeats samples already delivered. A clock restart must not restart the sequence: the lost samples
    are reported and the repeated ones are not published a second time."""
    bench = Bench(tmp_path)
    for k in range(100):  # seq 0..999, 10 s
        bench.send(T0 + k * 0.1 + 0.095, k * 10, k * 100_000)
    # seq 1000..1029 lost on the air; the clock restarts at 0 from seq 1030 on
    for j, k in enumerate(range(103, 200)):
        bench.send(T0 + k * 0.1 + 0.095, k * 10, j * 100_000)
        if j == 0:  # the sensor sends again samples it had already sent before the restart
            bench.send(T0 + k * 0.1 + 0.096, 990, 5_000_000)
    raws, gaps = bench.finish()
    seqs = published_seqs(raws)
    assert len(seqs) == len(set(seqs))  # no sample published twice
    assert seqs == [*range(1000), *range(1030, 2000)]
    assert [(g.seq_first_missing, g.seq_last_missing, g.reason) for g in gaps] == [(1000, 1029, "packet_lost")]
    assert bench.gw.sensors["pelvis"].clock_jumps == 1
    assert bool((np.diff(mapped_times_us(raws)) > 0).all())


def test_a_clock_that_runs_twice_too_fast_is_published_with_a_jitter_inside_the_contract(tmp_path: Path) -> None:
    """No jump between two packets, but over minutes no line with a crystal's drift explains the clock: the fit
    falls back to rate 1 and its residual grows past the uplink's bound; the gateway publishes the bound."""
    bench = Bench(tmp_path)
    for k in range(3000):  # 5 min, 10 samples of 10 ms each per 0.1 s, stamped 20 ms apart
        bench.send(T0 + k * 0.1 + 0.095, k * 10, k * 200_000)
    raws, gaps = bench.finish()
    assert published_seqs(raws) == list(range(30_000)) and gaps == []
    assert max(abs(b.clock.jitter_ms) for b in raws) == env.MAX_JITTER_MS  # reached, and never more
    assert bool((np.diff(mapped_times_us(raws)) > 0).all())


def test_a_burst_larger_than_one_payload_is_split_into_batches_the_worker_reads(tmp_path: Path) -> None:
    """6,000 one-sample packets (6 s of a 1,000 Hz sensor, a stalled link's backlog) arrive within 0.6 s: one
    batch would hold 6,000 samples in 234 kB, beyond the uplink's 4,096 samples and 64 KiB."""
    bench = Bench(tmp_path, rate_hz=1000)
    for k in range(6000):
        bench.send(T0 + 6.0 + k * 1e-4, k, k * 1000, n=1, step=k % 100 == 99)
    raws, gaps = bench.finish()
    assert published_seqs(raws) == list(range(6000)) and gaps == []
    assert len(raws) >= 4
    for name, payload in bench.link.published:
        assert len(payload) <= env.MAX_PAYLOAD_BYTES, name


def test_a_time_sync_reading_far_from_the_streams_clock_is_not_used() -> None:
    stream = SensorStream(1, 100)
    for k in range(100):
        stream.observe(k * 10, k * 100_000, 10, 10.095 + k * 0.1)
    assert stream.observe_sync(2**31, 19.99, 20.0) is None  # 35 min from the clock the packets carry
    assert stream.syncs_refused == 1 and stream.fit().n_sync == 0
    assert stream.observe_sync(9_999_000, 19.99, 20.0) == 9_999_000
    assert stream.fit().n_sync == 1
