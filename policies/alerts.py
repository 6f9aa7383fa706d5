"""alerts.yaml: when to tell someone that a budget or quota is being used up.

    alerts:
      - scopes: teams                  # keys, teams, all (the default), or a list of
        limits: [usd_per_month]        #   scope names: [team:search, k-ci]
        thresholds: [50, 80, 100]      # percent of the limit (the default)
        webhook: env:SLACK_WEBHOOK_URL # optional: a Slack/Mattermost incoming webhook

A rule covers the budgets and quotas (`limits`) of the scopes it names; for each scope and
limit the first rule that covers it decides. Each threshold fires at most once per scope,
limit and period (a `*_per_day` limit's UTC day, a `*_per_month` limit's UTC month).

This module imports nothing from policies.models (which holds it inside `Policy`), so the
few primitives it needs are its own.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from credentials.refs import leaves_directory

AlertLimit = Literal["usd_per_day", "usd_per_month", "tokens_per_day", "tokens_per_month"]
ALERT_LIMITS: tuple[AlertLimit, ...] = (
    "usd_per_day",
    "usd_per_month",
    "tokens_per_day",
    "tokens_per_month",
)
DEFAULT_THRESHOLDS = (50, 80, 100)
ScopeSet = Literal["all", "keys", "teams"]
ScopeName = Annotated[
    str, StringConstraints(pattern=r"^(team:)?[A-Za-z0-9][A-Za-z0-9._\-]{0,127}$")
]
WebhookRef = Annotated[str, StringConstraints(pattern=r"^(env|file):[A-Za-z0-9_.\-/]+$")]
Percent = Annotated[int, Field(ge=1, le=1000, strict=True)]
TEAM_PREFIX = "team:"


class _Frozen(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", use_attribute_docstrings=True, str_strip_whitespace=True
    )


class AlertRule(_Frozen):
    """Which budgets and quotas to watch, at which percentages, and where to post."""

    scopes: ScopeSet | tuple[ScopeName, ...] = "all"
    """`all`, `keys`, `teams`, or a list of scope names: a key id, or `team:NAME`."""
    limits: tuple[AlertLimit, ...] = ALERT_LIMITS
    """Which limits: usd_per_day, usd_per_month, tokens_per_day, tokens_per_month (all by
    default; a scope without the limit set has nothing to alert on)."""
    thresholds: tuple[Percent, ...] = DEFAULT_THRESHOLDS
    """Percentages of the limit; each fires once per scope and period when use reaches it."""
    webhook: WebhookRef | None = None
    """Where the webhook URL lives (env:NAME or file:NAME, like provider credentials; it is a
    secret: never logged). The POST's JSON has a `text` field (Slack/Mattermost format)."""

    @field_validator("thresholds")
    @classmethod
    def _some_sorted(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value:
            raise ValueError("give at least one threshold, e.g. [80, 100]")
        return tuple(sorted(set(value)))

    @field_validator("limits")
    @classmethod
    def _some_limits(cls, value: tuple[AlertLimit, ...]) -> tuple[AlertLimit, ...]:
        if not value:
            raise ValueError("name at least one limit, or leave `limits` out for all of them")
        return value

    @field_validator("webhook")
    @classmethod
    def _stays_inside(cls, value: str | None) -> str | None:
        if value is not None and value.startswith("file:") and leaves_directory(value[5:]):
            raise ValueError(
                f"'{value}' leaves the credentials directory: name a file inside it "
                "(file:NAME or file:DIR/NAME, without '..' or a leading '/')"
            )
        return value

    def covers(self, kind: Literal["key", "team"], scope_id: str, limit: AlertLimit) -> bool:
        if limit not in self.limits:
            return False
        scopes = self.scopes
        if scopes == "all":
            return True
        if scopes == "keys" or scopes == "teams":
            return scopes == kind + "s"
        return scope_id in scopes


class AlertsFile(_Frozen):
    """alerts.yaml."""

    alerts: tuple[AlertRule, ...] = ()
    """Rules, first match wins per scope and limit; none (or no file): no alerts."""

    def rule_for(
        self, kind: Literal["key", "team"], scope_id: str, limit: AlertLimit
    ) -> AlertRule | None:
        for rule in self.alerts:
            if rule.covers(kind, scope_id, limit):
                return rule
        return None
