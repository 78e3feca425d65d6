"""MQTT topic layout of gaitsym uplink v1: one prefix per subject.

    gaitsym/v1/{subject}/raw/{placement}    raw sample batches          gateway -> worker   QoS 1
    gaitsym/v1/{subject}/gap/{placement}    recorded gaps in a stream   gateway -> worker   QoS 1
    gaitsym/v1/{subject}/marker             session/set/window markers  gateway -> worker   QoS 1
    gaitsym/v1/{subject}/bundle             several of the three above  gateway -> worker   QoS 1
    gaitsym/v1/{subject}/status             gateway + sensor status     gateway -> all      QoS 1, retained, will
    gaitsym/v1/{subject}/cmd                commands to the gateway     clinic/CLI -> gw    QoS 1
    gaitsym/v1/{subject}/cmd/reply          command outcomes            gateway -> clinic   QoS 1
    gaitsym/v1/{subject}/ack                stored-durably receipts     worker -> gateway   QoS 1

Because everything of a subject sits under ``gaitsym/v1/{subject}/``, one Mosquitto ACL line confines a
gateway to its own subject (``pattern readwrite gaitsym/v1/%u/#`` with the subject id as user name).
Workers share the load with shared subscriptions (``$share/{group}/gaitsym/v1/+/raw/+`` ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gaitsym_common.errors import UplinkError
from gaitsym_common.uplink.vocabulary import PLACEMENTS

PREFIX = "gaitsym/v1"
SUBJECT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
KINDS_WITH_PLACEMENT = ("raw", "gap")
KINDS = ("raw", "gap", "marker", "bundle", "status", "cmd", "cmd/reply", "ack")
DURABLE_KINDS = ("raw", "gap", "marker")
"""The kinds a worker stores and acknowledges end to end by msg_id; the kinds a bundle carries."""
WORKER_GROUP = "gaitsym-workers"


def check_subject(subject: str) -> str:
    if not isinstance(subject, str) or not SUBJECT_RE.match(subject):
        raise UplinkError(
            "subject",
            f"{subject!r} must be 1-64 characters of letters, digits, '-' or '_' (no '/', '+', '#')",
        )
    return subject


def topic(subject: str, kind: str, placement: str | None = None) -> str:
    """The topic of one message kind for one subject (placement only for raw and gap)."""
    check_subject(subject)
    if kind not in KINDS:
        raise UplinkError("kind", f"{kind!r} is not one of {KINDS}")
    if kind in KINDS_WITH_PLACEMENT:
        if placement not in PLACEMENTS:
            raise UplinkError("placement", f"{placement!r} is not one of {PLACEMENTS}")
        return f"{PREFIX}/{subject}/{kind}/{placement}"
    if placement is not None:
        raise UplinkError("placement", f"topic kind {kind!r} takes no placement")
    return f"{PREFIX}/{subject}/{kind}"


@dataclass(frozen=True)
class TopicParts:
    subject: str
    kind: str
    placement: str | None


def parse_topic(name: str) -> TopicParts:
    """Split a gaitsym topic; UplinkError naming the part when it is not one."""
    parts = name.split("/")
    if len(parts) < 4 or "/".join(parts[:2]) != PREFIX:
        raise UplinkError("topic", f"{name!r} is not under {PREFIX}/{{subject}}/")
    subject = check_subject(parts[2])
    rest = parts[3:]
    if rest[0] in KINDS_WITH_PLACEMENT and len(rest) == 2:
        if rest[1] not in PLACEMENTS:
            raise UplinkError("placement", f"{rest[1]!r} in topic {name!r} is not one of {PLACEMENTS}")
        return TopicParts(subject, rest[0], rest[1])
    kind = "/".join(rest)
    if kind not in KINDS or kind in KINDS_WITH_PLACEMENT:
        raise UplinkError("topic", f"{name!r}: {kind!r} is not a gaitsym topic kind")
    return TopicParts(subject, kind, None)


def worker_subscriptions(group: str = WORKER_GROUP) -> list[str]:
    """Shared subscriptions a worker makes: every subject's durable data, split round-robin in the group."""
    return [f"$share/{group}/{PREFIX}/+/{kind}" for kind in ("raw/+", "gap/+", "marker", "bundle")]


def gateway_subscriptions(subject: str) -> list[str]:
    """What a subject's gateway listens to: its commands and the worker's acknowledgements."""
    return [topic(subject, "cmd"), topic(subject, "ack")]
