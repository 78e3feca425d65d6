"""Clock mapping: drifting sensors with bursty arrival must line up within 2 ms after 60 s."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from firmware_protocol.packet import decode_packet
from gateway.packet_source import SimSensor, kit, merge
from sensor_gateway.timing import (
    ClockEstimator,
    MappingContinuity,
    RealHostClock,
    SensorStream,
    TimingError,
    VirtualHostClock,
)


def _run(sensors: list[SimSensor], duration_s: float) -> dict[str, tuple[SimSensor, SensorStream, int]]:
    streams = {s.placement: SensorStream(s.boot_epoch, s.rate_hz) for s in sensors}
    last: dict[str, int] = {}
    for arrival, placement, data, _seq, _ts in merge(*(s.packets(duration_s) for s in sensors)):
        pkt = decode_packet(data)
        timing = streams[placement].observe(pkt.sequence, pkt.timestamp_us, pkt.sample_count, arrival)
        last[placement] = timing.t_sensor_us
    by = {s.placement: s for s in sensors}
    return {p: (by[p], streams[p], last[p]) for p in streams}


def _errors_ms(result: dict[str, tuple[SimSensor, SensorStream, int]]) -> dict[str, float]:
    """Mapped minus true host time of each sensor's last packet, ms."""
    return {p: (stream.fit().host_s(t_us) - sim.true_host_s(t_us)) * 1e3 for p, (sim, stream, t_us) in result.items()}


@pytest.mark.parametrize("spp", [5, 19])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_three_sensors_line_up_within_2ms_after_60s(spp: int, seed: int) -> None:
    rng = random.Random(seed)
    drifts = tuple(rng.choice([-1, 1]) * rng.uniform(20, 50) for _ in range(3))
    sensors = kit(drifts, spp=spp)  # type: ignore[arg-type]
    for s in sensors:
        s.seed += 10 * seed
        s.boot_host_s += rng.uniform(-30, 30)
        s.ts0_us = rng.randrange(0, 2**32)
        s.__post_init__()
    result = _run(sensors, 60.0)
    errors = _errors_ms(result)
    for a, b in itertools.combinations(errors.values(), 2):
        assert abs(a - b) < 2.0, errors
    for _, stream, _ in result.values():
        fit = stream.fit()
        assert fit.rate_fitted
        assert 0.0 <= fit.jitter_ms < 5.0


def test_drift_estimate_converges_over_five_minutes() -> None:
    sensors = kit((20.0, -35.0, 50.0), spp=10)
    result = _run(sensors, 300.0)
    for p, (sim, stream, _) in result.items():
        assert abs(stream.fit().drift_ppm - sim.drift_ppm) < 5.0, (p, stream.fit(), sim.drift_ppm)
    for a, b in itertools.combinations(_errors_ms(result).values(), 2):
        assert abs(a - b) < 2.0


def test_mapping_never_uses_raw_arrival_mean() -> None:
    """Least squares on arrivals would be biased by the mean delay (~20 ms here); the envelope is not."""
    result = _run(kit(spp=5), 60.0)
    for err in _errors_ms(result).values():
        assert -2.0 < err < 2.0
    for _, stream, _ in result.values():
        assert stream.fit().delay_ms_p50 > 5.0  # the link really is bursty


def test_timestamp_wrap_is_unwrapped() -> None:
    sensors = kit(spp=5, ts0_us=2**32 - 5_000_000)  # every sensor clock wraps 5 s in
    result = _run(sensors, 30.0)
    for sim, stream, t_us in result.values():
        assert t_us > 2**32  # unwrapped past the wrap
        assert abs(stream.fit().host_s(t_us) - sim.true_host_s(t_us)) < 2e-3


def test_sequence_wrap_and_gap_count() -> None:
    s = SimSensor("GS-1", "pelvis", seq0=2**32 - 50, spp=5)
    stream = SensorStream(1, 100)
    seen = []
    for i, (arrival, _, data, _, _) in enumerate(s.packets(5.0)):
        if i == 20:  # drop one packet: 5 samples lost
            continue
        pkt = decode_packet(data)
        seen.append(stream.observe(pkt.sequence, pkt.timestamp_us, pkt.sample_count, arrival))
    assert seen[-1].seq > 2**32
    assert sum(t.lost_before for t in seen) == 5
    assert stream.lost == 5


def test_long_outage_longer_than_half_the_wrap_is_unwrapped_with_the_host_clock() -> None:
    stream = SensorStream(1, 100)
    stream.observe(0, 1_000_000, 1, 100.0)
    outage_s = 50 * 60  # 50 min: beyond the 35.8 min that plain u32 unwrapping tolerates
    ts = 1_000_000 + outage_s * 1_000_000
    timing = stream.observe(outage_s * 100, ts % 2**32, 1, 100.0 + outage_s + 0.02)
    assert timing.t_sensor_us == ts
    assert timing.lost_before == outage_s * 100 - 1


