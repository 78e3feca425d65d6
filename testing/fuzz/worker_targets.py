"""Fuzz targets of the worker's side of the uplink: the envelope decoder, the worker's message decoding and a
whole worker turn (decode, store, quarantine, ack), fed the uplink's golden vectors mutated."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
from hypothesis import strategies as st

from testing.fuzz.poison import Payload, byte_level, raw_batches, retarget, structured, uplink_vectors

VECTORS = uplink_vectors()


# ------------------------------------------------------------------------------------------ uplink envelope

ENVELOPE_DOCS = [(v["topic"], json.loads(v["payload"])) for v in VECTORS]


def envelope_payloads() -> st.SearchStrategy[Payload]:
    return structured(ENVELOPE_DOCS) | byte_level(ENVELOPE_DOCS) | raw_batches()


def check_envelope(p: Payload) -> None:
    """`envelope.decode`: UplinkError or a message that writes back to a payload decoding to the same message."""
    from gaitsym_common.errors import UplinkError
    from gaitsym_common.uplink import envelope as env

    try:
        message = env.decode(p.data)
    except UplinkError:
        return
    assert env.decode(env.encode(message)) == message, p


# ------------------------------------------------------------------------------------------ worker decode

WORKER_DOCS = retarget(VECTORS, "H001", kinds=("raw", "gap", "marker", "bundle"))


def worker_payloads() -> st.SearchStrategy[Payload]:
    return structured(WORKER_DOCS) | byte_level(WORKER_DOCS) | raw_batches() | raw_batches()


def check_worker_decode(p: Payload) -> None:
    """`decode_message` + `batch_samples` + the store keys (`RawSamples.time_us`): MalformedMessage, or samples
    whose store keys are distinct and in order (the store keys raw samples by subject, placement and time:
    two samples of one batch on one key would overwrite each other). numpy's overflow warnings are errors here:
    a cast that overflowed is a wrong number stored without a word."""
    from analytics.worker.decode import batch_samples, decode_message
    from analytics.worker.errors import MalformedMessage
    from gaitsym_common.uplink import envelope as env

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        try:
            message = decode_message(p.topic, p.data)
            if not isinstance(message, env.RawBatch):
                return
            samples = batch_samples(message, p.topic)
        except MalformedMessage:
            return
        keys = samples.time_us()
    assert len(samples) == message.n_samples, p
    assert bool((np.diff(samples.seq) > 0).all()), p
    assert bool((np.diff(keys) > 0).all()), f"store keys not distinct and in order: {keys[:5]}... {p!r}"


# ------------------------------------------------------------------------------------------ worker turn


class WorkerTurn:
    """The production `Worker` with an embedded store, one delivery at a time. Each delivery must end stored,
    quarantined or shed (all three acknowledged to the broker) or waiting as a segment, within a few turns; no
    turn may raise, and nothing may be kept for a retry (a payload that failed once fails the same way forever:
    retrying it blocks every later message, every subject's, behind it)."""

    def __init__(self, folder: Path) -> None:
        from analytics.stores.embedded import EmbeddedStore
        from analytics.worker.worker import Worker
        from testing.worker.hostile import ScriptedLink, turn_config

        self.link = ScriptedLink()
        self.store = EmbeddedStore(folder / "store.sqlite")
        self.now = 1000.0
        self.worker = Worker(
            turn_config(str(folder / "quarantine.sqlite"), worker_id="fuzz", live_segments=True),
            self.link,
            self.store,
            clock=lambda: self.now,
        )

    def check(self, p: Payload) -> None:
        from gaitsym_common.uplink import envelope as env

        self.link.acked.clear()
        self.link.published.clear()
        token = self.link.deliver(p.topic, p.data)
        for _ in range(3):
            self.now += 5.0  # budgets refill, waiting segments come due: a turn is about the delivery itself
            self.worker.step(timeout_s=0.0)
            if token in self.link.acked:
                break
        # a bundle's parts: (generation, packet id, part)
        waiting = any((getattr(q, "token", None) or ())[:2] == token for q in self.worker.jobs.pending)
        # whatever failed stays queued for a retry: cleared, so that the next example starts from an empty queue
        # and is judged on its own
        self.worker._carry.clear()
        if not waiting:
            self.worker.link._waiting.clear()
        assert token in self.link.acked or waiting, f"kept for a retry that fails the same way forever: {p!r}"
        for _, payload in self.link.published:
            env.decode(payload)  # an ack the gateway can read

    def close(self) -> None:
        self.worker.close()
