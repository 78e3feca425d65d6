"""Sessions across a gateway restart, and the gateway's command/ack boundary.

A restarted gateway continues the session it had open when the session's last motion is less than
``still_timeout_s`` ago (the running gateway would still have it open, however long ago it opened); a later
restart first sends the old session's ``session_end`` (referring to the last samples the outbox committed,
stamped with their time), then opens a new session on motion. The first process is never stopped (as after
``kill -9`` or a power cut): only what its outbox committed survives.

A scripted transport on the virtual clock (three sensors, 100 Hz, 10 samples a packet, walking-like rotation);
MQTT is the in-memory loopback; the outbox is the real SQLite file."""

from __future__ import annotations

from pathlib import Path

from firmware_protocol.packet import ImuPacket, encode_packet
from firmware_protocol.sensor_info import PLACEMENTS, SensorInfo
from gaitsym_common.mqtt.client import Incoming
from gaitsym_common.uplink import envelope as env
from gaitsym_common.uplink.topics import topic
from gateway.packet_source import placement_info
from sensor_gateway.core.gateway import Gateway, GatewayConfig
from sensor_gateway.outbox.store import Outbox
from sensor_gateway.timing.host_clock import VirtualHostClock
from sensor_gateway.transport.base import EventQueue, LinkEvent, PacketEvent
from testing.gateway.loopback import LoopbackLink

SUBJECT = "R1"
UTC0 = 1_767_225_600.0
SPP = 10


class Kit:
    """Three sensors that keep sampling whether or not a gateway listens (sequence = sample number)."""

    def __init__(self) -> None:
        self.seq = dict.fromkeys(PLACEMENTS, 0)

    @staticmethod
    def info(placement: str) -> SensorInfo:
        return placement_info(placement, boot_epoch=7, samples_per_packet=SPP)

    def packet(self, placement: str, moving: bool) -> bytes:
        gyr = 1600 if moving else 0  # ~98 deg/s: above the gateway's 15 deg/s motion threshold
        s = self.seq[placement]
        data = encode_packet(
            ImuPacket(
                sequence=s,
                timestamp_us=s * 10_000,
                acc_range_g=16,
                gyr_range_dps=2000,
                samples=((0, 0, 2048, gyr, 0, 0),) * SPP,
            )
        )
        self.seq[placement] += SPP
        return data

    def skip(self, seconds: float) -> None:
        """The sensors sample on while no gateway runs."""
        for p in PLACEMENTS:
            self.seq[p] += round(seconds * 100)


class Transport:
    def __init__(self) -> None:
        self.events: EventQueue | None = None

    def open(self, events: EventQueue) -> None:
        self.events = events

    def connect(self, placement: str) -> None:
        assert self.events is not None
        self.events.put(LinkEvent(placement, "connected", Kit.info(placement)))

    def start_streaming(self, placement: str) -> None: ...
    def stop_streaming(self, placement: str) -> None: ...
    def disconnect(self, placement: str) -> None: ...
    def close(self) -> None: ...


def start(path: Path, utc_s: float, synced: bool = True) -> tuple[Gateway, VirtualHostClock, LoopbackLink]:
    clock = VirtualHostClock(start_s=500.0, utc_at_start_s=utc_s, synced=synced)
    link = LoopbackLink(SUBJECT)
    gw = Gateway(GatewayConfig(subject=SUBJECT, time_sync_every_s=0), Transport(), link, Outbox(path), clock)  # type: ignore[arg-type]
    gw.start()
    gw.step()  # the sensors connect
    return gw, clock, link


def stream(gw: Gateway, clock: VirtualHostClock, kit: Kit, seconds: float, moving: bool = True) -> None:
    for _ in range(round(seconds * 10)):
        clock.set(clock.monotonic() + 0.1)
        for p in PLACEMENTS:
            gw.events.put(PacketEvent(p, clock.monotonic(), kit.packet(p, moving)))
        gw.step()


