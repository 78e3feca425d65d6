"""The central inside the BLE VM: THE GATEWAY on the real bluetoothd (D-Bus) and kernel, against the Bumble kit.

Nothing here talks to bleak directly: the sensors are reached only through the gateway's own code.

1. Pairing by placement: `sensor_gateway.ble.pair` scans for the gaitsym service, connects every sensor it
   hears, reads its sensor info and pins one address per placement (the fourth, small-MTU sensor, which also
   claims the pelvis, is switched off meanwhile, as a neighbour's kit must be).
2. The production gateway: `build_ble_gateway` (BleTransport on the pinned kit + the gateway core + the SQLite
   outbox + paho) publishing to a Mosquitto started in the VM from the project's own configuration (the host's
   binary, seen over 9p), with an acknowledging worker (testing/gateway/worker_stub.py); run by the product's
   `serve` for --stream-s seconds from the first packet, then STOP_STREAMING, last batches, session end, every
   message acknowledged. Every transport event is also recorded on its way into the gateway's queue
   (`TapQueue`) and replayed into a `StreamLedger` afterwards.
3. Mid-stream the pelvis sensor drops the link (Bumble disconnects, via the kit's control socket); the
   transport's own link task notices (bleak's disconnected_callback, timed here by wrapping
   `SensorLink._on_disconnect`), reports "lost", reconnects by itself and streaming resumes.
4. MTU: the small-MTU sensor (GATT server accepts at most --small-mtu bytes, streams 10 samples per packet) is
   switched on and pinned for the pelvis in a separate `BleTransport`, driven through the Transport interface:
   the transport reads the negotiated MTU, writes SET_SAMPLES_PER_PACKET(samples_per_packet_for_mtu(MTU)) and
   the packets that arrive decode. Then its GATT server is limited to --tiny-mtu bytes (< 29): the transport
   refuses it (LinkEvent "lost", reason naming both numbers) and does not retry.
Every figure goes to --out as JSON (the pytest test asserts on it). Times are CLOCK_MONOTONIC, shared with the
kit process in the same VM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # testing.gateway.worker_stub
    sys.path.insert(0, str(REPO))

from dbus_fast import BusType, Message, MessageType, Variant  # noqa: E402
from dbus_fast.aio import MessageBus  # noqa: E402

from firmware_protocol.sensor_info import PLACEMENTS  # noqa: E402
from gaitsym.gateway_runner import build_ble_gateway, serve  # noqa: E402
from gaitsym_common.mqtt.client import MqttSettings  # noqa: E402
from gaitsym_common.mqtt.local_broker import LocalMosquitto  # noqa: E402
from gaitsym_common.uplink import envelope as env  # noqa: E402
from sensor_gateway.ble import BleConfig, BleTransport, PairedSensor, Pairing, StreamLedger, pair  # noqa: E402
from sensor_gateway.ble.link import SensorLink  # noqa: E402
from sensor_gateway.core.gateway import GatewayConfig  # noqa: E402
from sensor_gateway.timing.host_clock import RealHostClock  # noqa: E402
from sensor_gateway.transport.base import EventQueue, LinkEvent, PacketEvent, TransportEvent  # noqa: E402
from testing.gateway.worker_stub import AckingWorker  # noqa: E402

KIT_SERIALS = ("GS1-PLV-0001", "GS1-LTH-0002", "GS1-RTH-0003")
MTU_SERIAL = "GS1-MTU-0004"
SUBJECT = "P-vm"


def say(what: str) -> None:
    print(f"{time.monotonic():.3f} {what}", flush=True)


def kit_call(socket_path: str, **request: Any) -> dict[str, Any]:
    """One JSON-line request to the Bumble kit's control socket."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(30.0)
        s.connect(socket_path)
        s.sendall(json.dumps(request).encode() + b"\n")
        reply: dict[str, Any] = json.loads(s.makefile("rb").readline())
    if "error" in reply:
        raise RuntimeError(f"kit: {reply['error']}")
    return reply


