"""Forms for a team (owner, parent, model ceiling, limits and USD budgets) and for moving a
key into a team."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from textual.suggester import SuggestFromList
from textual.widgets import Input

from policies.models import Key, Team
from tui import policy_ops
from tui.policy_ops import Edit
from tui.screens.form import LIMIT_FIELDS, FormScreen, field

BUDGET_FIELDS = (("usd_per_day", "USD/day"), ("usd_per_month", "USD/month"))


class TeamFormScreen(FormScreen):
    """`team` None creates one; else the form starts from the team's committed values and
    the edit carries only what changed."""

    def __init__(self, name: str | None, team: Team | None, teams: list[str]) -> None:
        super().__init__()
        self.team_name, self.team = name, team
        self.teams = [t for t in teams if t != name]
        self.heading = f"Edit team {name}" if name else "New team"

    def form_fields(self) -> list[tuple[str, Input]]:
        team = self.team
        limits = team.limits.model_dump(exclude_none=True) if team else {}
        models = ", ".join(team.models) if team and team.models is not None else None
        rows = [
            ("name", field("f-name", self.team_name, "e.g. search", disabled=bool(team))),
            ("owner", field("f-owner", team.owner if team else None, "who to ask (email)")),
            (
                "parent",
                field(
                    "f-parent",
                    team.parent if team else None,
                    "empty: a top-level team",
                    suggester=SuggestFromList(self.teams, case_sensitive=False),
                ),
            ),
            ("models", field("f-models", models, "route globs at most (empty: all)")),
        ]
        for name, label in (*LIMIT_FIELDS, *BUDGET_FIELDS):
            rows.append((label, field(f"f-{name}", limits.get(name), "empty: not limited")))
        return rows

    def build(self) -> Edit:
        values: dict[str, Any] = {
            "owner": self.text("f-owner") or None,
            "parent": self.text("f-parent") or None,
            "models": _globs(self.text("f-models")),
        }
        limits: dict[str, int | Decimal | None] = {**self.limits(), **self.budgets()}
        if self.team is None:
            name = self.text("f-name")
            if not name:
                raise ValueError("give the team a name, e.g. search")
            given = {k: v for k, v in limits.items() if v is not None}
            return policy_ops.create_team(name, limits=given or None, **values)
        assert self.team_name is not None
        return _changes(self.team_name, self.team, values, limits)

    def budgets(self) -> dict[str, Decimal | None]:
        return {name: self.amount(f"f-{name}", label) for name, label in BUDGET_FIELDS}

    def amount(self, field_id: str, label: str) -> Decimal | None:
        raw = self.text(field_id).removeprefix("$").replace("_", "").replace(",", "")
        if not raw:
            return None
        try:
            value = Decimal(raw)
        except InvalidOperation:
            value = Decimal(-1)
        if not value.is_finite() or value < 0:
            raise ValueError(f"{label} must be US dollars of 0 or more, e.g. 25 or 2.5")
        return value


class MoveKeyScreen(FormScreen):
    """Put a key in a team (empty team: in none)."""

    heading = "Move a key to a team"

    def __init__(self, keys: list[Key], teams: list[str], team: str | None) -> None:
        super().__init__()
        self.keys, self.teams, self.team = keys, teams, team

    def form_fields(self) -> list[tuple[str, Input]]:
        ids = [k.id for k in self.keys]
        return [
            ("key", field("f-key", None, "key id", suggester=SuggestFromList(ids))),
            (
                "team",
                field(
                    "f-team",
                    self.team,
                    "empty: in no team",
                    suggester=SuggestFromList(self.teams, case_sensitive=False),
                ),
            ),
        ]

    def build(self) -> Edit:
        key_id, team = self.text("f-key"), self.text("f-team") or None
        key = next((k for k in self.keys if k.id == key_id), None)
        if key is None:
            raise ValueError(f"no key '{key_id}' in the policy: give a key id")
        if key.team == team:
            where = f"in team {team}" if team else "in no team"
            raise ValueError(f"key {key_id} is {where} already")
        return policy_ops.move_key(key_id, team)


def _globs(text: str) -> list[str] | None:
    globs = [g for g in text.replace(",", " ").split() if g]
    return globs or None


def _changes(
    name: str, team: Team, values: dict[str, Any], limits: dict[str, int | Decimal | None]
) -> Edit:
    """Only what differs from the committed team, so the diff says exactly that."""
    current = {
        "owner": team.owner,
        "parent": team.parent,
        "models": list(team.models) if team.models is not None else None,
    }
    changed = {k: v for k, v in values.items() if current[k] != v}
    old = team.limits.model_dump()
    limit_changes = {k: v for k, v in limits.items() if old.get(k) != v}
    if limit_changes:
        changed["limits"] = limit_changes
    if not changed:
        raise ValueError("nothing changed: edit a field, or press esc")
    return policy_ops.update_team(name, **changed)
