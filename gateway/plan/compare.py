"""Replay one trace through OLD and NEW side by side and count what changes, per key and team.

One pass, row by row: memory grows with keys, models and limit windows, never with rows.
Keys that OLD and NEW answer alike (groups.py) are replayed once, through OLD.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from gateway.limits.refusals import usd
from gateway.plan.counters import ShadowHits
from gateway.plan.groups import unchanged_keys
from gateway.plan.refusals import WINDOW_OF, Refusal, refusal
from gateway.plan.replay import NOT_REPLAYED_ERRORS, PolicyReplay
from gateway.plan.trace import TraceRow
from policies.scopes import TEAM_PREFIX
from policies.snapshot import Snapshot


@dataclass(slots=True)
class KeyChange:
    """What changes for one key."""

    key_id: str
    team: str | None
    requests: int = 0
    old_admitted: int = 0
    newly_refused: Counter[Refusal] = field(default_factory=Counter)
    newly_admitted: Counter[Refusal] = field(default_factory=Counter)
    """By the refusal OLD gave them."""
    old_micros: int = 0
    new_micros: int = 0
    old_unpriced: int = 0
    new_unpriced: int = 0


@dataclass(slots=True)
class LimitHit:
    """A limit of NEW that refuses requests OLD admitted."""

    scope: str
    limit: str
    value: str = ""
    """The limit as NEW sets it on that scope (`10`, `$5`)."""
    refused: int = 0
    first_ts: float = 0.0
    windows: Counter[str] = field(default_factory=Counter)
    """Newly refused requests per window (minute, UTC day or month, by the limit's period)."""


@dataclass(slots=True)
class ShadowHit:
    """A shadow limit that would refuse requests if it were enforced (`enforce: on`); shadow
    limits never refuse, so these requests are served and are not counted as refused."""

    scope: str
    limit: str
    value: str = ""
    """The shadow limit as NEW sets it on that scope (empty when NEW has none there)."""
    would_refuse: int = 0
    """Requests NEW admits that this shadow limit of NEW would refuse."""
    old_would_refuse: int = 0
    """The same under OLD's shadow limit of that name and scope (0 when OLD has none)."""
    first_ts: float = 0.0
    windows: Counter[str] = field(default_factory=Counter)
    """NEW's would-be refusals per window (minute, UTC day or month, by the limit's period)."""


@dataclass(slots=True)
class LostModel:
    """A model a key used under OLD and may no longer use under NEW."""

    key_id: str
    model: str
    reason: Refusal
    requests: int = 0


@dataclass(slots=True)
class Plan:
    old_commit: str
    new_commit: str
    source: str
    since: float
    rows: int = 0
    replayed: int = 0
    first_ts: float | None = None
    last_ts: float | None = None
    keys: dict[str, KeyChange] = field(default_factory=dict)
    limits: dict[tuple[str, str], LimitHit] = field(default_factory=dict)
    lost: dict[tuple[str, str], LostModel] = field(default_factory=dict)
    shadow: dict[tuple[str, str], ShadowHit] = field(default_factory=dict)
    """By (scope, limit): the shadow limits that would refuse if enforced."""
    still_refused_differently: int = 0
    """Refused by both, for a different reason."""

    @property
    def old_admitted(self) -> int:
        return sum(k.old_admitted for k in self.keys.values())

    @property
    def newly_refused(self) -> int:
        return sum(k.newly_refused.total() for k in self.keys.values())

    @property
    def newly_admitted(self) -> int:
        return sum(k.newly_admitted.total() for k in self.keys.values())

    @property
    def refused_share(self) -> float:
        """Newly refused requests over the replayed requests OLD admits (the denominator of
        --fail-on refusals>N%); 0 when OLD admits none."""
        base = self.old_admitted
        return self.newly_refused / base if base else 0.0


def build_plan(
    old: Snapshot, new: Snapshot, rows: Iterable[TraceRow], source: str, since: float
) -> Plan:
    """Replay `rows` (arrival order) through both policies and collect the differences."""
    plan = Plan(old.commit, new.commit, source, since)
    before, after = PolicyReplay(old), PolicyReplay(new)
    keys, step_old, step_new = plan.keys, before.step, after.step
    alike = unchanged_keys(old, new)
    count = replayed = 0
    first_ts: float | None = None
    ts = 0.0
    for row in rows:
        count += 1
        key_id = row.key_id
        if key_id is None or row.model is None or row.error in NOT_REPLAYED_ERRORS:
            continue  # not replayable(row)
        replayed += 1
        ts = row.ts
        if first_ts is None:
            first_ts = ts
        old_refusal, old_cost, old_shadow = step_old(row)
        if key_id in alike:  # replayed once: NEW answers as OLD (groups.py)
            new_refusal, new_cost, new_shadow = old_refusal, old_cost, old_shadow
        else:
            new_refusal, new_cost, new_shadow = step_new(row)
        if old_shadow or new_shadow:
            _note_shadow(plan, after, row, old_shadow, new_shadow)
        change = keys.get(key_id)
        if change is None:
            change = keys[key_id] = KeyChange(key_id, _team_of(before, after, row))
        change.requests += 1
        if old_refusal is None:
            change.old_admitted += 1
            if old_cost is None:
                change.old_unpriced += 1
            else:
                change.old_micros += old_cost
        if new_refusal is None:
            if new_cost is None:
                change.new_unpriced += 1
            else:
                change.new_micros += new_cost
        if new_refusal is old_refusal:
            continue
        if old_refusal is None:
            assert new_refusal is not None
            change.newly_refused[new_refusal] += 1
            _note_refusal(plan, after, row, new_refusal)
        elif new_refusal is None:
            change.newly_admitted[old_refusal] += 1
        else:
            plan.still_refused_differently += 1
    before.finish()
    after.finish()
    plan.rows, plan.replayed = count, replayed
    plan.first_ts, plan.last_ts = first_ts, (ts if first_ts is not None else None)
    return plan


def _team_of(before: PolicyReplay, after: PolicyReplay, row: TraceRow) -> str | None:
    key_id = row.key_id
    assert key_id is not None
    principal = after.principal(key_id) or before.principal(key_id)
    return principal.team if principal is not None else row.team


def _note_refusal(plan: Plan, after: PolicyReplay, row: TraceRow, why: Refusal) -> None:
    if why.is_limit:
        hit = plan.limits.get((why.scope, why.reason))
        if hit is None:
            value = _limit_value(after, row, why)
            hit = plan.limits[(why.scope, why.reason)] = LimitHit(why.scope, why.reason, value)
            hit.first_ts = row.ts
        hit.refused += 1
        hit.windows[window_of(WINDOW_OF[why.reason], row.ts)] += 1
    elif why.status in (403, 404):
        model = row.model
        assert row.key_id is not None and model is not None
        lost = plan.lost.get((row.key_id, model))
        if lost is None:
            lost = plan.lost[(row.key_id, model)] = LostModel(row.key_id, model, why)
        lost.requests += 1


def _note_shadow(
    plan: Plan, after: PolicyReplay, row: TraceRow, old_hits: ShadowHits, new_hits: ShadowHits
) -> None:
    for scope_id, limit in old_hits:
        hit = _shadow_hit(plan, after, row, scope_id, limit)
        hit.old_would_refuse += 1
    for scope_id, limit in new_hits:
        hit = _shadow_hit(plan, after, row, scope_id, limit)
        if not hit.would_refuse:
            hit.first_ts = row.ts
        hit.would_refuse += 1
        hit.windows[window_of(WINDOW_OF[limit], row.ts)] += 1


def _shadow_hit(
    plan: Plan, after: PolicyReplay, row: TraceRow, scope_id: str, limit: str
) -> ShadowHit:
    label = scope_label(scope_id)
    hit = plan.shadow.get((label, limit))
    if hit is None:
        value = _limit_value(after, row, refusal(429, limit, label), shadow=True)
        hit = plan.shadow[(label, limit)] = ShadowHit(label, limit, value)
    return hit


@functools.lru_cache(maxsize=4096)
def scope_label(scope_id: str) -> str:
    """How refusals name a scope id: `key 'k'`, `team 'search'` (see Scope.label)."""
    if scope_id.startswith(TEAM_PREFIX):
        return f"team '{scope_id.removeprefix(TEAM_PREFIX)}'"
    return f"key '{scope_id}'"


def _limit_value(after: PolicyReplay, row: TraceRow, why: Refusal, shadow: bool = False) -> str:
    """The limit (enforced, or shadow) as NEW sets it on the refusing scope."""
    principal = after.principal(row.key_id or "")
    for scope in principal.scopes if principal is not None else ():
        if scope.label != why.scope:
            continue
        day, month = (
            (scope.shadow_usd_per_day, scope.shadow_usd_per_month)
            if shadow
            else (scope.usd_per_day, scope.usd_per_month)
        )
        if why.reason == "usd_per_day" and day is not None:
            return usd(day)
        if why.reason == "usd_per_month" and month is not None:
            return usd(month)
        limits = scope.shadow if shadow else scope.limits
        value = getattr(limits, why.reason, None) if limits is not None else None
        return "" if value is None else f"{value:,}"
    return ""


def window_of(period: str, ts: float) -> str:
    """The UTC minute (2025-06-01T12:03Z), day or month a time falls in."""
    return _window_label(period, int(ts // 60 if period == "minute" else ts // 86400))


@functools.lru_cache(maxsize=4096)
def _window_label(period: str, bucket: int) -> str:
    if period == "minute":
        return dt.datetime.fromtimestamp(bucket * 60, dt.UTC).strftime("%Y-%m-%dT%H:%MZ")
    day = dt.datetime.fromtimestamp(bucket * 86400, dt.UTC)
    return day.strftime("%Y-%m-%d" if period == "day" else "%Y-%m")
