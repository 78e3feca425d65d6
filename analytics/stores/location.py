"""Which store a reading command means, and refusing an embedded store that is not there.

Commands that only read (the report, the export) must never create an empty store where the user mistyped a path:
`open_store` creates the embedded SQLite file when it is missing (what the worker wants). `existing_store` takes
the same locations `open_store` does (a server URL, a path, a ``file:`` URL) and refuses a missing file first.
"""

from __future__ import annotations

import argparse
import os
import urllib.parse
from pathlib import Path

from analytics.stores.errors import StoreError


class EmbeddedStoreMissing(StoreError):
    """An embedded store path (or ``file:`` URL) names no file: nothing was ever stored there (names the path)."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"no embedded store file at {path}: nothing has been stored there")
        self.path = path


STORE_HELP = (
    "influx://user@host:8086/gaitsym (password/token from GAITSYM_INFLUX_PASSWORD/GAITSYM_INFLUX_TOKEN) "
    "or the path of the embedded store (default: $GAITSYM_STORE, else store.sqlite in $GAITSYM_STATE_DIR "
    "or ~/.local/state/gaitsym)"
)


def add_store_argument(parser: argparse.ArgumentParser) -> None:
    """The ``--store`` option of the commands that read or write results: any location `store_location` takes."""
    parser.add_argument("--store", help=STORE_HELP)


def store_location(location: str | None) -> str:
    """The store a command means: ``location``, else ``GAITSYM_STORE``, else the default embedded store."""
    from analytics.stores import default_embedded_path

    return location or os.environ.get("GAITSYM_STORE") or default_embedded_path()


def embedded_path(location: str) -> Path | None:
    """The file an embedded-store location names (a path, or a ``file:`` URL); None for a server URL, or a scheme
    `open_store` refuses by name."""
    parsed = urllib.parse.urlparse(location)
    if parsed.scheme == "file":  # read as `open_store` reads it
        return Path(parsed.path)
    return Path(location) if parsed.scheme == "" else None


def existing_store(location: str | None) -> str:
    """`store_location`, refused (`EmbeddedStoreMissing`) when it names an embedded store file that does not
    exist; server URLs are left to the server to answer."""
    where = store_location(location)
    path = embedded_path(where)
    if path is not None and not path.is_file():
        raise EmbeddedStoreMissing(path)
    return where
