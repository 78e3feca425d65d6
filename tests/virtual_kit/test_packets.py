"""The packet stream decodes to the recording (within int16 quantisation) and carries the sensors' clocks."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from firmware_protocol.packet import decode_packet
from firmware_protocol.wire import U32_MODULUS
from simulator import simulate_session
from simulator.packets import iter_packets, simulated_sensors

DRIFT = (18.0, -12.0, 4.0)


@pytest.fixture(scope="module")
def session():
    return simulate_session(script="walk", seed=21, minutes=1.5, drift_ppm=DRIFT)


def test_packets_round_trip_to_the_recorded_samples(session):
    rate = session.recording.sampling_rate_hz
    sensors = simulated_sensors(session)
    packets = list(iter_packets(session, sensors))
    arrivals = np.array([p[0] for p in packets])
    assert np.all(np.diff(arrivals) >= 0)  # merged in arrival order
    for placement, data in session.recording.sensors.items():
        mine = [decode_packet(raw) for _, p, raw in packets if p == placement]
        start = sensors[placement].sequence_start
        acc = np.full_like(data.acc_mps2, np.nan)
        gyr = np.full_like(data.gyr_dps, np.nan)
        for packet in mine:
            index = (packet.sequence - start) % U32_MODULUS
            a, g = packet.to_physical()
            acc[index : index + packet.sample_count] = a
            gyr[index : index + packet.sample_count] = g
        assert not np.isnan(acc).any()  # no loss by default
        np.testing.assert_allclose(acc, data.acc_mps2, atol=16 * 9.80665 / 32768)
        np.testing.assert_allclose(gyr, data.gyr_dps, atol=2000 / 32768)
        assert sensors[placement].info.sample_rate_hz == int(rate)


def test_clock_drift_equals_the_requested_ppm(session):
    rate = session.recording.sampling_rate_hz
    sensors = simulated_sensors(session)
    for i, placement in enumerate(("pelvis", "left_thigh", "right_thigh")):
        seq, stamps = [], []
        for _, _placement, raw in iter_packets(session, sensors, placements=(placement,)):
            packet = decode_packet(raw)
            seq.append((packet.sequence - sensors[placement].sequence_start) % U32_MODULUS)
            stamps.append(packet.timestamp_us)
        true_s = np.array(seq) / rate
        ticks = np.unwrap(np.array(stamps, dtype=float), period=U32_MODULUS)
        slope = np.polyfit(true_s, ticks, 1)[0]
        assert (slope / 1e6 - 1.0) * 1e6 == pytest.approx(DRIFT[i], abs=0.05)


def test_counters_wrap_and_arrivals_are_bursty(session):
    sensors = simulated_sensors(session, boot_age_s=4290.0, sequence_start=U32_MODULUS - 200)
    pelvis = [(t, decode_packet(raw)) for t, p, raw in iter_packets(session, sensors) if p == "pelvis"]
    assert any(b.sequence < a.sequence for (_, a), (_, b) in itertools.pairwise(pelvis))
    assert any(b.timestamp_us < a.timestamp_us for (_, a), (_, b) in itertools.pairwise(pelvis))
    gaps = np.diff([t for t, _ in pelvis])
    assert (gaps < 0.0025).any() and (gaps > 0.06).any()


def test_packet_loss_leaves_sequence_gaps():
    lossy = simulate_session(script="walk", seed=21, minutes=1.0, packet_loss=0.2)
    full = simulate_session(script="walk", seed=21, minutes=1.0)
    n_lossy = sum(1 for _ in iter_packets(lossy))
    n_full = sum(1 for _ in iter_packets(full))
    assert 0.7 * n_full < n_lossy < 0.9 * n_full
