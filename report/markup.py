"""Escaped-by-default HTML and SVG building: the one place text becomes markup.

Every string that reaches the page goes through `esc` unless it is already `Markup` (built here). Subject ids,
session ids and flag messages come from the store, which takes them from the network: untrusted. Building
elements with `el` escapes text children and attribute values, so forgetting to escape is not possible by
construction; only `Markup` made by this module passes through unchanged. Pure, no I/O.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import TypeAlias

__all__ = ["Child", "Markup", "el", "esc", "join"]


class Markup(str):
    """Text that is already safe HTML/SVG (made by `esc`, `el` or `join`)."""

    __slots__ = ()


Child: TypeAlias = "Markup | str | int | float | Iterable[Markup | str | int | float | None] | None"


def esc(text: object) -> Markup:
    """``text`` as HTML-escaped markup (quotes included, so it is safe in attributes too)."""
    if isinstance(text, Markup):
        return text
    return Markup(html.escape(str(text), quote=True))


def _children(children: Iterable[Child]) -> str:
    out: list[str] = []
    for child in children:
        if child is None:
            continue
        if isinstance(child, str | int | float):
            out.append(esc(child))
        else:
            out.append(_children(child))
    return "".join(out)


def _attr_name(name: str) -> str:
    # python keywords and dashes: class_ -> class, stroke_width -> stroke-width, aria_label -> aria-label
    name = name.rstrip("_").replace("_", "-")
    if not name or not all(c.isalnum() or c in "-:" for c in name):
        raise ValueError(f"attribute name {name!r} is not a plain HTML/SVG attribute name")
    return name


def _number(value: float) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def el(tag: str, *children: Child, **attrs: object) -> Markup:
    """An element: ``el("td", "text", class_="num")``. Attribute values and text children are escaped; a value
    of None or False leaves the attribute out, True writes it bare; floats are written with 2 decimals."""
    if not tag.replace("-", "").isalnum():
        raise ValueError(f"tag {tag!r} is not a plain element name")
    parts = [tag]
    for name, value in attrs.items():
        if value is None or value is False:
            continue
        key = _attr_name(name)
        if value is True:
            parts.append(key)
        else:
            text = _number(value) if isinstance(value, float) else str(value)
            parts.append(f'{key}="{esc(text)}"')
    inner = _children(children)
    if tag in ("br", "meta", "hr"):
        return Markup(f"<{' '.join(parts)}>")
    return Markup(f"<{' '.join(parts)}>{inner}</{tag}>")


def join(parts: Iterable[Child], sep: str = "") -> Markup:
    """Children joined into one piece of markup (text escaped, markup kept)."""
    return Markup(esc(sep).join(_children([p]) for p in parts))
