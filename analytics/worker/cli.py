"""`gaitsym worker` and `gaitsym reanalyze`: light module (the work is imported only when a command runs).

- ``gaitsym worker [--mqtt URL] [--client-id ID] [--store URL_or_path]``: subscribe to every subject's
  uplink through the shared group, store, acknowledge, analyse; runs until SIGTERM / Ctrl-C. The broker URL is
  ``mqtt://HOST[:PORT]`` (plain) or ``mqtts://HOST[:PORT]`` (TLS), the gateway's rule; a bare ``HOST:PORT`` is
  ``mqtt://HOST:PORT``.
- ``gaitsym reanalyze --subject S --since DATE [--store URL_or_path]``: recompute S's sessions since DATE
  (``YYYY-MM-DD`` or an ISO time, UTC) from stored raw data.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from gaitsym_common.redaction import redact_url

if TYPE_CHECKING:
    from gaitsym_common.mqtt.client import MqttSettings

STORE_HELP = (
    "influx://user@host:8086/gaitsym (password/token from GAITSYM_INFLUX_PASSWORD/GAITSYM_INFLUX_TOKEN) or the "
    "path of the embedded store (default: $GAITSYM_STORE, else store.sqlite in $GAITSYM_STATE_DIR)"
)


def mqtt_settings(args: argparse.Namespace) -> MqttSettings:
    """The worker's broker settings from its flags (`settings_from_url`: TLS exactly for ``mqtts://``).
    MqttError naming what is wrong."""
    from analytics.worker.link import SESSION_EXPIRY_S
    from gaitsym_common.mqtt.client import settings_from_url

    url = args.mqtt if "://" in args.mqtt else f"mqtt://{args.mqtt}"
    return settings_from_url(
        url,
        client_id=args.client_id,
        username=args.username,
        password=os.environ.get("GAITSYM_MQTT_PASSWORD"),
        tls_ca_file=args.tls_ca,
        tls_cert_file=args.tls_cert,
        tls_key_file=args.tls_key,
        reconnect_max_s=5.0,
        session_expiry_s=SESSION_EXPIRY_S if args.session_expiry_s is None else args.session_expiry_s,
    )


BLAS_THREAD_TIMEOUT = "4"
"""``OPENBLAS_THREAD_TIMEOUT`` of a worker process (unless set): numpy's and scipy's OpenBLAS threads sleep right
after each call (2**4 cycles) instead of spinning for about 2**28 cycles waiting for the next one. Spinning burnt
about 0.5 ms of CPU per subject-second in a worker (docs/worker-cost-and-live-latency.md), on a machine it shares with
InfluxDB; the number of BLAS threads, hence every result, is unchanged. Read when OpenBLAS loads: set before
numpy is imported."""


def worker_command(args: argparse.Namespace) -> int:
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", BLAS_THREAD_TIMEOUT)
    import gc
    import logging
    import signal
    import threading

    from analytics.pipeline.live import LiveSettings
    from analytics.stores import open_store
    from analytics.stores.errors import StoreError
    from analytics.worker.idle_sessions import IdleClose
    from analytics.worker.link import PahoWorkerLink
    from analytics.worker.worker import Worker, WorkerConfig
    from gaitsym_common.mqtt.client import MqttError

    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = mqtt_settings(args)
    except MqttError as exc:
        print(f"gaitsym worker: {exc}", file=sys.stderr)
        return 2
    try:
        store = open_store(args.store)
    except StoreError as exc:
        print(f"gaitsym: store: {redact_url(exc)}", file=sys.stderr)
        return 2
    worker = Worker(
        WorkerConfig(
            worker_id=args.client_id,
            segment_wait_s=args.segment_wait,
            live_segments=args.live,
            turn_gather_s=args.turn_gather_s,
            live=LiveSettings(min_step_s=args.live_min_step_s),
            idle_close=None if args.idle_close_after <= 0 else IdleClose(after_s=args.idle_close_after * 3600.0),
        ),
        PahoWorkerLink(settings),
        store,
    )
    # everything imported so far (numpy, scipy, the pipeline: hundreds of thousands of objects) lives as long as
    # the process: out of the garbage collector's full collections, which otherwise walk it every time (about
    # 50 ms each, a few per minute under load)
    gc.freeze()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    worker.start()
    scheme = "mqtts" if settings.tls else "mqtt"
    store_shown = redact_url(args.store) if args.store else "default"
    print(
        f"gaitsym worker {args.client_id}: {scheme}://{settings.host}:{settings.port}, store {store_shown}", flush=True
    )
    try:
        worker.run(stop)
    finally:
        worker.close()
    return 0


def _since_us(text: str) -> int:
    when = datetime.fromisoformat(text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return round(when.timestamp() * 1e6)


def reanalyze_command(args: argparse.Namespace) -> int:
    from analytics.stores import open_store
    from analytics.stores.errors import StoreError
    from analytics.worker.reanalyze import reanalyze

    try:
        since = _since_us(args.since)
    except ValueError:
        print(f"gaitsym: --since {args.since!r} is not a date (YYYY-MM-DD or ISO time, UTC)", file=sys.stderr)
        return 2
    try:
        store = open_store(args.store)
        try:
            done = reanalyze(store, args.subject, since, progress=print)
        finally:
            store.close()
    except StoreError as exc:
        print(f"gaitsym: store: {redact_url(exc)}", file=sys.stderr)
        return 2
    print(f"re-analysed {len(done)} session(s) of {args.subject} since {args.since}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """`gaitsym worker ...` and `gaitsym reanalyze --subject S --since DATE`."""
    w = sub.add_parser("worker", help="run an analytics worker: MQTT uplink -> store -> results, acks")
    w.add_argument(
        "--mqtt",
        "--broker",
        dest="mqtt",
        metavar="URL",
        default="127.0.0.1:1883",
        help="broker mqtt://HOST[:PORT] (plain, 1883) or mqtts://HOST[:PORT] (TLS, 8883); a bare HOST:PORT is "
        "mqtt:// (default 127.0.0.1:1883)",
    )
    w.add_argument(
        "--client-id",
        default=f"gaitsym-worker-{socket.gethostname()}",
        help="MQTT client id: fixed per worker (its session survives a restart within --session-expiry-s; the "
        "clinic broker uses the user name instead)",
    )
    w.add_argument("--username", help="MQTT user name (password from GAITSYM_MQTT_PASSWORD)")
    w.add_argument(
        "--tls-ca",
        metavar="FILE",
        help="CA certificate(s) the broker is verified against (mqtts:// only; default the system's CA store)",
    )
    w.add_argument("--tls-cert", metavar="FILE", help="client certificate for TLS client authentication")
    w.add_argument("--tls-key", metavar="FILE", help="private key of --tls-cert")
    w.add_argument(
        "--session-expiry-s",
        type=int,
        metavar="S",
        help="s the broker keeps this worker's session and its share of the load after the worker died "
        "(default 30; a clean stop ends it at once)",
    )
    w.add_argument("--store", help=STORE_HELP)
    w.add_argument("--segment-wait", type=float, default=10.0, help="s a segment waits for its samples (10)")
    w.add_argument(
        "--live",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="provisional stride/set results while a session runs (default on; --no-live: session ends only)",
    )
    w.add_argument(
        "--turn-gather-s",
        type=float,
        default=0.1,  # WorkerConfig.turn_gather_s
        metavar="S",
        help="s a turn gathers deliveries from the oldest before storing them in one write (0.1; 0: at once)",
    )
    w.add_argument(
        "--live-min-step-s",
        type=float,
        default=0.0,  # LiveSettings.min_step_s
        metavar="S",
        help="s of new data a session's live analysis waits for between two runs (0: as soon as a stride can "
        "be ready; more: less CPU, later live strides)",
    )
    w.add_argument(
        "--idle-close-after",
        type=float,
        default=4.0,  # IdleClose.after_s (not imported here: building the parser stays light)
        metavar="HOURS",
        help="final results for a session without session_end whose newest sample is this old (4; 0: never)",
    )
    w.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default INFO)")
    w.set_defaults(handler=worker_command)
    r = sub.add_parser("reanalyze", help="recompute a subject's results from stored raw data")
    r.add_argument("--subject", required=True, help="subject id")
    r.add_argument("--since", required=True, help="first day (YYYY-MM-DD, UTC) of the sessions to recompute")
    r.add_argument("--store", help=STORE_HELP)
    r.set_defaults(handler=reanalyze_command)
