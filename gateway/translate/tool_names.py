"""The names a request's client tools travel under to a provider, and back.

A Responses client may group functions in ``namespace`` tools (Codex's ``multi_agent_v1``);
the chat protocols know only flat function names, each with its own grammar:
Anthropic ``^[a-zA-Z0-9_-]{1,128}$`` (https://docs.anthropic.com/en/api/messages#body-tools-name),
Gemini ``^[a-zA-Z_][a-zA-Z0-9_.-]{0,63}$`` (https://ai.google.dev/api/caching#FunctionDeclaration),
OpenAI ``^[a-zA-Z0-9_-]{1,64}$`` (https://platform.openai.com/docs/api-reference/chat/create#chat-create-tools).
Every name sent is in their intersection, ``NAME``.

The mapping is derived from the request alone (its tools, its history's calls, its
tool_choice), so the same request always maps the same way and no state outlives it:
- a name already in ``NAME`` and outside any namespace is sent as it is;
- ``namespace`` + ``name`` become ``namespace__name``, the flat spelling Codex itself uses
  (codex-rs/protocol/src/tool_name.rs, ``canonical_flat_name``);
- a name that would not fit ``NAME``, or that two tools would share, becomes a readable
  prefix and a hash of the original (``_h`` + 10 hex digits), deterministic and unique.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from gateway.translate.canonical import Part, ToolCallPart, ToolCallStart

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
"""A tool name every target protocol accepts."""
MAX_LEN = 64
DELIMITER = "__"
_INVALID = re.compile(r"[^A-Za-z0-9_-]")
_HASH_LEN = 10


@dataclass(frozen=True, slots=True)
class Origin:
    """A tool as the client named it."""

    name: str
    namespace: str | None = None


def _readable(origin: Origin) -> str:
    if origin.namespace is None:
        return origin.name
    return origin.namespace.rstrip("_") + DELIMITER + origin.name.lstrip("_")


def _hashed(origin: Origin, attempt: int) -> str:
    key = f"{origin.namespace or ''}\0{origin.name}\0{attempt}".encode()
    digest = hashlib.sha256(key).hexdigest()[:_HASH_LEN]
    prefix = _INVALID.sub("_", _readable(origin))
    if not prefix or not (prefix[0].isalpha() or prefix[0] == "_"):
        prefix = "_" + prefix
    return prefix[: MAX_LEN - _HASH_LEN - 2] + "_h" + digest


class ToolNames:
    """One request's tool names: client origin <-> the flat name sent to the provider."""

    __slots__ = ("_flat", "_origins")

    def __init__(self, origins: Iterable[Origin]) -> None:
        unique = list(dict.fromkeys(origins))
        wanted = Counter(_readable(o) for o in unique)
        self._flat: dict[Origin, str] = {}
        self._origins: dict[str, Origin] = {}
        # Plain valid names claim themselves first: they never change.
        for o in unique:
            if o.namespace is None and NAME.fullmatch(o.name):
                self._claim(o, o.name)
        for o in unique:
            if o in self._flat:
                continue
            name = _readable(o)
            if not NAME.fullmatch(name) or wanted[name] > 1 or name in self._origins:
                attempt = 0
                name = _hashed(o, attempt)
                while name in self._origins:  # a client tool already named like a hash
                    attempt += 1
                    name = _hashed(o, attempt)
            self._claim(o, name)

    def _claim(self, origin: Origin, name: str) -> None:
        self._flat[origin] = name
        self._origins[name] = origin

    @property
    def changes_any(self) -> bool:
        """False when every name travels as the client spelled it."""
        return any(o.namespace is not None or o.name != n for o, n in self._flat.items())

    def flat(self, name: str, namespace: str | None = None) -> str:
        origin = Origin(name, namespace or None)
        found = self._flat.get(origin)
        return found if found is not None else _readable(origin)

    def origin(self, flat: str) -> Origin:
        """The client's tool behind a provider's name; an unknown name is left as it is."""
        return self._origins.get(flat) or Origin(flat)

    def restore_parts(self, parts: Iterable[Part]) -> None:
        for part in parts:
            if isinstance(part, ToolCallPart):
                o = self.origin(part.name)
                part.name, part.namespace = o.name, o.namespace

    def restore_start(self, ev: ToolCallStart) -> ToolCallStart:
        o = self.origin(ev.name)
        return ToolCallStart(ev.index, ev.id, o.name, ev.signature, o.namespace)
