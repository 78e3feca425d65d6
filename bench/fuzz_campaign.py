"""Long fuzz campaign: every decoder of untrusted input, then the same payloads end to end beside an honest subject,
then the third-party-gateway conformance over several seeds.

1. Each target of testing/fuzz/targets.py (uplink envelope, worker decoding, a whole worker turn, the gateway's cmd
   and ack handling, the recording folder reader, the firmware-side decoders, the gateway on a buggy sensor's
   packets) for ``--examples`` payloads (hypothesis, derandomised per seed, no shrinking: a failure is printed as
   generated, with what was done to it). A failure ends a round; the next round takes the next seed, until the
   payloads are done: each distinct failure is listed with the seed that replays it.
2. ``--e2e-payloads`` of the worker targets' payloads (those under the broker's 64 KiB packet limit), published by
   a neighbour on its own topics while an honest subject streams through the production gateway to a real
   `gaitsym worker` (real Mosquitto, embedded store; testing/hostile/neighbour.py): honest samples published,
   stored, lost, stored twice; the worker alive at the end.
3. The third-party gateway (testing/thirdparty_gateway.py, from UPLINK.md and SPEC.md alone) over
   ``--conformance-seeds`` seeds, with and without a replay re-encoded with a later fit after a worker restart
   (testing/hostile/conformance.py): samples sent, stored, quarantined, neither stored nor reported, stored twice.

Prints the seed first; replay a target's failure with ``GAITSYM_FUZZ_SEED=<seed>`` (and the in-suite test, or
this script with ``--seed``). Exit status 1 when anything failed.

Run: .venv/bin/python bench/fuzz_campaign.py [--seed N] [--examples 5000] [--target SUBSTRING ...]
     [--max-rounds 200] [--e2e-payloads 2000] [--conformance-seeds 3] [--no-e2e]
"""

from __future__ import annotations

import argparse
import logging
import random
import re
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, given, seed, settings  # noqa: E402

from testing.fuzz.runner import fuzz  # noqa: E402
from testing.fuzz.targets import TARGETS, worker_payloads  # noqa: E402

BROKER_PACKET_LIMIT = 60_000
"""Payload bytes the neighbour sends at most: Mosquitto's max_packet_size (64 KiB + header) disconnects a client
sending more (tests/broker/ checks that limit)."""


def _first_lines(exc: BaseException, n: int = 6) -> str:
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip().splitlines()
    return "\n      ".join(line[:300] for line in text[:n])


def fuzz_targets(fuzz_seed: int, examples: int, wanted: list[str], max_rounds: int) -> bool:
    """Each target until ``examples`` payloads were checked: a failure ends a round (hypothesis stops at the first
    one), the next round goes on with the next seed (at most ``max_rounds``). Distinct failures (exception type
    and first line) are listed with the seed that replays each."""
    ok = True
    print(f"{'target':52} {'payloads':>9} {'failed':>6} {'s':>7}")
    for target in TARGETS:
        if wanted and not any(w.lower() in target.name.lower() for w in wanted):
            continue
        t0 = time.monotonic()
        total = failed = 0
        kinds: dict[str, tuple[int, int, BaseException]] = {}  # first line -> (count, seed, first failure)
        for round_ in range(max_rounds):
            if total >= examples:
                break
            round_seed = fuzz_seed + round_
            with tempfile.TemporaryDirectory() as folder:
                count, failure = fuzz(target.name, Path(folder), examples - total, round_seed)
            total += count
            if failure is not None:
                failed += 1
                # the kind of failure, not its numbers nor its example
                key = re.sub(r"\d[\d.e+-]*", "N", re.split(r"PacketStream\(|Payload\(", _first_lines(failure, 1))[0])
                n, first_seed, first = kinds.get(key, (0, round_seed, failure))
                kinds[key] = (n + 1, first_seed, first)
        print(f"{target.name:52} {total:>9} {failed:>6} {time.monotonic() - t0:7.1f}", flush=True)
        for n, first_seed, failure in sorted(kinds.values(), key=lambda v: -v[0]):
            ok = False
            print(f"   {n} x, first replayed by GAITSYM_FUZZ_SEED={first_seed}: {_first_lines(failure, 1)[:400]}")
    return ok