async def power_on_adapter(timeout_s: float = 60.0) -> str:
    """Wait for bluetoothd to show an adapter, power it on, return its object path."""
    bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            reply = await bus.call(
                Message(
                    destination="org.bluez",
                    path="/",
                    interface="org.freedesktop.DBus.ObjectManager",
                    member="GetManagedObjects",
                )
            )
            if reply is not None and reply.message_type == MessageType.METHOD_RETURN:
                adapters = [p for p, ifaces in reply.body[0].items() if "org.bluez.Adapter1" in ifaces]
                if adapters:
                    path = sorted(adapters)[0]
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("bluetoothd showed no adapter")
            await asyncio.sleep(0.2)
        while True:
            reply = await bus.call(
                Message(
                    destination="org.bluez",
                    path=path,
                    interface="org.freedesktop.DBus.Properties",
                    member="Set",
                    signature="ssv",
                    body=["org.bluez.Adapter1", "Powered", Variant("b", True)],
                )
            )
            if reply is not None and reply.message_type == MessageType.METHOD_RETURN:
                return path
            if time.monotonic() > deadline:
                raise RuntimeError(f"cannot power {path} on: {reply.body if reply else None}")
            await asyncio.sleep(0.2)
    finally:
        bus.disconnect()


class TapQueue(EventQueue):
    """The gateway's event queue, also recording (CLOCK_MONOTONIC ns, event) of everything put into it."""

    def __init__(self) -> None:
        super().__init__()
        self.record: list[tuple[int, TransportEvent]] = []

    def put(self, event: TransportEvent) -> bool:
        self.record.append((time.monotonic_ns(), event))
        return super().put(event)

    def first(self, predicate: Callable[[TransportEvent], bool], after_ns: int = 0) -> int | None:
        return next((t for t, e in list(self.record) if t >= after_ns and predicate(e)), None)


DISCONNECT_CALLBACKS: list[tuple[str, int]] = []
"""(placement, CLOCK_MONOTONIC ns) of every bleak disconnected_callback the transport's links received."""


def tap_disconnect_callbacks() -> None:
    original = SensorLink._on_disconnect

    def tapped(self: SensorLink, client: Any) -> None:
        DISCONNECT_CALLBACKS.append((self.placement, time.monotonic_ns()))
        original(self, client)

    SensorLink._on_disconnect = tapped  # type: ignore[method-assign, assignment]


def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.05)


def is_link(placement: str, state: str) -> Callable[[TransportEvent], bool]:
    return lambda e: isinstance(e, LinkEvent) and e.placement == placement and e.state == state


def is_packet(placement: str) -> Callable[[TransportEvent], bool]:
    return lambda e: isinstance(e, PacketEvent) and e.placement == placement


def ms(a_ns: int | None, b_ns: int | None) -> float | None:
    return None if a_ns is None or b_ns is None else round((b_ns - a_ns) / 1e6, 1)


def ledger_of(events: list[tuple[int, TransportEvent]]) -> StreamLedger:
    ledger = StreamLedger()
    for _, event in events:
        ledger.feed(event)
    return ledger


def ledger_summary(ledger: StreamLedger, placement: str) -> dict[str, Any]:
    own = [lg for lg in ledger.ledgers.values() if lg.placement == placement]
    return {
        "delivered": sum(lg.delivered for lg in own),
        "lost": sum(lg.lost for lg in own),
        "duplicates": sum(lg.duplicates for lg in own),
        "packets": sum(lg.packets for lg in own),
        "max_packet_bytes": max((lg.max_packet_bytes for lg in own), default=0),
        "samples_per_packet": [lg.info.samples_per_packet for lg in own],
        "gaps": [[g.seq_first_missing, g.seq_last_missing] for g in ledger.gaps_of(placement)],
        "malformed": ledger.malformed.get(placement, {}),
        "states": ledger.states(placement),
        "reasons": [e.reason for e in ledger.link_events if e.placement == placement and e.reason],
    }


