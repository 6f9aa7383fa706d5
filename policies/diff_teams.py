"""`policy diff` for teams.yaml: teams added and removed, parents, owners, limits and budgets
("team `search`: monthly budget **raised** from $5,000 to $8,000"), model ceilings."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from policies.diff_words import Change, code, codes, from_to, limit_steps, limits_text, plural
from policies.models import Key, Team


def team_changes(
    old: Mapping[str, Team], new: Mapping[str, Team], keys: tuple[Key, ...]
) -> Iterator[Change]:
    """`keys`: the new revision's keys (members are named where a team is added or removed)."""
    for name in sorted(old.keys() | new.keys()):
        was, now = old.get(name), new.get(name)
        members = sorted(k.id for k in keys if k.team == name)
        if was is None and now is not None:
            text = f"**Added** team {code(name)}: {_facts(now)}{_members(members)}."
            yield Change("Teams", name, "team added", text)
        elif now is None:
            yield Change("Teams", name, "team removed", f"**Removed** team {code(name)}.")
        elif was is not None:
            yield from _changed(name, was, now)


def _facts(team: Team) -> str:
    facts = []
    if team.parent:
        facts.append(f"parent {code(team.parent)}")
    if team.owner:
        facts.append(f"owner {code(team.owner)}")
    facts.append(limits_text(team.limits))
    facts.append("all models" if team.models is None else "models at most " + codes(team.models))
    return ", ".join(facts)


def _members(ids: list[str]) -> str:
    return f", {plural(len(ids), 'key')}: {codes(ids)}" if ids else ", no keys yet"


def _changed(name: str, was: Team, now: Team) -> Iterator[Change]:
    label = f"Team {code(name)}"
    if was.parent != now.parent:
        text = f"{label}: parent {from_to(was.parent, now.parent, none='(top level)')}"
        yield Change("Teams", name, "team parent changed", text + ".")
    if was.owner != now.owner:
        text = f"{label}: owner {from_to(was.owner, now.owner)}."
        yield Change("Teams", name, "team changed", text)
    for _, words, kind in limit_steps(was.limits, now.limits):
        yield Change("Teams", name, kind, f"{label}: {words}.")
    if was.models != now.models:
        yield _ceiling(name, label, was.models, now.models)
    if was.description != now.description:
        yield Change("Teams", name, "team changed", f"{label}: description changed.")


def _ceiling(
    name: str, label: str, was: tuple[str, ...] | None, now: tuple[str, ...] | None
) -> Change:
    if now is None:
        text = f"model ceiling **removed** (was {codes(was or ())}): its keys may use any route"
        return Change("Teams", name, "model access widened", f"{label}: {text}.")
    if was is None:
        text = f"model ceiling **set** to {codes(now)} (was all routes)"
        return Change("Teams", name, "model access narrowed", f"{label}: {text}.")
    added = [m for m in now if m not in was]
    removed = [m for m in was if m not in now]
    parts = []
    if added:
        parts.append(f"now also {codes(added)}")
    if removed:
        parts.append(f"no longer {codes(removed)}")
    kind = "model access narrowed" if removed else "model access widened"
    return Change("Teams", name, kind, f"{label}: model ceiling changed: {'; '.join(parts)}.")
