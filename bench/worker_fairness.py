"""Fairness: honest subjects' live-result latency while another subject floods its own raw topic.

The set-up of bench/worker_latency.py (`testing.worker.realtime.RealTimeBench`: real Mosquitto with the
project's conf, real InfluxDB 1.6, one `gaitsym worker` process with production defaults, InfluxDB polled every
``--poll`` s for provisional strides; latency of a stride = first visible - UTC of its last sample), its N honest
subjects' production gateway cores stepped on the REAL clock in this process (so that their outboxes re-send what
is not acknowledged), plus a FLOODER in its own process (a hostile or broken gateway of subject ``FLOOD``,
publishing on its own ``raw/pelvis`` topic for the whole run, QoS 1, as fast as the broker takes them):

- ``--flood valid`` (default): valid raw batches as large as the limits allow (``--flood-packets`` packets of
  19 samples: 3,610 samples, 62 kB), each with a new msg_id, so that every one is new work unless shed;
- ``--flood oversize``: 240-kB batches (refused by the broker when its ``message_size_limit``
  matches `envelope.MAX_PAYLOAD_BYTES`, else by the worker as malformed);
- ``--flood none``: the unloaded reference.

Printed: the honest strides' latency (p50, p99, max), how many batches the honest gateways re-sent (their ack
timeout passed), what the flooder published, the worker's counters (shed, malformed ...) and each process's CPU.

Run: .venv/bin/python bench/worker_fairness.py [--subjects 3] [--seconds 60] [--flood valid|oversize|none]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gaitsym_common.uplink import envelope as env  # noqa: E402
from testing.worker.harness import UTC0  # noqa: E402
from testing.worker.realtime import RealTimeBench, pct  # noqa: E402

FLOOD_SUBJECT = "FLOOD"
TEMPLATE_BOOT = 3_999_999_999
"""The boot epoch written in the flooder's payload templates, replaced per round so that every msg_id is new."""


def flood_payloads(kind: str, packets: int, count: int = 64) -> list[bytes]:
    """Templates of the flooder's payloads (``count`` consecutive batches of one sensor boot)."""
    from testing.worker.hostile import raw_batch

    if kind == "oversize":
        big = env._to_doc(raw_batch(FLOOD_SUBJECT, 0, n_packets=3, samples_per_packet=19))
        big["pad"] = "x" * 240_000
        return [json.dumps(big).encode()]
    out = []
    for i in range(count):
        batch = raw_batch(
            FLOOD_SUBJECT, i * packets * 19, n_packets=packets, samples_per_packet=19, boot_epoch=TEMPLATE_BOOT
        )
        doc = env._to_doc(batch)
        out.append(json.dumps(doc, separators=(",", ":")).encode())
    return out


