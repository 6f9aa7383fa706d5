"""One request's record as it crosses the pipeline: what the events, logs and metrics see."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from gateway.errors import Protocol
from gateway.payloads import RequestEvent
from gateway.upstream.dispatch import ForwardHeaders
from gateway.usage.tokens import Usage


@dataclass(slots=True)
class Exchange:
    request_id: str
    protocol: Protocol
    started: float
    """perf_counter() at arrival."""
    ts: float
    """Unix time at arrival."""
    key_id: str | None = None
    model: str | None = None
    provider: str | None = None
    target: str | None = None
    status: int = 200
    error: str | None = None
    stream: bool = False
    ttfb_ms: float | None = None
    usage: Usage = field(default_factory=Usage)
    settle: Callable[[], Awaitable[None]] | None = None
    """Counts the usage against the key's limits; a stream calls it before its last event,
    so the next request of the key is admitted against it."""
    forwarded: ForwardHeaders | None = None
    """The client headers that go upstream, checked before admission (forwarded_headers.py)."""

    async def settle_now(self) -> None:
        if self.settle is not None:
            settle, self.settle = self.settle, None
            await settle()

    def mark_first_byte(self) -> None:
        if self.ttfb_ms is None:
            self.ttfb_ms = round((time.perf_counter() - self.started) * 1000, 3)

    def as_event(self) -> RequestEvent:
        """The contract's event fields (never prompts, never secrets)."""
        return {
            "ts": self.ts,
            "request_id": self.request_id,
            "key_id": self.key_id,
            "model": self.model,
            "provider": self.provider,
            "target": self.target,
            "status": self.status,
            "latency_ms": round((time.perf_counter() - self.started) * 1000, 3),
            "ttfb_ms": self.ttfb_ms,
            "prompt_tokens": self.usage.prompt_tokens,
            "completion_tokens": self.usage.completion_tokens,
            "stream": self.stream,
            "protocol": self.protocol.value,
            "error": self.error,
        }