# -- 1-3: pairing and the gateway ------------------------------------------------------------------------------
def gateway_phase(args: argparse.Namespace, ble_config: BleConfig, out: dict[str, Any]) -> None:
    t0 = time.monotonic()
    say("pairing")
    pairing = asyncio.run(pair(ble_config, scan_s=args.scan_s, report=say))
    out["pairing"] = {p: {"serial": s.serial, "address": s.address} for p, s in pairing.sensors.items()}
    out["t_pair_s"] = round(time.monotonic() - t0, 2)

    broker = LocalMosquitto(Path("/tmp/mosquitto")).start()
    worker = AckingWorker(broker.port, SUBJECT)
    mqtt = MqttSettings(port=broker.port, client_id="gw-vm", reconnect_max_s=1)
    config = GatewayConfig(subject=SUBJECT, ack_timeout_s=10.0, status_every_s=2.0)
    gw = build_ble_gateway(config, mqtt, Path("/tmp/gateway-state"), ble_config)
    transport = gw.transport
    assert isinstance(transport, BleTransport)
    tap = TapQueue()
    gw.events = tap  # before start(): the transport is opened on it
    stop = threading.Event()
    outcome: list[bool] = []
    t_start = time.monotonic()
    gw.start()
    runner = threading.Thread(
        target=lambda: outcome.append(serve(gw, stop, duration_s=args.stream_s, drain_timeout_s=60.0)), daemon=True
    )
    runner.start()
    try:
        # -- all three streaming for a while, then the pelvis sensor drops the link
        def streamed(p: str) -> bool:
            first = tap.first(is_packet(p))
            return first is not None and time.monotonic_ns() - first > args.pre_drop_s * 1e9

        wait_for(lambda: all(streamed(p) for p in PLACEMENTS), 120.0, "the three sensors streaming")
        out["t_all_streaming_s"] = round(time.monotonic() - t_start, 2)
        # the sensor's own view too: connected, subscribed and streaming (not between links)
        wait_for(
            lambda: (lambda s: s["connected"] and s["subscribed"] and s["streaming"])(
                kit_call(args.kit, cmd="stats")["sensors"][KIT_SERIALS[0]]
            ),
            30.0,
            "the kit's pelvis sensor connected and streaming",
        )
        link = transport._links["pelvis"]
        task_before = link.task
        losses_before = [
            str(e.reason)
            for _, e in list(tap.record)
            if isinstance(e, LinkEvent) and e.placement == "pelvis" and e.state == "lost"
        ]
        say("dropping the pelvis link from the sensor's side")
        drop = kit_call(args.kit, cmd="drop", sensor="pelvis")
        t_drop = int(drop["t_ns"])
        wait_for(lambda: tap.first(is_link("pelvis", "connected"), t_drop) is not None, 90.0, "pelvis reconnected")
        t_connected = tap.first(is_link("pelvis", "connected"), t_drop)
        wait_for(lambda: tap.first(is_packet("pelvis"), t_connected or 0) is not None, 30.0, "pelvis streaming again")
        t_resumed = tap.first(is_packet("pelvis"), t_connected or 0)
        say("pelvis streaming again")
        callbacks = [t for p, t in DISCONNECT_CALLBACKS if p == "pelvis" and t >= t_drop]
        out["drop"] = {
            "dropped": drop["dropped"],
            "pelvis_losses_before_drop": losses_before,
            "disconnect_to_callback_ms": ms(t_drop, callbacks[0] if callbacks else None),
            "disconnect_to_lost_event_ms": ms(t_drop, tap.first(is_link("pelvis", "lost"), t_drop)),
            "disconnect_to_connected_ms": ms(t_drop, t_connected),
            "disconnect_to_first_packet_ms": ms(t_drop, t_resumed),
            "same_link_task": link.task is task_before and task_before is not None,
        }
        runner.join(240.0)
        if runner.is_alive():
            raise RuntimeError("serve() did not return within 240 s")
        out["t_serve_s"] = round(time.monotonic() - t_start, 2)
        out["served_and_acknowledged"] = outcome == [True]
        out["outbox_left"] = len(gw.outbox)
        kit = kit_call(args.kit, cmd="stats")["sensors"]  # streaming stopped by serve: final counts
        out["transport_stats"] = {
            p: {
                "connects": s.connects,
                "attempts": s.attempts,
                "losses": s.losses,
                "silent_losses": s.silent_losses,
                "notifications": s.notifications,
                "mtu": s.mtu,
                "samples_per_packet": s.samples_per_packet,
                "errors": s.errors,
            }
            for p, s in transport.stats().items()
        }
        out["queue_dropped"] = dict(tap.dropped)
    finally:
        stop.set()
        runner.join(30.0)
        gw.stop()
        time.sleep(0.3)
        worker.close()
        broker.stop()

    # -- accounting: worker side (what the broker delivered and the worker acknowledged) and transport side
    ledger = ledger_of(tap.record)
    got = worker.unique_samples()
    gap_messages = [m for m in worker.messages if isinstance(m, env.Gap)]
    out["sensors"] = {}
    for serial in KIT_SERIALS:
        k = kit[serial]
        key = (serial, int(k["boot_epoch"]))
        delivered = set(got.get(key, []))
        missing: set[int] = set()
        missing_twice = 0
        for g in gap_messages:
            if (g.serial, g.boot_epoch) == key:
                span = set(range(g.seq_first_missing, g.seq_last_missing + 1))
                missing_twice += len(span & missing)
                missing |= span
        taken = set(range(int(k["sequence"])))
        out["sensors"][serial] = {
            "kit": k,
            "worker": {
                "delivered": len(delivered),
                "gap_samples": len(missing),
                "gaps": sorted(
                    [g.seq_first_missing, g.seq_last_missing] for g in gap_messages if (g.serial, g.boot_epoch) == key
                ),
                "delivered_and_gap": len(delivered & missing),
                "gap_reported_twice": missing_twice,
                "unaccounted": len(taken - delivered - missing),
                "beyond_taken": len((delivered | missing) - taken),
            },
            "ledger": ledger_summary(ledger, str(k["placement"])),
        }
    # delivery is at least once: a marker re-sent (its ack late under emulation) or redelivered counts once by id
    markers = {m.msg_id: m.type for m in worker.messages if isinstance(m, env.Marker)}
    out["markers"] = {t: list(markers.values()).count(t) for t in set(markers.values())}
    out["markers_received"] = sum(isinstance(m, env.Marker) for m in worker.messages)
    out["raw_messages"] = sum(isinstance(m, env.RawBatch) for m in worker.messages)
    out["status_connected"] = {
        p: any(s.sensors and s.sensors[p].link == "connected" for s in worker.statuses) for p in PLACEMENTS
    }


