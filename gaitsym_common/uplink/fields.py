"""Typed, bounded access to the fields of an uplink payload's JSON objects, for the per-kind readers in
``envelope``: each accessor checks type, range and length, and its UplinkError names the field's path."""

from __future__ import annotations

import math
from typing import Any

from gaitsym_common.errors import UplinkError
from gaitsym_common.uplink.limits import (
    MAX_COUNTER,
    MAX_ID_CHARS,
    MAX_MAPPING_KEYS,
    MAX_TEXT_CHARS,
    check_unicode,
    shorten,
)


class Fields:
    """Typed access to a JSON object's fields, each error naming the field's path."""

    def __init__(self, doc: dict[str, Any], path: str = "") -> None:
        self.doc, self.path = doc, path

    def _name(self, key: str) -> str:
        return f"{self.path}{key}"

    def _get(self, key: str, optional: bool) -> Any:
        value = self.doc.get(key)
        if value is None and not optional:
            raise UplinkError(self._name(key), "missing" if key not in self.doc else "must not be null")
        return value

    def str_(
        self,
        key: str,
        optional: bool = False,
        choices: tuple[str, ...] | None = None,
        max_chars: int = MAX_ID_CHARS,
    ) -> Any:
        value = self._get(key, optional)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise UplinkError(self._name(key), f"must be a non-empty string, got {shorten(value)}")
        if choices is not None and value not in choices:
            raise UplinkError(self._name(key), f"{shorten(value)} is not one of {choices}")
        if len(value) > max_chars:
            raise UplinkError(self._name(key), f"{len(value)} characters exceeds {max_chars}")
        check_unicode(self._name(key), value)
        return value

    def int_(self, key: str, optional: bool = False, minimum: int = 0, maximum: int = MAX_COUNTER) -> Any:
        value = self._get(key, optional)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            raise UplinkError(self._name(key), f"must be an integer in {minimum}..{maximum}, got {shorten(value)}")
        return value

    def num(
        self,
        key: str,
        optional: bool = False,
        positive: bool = False,
        bounds: tuple[float, float] = (-float(MAX_COUNTER), float(MAX_COUNTER)),
    ) -> Any:
        value = self._get(key, optional)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise UplinkError(self._name(key), f"must be a finite number, got {shorten(value)}")
        if positive and value <= 0:
            raise UplinkError(self._name(key), f"must be > 0, got {shorten(value)}")
        if not bounds[0] <= value <= bounds[1]:
            raise UplinkError(self._name(key), f"must be in {bounds[0]:g}..{bounds[1]:g}, got {shorten(value)}")
        return float(value)

    def bool_(self, key: str) -> bool:
        value = self._get(key, False)
        if not isinstance(value, bool):
            raise UplinkError(self._name(key), f"must be true or false, got {shorten(value)}")
        return value

    def obj(self, key: str, optional: bool = False) -> Any:
        value = self._get(key, optional)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise UplinkError(self._name(key), "must be a JSON object")
        return Fields(value, f"{self._name(key)}.")

    def text(self, key: str) -> str:
        """An optional free-text field: a string (possibly empty) or absent/null -> ""."""
        value = self.doc.get(key)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise UplinkError(self._name(key), f"must be a string, got {shorten(value)}")
        if len(value) > MAX_TEXT_CHARS:
            raise UplinkError(self._name(key), f"{len(value)} characters exceeds {MAX_TEXT_CHARS}")
        check_unicode(self._name(key), value)
        return value

    def mapping(self, key: str, values: type) -> dict[str, Any]:
        """An optional object whose values are all of one JSON type (str or number)."""
        block = self.obj(key, optional=True)
        if block is None:
            return {}
        if len(block.doc) > MAX_MAPPING_KEYS:
            raise UplinkError(self._name(key), f"{len(block.doc)} entries exceeds {MAX_MAPPING_KEYS}")
        for name, value in block.doc.items():
            ok = (
                isinstance(value, str) and len(value) <= MAX_TEXT_CHARS
                if values is str
                else (
                    isinstance(value, int | float)
                    and not isinstance(value, bool)
                    and math.isfinite(value)
                    and abs(value) <= MAX_COUNTER
                )
            )
            if len(name) > MAX_ID_CHARS or not ok:
                raise UplinkError(
                    f"{self._name(key)}.{shorten(name, 40)}",
                    f"must be a {values.__name__} (bounded), got {shorten(value)}",
                )
            check_unicode(f"{self._name(key)}.{shorten(name, 40)}", name)
            if isinstance(value, str):
                check_unicode(f"{self._name(key)}.{shorten(name, 40)}", value)
        return dict(block.doc)

    def list_(self, key: str, max_items: int) -> list[Any]:
        value = self._get(key, False)
        if not isinstance(value, list):
            raise UplinkError(self._name(key), "must be a JSON array")
        if len(value) > max_items:
            raise UplinkError(self._name(key), f"{len(value)} items exceeds {max_items}")
        return value
