"""`policy diff` for client keys and admin tokens."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from policies.diff_words import (
    Change,
    code,
    codes,
    effective_limits,
    from_to,
    limit_steps,
    limits_text,
)
from policies.models import Admin, Key, Policy


def key_changes(old: Policy, new: Policy) -> Iterator[Change]:
    before = {k.id: k for k in old.keys}
    after = {k.id: k for k in new.keys}
    for key_id in sorted(before.keys() | after.keys()):
        was, now = before.get(key_id), after.get(key_id)
        if was is None and now is not None:
            yield _key(key_id, "key added", f"**Added** key {code(key_id)}{_key_facts(now, new)}.")
        elif now is None:
            text = f"**Revoked** key {code(key_id)} (removed; its secret stops working)."
            yield _key(key_id, "key revoked", text)
        elif was is not None:
            yield from _key_changes(key_id, was, now, old, new)


def _key(key_id: str, kind: str, text: str) -> Change:
    return Change("Keys", key_id, kind, text)


def _key_facts(key: Key, policy: Policy) -> str:
    facts = []
    if key.owner:
        facts.append(f"owner {code(key.owner)}")
    if key.team:
        facts.append(f"team {code(key.team)}")
    tier = f"tier {code(key.tier)}" if key.tier else "default limits"
    facts.append(f"{tier} ({limits_text(effective_limits(key, policy))})")
    facts.append("all models" if key.models is None else "models " + codes(key.models))
    if key.expires:
        facts.append(f"expires {key.expires.isoformat()}")
    if key.disabled:
        facts.append("disabled")
    return ": " + ", ".join(facts)


def _key_changes(key_id: str, was: Key, now: Key, old: Policy, new: Policy) -> Iterator[Change]:
    name = f"Key {code(key_id)}"
    if was.disabled != now.disabled:
        verb = "**Disabled**" if now.disabled else "**Re-enabled**"
        yield _key(
            key_id,
            "key disabled" if now.disabled else "key re-enabled",
            f"{verb} key {code(key_id)}.",
        )
    if was.hash != now.hash:
        text = f"**Rotated** key {code(key_id)}: a new secret; the old one stops working."
        yield _key(key_id, "key rotated", text)
    if was.owner != now.owner:
        yield _key(key_id, "key changed", f"{name}: owner {from_to(was.owner, now.owner)}.")
    if was.team != now.team:
        yield _key(key_id, "key moved", f"{name}: {_team_move(was.team, now.team)}.")
    if was.tier != now.tier or was.limits != now.limits:
        yield from _key_limits(key_id, was, now, old, new)
    yield from _key_models(key_id, was.models, now.models)
    if was.expires != now.expires:
        yield _key(key_id, "expiry changed", f"{name}: {_expiry(was.expires, now.expires)}.")
    if was.description != now.description:
        yield _key(key_id, "key changed", f"{name}: description changed.")


def _key_limits(key_id: str, was: Key, now: Key, old: Policy, new: Policy) -> Iterator[Change]:
    name = f"Key {code(key_id)}"
    if was.tier != now.tier:
        tiers = from_to(was.tier, now.tier, none="(default limits)")
        yield _key(key_id, "key tier changed", f"{name}: tier {tiers}.")
    for _, text, kind in limit_steps(effective_limits(was, old), effective_limits(now, new)):
        yield _key(key_id, kind, f"{name}: {text}.")


def _key_models(
    key_id: str, was: tuple[str, ...] | None, now: tuple[str, ...] | None
) -> Iterator[Change]:
    name = f"Key {code(key_id)}"
    if was == now:
        return
    if now is None:
        yield _key(
            key_id,
            "model access widened",
            f"{name}: model access **widened** to all routes (was {codes(was or ())}).",
        )
    elif was is None:
        yield _key(
            key_id,
            "model access narrowed",
            f"{name}: model access **narrowed** from all routes to {codes(now)}.",
        )
    else:
        added = [m for m in now if m not in was]
        removed = [m for m in was if m not in now]
        if added:
            yield _key(
                key_id,
                "model access widened",
                f"{name}: model access **widened**: now also {codes(added)}.",
            )
        if removed:
            yield _key(
                key_id,
                "model access narrowed",
                f"{name}: model access **narrowed**: no longer {codes(removed)}.",
            )


def _team_move(was: str | None, now: str | None) -> str:
    if was is None:
        return f"**joined** team {code(now or '')} (was in no team)"
    if now is None:
        return f"**left** team {code(was)} (now in no team)"
    return f"**moved** from team {code(was)} to team {code(now)}"


def _expiry(was: dt.date | None, now: dt.date | None) -> str:
    if was is None and now is not None:
        return f"now expires on {now.isoformat()} (had no expiry)"
    if now is None and was is not None:
        return f"expiry removed (was {was.isoformat()}): the key no longer expires"
    assert was is not None and now is not None
    verb = "**extended**" if now > was else "**shortened**"
    return f"expiry {verb} from {was.isoformat()} to {now.isoformat()}"


def admin_changes(old: tuple[Admin, ...], new: tuple[Admin, ...]) -> Iterator[Change]:
    before, after = {a.id: a for a in old}, {a.id: a for a in new}
    for admin_id in sorted(before.keys() | after.keys()):
        was, now = before.get(admin_id), after.get(admin_id)
        name = f"admin token {code(admin_id)}"
        if was is None:
            yield Change("Admin tokens", admin_id, "admin token added", f"**Added** {name}.")
        elif now is None:
            text = f"**Revoked** {name} (removed)."
            yield Change("Admin tokens", admin_id, "admin token revoked", text)
        else:
            if was.disabled != now.disabled:
                verb = "**Disabled**" if now.disabled else "**Re-enabled**"
                kind = "admin token disabled" if now.disabled else "admin token re-enabled"
                yield Change("Admin tokens", admin_id, kind, f"{verb} {name}.")
            if was.hash != now.hash:
                yield Change(
                    "Admin tokens",
                    admin_id,
                    "admin token rotated",
                    f"**Rotated** {name}: the old token stops working.",
                )