# -- 4: MTU ----------------------------------------------------------------------------------------------------
def run_pinned(config: BleConfig, pinned: PairedSensor, stream_s: float) -> tuple[StreamLedger, dict[str, Any]]:
    """One sensor through a BleTransport of its own (the Transport interface): connect, stream `stream_s`
    (if it connects), stop; the events go to a StreamLedger."""
    transport = BleTransport(config, Pairing(config.adapter, {pinned.placement: pinned}), RealHostClock())
    events = EventQueue()
    record: list[tuple[int, TransportEvent]] = []

    def pump(until: Callable[[], bool], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not until() and time.monotonic() < deadline:
            events.wait(0.05)
            record.extend((time.monotonic_ns(), e) for e in events.drain())

    p = pinned.placement
    transport.open(events)
    try:
        transport.connect(p)
        pump(lambda: any(e.state in ("connected", "lost") for _, e in record if isinstance(e, LinkEvent)), 90.0)
        if transport.connected(p):
            transport.start_streaming(p)
            pump(lambda: False, stream_s)
            transport.stop_streaming(p)
        pump(lambda: False, 1.0)  # in flight; and time for a retry the transport must not make
        s = transport.stats()[p]
        stats = {
            "connects": s.connects,
            "attempts": s.attempts,
            "mtu": s.mtu,
            "samples_per_packet": s.samples_per_packet,
        }
    finally:
        transport.close()
    record.extend((time.monotonic_ns(), e) for e in events.drain())  # "lost": disconnected by the gateway
    return ledger_of(record), stats


def mtu_phase(args: argparse.Namespace, ble_config: BleConfig, out: dict[str, Any]) -> None:
    kit_call(args.kit, cmd="power", sensor=MTU_SERIAL, on=True)
    before = kit_call(args.kit, cmd="stats")["sensors"][MTU_SERIAL]
    pinned = PairedSensor("pelvis", str(before["address"]).upper(), MTU_SERIAL)
    config = replace(ble_config, samples_per_packet=None)  # the most the MTU allows
    say(f"MTU {args.small_mtu}: connecting {MTU_SERIAL} through a BleTransport")
    ledger, stats = run_pinned(config, pinned, stream_s=1.5)
    after = kit_call(args.kit, cmd="stats")["sensors"][MTU_SERIAL]
    fitted = {
        "mtu": args.small_mtu,
        "spp_before": before["samples_per_packet"],
        "transport": stats,
        "kit_after": after,
        "ledger": ledger_summary(ledger, "pelvis"),
    }
    say(f"MTU {args.tiny_mtu}: connecting {MTU_SERIAL} again")
    kit_call(args.kit, cmd="set_max_mtu", sensor=MTU_SERIAL, mtu=args.tiny_mtu)
    ledger, stats = run_pinned(config, pinned, stream_s=0.0)
    tiny = {"mtu": args.tiny_mtu, "transport": stats, "ledger": ledger_summary(ledger, "pelvis")}
    out["mtu_test"] = {"fitted": fitted, "too_small": tiny}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kit", required=True, help="the Bumble kit's control socket")
    parser.add_argument("--out", required=True)
    parser.add_argument("--stream-s", type=float, default=16.0, help="streaming time from the first packet, s")
    parser.add_argument("--pre-drop-s", type=float, default=2.0, help="all three streaming this long, then drop")
    parser.add_argument("--scan-s", type=float, default=3.0, help="pairing scan, s")
    parser.add_argument("--samples-per-packet", type=int, default=2, help="the gateway's batch size setting")
    parser.add_argument("--small-mtu", type=int, default=65)
    parser.add_argument("--tiny-mtu", type=int, default=27)
    parser.add_argument("--boot-uptime-file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(relativeCreated)8.0f %(name)s %(message)s")
    out: dict[str, Any] = {"ok": False, "stream_s": args.stream_s, "samples_per_packet": args.samples_per_packet}
    if args.boot_uptime_file:
        out["vm"] = {
            "boot_to_stage2_s": float(Path(args.boot_uptime_file).read_text()),
            "central_start_uptime_s": float(Path("/proc/uptime").read_text().split()[0]),
        }
    t0 = time.monotonic()
    tap_disconnect_callbacks()
    # Software emulation: the kit (which is also the controller) can run seconds behind real time, so control
    # replies get 3 s instead of 1 s and the MTU exchange up to 10 s instead of 2 s; AcquireNotify (one socket
    # per characteristic) instead of a D-Bus signal per notification, which costs too much CPU under emulation
    # (docs/ble-real-bluez-findings.md, "Limits of the emulation").
    ble_config = BleConfig(
        state_dir=Path("/tmp/gateway-state/ble"),
        adapter="hci0",
        use_start_notify=False,
        samples_per_packet=args.samples_per_packet,
        scan_timeout_s=10.0,
        connect_timeout_s=30.0,
        gatt_timeout_s=10.0,
        command_timeout_s=3.0,
        mtu_wait_s=10.0,
    )
    try:
        wait_for(lambda: Path(args.kit).exists(), 180.0, "the kit's control socket (kit.log says why)")
        if "vm" in out:
            out["vm"]["kit_ready_uptime_s"] = float(Path("/proc/uptime").read_text().split()[0])
        out["adapter"] = asyncio.run(power_on_adapter())
        gateway_phase(args, ble_config, out)
        mtu_phase(args, ble_config, out)
        out["ok"] = True
    except Exception:
        out["error"] = traceback.format_exc()
        traceback.print_exc()
    out["t_total_s"] = round(time.monotonic() - t0, 2)
    if "vm" in out:
        out["vm"]["end_uptime_s"] = float(Path("/proc/uptime").read_text().split()[0])
    Path(args.out).write_text(json.dumps(out, indent=1, default=str))
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