def flooder(port: int, kind: str, packets: int, stop: Any, published: Any, rate: float = 0.0) -> None:
    """The flooding gateway (own process): publish until ``stop`` is set, at most ``rate`` messages/s (0: as fast
    as the broker takes them); ``published`` counts messages. Each round of the templates gets a new boot epoch
    (new msg_ids) and an hour earlier UTC (its samples never land on the points of another round's)."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    from gaitsym_common.uplink.topics import topic

    templates = flood_payloads(kind, packets)
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="flooder")
    client.max_inflight_messages_set(200)
    client.max_queued_messages_set(400)
    client.connect("127.0.0.1", port)
    client.loop_start()
    name = topic(FLOOD_SUBJECT, "raw", "pelvis")
    old_boot = str(TEMPLATE_BOOT).encode()
    old_utc = f'"ref_utc_s":{UTC0!r}'.encode()
    n = 0
    boot = 1
    t0 = time.monotonic()
    while not stop.is_set():
        utc = f'"ref_utc_s":{UTC0 - 3600.0 * (boot % 600)!r}'.encode()
        for payload in templates:
            if stop.is_set():
                break
            data = payload.replace(old_boot, str(boot).encode()).replace(old_utc, utc) if kind == "valid" else payload
            while client.publish(name, data, qos=1).rc == paho.MQTT_ERR_QUEUE_SIZE and not stop.is_set():
                time.sleep(0.002)  # paho's own queue full: the broker is not taking them faster
            n += 1
            published.value = n
            if rate > 0:
                ahead = n / rate - (time.monotonic() - t0)
                if ahead > 0:
                    time.sleep(ahead)
        boot += 1
    client.loop_stop()
    client.disconnect()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subjects", type=int, default=3, help="honest subjects (real time)")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--poll", type=float, default=0.05)
    ap.add_argument("--flood", choices=("valid", "oversize", "none"), default="valid")
    ap.add_argument("--flood-packets", type=int, default=190, help="packets of 19 samples per flood batch")
    ap.add_argument("--flood-rate", type=float, default=0.0, help="flood messages/s (default 0: unlimited)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gaitsym-bench-fairness-"))
    bench = RealTimeBench(tmp, args.subjects, args.seconds, poll_s=args.poll, load="gateways")
    sends: dict[str, int] = {}
    """honest msg_id -> times its gateway handed it to MQTT (more than once: re-sent after the ack timeout)."""
    first_sent: dict[str, float] = {}
    acked: dict[str, float] = {}
    """honest msg_id -> when its gateway first handed it to MQTT / when the worker's end-to-end ack came back."""

    def on_publish(topic_: str, payload: bytes) -> None:
        if "/raw/" in topic_:
            msg_id = env.decode(payload).msg_id  # type: ignore[union-attr]
            sends[msg_id] = sends.get(msg_id, 0) + 1
            first_sent.setdefault(msg_id, time.monotonic())

    bench.on_publish = on_publish
    ctx = multiprocessing.get_context("spawn")
    flood_stop = ctx.Event()
    flood_count = ctx.Value("q", 0)
    flood_proc = None
    with bench.started():
        assert bench.broker is not None
        try:
            if args.flood != "none":
                flood_proc = ctx.Process(
                    target=flooder,
                    args=(bench.broker.port, args.flood, args.flood_packets, flood_stop, flood_count, args.flood_rate),
                )
                flood_proc.start()
                time.sleep(2.0)  # the flood is under way before the honest sessions start
            import paho.mqtt.client as paho
            from paho.mqtt.enums import CallbackAPIVersion

            def on_ack(client: Any, userdata: Any, msg: Any) -> None:
                ack = env.decode(msg.payload)
                for msg_id in getattr(ack, "msg_ids", ()):
                    acked.setdefault(msg_id, time.monotonic())

            listener = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-acks")
            listener.on_message = on_ack
            listener.connect("127.0.0.1", bench.broker.port)
            listener.subscribe("gaitsym/v1/+/ack", qos=1)
            listener.loop_start()
            flood0 = flood_count.value
            result = bench.run({"flooder": flood_proc.pid} if flood_proc is not None and flood_proc.pid else None)
            flooded = flood_count.value - flood0
            flood_stop.set()
            listener.loop_stop()
            listener.disconnect()
        finally:
            flood_stop.set()
            if flood_proc is not None:
                flood_proc.join(10)
                if flood_proc.is_alive():
                    flood_proc.kill()
    print(result.report())
    print(
        f"flood {args.flood}: {flooded} messages published during the {args.seconds:.0f} s "
        f"({flooded / args.seconds:.0f}/s); honest subjects {args.subjects} in real time"
    )
    resent = sum(n - 1 for n in sends.values())
    print(f"honest raw batches handed to MQTT: {len(sends)} distinct, {resent} re-sends")
    rtt = [acked[m] - t for m, t in first_sent.items() if m in acked]
    if rtt:
        print(
            f"honest raw batch handed to MQTT -> end-to-end ack: p50 {statistics.median(rtt):.3f} s, "
            f"p99 {pct(rtt, 0.99):.3f} s, max {max(rtt):.3f} s ({len(rtt)} of {len(first_sent)} acknowledged)"
        )


if __name__ == "__main__":
    main()
