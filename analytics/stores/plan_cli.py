"""`gaitsym plan`: set, show or clear a subject's exercise plan (sets per week per exercise and side).

    gaitsym plan --subject S --exercise E --side left|right|none --sets-per-week N [--reps-per-set R]
    gaitsym plan --subject S [--show] [--history]
    gaitsym plan --subject S --exercise E --side left|right|none --clear

The dashboards compare the sets done with the plan in force; without a plan they show counts only. Light module:
the store is opened only when the command runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta

from analytics.stores.errors import StoreError
from analytics.stores.location import add_store_argument
from gaitsym_common.redaction import redact_url


def _when(time_us: int) -> str:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=time_us)).strftime("%Y-%m-%d %H:%M UTC")


def plan_command(args: argparse.Namespace) -> int:
    from analytics.stores import open_store
    from analytics.stores.plans import cleared_plan, in_force, make_plan

    setting = args.sets_per_week is not None
    if (setting or args.clear) and (args.exercise is None or args.side is None):
        print("gaitsym plan: --exercise and --side are needed to set or clear a plan", file=sys.stderr)
        return 2
    if setting and args.clear:
        print("gaitsym plan: give either --sets-per-week or --clear, not both", file=sys.stderr)
        return 2
    if args.reps_per_set is not None and not setting:
        print("gaitsym plan: --reps-per-set goes with --sets-per-week", file=sys.stderr)
        return 2
    now_us = time.time_ns() // 1000
    try:
        if setting:
            plan = make_plan(args.subject, args.exercise, args.side, args.sets_per_week, args.reps_per_set, now_us)
        elif args.clear:
            plan = cleared_plan(args.subject, args.exercise, args.side, now_us)
        store = open_store(args.store)
        try:
            if setting or args.clear:
                store.write_plan(plan)
            history = store.read_plans(args.subject)
        finally:
            store.close()
    except StoreError as exc:
        print(f"gaitsym plan: {redact_url(exc)}", file=sys.stderr)
        return 2
    if setting:
        reps = f", {plan.reps_per_set} repetitions a set" if plan.reps_per_set is not None else ""
        print(f"plan set: {args.subject} {plan.exercise} {plan.side}: {plan.sets_per_week} sets a week{reps}")
    elif args.clear:
        print(f"plan cleared: {args.subject} {args.exercise} {args.side} (adherence shows counts only)")
    shown = history if args.history else in_force(history)
    if not shown:
        print(f"no plan in force for {args.subject}: adherence shows counts only")
        return 0
    print(f"{'exercise':<22} {'side':<6} {'sets/week':>9} {'reps/set':>8}  since")
    for p in shown:
        sets = "cleared" if p.cleared else str(p.sets_per_week)
        reps = "-" if p.reps_per_set is None else str(p.reps_per_set)
        print(f"{p.exercise:<22} {p.side:<6} {sets:>9} {reps:>8}  {_when(p.time_us)}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """`gaitsym plan --subject S [--exercise E --side SIDE (--sets-per-week N [--reps-per-set R] | --clear)]`."""
    p = sub.add_parser(
        "plan",
        help="set, show or clear a subject's exercise plan (sets per week; the dashboards' adherence)",
        description="Without --sets-per-week or --clear: show the plan in force. A plan is kept per exercise and "
        "side until changed or cleared; every change is stored (--history shows them).",
    )
    p.add_argument("--subject", required=True, help="subject id")
    p.add_argument("--exercise", help="exercise id (gaitsym.exercises/1, e.g. clam, single_leg_bridge, lunge)")
    p.add_argument("--side", choices=("left", "right", "none"), help="working leg; none for bilateral exercises")
    p.add_argument("--sets-per-week", type=int, help="sets a week the clinic asks for (1-100)")
    p.add_argument("--reps-per-set", type=int, help="repetitions (or holds) a set (1-1000)")
    p.add_argument("--clear", action="store_true", help="end the plan of this exercise and side")
    p.add_argument("--show", action="store_true", help="show the plan in force (the default)")
    p.add_argument("--history", action="store_true", help="show every plan change, oldest first")
    add_store_argument(p)
    p.set_defaults(handler=plan_command)
