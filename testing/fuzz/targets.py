"""The fuzz targets' catalogue: every decoder of untrusted input, each with the property it must keep, and the
strategy that feeds it. The tests in tests/fuzz run each target briefly (derandomised per seed);
bench/fuzz_campaign.py runs them for longer and counts the payloads.

Untrusted input: MQTT payloads (any client on the broker, a neighbour's gateway, a buggy third-party one), a
sensor's BLE notifications, advertised names and hex typed by a user, recording folders from anywhere. The rule
for each: a typed error naming what is wrong (UplinkError, MalformedMessage, ProtocolError, RecordingError) or a
clean result; never another exception (RecursionError, ValueError, OverflowError, MemoryError, TypeError,
UnicodeEncodeError ...), never a worker or gateway loop that stops or keeps a message for retry forever.

The targets live by family: `worker_targets`, `gateway_targets`, `recording_targets`, `firmware_targets`,
`store_targets` (what the store reads back of its own packed raw parts: another writer's or version's).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from testing.fuzz.firmware_targets import (
    check_advertised_name,
    check_any_buffer,
    check_packet_header,
    check_protocol_cli,
    framed_packets,
    framed_sensor_infos,
)
from testing.fuzz.gateway_targets import GatewayInbox, check_gateway_packet_stream, gateway_payloads, packet_streams
from testing.fuzz.recording_targets import RecordingFolder
from testing.fuzz.store_targets import check_round_trip, check_stored_part, stored_parts, written_batches
from testing.fuzz.worker_targets import (
    WorkerTurn,
    check_envelope,
    check_worker_decode,
    envelope_payloads,
    worker_payloads,
)

__all__ = ["TARGETS", "Target", "worker_payloads"]


@dataclass(frozen=True)
class Target:
    """One decoder under fuzz: ``open(folder)`` returns (strategy, check, close)."""

    name: str
    open: Callable[[Path], tuple[st.SearchStrategy[Any], Callable[[Any], None], Callable[[], None]]]


def _stateless(strategy: Callable[[], st.SearchStrategy[Any]], check: Callable[[Any], None]) -> Any:
    return lambda folder: (strategy(), check, lambda: None)


def _worker_turn(folder: Path) -> tuple[st.SearchStrategy[Any], Callable[[Any], None], Callable[[], None]]:
    turn = WorkerTurn(folder)
    return worker_payloads(), turn.check, turn.close


def _gateway_inbox(folder: Path) -> tuple[st.SearchStrategy[Any], Callable[[Any], None], Callable[[], None]]:
    inbox = GatewayInbox(folder)
    return gateway_payloads(), inbox.check, inbox.close


def _recording(folder: Path) -> tuple[st.SearchStrategy[Any], Callable[[Any], None], Callable[[], None]]:
    rec = RecordingFolder(folder)
    return rec.payloads(), rec.check, rec.close


TARGETS = (
    Target("uplink envelope decode", _stateless(envelope_payloads, check_envelope)),
    Target("worker decode_message + batch_samples", _stateless(worker_payloads, check_worker_decode)),
    Target("worker turn (decode, store, quarantine, ack)", _worker_turn),
    Target("gateway cmd and ack handling", _gateway_inbox),
    Target("recording folder reader", _recording),
    Target(
        "firmware decoders on bytes/bytearray/memoryview", _stateless(lambda: st.binary(max_size=260), check_any_buffer)
    ),
    Target("worker packet_header vs decode_packet", _stateless(framed_packets, check_packet_header)),
    Target("firmware sensor info fields", _stateless(framed_sensor_infos, check_any_buffer)),
    Target(
        "advertised name",
        _stateless(
            lambda: st.text(max_size=40) | st.just("gaitsym-") | st.text().map(lambda t: "gaitsym-" + t),
            check_advertised_name,
        ),
    ),
    Target(
        "protocol decode CLI hex",
        _stateless(lambda: st.text(alphabet="0123456789abcdefABCDEFx: \n\t-é", max_size=120), check_protocol_cli),
    ),
    Target("gateway on a buggy sensor's packets", _stateless(packet_streams, check_gateway_packet_stream)),
    Target("store packed raw part read back", _stateless(stored_parts, check_stored_part)),
    Target("store packed raw parts round trip", _stateless(written_batches, check_round_trip)),
)
