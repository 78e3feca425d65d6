"""The vectorised packet check the worker decodes with (`firmware_protocol.packet_arrays.packet_header`) accepts
exactly the packets `firmware_protocol.packet.decode_packet` accepts, reads the same header fields, and a refused
packet is named by decode_packet's own error."""

from __future__ import annotations

import dataclasses
import random
import struct

import numpy as np
import pytest

from analytics.worker.decode import batch_samples
from analytics.worker.errors import MalformedMessage
from firmware_protocol.errors import ProtocolError
from firmware_protocol.packet import ImuPacket, PacketFlags, decode_packet, encode_packet
from firmware_protocol.packet_arrays import decode_packets, packet_header
from firmware_protocol.wire import ACC_RANGES_G, GYR_RANGES_DPS, crc16_ccitt_false
from gaitsym_common.uplink import envelope as env


def packet(rng: random.Random, n: int | None = None) -> bytes:
    n = rng.randint(1, 19) if n is None else n
    return encode_packet(
        ImuPacket(
            flags=PacketFlags(rng.randint(0, 7)),
            sequence=rng.randint(0, 2**32 - 1),
            timestamp_us=rng.randint(0, 2**32 - 1),
            acc_range_g=rng.choice(ACC_RANGES_G),
            gyr_range_dps=rng.choice(GYR_RANGES_DPS),
            samples=tuple(
                (
                    rng.randint(-32768, 32767),
                    rng.randint(-32768, 32767),
                    rng.randint(-32768, 32767),
                    rng.randint(-32768, 32767),
                    rng.randint(-32768, 32767),
                    rng.randint(-32768, 32767),
                )
                for _ in range(n)
            ),
        )
    )


def with_crc(body: bytes) -> bytes:
    """The packet's bytes with its CRC recomputed, so that the other checks are what decides."""
    return body[:-2] + struct.pack("<H", crc16_ccitt_false(body[:-2]))


def mutations(rng: random.Random, data: bytes) -> list[bytes]:
    out = [data, data[:-1], data + b"\0", data[:11], b"", data[:1], data[:-12], data + bytes(12)]
    for _ in range(30):
        b = bytearray(data)
        i = rng.randrange(len(b)) if rng.random() < 0.5 else rng.randrange(4)  # often a header byte
        b[i] = rng.randrange(256)
        out += [bytes(b), with_crc(bytes(b))]
    for count in (0, 20, 255, rng.randint(1, 19)):  # sample_count that disagrees with the length
        b = bytearray(data)
        b[2] = count
        out.append(with_crc(bytes(b)))
    for n in range(21):  # a length that fits another sample count, CRC valid
        out.append(with_crc(data[:12] + bytes(12 * n) + b"\0\0"))
    return out


def decoder_verdict(data: bytes) -> tuple[int, int, int, float, float] | None:
    try:
        p = decode_packet(data)
    except ProtocolError:
        return None
    return p.sample_count, p.sequence, p.timestamp_us, p.acc_scale_mps2, p.gyr_scale_dps


def test_packet_header_accepts_exactly_what_decode_packet_accepts() -> None:
    rng = random.Random(7)
    accepted = refused = 0
    for i in range(300):
        for data in mutations(rng, packet(rng, n=1 + i % 19)):
            verdict = decoder_verdict(data)
            assert packet_header(data) == verdict, data.hex()
            if verdict is None:
                refused += 1
            else:
                accepted += 1
    for ranges in range(256):  # every range code, valid and not
        b = bytearray(packet(rng))
        b[3] = ranges
        data = with_crc(bytes(b))
        assert packet_header(data) == decoder_verdict(data)
    assert accepted > 1000 and refused > 10_000


def raw_batch(packets: tuple[bytes, ...], seq_first: int, n: int, t_first: int) -> env.RawBatch:
    return env.RawBatch(
        "raw",
        env.raw_batch_id("GS24-A", 1, seq_first),
        "S001",
        "S001-1",
        "pelvis",
        env.SensorIdentity("GS24-A", 1, 100.0, 16, 2000),
        seq_first,
        seq_first + n - 1,
        n,
        t_first,
        env.ClockMapping(True, 0, 1_764_000_000.0, 1.0, 0.0, 0.5),
        packets,
    )


