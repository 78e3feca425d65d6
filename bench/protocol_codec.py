"""Encode and decode cost of the sensor wire format (firmware_protocol), per packet.

Run:  .venv/bin/python bench/protocol_codec.py
Prints microseconds per packet (best of 5 repeats) for 1, 10 and 19 samples, and the implied share of one
core for three sensors at 100 Hz sending 10-sample packets.
"""

from __future__ import annotations

import timeit

from firmware_protocol.packet import ImuPacket, decode_packet, encode_packet


def per_packet_us(func, number: int = 20000) -> float:
    return min(timeit.repeat(func, number=number, repeat=5)) / number * 1e6


def main() -> None:
    figures = {}
    for n in (1, 10, 19):
        pkt = ImuPacket(
            sequence=1, timestamp_us=2, acc_range_g=16, gyr_range_dps=2000, samples=((1, -2, 3, -4, 5, -6),) * n
        )
        data = encode_packet(pkt)
        figures[n] = (
            per_packet_us(lambda data=data: decode_packet(data)),
            per_packet_us(lambda pkt=pkt: encode_packet(pkt)),
        )
        print(f"{n:2d} samples ({len(data):3d} B): decode {figures[n][0]:6.2f} us, encode {figures[n][1]:6.2f} us")
    packets_per_s = 3 * 100 / 10
    print(
        f"3 sensors x 100 Hz in 10-sample packets: decode uses {figures[10][0] * packets_per_s / 1e4:.4f} % of a core"
    )


if __name__ == "__main__":
    main()
