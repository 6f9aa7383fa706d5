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
    cost_usd: NotRequired[float | None]
    """What the upstream charges for it (from micro-dollars); None: no known price."""
    team: NotRequired[str | None]
    """The key's team, when it has one."""
    shadow: NotRequired[list[str]]
    """The shadow limits (`enforce: shadow`) that would have refused it, though it was
    served: `rpm` for the key's own, `team:NAME/rpm` for a team's; empty when none would."""


AlertLimit = Literal["usd_per_day", "usd_per_month", "tokens_per_day", "tokens_per_month"]


class BudgetAlert(TypedDict):
    """A budget or quota reached a threshold (alerts.yaml); SSE event type `budget_alert`.
    Each fires once per scope, limit, threshold and period across every gateway."""

    ts: float
    """Unix time it was noticed (at the settlement of the request that reached it)."""
    scope: str
    """The scope id: a key id, or team:NAME."""
    kind: Literal["key", "team"]
    limit: AlertLimit
    threshold: int
    """Percent of the limit."""
    used: float
    """Use in the period when noticed: US dollars (usd_*) or tokens (tokens_*)."""
    amount: float
    """The limit itself, in the same unit."""
    period: str
    """2027-01-15 (a day) or 2027-01 (a month), UTC."""
    resets_at: str
    text: str
    """One human sentence (the webhook's `text`)."""


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
    alerts: NotRequired[list[BudgetAlert]]
    """Budget alerts the sender fired, for the other workers' event streams."""


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
    unpriced_targets: NotRequired[list[str]]
    """`provider/model` targets with no known price (their requests' cost is unknown)."""
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


class BudgetUse(TypedDict):
    """Spend against a USD budget, in integer micro-dollars (1 USD = 1,000,000)."""

    limit: int | None
    """None where the scope has no such budget."""
    used: int
    period: str
    resets_at: str


class ShadowUse(TypedDict):
    """A scope's shadow limits and the requests they would have refused (served anyway)."""

    limits: dict[str, float]
    """Limit name -> value (US dollars for usd_per_day / usd_per_month)."""
    refusals_day: dict[str, int]
    """Limit name -> requests served today (UTC) that it would have refused."""
    refusals_month: dict[str, int]
    """The same, this month."""


class ScopeShadowUse(ShadowUse):
    scope: str
    """The scope id: a key id, or team:NAME."""


class LimitsUse(TypedDict):
    """One key's use against each of its limits (Limiter.usage / fetch_usage)."""

    key_id: str
    rpm: Use
    tpm: Use
    max_concurrency: Use
    tokens_per_day: QuotaUse
    tokens_per_month: QuotaUse
    usd_per_day: NotRequired[BudgetUse]
    usd_per_month: NotRequired[BudgetUse]
    shadow: NotRequired[ShadowUse]
    """Its shadow limits and their would-be refusals (empty when it has none); the limits
    above are the enforced ones."""


class TrafficTotals(TypedDict):
    requests: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: NotRequired[float]
    """Spend of the priced requests (summed in micro-dollars)."""
    unpriced_requests: NotRequired[int]
    """Requests whose cost is unknown (no price for their target)."""


class Spend(TypedDict):
    """Spend in one calendar period (UTC), from the request log."""

    period: str
    """2027-01-15 (a day) or 2027-01 (a month)."""
    cost_usd: float
    requests: int
    unpriced_requests: int
    """Requests in it whose cost is unknown (not counted in cost_usd)."""


class SpendUse(TypedDict):
    day: Spend
    month: Spend


class TeamSpend(TypedDict):
    team: str
    spend: SpendUse
    """From the request log (every worker's, about a second behind)."""
    parent: NotRequired[str | None]
    owner: NotRequired[str | None]
    keys: NotRequired[list[str]]
    """Ids of the keys that name the team."""
    limits: NotRequired[LimitsUse]
    """The team scope's live use against its limits and budgets, from the limiter's store
    of record (`key_id` is team:NAME); absent for a team no longer in the policy."""


class KeyUsage(LimitsUse):
    owner: str | None
    disabled: bool
    expires: str | None
    """A date (2027-12-31)."""
    since_start: TrafficTotals
    """Totals since this gateway process started."""
    spend: NotRequired[SpendUse]
    """Spend today and this month (every worker's, from the request log)."""


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
    teams: NotRequired[list[TeamSpend]]
    """Every team of the policy (and any other that spent this month): spend today and this
    month, and the live use of its limits and budgets."""
    shadow: NotRequired[list[ScopeShadowUse]]
    """Per scope (keys and teams) with shadow limits or would-be refusals this month: its
    shadow limits and the requests they would have refused."""
