"""Client headers the gateway passes on upstream: an allowlist, each with a value grammar.

Only targets that speak the client's own protocol get them (gateway/upstream/dispatch.py).
A value goes upstream as sent only when all of it is in its header's grammar, so nothing
else a client sent (a stray byte, a second header line, a whole request) can reach an
upstream's framing; a value outside the grammar is a 400 that says what is allowed.
"""

from __future__ import annotations

import re

from multidict import MultiMapping

from gateway.errors import BadRequest, Protocol
from gateway.upstream.dispatch import ForwardHeaders

__all__ = ["FORWARDED", "ForwardedList", "forwarded_headers"]


class ForwardedList:
    """A header whose value is a comma-separated list of names (RFC 9110's #rule; empty
    elements and whitespace around commas are dropped); repeated headers are one list.
    A name is letters and digits, then '.', '_' and '-' too."""

    __slots__ = ("_element", "max_items", "max_length", "name", "what")

    def __init__(self, name: str, what: str, *, max_items: int, max_length: int) -> None:
        self.name, self.what = name, what
        self.max_items, self.max_length = max_items, max_length
        # Used with fullmatch: `$` would let a trailing newline through.
        self._element = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{max_length - 1}}}")

    def parse(self, values: list[str]) -> str:
        """The value to send upstream (as sent; repeated headers joined), "" for an empty
        list; BadRequest when any of it is outside the grammar."""
        items = [item.strip(" \t") for value in values for item in value.split(",")]
        items = [item for item in items if item]
        element = self._element
        if len(items) > self.max_items or not all(element.fullmatch(item) for item in items):
            raise BadRequest(
                f"The {self.name} header must be a comma-separated list of at most "
                f"{self.max_items} {self.what}, each up to {self.max_length} letters, digits, "
                "'.', '_' or '-' (starting with a letter or digit). Fix or remove the header."
            )
        if not items:
            return ""
        return values[0] if len(values) == 1 else ",".join(values)


FORWARDED: dict[Protocol, tuple[ForwardedList, ...]] = {
    Protocol.ANTHROPIC: (
        ForwardedList("anthropic-beta", "beta names", max_items=32, max_length=128),
    ),
}
"""Per client protocol, the headers an upstream of that protocol needs to honour what the
client asked for (e.g. `anthropic-beta: prompt-caching-2024-07-31`)."""


def forwarded_headers(headers: MultiMapping[str], protocol: Protocol) -> ForwardHeaders | None:
    """The allowlisted client headers, checked against their grammars; None when none came."""
    found: dict[str, str] = {}
    for header in FORWARDED.get(protocol, ()):
        values = headers.getall(header.name, [])
        if values:
            value = header.parse(values)
            if value:
                found[header.name] = value
    return (protocol, found) if found else None
