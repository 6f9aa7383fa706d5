"""The JSON the gateway sends across a boundary, as types: finished-request events, the worker
fan-out batch, /admin/api/status and /admin/api/usage (CONTRACT.md describes the same fields).

Producers (gateway/, policies/, credentials/) build these; the terminal UI reads them. Only
the standard library is imported here, so every side may import it (no Sanic, no Textual).

They are TypedDicts: a plain dict at run time, so the request path pays nothing for the type.
What the UI receives is not checked against them: a gateway of another version may lack a
field or add one, so the UI reads fields with `.get` and checks what it uses.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal, NotRequired, TypedDict


def utc_iso(unix: float, timespec: Literal["milliseconds", "seconds"] = "milliseconds") -> str:
    """Unix time as an RFC 3339 UTC time: `2027-01-15T07:58:00.250Z`.

    The one format of every time in these payloads. What the gateway saw happen (a commit
    applied, a fetch, its own start) is to the millisecond; a quota period's end is a whole
    second by definition and is written as one (`2027-02-01T00:00:00Z`).
    """
    stamp = dt.datetime.fromtimestamp(unix, dt.UTC).isoformat(timespec=timespec)
    return stamp.replace("+00:00", "Z")


# -- finished requests: /admin/api/events, the request log, the worker fan-out ---------------


class RequestEvent(TypedDict):
    """One finished request (never prompts, never secrets)."""

    ts: float
    """Unix time of arrival."""
    request_id: str
    key_id: str | None
    """None: no valid key was presented."""
    model: str | None
    """As the client asked for it (cut to a bounded length)."""
    provider: str | None
    target: str | None
    status: int
    latency_ms: float
    ttfb_ms: float | None
    prompt_tokens: int
    completion_tokens: int
    stream: bool
    protocol: str
    error: str | None
    """The error kind, when the request failed."""


class Cooldown(TypedDict):
    """A credential another worker met a 429 (or similar) on: sit it out here too."""

    provider: str
    ref: str
    until: float
    """Unix time."""
    reason: str


class FanoutBatch(TypedDict):
    """One Redis pub/sub message between a gateway's workers."""

    origin: str
    """The sending worker's id, so it skips its own batches."""
    events: list[RequestEvent]
    cooldowns: list[Cooldown]


# -- GET /admin/api/status ----------------------------------------------------------------


class AttemptStatus(TypedDict):
    """One try at applying a policy commit."""

    commit: str
    at: str
    ok: bool
    error: str | None
    forced: bool


class FetchStatus(TypedDict):
    """One fetch of the policy remote that moved the ref or failed."""

    at: str
    before: str | None
    after: str | None
    forced: bool
    ok: bool
    message: str


class RemoteStatus(TypedDict):
    url: str
    """Without credentials."""
    ref: str
    last_fetch_at: str | None
    fetched_commit: str | None
    forced: bool
    error: str | None
    message: str
    fetches: list[FetchStatus]


PolicyState = Literal["synced", "rejected", "pending"]


class PolicyStatus(TypedDict):
    commit: str | None
    """The applied commit."""
    applied_at: str | None
    state: PolicyState
    error: str | None
    """The rejected commit's problems, one `file:line:col: message` per line."""
    rejected_commit: str | None
    attempted_commit: str | None
    message: str
    attempts: list[AttemptStatus]
    """Newest first."""
    remote: RemoteStatus | None


FailMode = Literal["fail-open", "fail-closed"]


class LimiterStatus(TypedDict):
    store: Literal["memory", "redis"]
    state: Literal["ok", "degraded"]
    mode: FailMode
    error: str | None


CredentialState = Literal["removed", "unavailable", "cooling", "ok"]


class CredentialStatus(TypedDict):
    """A credential with something to say, by reference or label (never its value)."""

    provider: str
    credential: str
    state: CredentialState
    reason: str | None
    cooling_down_s: float
    removed: str | None
    token_expires_in_s: NotRequired[float | None]
    """Refreshing (OAuth) credentials only."""
    token_refreshes: NotRequired[int]


class EventsStatus(TypedDict):
    viewers: int
    last_id: int


class Status(TypedDict):
    policy: PolicyStatus
    limits: LimiterStatus
    credentials: list[CredentialStatus]
    unavailable_routes: dict[str, str]
    """Route name -> why it cannot serve now."""
    events: EventsStatus
    version: str
    uptime_s: float


# -- GET /admin/api/usage ----------------------------------------------------------------


class Use(TypedDict):
    limit: int | None
    """None where the key is not limited."""
    used: int


class QuotaUse(Use):
    requests: int
    period: str
    """2027-01-15 (a day) or 2027-01 (a month), UTC."""
    resets_at: str


class LimitsUse(TypedDict):
    """One key's use against each of its limits (Limiter.usage / fetch_usage)."""

    key_id: str
    rpm: Use
    tpm: Use
    max_concurrency: Use
    tokens_per_day: QuotaUse
    tokens_per_month: QuotaUse


class TrafficTotals(TypedDict):
    requests: int
    errors: int
    prompt_tokens: int
    completion_tokens: int


class KeyUsage(LimitsUse):
    owner: str | None
    disabled: bool
    expires: str | None
    """A date (2027-12-31)."""
    since_start: TrafficTotals
    """Totals since this gateway process started."""


class ModelUsage(TrafficTotals):
    model: str
    """The route name (or `unknown`)."""
    provider: str


class Usage(TypedDict):
    policy: str | None
    since: str
    """When this gateway process started (the start of `since_start` and `models`)."""
    keys: list[KeyUsage]
    models: list[ModelUsage]