def test_a_batch_across_the_u32_wrap_decodes_as_each_packet_does() -> None:
    rng = random.Random(3)
    seq, t = 2**32 - 25, 2**32 - 180_000
    packets = []
    for n in (10, 10, 7, 19, 1):
        pkt = decode_packet(packet(rng, n))
        pkt = ImuPacket(
            sequence=seq % 2**32,
            timestamp_us=t % 2**32,
            acc_range_g=pkt.acc_range_g,
            gyr_range_dps=pkt.gyr_range_dps,
            samples=pkt.samples,
        )
        packets.append(encode_packet(pkt))
        seq, t = seq + n, t + n * 10_000
    batch = raw_batch(tuple(packets), 2**32 - 25, 47, 2**32 - 180_000)
    samples = batch_samples(batch)
    decoded = [decode_packet(p) for p in packets]
    accs, gyrs = zip(*(p.to_physical() for p in decoded), strict=True)
    np.testing.assert_array_equal(samples.acc_mps2, np.concatenate(accs))
    np.testing.assert_array_equal(samples.gyr_dps, np.concatenate(gyrs))
    assert samples.seq.tolist() == list(range(2**32 - 25, 2**32 + 22))
    assert samples.t_sensor_us.tolist()[:3] == [2**32 - 180_000, 2**32 - 170_000, 2**32 - 160_000]
    assert samples.t_sensor_us[-1] == 2**32 - 180_000 + 46 * 10_000


def test_a_refused_packet_is_named_with_the_decoders_error() -> None:
    rng = random.Random(5)
    good = packet(rng, 10)
    bad = bytearray(good)
    bad[0] = 2  # protocol version
    with pytest.raises(MalformedMessage, match=r"packets\[1\]: .*protocol_version"):
        batch_samples(raw_batch((good, with_crc(bytes(bad))), 0, 20, 0))
    with pytest.raises(MalformedMessage, match=r"packets\[0\]: .*crc16"):
        batch_samples(raw_batch((good[:-1] + bytes([good[-1] ^ 1]),), 0, 10, 0))


def test_decode_packets_raises_decode_packets_own_error_naming_the_packet() -> None:
    rng = random.Random(11)
    good = packet(rng, 4)
    bad = bytearray(good)
    bad[2] = 20  # sample_count
    with pytest.raises(ProtocolError) as caught:
        decode_packets([good, good, with_crc(bytes(bad))], seq_first=0, timestamp_us_first=0, sample_rate_hz=100.0)
    try:
        decode_packet(with_crc(bytes(bad)))
    except ProtocolError as exc:
        expected = exc
    assert type(caught.value) is type(expected) and str(caught.value) == str(expected)
    assert caught.value.packet_index == 2 and expected.packet_index is None
    with pytest.raises(ValueError):
        decode_packets([], seq_first=0, timestamp_us_first=0, sample_rate_hz=100.0)


@pytest.mark.parametrize("synced", [True, False])
def test_a_batch_whose_sensor_time_steps_back_is_malformed(synced: bool) -> None:
    """The second packet restarts the sensor clock while the sequence goes on: its samples would land on the
    first packet's store keys (the store keys raw samples by time), so the batch is refused, naming the sample."""
    rng = random.Random(5)
    packets = []
    for seq, t in ((0, 0), (10, 0)):
        pkt = decode_packet(packet(rng, 10))
        packets.append(
            encode_packet(
                ImuPacket(
                    sequence=seq,
                    timestamp_us=t,
                    acc_range_g=pkt.acc_range_g,
                    gyr_range_dps=pkt.gyr_range_dps,
                    samples=pkt.samples,
                )
            )
        )
    batch = raw_batch(tuple(packets), 0, 20, 0)
    if not synced:
        batch = dataclasses.replace(batch, clock=env.ClockMapping(False, 0, None, 1.0, 0.0, 0.5))
    with pytest.raises(MalformedMessage, match=r"sample seq 10 .* strictly increase"):
        batch_samples(batch)
