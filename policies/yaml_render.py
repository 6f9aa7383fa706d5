"""YAML text for new values: plain scalars only where they read back the same, else quoted."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

_PLAIN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@/+\-]*(?::[A-Za-z0-9_.@/+\-]+)*$")
_SPECIAL = re.compile(
    r"^(?:y|n|yes|no|on|off|true|false|null|~|[-+]?(?:\d[\d_]*)?\.?\d[\d_]*(?:e[-+]?\d+)?"
    r"|0x[0-9a-f_]+|0o[0-7_]+|0b[01_]+|\d{4}-\d\d?-\d\d?.*|[-+]?\.(?:inf|nan))$",
    re.IGNORECASE,
)


def render_scalar(value: Any, style: str | None = None) -> str:
    """`value` as a YAML scalar; a string keeps `style` (quotes) when it can."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value)
    if style == "'" and "\n" not in text:
        return "'" + text.replace("'", "''") + "'"
    if style != '"' and _PLAIN.match(text) and not _SPECIAL.match(text):
        return text
    return json.dumps(text, ensure_ascii=False)


def render_flow(value: Any) -> str:
    """`value` on one line; mapping entries whose value is `...` (delete) are left out."""
    if isinstance(value, dict):
        entries = (f"{render_scalar(k)}: {render_flow(v)}" for k, v in _kept(value))
        return "{" + ", ".join(entries) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(render_flow(v) for v in value) + "]"
    return render_scalar(value)


def render_block(value: Any, indent: int, nl: str) -> str:
    """A mapping or a sequence of mappings in block style, every line at `indent`."""
    pad = " " * indent
    if isinstance(value, dict):
        return nl.join(f"{pad}{render_scalar(k)}: {render_flow(v)}" for k, v in _kept(value))
    if isinstance(value, list | tuple):
        return nl.join(render_item(v, indent, nl) for v in value)
    return pad + render_flow(value)


def _kept(value: dict[Any, Any]) -> list[tuple[Any, Any]]:
    return [(k, v) for k, v in value.items() if v is not ...]


def render_item(value: Any, dash_col: int, nl: str, item_col: int | None = None) -> str:
    """One block sequence item `- ...`; a mapping's fields line up at `item_col`."""
    inner = dash_col + 2 if item_col is None else item_col
    head = " " * dash_col + "-" + " " * (inner - dash_col - 1)
    if isinstance(value, dict) and value:
        lines = render_block(value, inner, nl).split(nl)
        return head + lines[0].lstrip() + "".join(nl + line for line in lines[1:])
    return head + render_flow(value)
