"""`serve` with a duration closes its one session only once the sensors fell quiet: a stop that takes seconds to
reach a sensor (a slow or busy BLE link: the emulated one under load) still lands every last batch inside the
session and opens no second session after it.

A scripted kit on the virtual clock: the event queue's wait moves the clock on and delivers the packets then due
(100 Hz, 10 samples a packet, turning at ~98 deg/s: motion) of every sensor that has not stopped yet; a stop
takes effect ``stop_delay_s`` after the gateway asks; with ``drop_after_stop_s`` the pelvis's link drops that long
after the stop was asked (before the stop reached it) and the gateway reconnects it: a sensor streams again only
if asked to. MQTT is the in-memory loopback (it acknowledges); the
outbox is the real SQLite file."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import pytest

from firmware_protocol.packet import ImuPacket, encode_packet
from firmware_protocol.sensor_info import PLACEMENTS
from gaitsym.gateway_runner import serve
from gaitsym_common.uplink import envelope as env
from gateway.packet_source import placement_info
from sensor_gateway.core.gateway import Gateway, GatewayConfig
from sensor_gateway.outbox.store import Outbox
from sensor_gateway.timing.host_clock import VirtualHostClock
from sensor_gateway.transport.base import EventQueue, LinkEvent, PacketEvent
from testing.gateway.loopback import LoopbackLink

SUBJECT = "R2"
SPP = 10
PACKET_S = SPP / 100.0


class SlowStopKit(EventQueue):
    """The gateway's event queue and the three sensors behind it, on ``clock``."""

    def __init__(self, clock: VirtualHostClock, stop_delay_s: float, drop_after_stop_s: float | None = None) -> None:
        super().__init__()
        self.clock = clock
        self.stop_delay_s = stop_delay_s
        self.drop_after_stop_s = drop_after_stop_s
        self.drop_at = math.inf
        self.stops_at = dict.fromkeys(PLACEMENTS, math.inf)
        self.seq = dict.fromkeys(PLACEMENTS, 0)
        self.next_s = clock.monotonic() + PACKET_S

    def wait(self, timeout_s: float) -> bool:
        self.clock.set(self.clock.monotonic() + timeout_s)
        if self.clock.monotonic() >= self.drop_at:
            self.stops_at["pelvis"], self.drop_at = self.drop_at, math.inf
            self.put(LinkEvent("pelvis", "lost", reason="out of range"))
        while self.next_s <= self.clock.monotonic():
            for p in PLACEMENTS:
                if self.next_s < self.stops_at[p]:
                    self.put(PacketEvent(p, self.next_s, self._packet(p)))
            self.next_s += PACKET_S
        return super().wait(0.0)

    def _packet(self, placement: str) -> bytes:
        s = self.seq[placement]
        self.seq[placement] += SPP
        samples = ((0, 0, 2048, 1600, 0, 0),) * SPP
        return encode_packet(
            ImuPacket(sequence=s, timestamp_us=s * 10_000, acc_range_g=16, gyr_range_dps=2000, samples=samples)
        )

    # the transport side
    def open(self, events: EventQueue) -> None: ...
    def connect(self, placement: str) -> None:
        self.put(LinkEvent(placement, "connected", placement_info(placement, boot_epoch=7, samples_per_packet=SPP)))

    def start_streaming(self, placement: str) -> None:
        self.stops_at[placement] = math.inf

    def stop_streaming(self, placement: str) -> None:
        self.stops_at[placement] = self.clock.monotonic() + self.stop_delay_s
        if self.drop_after_stop_s is not None:
            self.drop_at, self.drop_after_stop_s = self.clock.monotonic() + self.drop_after_stop_s, None

    def disconnect(self, placement: str) -> None: ...
    def close(self) -> None: ...


@pytest.mark.parametrize(("stop_delay_s", "drop_after_stop_s"), [(0.0, None), (3.0, None), (1.0, 0.2)])
def test_one_session_holds_every_sample_however_late_the_sensors_stop(
    tmp_path: Path, stop_delay_s: float, drop_after_stop_s: float | None
) -> None:
    clock = VirtualHostClock(start_s=500.0)
    kit = SlowStopKit(clock, stop_delay_s, drop_after_stop_s)
    link = LoopbackLink(SUBJECT)
    config = GatewayConfig(subject=SUBJECT, time_sync_every_s=0)
    gw = Gateway(config, kit, link, Outbox(tmp_path / "outbox.db"), clock)  # type: ignore[arg-type]
    gw.events = kit
    gw.start()
    assert serve(gw, threading.Event(), duration_s=5.0, drain_timeout_s=5.0)
    gw.stop()
    sessions = [m for m in link.messages if isinstance(m, env.Marker) and m.type.startswith("session")]
    assert [m.type for m in sessions] == ["session_start", "session_end"]
    (session,) = {m.session for m in sessions}
    raw = [m for m in link.messages if isinstance(m, env.RawBatch)]
    # the motion in a sensor's first batch opens the session: every batch after its start belongs to it
    opened = link.messages.index(sessions[0])
    assert {b.session for b in link.messages[opened:] if isinstance(b, env.RawBatch)} == {session}
    assert {b.session for b in link.messages[:opened] if isinstance(b, env.RawBatch)} <= {None}
    for p in PLACEMENTS:  # every sample the sensor sent is in a batch of the session, up to its last
        published = sorted((b.seq_first, b.seq_last) for b in raw if b.placement == p)
        assert published[-1][1] == kit.seq[p] - 1 == sessions[-1].last_seq[p].seq
        assert sum(last - first + 1 for first, last in published) == kit.seq[p]


def test_a_sensor_that_never_stops_ends_the_session_at_the_bound_and_opens_no_other(tmp_path: Path) -> None:
    clock = VirtualHostClock(start_s=500.0)
    kit = SlowStopKit(clock, stop_delay_s=math.inf)
    link = LoopbackLink(SUBJECT)
    gw = Gateway(GatewayConfig(subject=SUBJECT, time_sync_every_s=0), kit, link, Outbox(tmp_path / "o.db"), clock)  # type: ignore[arg-type]
    gw.events = kit
    gw.start()
    assert serve(gw, threading.Event(), duration_s=5.0, drain_timeout_s=5.0, settle_timeout_s=2.0)
    gw.stop(end_session=False)
    sessions = [m for m in link.messages if isinstance(m, env.Marker) and m.type.startswith("session")]
    assert [m.type for m in sessions] == ["session_start", "session_end"]
    after = link.messages[link.messages.index(sessions[-1]) + 1 :]
    late = [m for m in after if isinstance(m, env.RawBatch)]
    assert late and {b.session for b in late} == {None}  # stored, in no session
