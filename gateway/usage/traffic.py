"""Request, error and token totals since start, by key, model, provider and status class.

Plain dict increments on the request path (no locks, no IO); metrics and /admin/api/usage
read them. Label values come from the policy only (key ids, route names, provider names),
so the number of series is bounded by the policy, never by what clients send.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.payloads import RequestEvent, TrafficTotals
from gateway.pricing import MICROS_PER_USD, usd
from policies.snapshot import Snapshot

NO_KEY = "none"
"""The key label of a request that presented no valid key."""
UNKNOWN_MODEL = "unknown"
"""The model label of a request whose model no route matches (or that named none)."""
NO_PROVIDER = "none"
"""The provider label of a request that never reached an upstream."""
NO_TEAM = "none"
"""The team label of a request whose key has no team (or that presented no key)."""


def micros_of(cost_usd: float) -> int:
    """An event's cost back in micro-dollars (exact: it was made from them)."""
    return round(cost_usd * MICROS_PER_USD)


@dataclass(frozen=True, slots=True)
class Labels:
    key: str
    model: str
    provider: str
    team: str | None = None


def labels_of(event: RequestEvent, snapshot: Snapshot | None) -> Labels:
    """Bounded label values: the route name the policy matched, not the client's string."""
    model = UNKNOWN_MODEL
    asked = event["model"]
    if asked is not None and snapshot is not None:
        route = snapshot.resolve(asked)  # a cached dict hit for known models
        if route is not None:
            model = route.name
    team = event.get("team")
    return Labels(
        event["key_id"] or NO_KEY, model, event["provider"] or NO_PROVIDER, team or NO_TEAM
    )


def status_class(status: int) -> str:
    return f"{status // 100}xx"


@dataclass(slots=True)
class Totals:
    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_micros: int = 0
    unpriced: int = 0

    def add(self, other: Totals) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.cost_micros += other.cost_micros
        self.unpriced += other.unpriced

    def as_dict(self) -> TrafficTotals:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": usd(self.cost_micros),
            "unpriced_requests": self.unpriced,
        }


class Traffic:
    """Counts since the process started."""

    def __init__(self) -> None:
        self.by_status: dict[tuple[str, str, str, str], Totals] = {}
        """(key, model, provider, status class) -> totals"""
        self.errors: dict[tuple[str, str, str, str], int] = {}
        """(key, model, provider, error kind) -> count"""
        self.costs: dict[tuple[str, str, str, str], int] = {}
        """(key, team, model, provider) -> micro-dollars"""

    def count(self, labels: Labels, event: RequestEvent) -> None:
        status, error = event["status"], event["error"]
        slot = (labels.key, labels.model, labels.provider, status_class(status))
        totals = self.by_status.get(slot)
        if totals is None:
            totals = self.by_status[slot] = Totals()
        totals.requests += 1
        totals.prompt_tokens += event["prompt_tokens"]
        totals.completion_tokens += event["completion_tokens"]
        cost = event.get("cost_usd")
        if cost is None:
            totals.unpriced += event["provider"] is not None  # reached an unpriced target
        else:
            micros = micros_of(cost)
            totals.cost_micros += micros
            team = labels.team if labels.team is not None else NO_TEAM
            cost_slot = (labels.key, team, labels.model, labels.provider)
            self.costs[cost_slot] = self.costs.get(cost_slot, 0) + micros
        if status >= 400 or error is not None:
            totals.errors += 1
            kind = error or "upstream_client_error"
            err_slot = (labels.key, labels.model, labels.provider, kind)
            self.errors[err_slot] = self.errors.get(err_slot, 0) + 1

    def per_key(self) -> dict[str, Totals]:
        out: dict[str, Totals] = {}
        for (key, _, _, _), totals in self.by_status.items():
            out.setdefault(key, Totals()).add(totals)
        return out

    def per_model(self, key: str | None = None) -> dict[tuple[str, str], Totals]:
        """(model, provider) -> totals, of every key or of one."""
        out: dict[tuple[str, str], Totals] = {}
        for (key_label, model, provider, _), totals in self.by_status.items():
            if key is None or key == key_label:
                out.setdefault((model, provider), Totals()).add(totals)
        return out

    def tokens(self) -> dict[tuple[str, str, str], tuple[int, int]]:
        """(key, model, provider) -> (prompt, completion) tokens."""
        out: dict[tuple[str, str, str], tuple[int, int]] = {}
        for (key, model, provider, _), totals in self.by_status.items():
            prompt, completion = out.get((key, model, provider), (0, 0))
            out[(key, model, provider)] = (
                prompt + totals.prompt_tokens,
                completion + totals.completion_tokens,
            )
        return out