def markers(link: LoopbackLink) -> list[env.Marker]:
    return [m for m in link.messages if isinstance(m, env.Marker)]


def raw(link: LoopbackLink) -> list[env.RawBatch]:
    return [m for m in link.messages if isinstance(m, env.RawBatch)]


def test_a_restart_60s_after_the_last_motion_continues_a_session_opened_long_before(tmp_path: Path) -> None:
    kit = Kit()
    gw1, clock1, link1 = start(tmp_path / "outbox.db", UTC0)
    stream(gw1, clock1, kit, 150.0)  # open for 150 s, moving throughout
    (opened,) = [m for m in markers(link1) if m.type == "session_start"]
    utc_killed = clock1.utc()
    # killed: no stop, nothing flushed but what the outbox committed
    kit.skip(60.0)
    gw2, clock2, link2 = start(tmp_path / "outbox.db", utc_killed + 60.0)
    assert gw2.session.session == opened.session
    stream(gw2, clock2, kit, 20.0)
    assert [m.type for m in markers(link2) if m.type.startswith("session")] == []
    new = [b for b in raw(link2) if b.msg_id not in {m.msg_id for m in link1.messages}]
    assert new and {b.session for b in new} == {opened.session}
    # the stillness timeout still counts from the last motion: 120 s of stillness close the session
    stream(gw2, clock2, kit, 119.0, moving=False)
    assert gw2.session.session == opened.session
    stream(gw2, clock2, kit, 2.0, moving=False)
    assert gw2.session.session is None
    assert [(m.type, m.session) for m in markers(link2) if m.type.startswith("session")] == [
        ("session_end", opened.session)
    ]
    # it names where the session started, which only the first process saw (kept in the sensors' cursors)
    (end,) = [m for m in markers(link2) if m.type == "session_end"]
    assert {p: pos.session_seq_first for p, pos in end.last_seq.items()} == first_of_session(link1, opened.session)


def first_of_session(link: LoopbackLink, session: str) -> dict[str, int]:
    """Per placement, the first sample of the first raw batch the gateway published as ``session``'s."""
    return {b.placement: b.seq_first for b in reversed(raw(link)) if b.session == session}


def test_a_session_end_names_each_sensors_first_sample_of_the_session(tmp_path: Path) -> None:
    kit = Kit()
    gw, clock, link = start(tmp_path / "outbox.db", UTC0)
    stream(gw, clock, kit, 3.0, moving=False)  # before the session: the patient sits still
    stream(gw, clock, kit, 20.0)
    stream(gw, clock, kit, 125.0, moving=False)  # the session closes after 120 s of stillness
    (end,) = [m for m in markers(link) if m.type == "session_end"]
    firsts = first_of_session(link, end.session)
    assert set(firsts) == set(PLACEMENTS) and min(firsts.values()) >= 300  # not the still samples before it
    assert {p: pos.session_seq_first for p, pos in end.last_seq.items()} == firsts
    for b in raw(link):  # every sample from there to the marker's last is the session's
        if b.seq_first >= firsts[b.placement] and b.seq_last <= end.last_seq[b.placement].seq:
            assert b.session == end.session, b.msg_id
    payload = next(pl for t, pl in link.published if env.decode(pl) == end)
    assert payload.count(b'"session_seq_first":') == len(PLACEMENTS)  # on the wire, through the uplink decoder
    assert all(
        m.last_seq[p].session_seq_first is None for m in markers(link) if m.type != "session_end" for p in m.last_seq
    )


