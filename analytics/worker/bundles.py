"""Bundles (UPLINK.md, "bundle"): one MQTT delivery holding several of a subject's durable messages, each taken as
if it had come alone.

Why: the worker's cost per MQTT message (paho's network thread, the broker acknowledgement, the turn's bookkeeping)
is paid per delivery, not per sample; a gateway that publishes its three sensors' batches of a second and the
window marker after them as one message pays it once (docs/worker-cost-and-live-latency.md).

A part becomes a `Delivery` of its own topic and payload with the token ``(generation, packet id, part index)``, so
everything downstream (decode, the work budget, quarantine, carry, end-to-end acks by msg_id) is unchanged. Two
things differ: the byte budget is charged once, for the bundle's payload, before it is read; and the broker
acknowledgement: the bundle's MQTT message is acknowledged once every one of its parts is (`PartAcks`); until
then the broker holds it for a redelivery, as it holds a lone message not yet acknowledged.
"""

from __future__ import annotations

from analytics.worker.link import Delivery, Token, WorkerEvent, WorkerLink
from gaitsym_common.uplink import envelope as env


def bundle_parts(d: Delivery, bundle: env.Bundle) -> list[Delivery]:
    """The parts of a bundle delivery, each a delivery of its own topic, payload and part token."""
    return [Delivery(p.topic, p.payload, (*d.token, i), d.redelivered) for i, p in enumerate(bundle.parts)]


class PartAcks:
    """A `WorkerLink` that acknowledges a bundle's MQTT message to the broker once all its parts are acknowledged
    (`expect` names how many). Tokens of lone deliveries pass straight through."""

    def __init__(self, link: WorkerLink) -> None:
        self.link = link
        self._waiting: dict[Token, set[int]] = {}
        """Per bundle delivery token, the indices of its parts not acknowledged yet."""
        self._generation = 0
        """The newest connection generation a bundle came on."""

    def expect(self, token: Token, parts: int) -> None:
        if token[0] > self._generation:
            self._generation = token[0]
            # a new connection: the broker sends the older ones' bundles again with new tokens, and a PUBACK on an
            # old connection goes nowhere, so what they still wait for is dropped (kept bounded by the broker's
            # in-flight window of the live connection)
            self._waiting = {t: left for t, left in self._waiting.items() if t[0] >= token[0]}
        self._waiting[token] = set(range(parts))

    @property
    def bundles_waiting(self) -> int:
        """Bundle deliveries with a part not acknowledged yet."""
        return len(self._waiting)

    def ack(self, token: Token) -> None:
        if len(token) <= 2:
            self.link.ack(token)
            return
        whole, index = token[:-1], token[-1]
        left = self._waiting.get(whole)
        if left is None:  # acknowledged already (a part acknowledged twice changes nothing)
            return
        left.discard(index)
        if not left:
            del self._waiting[whole]
            self.link.ack(whole)

    # the rest of the link, unchanged

    def connect(self, subscriptions: list[str]) -> None:
        self.link.connect(subscriptions)

    def wait(self, timeout_s: float) -> list[WorkerEvent]:
        return self.link.wait(timeout_s)

    def publish(self, topic: str, payload: bytes) -> bool:
        return self.link.publish(topic, payload)

    def close(self) -> None:
        self.link.close()

    @property
    def connected(self) -> bool:
        return self.link.connected

    def wake(self) -> None:
        wake = getattr(self.link, "wake", None)
        if wake is not None:
            wake()


__all__ = ["PartAcks", "bundle_parts"]