def test_duplicate_packet_is_flagged() -> None:
    stream = SensorStream(1, 100)
    stream.observe(0, 0, 5, 10.0)
    stream.observe(5, 50_000, 5, 10.05)
    again = stream.observe(0, 0, 5, 10.06)
    assert again.duplicate
    assert stream.duplicates == 1


def test_new_boot_epoch_resets_fit_and_unwrap() -> None:
    sim = SimSensor("GS-1", "pelvis", drift_ppm=40, spp=5)
    stream = SensorStream(1, 100)
    for arrival, _, data, _, _ in sim.packets(20.0):
        pkt = decode_packet(data)
        stream.observe(pkt.sequence, pkt.timestamp_us, pkt.sample_count, arrival)
    assert stream.fit().rate_fitted
    stream.new_boot_epoch(2)
    rebooted = SimSensor("GS-1", "pelvis", drift_ppm=40, spp=5, boot_host_s=1030.0, boot_epoch=2)
    for arrival, _, data, _, _ in rebooted.packets(10.0):
        pkt = decode_packet(data)
        timing = stream.observe(pkt.sequence, pkt.timestamp_us, pkt.sample_count, arrival)
        assert not timing.duplicate
    fit = stream.fit()
    assert stream.boot_epoch == 2
    assert abs(fit.host_s(0) - rebooted.true_host_s(0)) < 3e-3


def test_clock_restart_without_new_epoch_is_flagged_and_restarts_the_fit_not_the_sequence() -> None:
    stream = SensorStream(1, 100)
    for k in range(100):
        stream.observe(k * 5, k * 50_000, 5, 10.0 + k * 0.05)
    timing = stream.observe(500, 0, 5, 15.05)  # the clock restarted at 0, the sequence went on
    assert timing.clock_restarted and not timing.duplicate
    assert timing.seq == 500 and timing.lost_before == 0
    assert timing.ended_fit is not None and timing.ended_fit.n_bins == 5
    assert stream.fit().n_bins == 1
    assert timing.t_sensor_us % 2**32 == 0 and timing.t_sensor_us > 99 * 50_000 + 40_000  # unwrapped forward
    # the sequence restarting too (a reboot without a new boot epoch): samples already delivered, not new ones
    assert stream.observe(0, 10_000, 5, 15.1).duplicate


def test_before_min_span_rate_is_one_and_offset_is_least_delayed() -> None:
    est = ClockEstimator()
    est.add(0, 5.010)
    est.add(100_000, 5.101)
    est.add(200_000, 5.230)
    fit = est.fit()
    assert not fit.rate_fitted and fit.rate == 1.0
    assert math.isclose(fit.host_s(0), 5.001, abs_tol=1e-9)


def test_estimator_rejects_bad_input() -> None:
    est = ClockEstimator()
    with pytest.raises(TimingError):
        est.fit()
    with pytest.raises(TimingError):
        est.add(0, float("nan"))
    est.add(5_000_000, 1.0)
    with pytest.raises(TimingError):
        est.add(0, 1.0)


def test_virtual_clock_and_injected_sync_probe() -> None:
    clock = VirtualHostClock(start_s=10.0, utc_at_start_s=1_700_000_000.0, synced=False)
    clock.advance(2.5)
    assert clock.monotonic() == 12.5 and clock.utc() == 1_700_000_002.5 and not clock.utc_synced()
    with pytest.raises(TimingError):
        clock.set(1.0)
    calls: list[int] = []

    def probe() -> bool:
        calls.append(1)
        return True

    real = RealHostClock(probe=probe, sync_cache_s=3600)
    assert real.utc_synced() and real.utc_synced()
    assert len(calls) == 1  # cached
    assert RealHostClock(probe=lambda: False, assume_synced=True).utc_synced()


# ------------------------------------------------------------------ continuity of the per-batch mappings