def test_a_restart_10_min_later_first_ends_the_old_session_then_opens_a_new_one(tmp_path: Path) -> None:
    kit = Kit()
    gw1, clock1, link1 = start(tmp_path / "outbox.db", UTC0)
    stream(gw1, clock1, kit, 60.0)
    (opened,) = [m for m in markers(link1) if m.type == "session_start"]
    committed = {b.placement: b for b in raw(link1) if b.session == opened.session}  # the last of each sensor
    firsts = {b.placement: b.seq_first for b in reversed(raw(link1)) if b.session == opened.session}
    utc_killed = clock1.utc()
    kit.skip(600.0)
    gw2, clock2, link2 = start(tmp_path / "outbox.db", utc_killed + 600.0)
    stream(gw2, clock2, kit, 20.0)

    old = {m.msg_id for m in link1.messages}
    sent = link2.messages
    end_at = next(i for i, m in enumerate(sent) if isinstance(m, env.Marker) and m.type == "session_end")
    assert all(m.msg_id in old for m in sent[:end_at])  # before it: only re-sends of what gw1 left unacknowledged
    end = sent[end_at]
    assert isinstance(end, env.Marker) and end.session == opened.session
    assert end.last_seq == {
        p: env.SensorPosition(b.sensor.serial, 7, b.seq_last, session_seq_first=firsts[p]) for p, b in committed.items()
    }
    assert end.t_utc_s is not None and utc_killed - 2.0 <= end.t_utc_s <= utc_killed  # its last sample, not now
    after = sent[end_at + 1 :]
    starts = [m for m in after if isinstance(m, env.Marker) and m.type == "session_start"]
    assert len(starts) == 1 and starts[0].session != opened.session
    assert all(getattr(m, "session", None) != opened.session for m in after)
    assert gw2.session.session == starts[0].session


def test_a_restart_before_the_clock_is_synchronised_ends_the_session_it_cannot_date(tmp_path: Path) -> None:
    """After a power cut the computer may boot with a wrong clock: how long the gateway was down is unknown."""
    kit = Kit()
    gw1, clock1, link1 = start(tmp_path / "outbox.db", UTC0)
    stream(gw1, clock1, kit, 30.0)
    (opened,) = [m for m in markers(link1) if m.type == "session_start"]
    gw2, clock2, link2 = start(tmp_path / "outbox.db", clock1.utc() + 30.0, synced=False)
    stream(gw2, clock2, kit, 5.0)
    ends = [m for m in markers(link2) if m.type == "session_end"]
    assert [m.session for m in ends] == [opened.session]
    assert ends[0].t_utc_s is not None and ends[0].t_utc_s <= clock1.utc()  # the time its samples were stored at
    assert gw2.session.session not in (None, opened.session)


def test_a_restart_after_the_session_closed_normally_sends_nothing_of_it(tmp_path: Path) -> None:
    kit = Kit()
    gw1, clock1, link1 = start(tmp_path / "outbox.db", UTC0)
    stream(gw1, clock1, kit, 20.0)
    stream(gw1, clock1, kit, 125.0, moving=False)
    assert [m.type for m in markers(link1) if m.type.startswith("session")] == ["session_start", "session_end"]
    utc_killed = clock1.utc()
    kit.skip(600.0)
    gw2, clock2, link2 = start(tmp_path / "outbox.db", utc_killed + 600.0)
    stream(gw2, clock2, kit, 5.0, moving=False)
    assert markers(link2) == [] and gw2.session.session is None


def test_hostile_command_and_ack_payloads_are_dropped_and_counted_never_a_crash(tmp_path: Path) -> None:
    kit = Kit()
    gw, clock, link = start(tmp_path / "outbox.db", UTC0)
    stream(gw, clock, kit, 3.0)
    hostile = [
        Incoming(topic(SUBJECT, "ack"), b'{"v":1,"kind":"ack","msg_ids":' + b"[" * 30_000 + b"]" * 30_000 + b"}"),
        Incoming(topic(SUBJECT, "cmd"), b'{"v":1,"kind":"cmd","x":' + b"{" * 30_000 + b"}" * 30_000 + b"}"),
        Incoming(topic(SUBJECT, "cmd"), b'{"v":1,"kind":"cmd","cmd_id":' + b"9" * 20_000 + b"}"),  # int too long
        Incoming(topic(SUBJECT, "cmd"), b"\xff\xfe not even text"),
    ]
    link.incoming.extend(hostile)
    stream(gw, clock, kit, 1.0)  # the loop goes on
    assert gw.messages_dropped == len(hostile)
    stream(gw, clock, kit, 2.0, moving=False)  # the batches with motion are out
    command = env.Command("cmd", "c-1", SUBJECT, "session_stop")
    link.incoming.append(Incoming(topic(SUBJECT, "cmd"), env.encode(command)))
    stream(gw, clock, kit, 1.0, moving=False)
    assert gw.session.session is None  # a good command after them is still obeyed
    assert [m.type for m in markers(link) if m.type.startswith("session")] == ["session_start", "session_end"]
    status = env.decode(gw._status_payload("online"))
    assert isinstance(status, env.Status) and status.gateway["messages_dropped"] == str(len(hostile))


