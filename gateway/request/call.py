"""What a client asked for, once stages ① to ③ have checked it: every later stage reads it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.upstream.dispatch import ForwardHeaders
from gateway.vocabulary import Op, Protocol
from policies.snapshot import ResolvedRoute


@dataclass(frozen=True, slots=True)
class Call:
    """One generation, count or embeddings request, immutable once admitted.

    `body` is the client's parsed JSON and `raw` its bytes; neither is changed by any stage
    (a plan builds new upstream bodies from them)."""

    protocol: Protocol
    """The wire protocol the client speaks: its shapes and its errors."""
    op: Op
    raw: bytes
    body: dict[str, Any]
    model: str
    """The model name the client asked for."""
    route: ResolvedRoute
    """The route it resolved to, narrowed to the targets that can be called."""
    key_id: str
    stream: bool
    json_array: bool = False
    """Gemini's streamGenerateContent without alt=sse: the stream as one JSON array."""
    forwarded: ForwardHeaders | None = None
    """The client headers that go to targets of the client's protocol (checked already)."""

    @property
    def strict(self) -> bool:
        """The route's `translation: strict`: a hint the provider cannot carry is refused."""
        return self.route.route.translation == "strict"

    @property
    def prompt_estimate(self) -> int:
        """The input tokens admission reserved, and an unfinished answer counts at least."""
        return len(self.raw) // 4