def test_continuity_holds_a_step_back_and_takes_it_back_half_a_period_per_batch() -> None:
    """A fit that moves 12 ms back between two batches: the next batch starts half a period after the last
    mapped sample (never at or before it), the following ones take back 5 ms each, then the fit is published
    as it is. A fit that moves forward is followed at once."""
    period = 0.01
    cont = MappingContinuity()
    step = cont.apply(0, 100.0, 1.0, 0, 490_000, period)  # batch 1: 50 samples, no floor yet
    assert step.raised_s == 0.0 and math.isclose(step.last_s, 100.49)
    starts, raised = [], []
    for k in range(1, 6):  # the fit now maps everything 12 ms earlier
        t0 = k * 500_000
        step = cont.apply(t0, 100.0 + t0 * 1e-6 - 0.012, 1.0, t0, t0 + 490_000, period)
        starts.append(step.first_s)
        raised.append(round(step.raised_s * 1e3, 6))
    assert raised == [7.0, 2.0, 0.0, 0.0, 0.0]
    assert math.isclose(starts[0], 100.49 + 0.005)
    assert math.isclose(starts[1], 100.495 + 0.49 + 0.005)
    assert math.isclose(starts[2], 101.5 - 0.012)  # converged: the fit itself
    step = cont.apply(3_000_000, 103.0 + 0.020, 1.0, 3_000_000, 3_490_000, period)  # 32 ms forward
    assert step.raised_s == 0.0 and math.isclose(step.first_s, 103.02)
    assert cont.raised == 2 and math.isclose(cont.max_raised_s, 0.007)


def test_continuity_keeps_the_fit_rate_and_survives_a_restart_through_its_seed() -> None:
    cont = MappingContinuity()
    cont.seed(200.0)  # the last mapped sample an earlier gateway process persisted
    step = cont.apply(1_000_000, 199.9, 1.00005, 0, 100_000, 0.01)
    assert math.isclose(step.first_s, 200.005)
    # only the offset moved: the batch's own times keep the fit's rate
    assert math.isclose(step.last_s - step.first_s, 0.1 * 1.00005)
    cont.seed(150.0)  # an older floor never lowers the current one
    assert cont.last_s == step.last_s
    cont.seed(None)
    assert cont.last_s == step.last_s
    with pytest.raises(TimingError):
        MappingContinuity(min_step=1.0)
    with pytest.raises(TimingError):
        cont.apply(0, 1.0, 1.0, 10, 0, 0.01)
    with pytest.raises(TimingError):
        cont.apply(0, float("nan"), 1.0, 0, 10, 0.01)


@pytest.mark.parametrize("spp", [5, 10, 19])
@pytest.mark.parametrize("seed", [1, 3, 4])
def test_half_second_batches_of_a_drifting_bursty_sensor_stay_in_time_order(spp: int, seed: int) -> None:
    """Arrival-only fits (no round trips) of drifting sensors with bursty arrival, mapped per 0.5-s batch as the
    gateway does: without the continuity rule the fit moves back by 3-50 ms between some batches; with it every
    sample maps at least half a period after the previous one, and the end of the stream is mapped by the fit
    itself (no offset left), within 2 ms of the truth."""
    sensors = kit((30.0, -45.0, 50.0), spp=spp)
    for s in sensors:
        s.seed += 10 * seed
        s.__post_init__()
    streams = {s.placement: SensorStream(s.boot_epoch, s.rate_hz) for s in sensors}
    cont = {s.placement: MappingContinuity() for s in sensors}
    by = {s.placement: s for s in sensors}
    open_: dict[str, list[float]] = {}
    mapped: dict[str, list[tuple[float, float]]] = {p: [] for p in streams}  # (mapped s, true s) per sample
    last_raised: dict[str, float] = {}
    for arrival, placement, data, _seq, _ts in merge(*(s.packets(60.0) for s in sensors)):
        pkt = decode_packet(data)
        timing = streams[placement].observe(pkt.sequence, pkt.timestamp_us, pkt.sample_count, arrival)
        batch = open_.setdefault(placement, [arrival])
        batch.extend(timing.t_sensor_us + i * 10_000 for i in range(pkt.sample_count))
        if arrival - batch[0] >= 0.5:  # the gateway closes a batch on the packet that brings it to batch_s
            ticks = [int(t) for t in batch[1:]]
            fit = streams[placement].fit()
            step = cont[placement].apply(fit.sensor_ref_us, fit.host_ref_s, fit.rate, ticks[0], ticks[-1], 0.01)
            last_raised[placement] = step.raised_s
            for t in ticks:  # the batch's own mapping, as the worker applies it
                mapped[placement].append(
                    (step.ref_s + fit.rate * (t - fit.sensor_ref_us) * 1e-6, by[placement].true_host_s(t))
                )
            del open_[placement]
    for placement, rows in mapped.items():
        times = [m for m, _ in rows]
        assert all(b - a >= 0.005 - 1e-9 for a, b in itertools.pairwise(times)), placement
        assert last_raised[placement] == 0.0, placement
        assert abs(rows[-1][0] - rows[-1][1]) < 2e-3, placement
