"""`gaitsym session`: the one-shot command client. Publishes one command to a subject's gateway and waits for
its reply (exit 0 done, 1 refused by the gateway, 2 bad usage, 3 no reply in time)."""

from __future__ import annotations

import argparse
import sys
import threading
import time
import uuid
from dataclasses import replace
from typing import Any

from gaitsym.gateway_settings import resolve_settings
from gaitsym.gateway_wiring import EXIT_NO_REPLY, EXIT_OK, EXIT_REFUSED, EXIT_USAGE, mqtt_settings
from gaitsym_common.errors import CommonError, UplinkError
from gaitsym_common.mqtt.client import make_paho_client
from gaitsym_common.uplink import envelope as env
from gaitsym_common.uplink.topics import check_subject, topic
from sensor_gateway.errors import GatewayError


def run_session_command(args: argparse.Namespace) -> int:
    try:
        settings = resolve_settings(args)
        subject = check_subject(settings.get("subject") or "")
        mqtt = mqtt_settings(settings, f"gaitsym-session-{uuid.uuid4().hex[:12]}")
        action = {"start": "session_start", "stop": "session_stop"}.get(args.session_command)
        if action is None:
            action = "set_end" if args.end else "set_start"
            cmd = env.Command("cmd", uuid.uuid4().hex, subject, action, args.exercise, args.side, args.set)
        else:
            cmd = env.Command("cmd", uuid.uuid4().hex, subject, action)
        payload = env.encode(cmd)
    except (CommonError, GatewayError, ValueError, OSError) as exc:
        print(f"gaitsym session: {exc}", file=sys.stderr)
        return EXIT_USAGE

    reply: list[env.CommandReply] = []
    subscribed = threading.Event()
    got = threading.Event()

    def on_connect(client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if not reason.is_failure:
            client.subscribe(topic(subject, "cmd/reply"), qos=1)

    def on_subscribe(client: Any, userdata: Any, mid: Any, reasons: Any, properties: Any) -> None:
        subscribed.set()

    def on_message(client: Any, userdata: Any, msg: Any) -> None:
        try:
            m = env.decode(msg.payload)
        except UplinkError:
            return
        if isinstance(m, env.CommandReply) and m.cmd_id == cmd.cmd_id:
            reply.append(m)
            got.set()

    c = make_paho_client(
        replace(mqtt, clean_session=True), on_connect=on_connect, on_subscribe=on_subscribe, on_message=on_message
    )
    deadline = time.monotonic() + args.timeout_s
    try:
        c.connect(mqtt.host, mqtt.port, keepalive=30)
    except OSError as exc:
        print(f"gaitsym session: cannot reach the broker {mqtt.host}:{mqtt.port}: {exc}", file=sys.stderr)
        return EXIT_NO_REPLY
    c.loop_start()
    try:
        if not subscribed.wait(max(0.0, deadline - time.monotonic())):
            print("gaitsym session: no subscription acknowledgement from the broker", file=sys.stderr)
            return EXIT_NO_REPLY
        c.publish(topic(subject, "cmd"), payload, qos=1)
        if not got.wait(max(0.0, deadline - time.monotonic())):
            print(
                f"gaitsym session: no reply from the gateway of {subject} within {args.timeout_s:g} s "
                "(is it running and connected?)",
                file=sys.stderr,
            )
            return EXIT_NO_REPLY
    finally:
        c.disconnect()
        c.loop_stop()
    answer = reply[0]
    print(answer.message)
    return EXIT_OK if answer.ok else EXIT_REFUSED
