"""The `shadow` rows of GET /admin/api/usage: would-be refusals per scope (keys and teams).

A key's row already carries its `shadow` use (the limiter's usage report); a team's is read
here, once per team of the listed keys. A scope is listed while it has shadow limits, or its
shadow limits would have refused requests this month (so the counts stay visible after the
switch to `enforce: on`).
"""

from __future__ import annotations

import asyncio
from typing import TypeGuard

from gateway.payloads import KeyUsage, ScopeShadowUse, ShadowUse
from gateway.state import AppState
from policies.scopes import Scope
from policies.snapshot import Principal


async def shadow_rows(
    state: AppState, principals: list[Principal], keys: list[KeyUsage]
) -> list[ScopeShadowUse]:
    rows: list[ScopeShadowUse] = []
    for key in keys:
        shadow = key.get("shadow")
        if _listed(shadow):
            rows.append({"scope": key["key_id"], **shadow})
    teams: dict[str, Scope] = {}
    for principal in principals:
        for scope in principal.scopes:
            if scope.kind == "team":
                teams.setdefault(scope.id, scope)

    async def one(scope: Scope) -> ScopeShadowUse | None:
        limits = scope.limits.model_copy(update={"shadow": scope.shadow})
        shadow = (await state.limiter.fetch_usage(scope.id, limits)).get("shadow")
        return {"scope": scope.id, **shadow} if _listed(shadow) else None

    found = await asyncio.gather(*(one(teams[name]) for name in sorted(teams)))
    rows += [row for row in found if row is not None]
    return rows


def _listed(shadow: ShadowUse | None) -> TypeGuard[ShadowUse]:
    return shadow is not None and bool(shadow["limits"] or shadow["refusals_month"])