def test_a_message_whose_handling_fails_is_dropped_and_counted_and_the_next_one_works(tmp_path: Path) -> None:
    """A well-formed ack arrives while the outbox database is locked by another process (SQLite answers "database
    is locked" once its busy timeout, shortened here, expires): that ack is dropped, the loop goes on, the rows
    stay in the outbox, and the next ack deletes them."""
    import sqlite3

    kit = Kit()
    gw, clock, link = start(tmp_path / "outbox.db", UTC0)
    stream(gw, clock, kit, 3.0)
    publish = link.publish
    link.publish = lambda *args, **kw: True  # type: ignore[method-assign]  # the worker goes quiet: no acks
    stream(gw, clock, kit, 2.0)
    link.events()
    link.publish = publish  # type: ignore[method-assign]
    gw.outbox._db.execute("PRAGMA busy_timeout=50")
    waiting = [item.msg_id for item in gw.outbox.pending(limit=100, include_inflight=True)]
    assert waiting
    ack = Incoming(topic(SUBJECT, "ack"), env.encode(env.Ack("ack", SUBJECT, tuple(waiting))))
    other = sqlite3.connect(tmp_path / "outbox.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the database
    link.incoming.append(ack)
    gw.step()
    other.execute("ROLLBACK")
    other.close()
    assert gw.messages_dropped == 1
    assert {item.msg_id for item in gw.outbox.pending(limit=100, include_inflight=True)} >= set(waiting)
    link.incoming.append(ack)
    gw.step()
    assert gw.messages_dropped == 1
    assert not {item.msg_id for item in gw.outbox.pending(limit=100, include_inflight=True)} & set(waiting)


def test_a_session_continued_from_a_gateway_that_kept_no_session_start_names_none(tmp_path: Path) -> None:
    """Upgraded in the middle of a session: the earlier version's cursors do not say where the session started,
    so the session's end names no start (the worker then takes the first stored batch, as before), never the
    first batch after the restart, which would cut the session's earlier samples out of its final analysis."""
    import json
    import sqlite3

    kit = Kit()
    gw1, clock1, link1 = start(tmp_path / "outbox.db", UTC0)
    stream(gw1, clock1, kit, 30.0)
    (opened,) = [m for m in markers(link1) if m.type == "session_start"]
    utc_killed = clock1.utc()
    gw1.outbox.close()
    db = sqlite3.connect(tmp_path / "outbox.db")  # what the earlier version wrote: no session_seq_first
    for key, value in db.execute("SELECT key, value FROM gateway_state").fetchall():
        state = json.loads(value)
        if isinstance(state, dict) and "session_seq_first" in state:
            del state["session_seq_first"]
            db.execute("UPDATE gateway_state SET value = ? WHERE key = ?", (json.dumps(state), key))
    db.commit()
    db.close()
    kit.skip(10.0)
    gw2, clock2, link2 = start(tmp_path / "outbox.db", utc_killed + 10.0)
    assert gw2.session.session == opened.session
    stream(gw2, clock2, kit, 10.0)
    stream(gw2, clock2, kit, 125.0, moving=False)
    (end,) = [m for m in markers(link2) if m.type == "session_end"]
    assert end.session == opened.session
    assert {p: pos.session_seq_first for p, pos in end.last_seq.items()} == dict.fromkeys(PLACEMENTS)
