"""The gateway core's link watchdog: a silent streaming sensor is re-connected; a sensor whose first packet is
late (its START queued behind the other sensors' connection attempts on one adapter, as real BlueZ showed in
tests/ble_vm) is left alone until ``first_packet_timeout_s``.

A scripted transport on the virtual clock (no radio is involved in what is tested here: the core's decisions);
MQTT is the in-memory loopback."""

from __future__ import annotations

from pathlib import Path

from firmware_protocol.packet import ImuPacket, encode_packet
from firmware_protocol.sensor_info import PLACEMENTS, SensorInfo
from gateway.packet_source import placement_info
from sensor_gateway.core.gateway import Gateway, GatewayConfig
from sensor_gateway.outbox.store import Outbox
from sensor_gateway.timing.host_clock import VirtualHostClock
from sensor_gateway.transport.base import EventQueue, LinkEvent, PacketEvent
from testing.gateway.loopback import LoopbackLink

SPP = 10


class ScriptedTransport:
    """Records the core's calls; the test puts the events."""

    def __init__(self) -> None:
        self.events: EventQueue | None = None
        self.calls: list[tuple[float, str, str]] = []
        self.clock: VirtualHostClock | None = None

    def _note(self, what: str, placement: str) -> None:
        assert self.clock is not None
        self.calls.append((self.clock.monotonic(), what, placement))

    def open(self, events: EventQueue) -> None:
        self.events = events

    def connect(self, placement: str) -> None:
        self._note("connect", placement)

    def start_streaming(self, placement: str) -> None:
        self._note("start", placement)

    def stop_streaming(self, placement: str) -> None:
        self._note("stop", placement)

    def disconnect(self, placement: str) -> None:
        self._note("disconnect", placement)

    def close(self) -> None:
        pass


def info(placement: str) -> SensorInfo:
    return placement_info(placement, boot_epoch=3, samples_per_packet=SPP)


def run(tmp_path: Path, sends: dict[str, tuple[float, float]], until_s: float) -> list[tuple[float, str, str]]:
    """All three sensors connect at t=0; each sends packets (every 0.1 s) during its [start, stop) seconds.
    Returns the transport calls after the first connects, times relative to the start."""
    clock = VirtualHostClock()
    t0 = clock.monotonic()
    transport = ScriptedTransport()
    transport.clock = clock
    gw = Gateway(GatewayConfig(subject="W1"), transport, LoopbackLink("W1"), Outbox(tmp_path / "o.db"), clock)  # type: ignore[arg-type]
    gw.start()
    for p in PLACEMENTS:
        gw.events.put(LinkEvent(p, "connected", info(p)))
    seq = dict.fromkeys(PLACEMENTS, 0)
    for k in range(1, round(until_s * 10) + 1):
        clock.set(t0 + k / 10)
        t = k / 10
        for p, (start, stop) in sends.items():
            if start <= t < stop:
                data = encode_packet(
                    ImuPacket(
                        sequence=seq[p],
                        timestamp_us=seq[p] * 10_000,
                        acc_range_g=16,
                        gyr_range_dps=2000,
                        samples=((0, 0, 2048, 0, 0, 0),) * SPP,
                    )
                )
                seq[p] += SPP
                gw.events.put(PacketEvent(p, clock.monotonic(), data))
        gw.step()
    gw.stop()
    return [(round(t - t0, 1), what, p) for t, what, p in transport.calls if what != "connect" or t > t0]


def test_a_late_first_packet_is_waited_for_and_a_silent_stream_is_recycled(tmp_path: Path) -> None:
    # pelvis: START queued for 25 s, then streams until 40 s and falls silent; the thighs stream throughout
    calls = run(tmp_path, {"pelvis": (25.0, 40.0), "left_thigh": (0.5, 90), "right_thigh": (0.5, 90)}, 60.0)
    assert {p for _, what, p in calls if what == "start"} == set(PLACEMENTS)
    disconnects = [(t, p) for t, what, p in calls if what == "disconnect"]
    assert [p for _, p in disconnects] == ["pelvis"], calls  # never while waiting for its first packet
    ((t, _),) = disconnects
    assert 49.9 < t <= 50.1  # 10 s after its last packet (39.9 s)


def test_a_sensor_that_never_sends_is_recycled_after_the_first_packet_timeout(tmp_path: Path) -> None:
    calls = run(tmp_path, {"left_thigh": (0.5, 200), "right_thigh": (0.5, 200)}, 130.0)
    disconnects = [(t, p) for t, what, p in calls if what == "disconnect"]
    assert [p for _, p in disconnects] == ["pelvis"], calls
    ((t, _),) = disconnects
    assert 120.0 < t <= 120.2  # GatewayConfig.first_packet_timeout_s
