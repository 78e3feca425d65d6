"""`gaitsym store raw-layout [points|packed] [--store URL]`: show or set the raw layout an InfluxDB database's
workers write (`analytics.stores.influx_layout`).

Without a layout it prints the database's marker and what this store URL would write. With one it sets the marker:
every worker following it (``raw_layout=auto``, the default) writes that layout within ``layout_recheck_s`` (60 s),
without a restart. Set ``packed`` only once every worker of the clinic reads both layouts (deploy/clinic/README.md,
"Switching the raw layout"): an older worker does not see packed samples. Light module: the store is opened only
when the command runs.

Exit status: 0 done, 1 the server refused or could not be reached, 2 not an InfluxDB store or a bad argument.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta

from analytics.stores.location import STORE_HELP
from gaitsym_common.redaction import redact_url


def _when(time_us: int) -> str:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=time_us)).strftime("%Y-%m-%d %H:%M:%S UTC")


def raw_layout_command(args: argparse.Namespace) -> int:
    from analytics.stores import open_store
    from analytics.stores.errors import InvalidLayoutMarker, StoreError
    from analytics.stores.influx import InfluxStore
    from analytics.stores.location import embedded_path, store_location

    where = store_location(args.store)
    if embedded_path(where) is not None:  # refused before opening: opening would create an empty store file
        print(
            f"gaitsym store: {redact_url(where)} is an embedded store: it keeps one row per sample and has no raw "
            "layout to choose (the layouts are InfluxDB's: give --store influx://...)",
            file=sys.stderr,
        )
        return 2
    try:
        store = open_store(where)
    except StoreError as exc:
        print(f"gaitsym store: {redact_url(exc)}", file=sys.stderr)
        return 2
    if not isinstance(store, InfluxStore):  # every location but an embedded path is a server's
        store.close()
        print(f"gaitsym store: {redact_url(where)} is not an InfluxDB store", file=sys.stderr)
        return 2
    try:
        if args.layout is not None:
            store.layout.mark(args.layout)
        marker = store.layout.marker()
        writes = store.layout.writes()
    except InvalidLayoutMarker as exc:
        print(f"gaitsym store: {exc}; `gaitsym store raw-layout points|packed` sets it again", file=sys.stderr)
        return 1
    except StoreError as exc:
        print(f"gaitsym store: {redact_url(exc)}", file=sys.stderr)
        return 1
    finally:
        store.close()
    if marker is None:
        print("marker: none (workers following it write points: one point per sample)")
    else:
        ahead = marker[1] - time.time_ns() // 1000
        late = f"; dated {ahead / 1e6:.0f} s ahead of this machine's clock" if ahead > 60e6 else ""
        print(f"marker: {marker[0]} (set {_when(marker[1])}{late})")
    how = "follows the marker" if store.config.raw_layout == "auto" else "names its layout, the marker aside"
    print(f"this store URL writes: {writes} ({how})")
    if args.layout is not None:
        print(f"workers following the marker write {args.layout} within {store.config.layout_recheck_s:g} s")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """`gaitsym store raw-layout [points|packed] [--store URL]`."""
    p = sub.add_parser(
        "store",
        help="show or set how an InfluxDB store keeps raw samples (its workers' raw layout)",
        description="`raw-layout` prints the database's raw layout marker, or sets it: workers following it "
        "(raw_layout=auto, the default) switch within a minute. Set packed only once every worker reads both "
        "layouts (deploy/clinic/README.md, 'Switching the raw layout').",
    )
    actions = p.add_subparsers(dest="store_command", metavar="ACTION", required=True)
    layout = actions.add_parser("raw-layout", help="show or set the raw layout marker")
    layout.add_argument(
        "layout",
        nargs="?",
        choices=("points", "packed"),
        help="points: one InfluxDB point per sample; packed: one per batch part (about half InfluxDB's CPU)",
    )
    layout.add_argument("--store", help=STORE_HELP)
    layout.set_defaults(handler=raw_layout_command)
