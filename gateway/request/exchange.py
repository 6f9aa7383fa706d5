"""One request's record as it crosses the pipeline: what the events, logs and metrics see.

Its fields change only through the transitions below, each named for the stage that makes it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from gateway.errors import GatewayError, Protocol
from gateway.limits.base import Admission
from gateway.payloads import RequestEvent
from gateway.pricing import Price, usd
from gateway.usage.tokens import Usage
from policies.snapshot import Principal, Target


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
    """Filled in place as the answer reports it (the settlement counts this object)."""
    team: str | None = None
    """The key's team (teams.yaml), if it names one."""
    price: Price | None = None
    """The opened target's compiled price (None: not opened, or no known price)."""
    cost_micros: int | None = None
    """Set at settlement, in micro-dollars; None: unknown (no price), never taken as 0."""
    shadow: tuple[str, ...] = ()
    """The shadow limits that would have refused it (served anyway): `rpm` for the key's
    own, `team:NAME/rpm` for a team's."""

    def authenticated(self, principal: Principal) -> None:
        self.key_id, self.team = principal.key_id, principal.team

    def admitted(self, admission: Admission) -> None:
        """Note the shadow limits the admission says would have refused the request."""
        if admission.shadow:
            key = self.key_id
            self.shadow = tuple(
                limit if scope == key else f"{scope}/{limit}" for scope, limit in admission.shadow
            )

    def asked(self, model: str, stream: bool) -> None:
        self.model, self.stream = model, stream

    def opened(self, target: Target) -> None:
        self.provider, self.target, self.price = target.provider_name, target.label, target.price

    def priced(self) -> int | None:
        """Charge the usage as it stands (at settlement): O(1), a few integer multiplies.
        Nothing opened costs nothing; an opened target without a price costs unknown."""
        if self.target is None:
            self.cost_micros = 0
        elif self.price is not None:
            self.cost_micros = self.price.cost_micros(self.usage)
        return self.cost_micros

    def answered(self, status: int) -> None:
        self.status = status

    def failed(self, status: int, error: str) -> None:
        self.status, self.error = status, error

    def refused(self, err: GatewayError) -> None:
        self.failed(err.status_code, err.kind)

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
            "cost_usd": None if self.cost_micros is None else usd(self.cost_micros),
            "team": self.team,
            "stream": self.stream,
            "protocol": self.protocol.value,
            "error": self.error,
            "shadow": list(self.shadow),
        }
