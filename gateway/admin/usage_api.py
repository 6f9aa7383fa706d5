"""GET /admin/api/usage: per key and team, rate, quota and budget use against limits; per
model, totals.

Keys are the applied policy's keys (`?key=ID` for one). Rate and quota use come from the
limiter's store of record (Redis when shared); request, error and token totals since this
process started come from the recorder's counts. Spend today and this month (UTC), per key
and per team, is summed from the request log, which every worker writes (about a second
behind); requests with no known price are counted apart, never as $0. Teams (every team of
the policy, left out with `?key=`) carry their parent, owner, member keys, and their scope's
live use against its limits and budgets from the limiter (`limits`, like a key's). A team's
spend includes its sub-teams', as its budgets count them (the policy's parent links today).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import sqlite3

from sanic import HTTPResponse, Request

from gateway.admin.common import commit_of, refused, state_of
from gateway.admin.shadow_usage import shadow_rows
from gateway.errors import NotFound, Protocol
from gateway.payloads import KeyUsage, ModelUsage, Spend, SpendUse, TeamSpend, Usage, utc_iso
from gateway.pricing import usd
from gateway.responses import error_response, json_response, request_id_of
from gateway.state import AppState
from gateway.usage.request_report import PeriodSpend, spend
from gateway.usage.traffic import Totals
from policies.scopes import TEAM_PREFIX
from policies.snapshot import Principal, Snapshot

log = logging.getLogger("modelgate.admin")

FETCH_CONCURRENCY = 32
"""Keys read from the limiter at once (one Redis round trip each when shared)."""


class _Periods:
    """Today and this month (UTC), and each key's and team's spend in them."""

    def __init__(self, now: dt.datetime) -> None:
        day = now.replace(hour=0, minute=0, second=0, microsecond=0)
        month = day.replace(day=1)
        self.day, self.month = day.date().isoformat(), month.strftime("%Y-%m")
        self.starts = (day.timestamp(), month.timestamp())
        self.keys: dict[str, tuple[PeriodSpend, PeriodSpend]] = {}
        self.teams: dict[str, tuple[PeriodSpend, PeriodSpend]] = {}

    async def read(self, state: AppState) -> None:
        path = state.recorder.request_log.path
        try:
            self.keys = await asyncio.to_thread(spend, path, "key_id", *self.starts)
            self.teams = await asyncio.to_thread(spend, path, "team", *self.starts)
        except sqlite3.Error as exc:  # the totals since start still answer
            log.warning("usage: reading spend from %s failed: %s", path.name, exc)

    def use(self, found: tuple[PeriodSpend, PeriodSpend] | None) -> SpendUse:
        day, month = found or (PeriodSpend(), PeriodSpend())
        return {"day": self._spend(self.day, day), "month": self._spend(self.month, month)}

    @staticmethod
    def _spend(period: str, got: PeriodSpend) -> Spend:
        return {
            "period": period,
            "cost_usd": usd(got.cost_micros),
            "requests": got.requests,
            "unpriced_requests": got.unpriced,
        }


async def _key_reports(
    state: AppState, principals: list[Principal], periods: _Periods
) -> list[KeyUsage]:
    per_key = state.recorder.traffic.per_key()
    gate = asyncio.Semaphore(FETCH_CONCURRENCY)

    async def one(principal: Principal) -> KeyUsage:
        async with gate:
            report = await state.limiter.fetch_usage(principal.key_id, principal.limits)
        return KeyUsage(
            **report,
            owner=principal.owner,
            disabled=principal.disabled,
            expires=principal.expires.isoformat() if principal.expires else None,
            since_start=per_key.get(principal.key_id, Totals()).as_dict(),
            spend=periods.use(periods.keys.get(principal.key_id)),
        )

    return list(await asyncio.gather(*(one(p) for p in principals)))


async def _team_reports(
    state: AppState, snapshot: Snapshot | None, periods: _Periods
) -> list[TeamSpend]:
    """Every team of the policy, with its members and live limits use, and any other team
    that spent this month (renamed or removed since)."""
    teams = snapshot.policy.teams if snapshot is not None else {}
    members: dict[str, list[str]] = {}
    for principal in snapshot.principals_by_hash.values() if snapshot is not None else ():
        if principal.team is not None:
            members.setdefault(principal.team, []).append(principal.key_id)
    gate = asyncio.Semaphore(FETCH_CONCURRENCY)

    async def one(name: str) -> TeamSpend:
        report: TeamSpend = {"team": name, "spend": periods.use(periods.teams.get(name))}
        team = teams.get(name)
        if team is not None:
            async with gate:
                live = await state.limiter.fetch_usage(TEAM_PREFIX + name, team.limits)
            report["parent"], report["owner"] = team.parent, team.owner
            report["keys"], report["limits"] = sorted(members.get(name, [])), live
        return report

    periods.teams = _rolled_up(periods.teams, {name: team.parent for name, team in teams.items()})
    names = sorted(set(teams) | set(periods.teams))
    return list(await asyncio.gather(*(one(name) for name in names)))


def _rolled_up(
    own: dict[str, tuple[PeriodSpend, PeriodSpend]], parents: dict[str, str | None]
) -> dict[str, tuple[PeriodSpend, PeriodSpend]]:
    """Each team's spend with its descendants' added (the request log names a key's own
    team only); the policy refuses parent cycles, and the walk stops at a repeat anyway."""
    total: dict[str, tuple[PeriodSpend, PeriodSpend]] = {}
    for team, periods in own.items():
        seen: set[str] = set()
        name: str | None = team
        while name is not None and name not in seen:
            seen.add(name)
            day, month = total.setdefault(name, (PeriodSpend(), PeriodSpend()))
            for into, add in ((day, periods[0]), (month, periods[1])):
                into.cost_micros += add.cost_micros
                into.requests += add.requests
                into.unpriced += add.unpriced
            name = parents.get(name)
    return total


async def usage(request: Request) -> HTTPResponse:
    denied = refused(request)
    if denied is not None:
        return denied
    state = state_of(request)
    rid, commit = request_id_of(request), commit_of(state)
    snapshot = state.policy.snapshot
    principals = sorted(
        snapshot.principals_by_hash.values() if snapshot else (), key=lambda p: p.key_id
    )
    wanted = request.args.get("key")
    if wanted is not None:
        principals = [p for p in principals if p.key_id == wanted]
        if not principals:
            err = NotFound(f"There is no key '{wanted}' in the applied policy.")
            return error_response(err, Protocol.OPENAI, rid, commit)
    models = [
        ModelUsage(model=model, provider=provider, **totals.as_dict())
        for (model, provider), totals in sorted(state.recorder.traffic.per_model(wanted).items())
    ]
    periods = _Periods(dt.datetime.now(dt.UTC))
    await periods.read(state)
    teams = await _team_reports(state, snapshot, periods) if wanted is None else []
    body: Usage = {
        "policy": commit,
        "since": utc_iso(state.started_at),
        "keys": await _key_reports(state, principals, periods),
        "models": models,
        "teams": teams,
    }
    body["shadow"] = await shadow_rows(state, principals, body["keys"])
    return json_response(body, rid, commit)
