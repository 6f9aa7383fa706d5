"""The limiter's interface: one call admits a request, one call settles it.

    admission = await limiter.admit(key_id, principal.limits, estimated_prompt_tokens)
    ...                       # RateLimited / QuotaExhausted raised above: nothing was counted
    await limiter.settle(admission, used_tokens)   # in `finally`; idempotent

State is keyed by key id, never by the Limits object: a policy commit that changes a key's
limits applies them at the next `admit`, and the counts so far are kept.

Quotas (tokens_per_day, tokens_per_month) admit while settled use is below the quota; tpm
admits while the window's tokens (settled, plus the prompt estimates of requests in
flight) plus this prompt's estimate stay within tpm. Everything counts total tokens.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from gateway.errors import Unavailable
from gateway.payloads import FailMode, LimiterStatus, LimitsUse
from policies.models import Limits

Clock = Callable[[], float]
"""Seconds since the Unix epoch (time.time); injectable so tests move time without sleeping."""

FAIL_MODES: tuple[FailMode, ...] = ("fail-open", "fail-closed")


@dataclass(slots=True)
class Admission:
    """One admitted request; hand it back to `settle` exactly once (more calls are no-ops)."""

    key_id: str
    reserved_tokens: int
    """Tokens reserved in the tpm window at admission (the prompt estimate; 0 without tpm)."""
    headers: dict[str, str] = field(default_factory=dict)
    """x-ratelimit-* headers for the response (empty for a key without rpm or tpm)."""
    limits: Limits | None = None
    """The limits it was admitted under; None for a key with no limits (the fast path)."""
    token_second: int = 0
    """The window second that holds the reservation."""
    ticket: str = ""
    """Redis: this request's member in the key's in-flight set."""
    holds_slot: bool = False
    """It counts as in flight until settled."""
    degraded: bool = False
    """Admitted unchecked because the limits store was unreachable (fail-open)."""
    settled: bool = False


class Limiter(Protocol):
    async def admit(self, key_id: str, limits: Limits, estimated_tokens: int) -> Admission:
        """Check every limit of the key and count the request, atomically.

        Raises QuotaExhausted (day/month quota spent) or RateLimited (rpm, tpm, concurrency);
        a refused request is not counted. The Redis limiter in fail-closed mode raises
        LimiterUnavailable while Redis is unreachable.
        """
        ...

    async def settle(self, admission: Admission, used_tokens: int) -> None:
        """Count the tokens really used (prompt + completion) and free the in-flight slot.

        Never raises; a second call for the same admission does nothing.
        """
        ...

    def usage(self, key_id: str, limits: Limits) -> LimitsUse:
        """Current use against limits, from this process's view (no IO)."""
        ...

    async def fetch_usage(self, key_id: str, limits: Limits) -> LimitsUse:
        """Current use against limits, read from the store of record (Redis when shared)."""
        ...

    def status(self) -> LimiterStatus: ...

    async def start(self) -> None: ...

    async def close(self) -> None:
        """Stop background work and flush recorded usage."""
        ...


class LimiterUnavailable(Unavailable):
    """fail-closed: limits cannot be checked, so the request is refused."""

    code = "rate_limiter_unavailable"
    kind = "limiter_unavailable"

    def __init__(self) -> None:
        super().__init__(
            "Rate limits cannot be checked right now (the limits store is unreachable). "
            "Retry in a few seconds.",
            headers={"Retry-After": "1"},
        )