def collect_payloads(fuzz_seed: int, n: int) -> list[tuple[str, bytes]]:
    """``n`` payloads of the worker targets' strategy (seeded), each under the broker's packet limit."""
    out: list[tuple[str, bytes]] = []

    @seed(fuzz_seed)
    @settings(max_examples=n, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(worker_payloads())
    def collect(p: Any) -> None:
        if len(p.data) <= BROKER_PACKET_LIMIT:
            out.append((p.topic, p.data))

    collect()
    return out


def end_to_end(fuzz_seed: int, n_payloads: int, conformance_seeds: int) -> bool:
    from testing.hostile.conformance import run_conformance
    from testing.hostile.neighbour import run_neighbour
    from testing.servers import Mosquitto

    ok = True
    payloads = collect_payloads(fuzz_seed, n_payloads)
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        runs = [("neighbour", 0, False)]
        runs += [
            (f"conformance-{s}-{int(refit)}", s, refit)
            for s in range(1, conformance_seeds + 1)
            for refit in (False, True)
        ]
        for name, s, refit in runs:
            where = tmp / name
            where.mkdir()
            broker = Mosquitto(where / "mosquitto").start()  # a broker per run: no session outlives its run
            t0 = time.monotonic()
            try:
                if name == "neighbour":
                    out = run_neighbour(where, broker.port, str(where / "state" / "store.sqlite"), payloads)
                    problems = out.problems
                    print(
                        f"neighbour: {len(payloads)} fuzzed payloads + {out.poison} named poison payloads beside an "
                        f"honest subject: honest samples published {out.published}, stored {out.stored}, lost "
                        f"{out.lost}, stored twice {out.twice}, stored but never sent {out.extra}; worker alive at "
                        f"the end: {out.worker_alive}; named poison quarantined {out.poison_quarantined}/{out.poison}; "
                        f"quarantine entries {out.quarantine_entries} ({time.monotonic() - t0:.0f} s)",
                        flush=True,
                    )
                else:
                    c = run_conformance(where, broker.port, s, seconds=20.0 if refit else 40.0, replay_refit=refit)
                    problems = c.problems
                    what = "replay re-encoded after a worker restart" if refit else "plain"
                    print(f"third-party gateway seed {s} ({what}): {c.summary()} ({time.monotonic() - t0:.0f} s)")
            finally:
                broker.kill()
            for problem in problems:
                ok = False
                print(f"   PROBLEM: {problem[:600]}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=None, help="campaign seed (default: random, printed)")
    parser.add_argument("--examples", type=int, default=5000, help="payloads per target (default 5000)")
    parser.add_argument("--target", action="append", default=[], help="only targets whose name holds this")
    parser.add_argument("--max-rounds", type=int, default=200, help="seeds tried per target at most (default 200)")
    parser.add_argument("--e2e-payloads", type=int, default=2000, help="fuzzed payloads the neighbour sends")
    parser.add_argument("--conformance-seeds", type=int, default=3, help="third-party gateway seeds (default 3)")
    parser.add_argument("--no-e2e", action="store_true", help="decoders only (no Mosquitto, no worker process)")
    args = parser.parse_args()
    fuzz_seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    logging.basicConfig(level=logging.CRITICAL)  # the targets log every quarantined payload
    warnings.filterwarnings("ignore", category=RuntimeWarning)  # numpy overflows: failures of their own target
    print(f"fuzz seed: {fuzz_seed} (replay with --seed {fuzz_seed}, or GAITSYM_FUZZ_SEED={fuzz_seed} in the tests)")
    ok = fuzz_targets(fuzz_seed, args.examples, args.target, args.max_rounds)
    if not args.no_e2e:
        ok = end_to_end(fuzz_seed, args.e2e_payloads, args.conformance_seeds) and ok
    print("campaign: " + ("no failure" if ok else "FAILURES above"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
