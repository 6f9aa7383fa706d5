"""Create a client key, or change one's owner, tier, model globs, limits and expiry."""

from __future__ import annotations

from typing import Any

from textual.suggester import SuggestFromList
from textual.widgets import Input

from policies.models import Key
from tui import policy_ops
from tui.policy_ops import Edit
from tui.screens.form import LIMIT_FIELDS, FormScreen, field


class KeyFormScreen(FormScreen):
    """`key` None creates a key; else the form starts from the key's committed values."""

    def __init__(self, key: Key | None, tiers: list[str]) -> None:
        super().__init__()
        self.editing = key
        self.tiers = tiers
        self.heading = f"Edit key {key.id}" if key else "New client key (its secret is shown once)"

    def form_fields(self) -> list[tuple[str, Input]]:
        key = self.editing
        limits = key.limits.model_dump() if key and key.limits else {}
        tiers = SuggestFromList(self.tiers, case_sensitive=False)
        rows = [
            ("id", field("f-id", key.id if key else None, "e.g. search-team", disabled=bool(key))),
            ("owner", field("f-owner", key.owner if key else None, "who to ask (email)")),
            ("tier", field("f-tier", key.tier if key else None, "empty: default", suggester=tiers)),
            (
                "models",
                field(
                    "f-models",
                    ", ".join(key.models) if key and key.models is not None else None,
                    "route globs, e.g. gpt-4o*, claude-* (empty: all)",
                ),
            ),
        ]
        for name, label in LIMIT_FIELDS:
            rows.append((label, field(f"f-{name}", limits.get(name), "empty: tier's")))
        expires = key.expires.isoformat() if key and key.expires else None
        rows.append(("expires", field("f-expires", expires, "YYYY-MM-DD (empty: never)")))
        return rows

    def build(self) -> Edit:
        values: dict[str, Any] = {
            "owner": self.text("f-owner") or None,
            "tier": self.text("f-tier") or None,
            "models": _globs(self.text("f-models")),
            "expires": policy_ops.parse_date(self.text("f-expires")),
        }
        limits = self.limits()
        if self.editing is None:
            key_id = self.text("f-id")
            if not key_id:
                raise ValueError("give the key an id, e.g. search-team")
            given = {k: v for k, v in limits.items() if v is not None}
            return policy_ops.create_key(key_id, limits=given or None, **values)
        return _changes(self.editing, values, limits)


def _globs(text: str) -> list[str] | None:
    globs = [g for g in text.replace(",", " ").split() if g]
    return globs or None


def _changes(key: Key, values: dict[str, Any], limits: dict[str, int | None]) -> Edit:
    """Only what differs from the committed key, so the diff says exactly that."""
    current = {
        "owner": key.owner,
        "tier": key.tier,
        "models": list(key.models) if key.models is not None else None,
        "expires": key.expires,
    }
    changed = {name: value for name, value in values.items() if current[name] != value}
    old_limits = key.limits.model_dump() if key.limits else {}
    limit_changes = {n: v for n, v in limits.items() if old_limits.get(n) != v}
    if limit_changes:
        changed["limits"] = limit_changes
    if not changed:
        raise ValueError("nothing changed: edit a field, or press esc")
    return policy_ops.update_key(key.id, **changed)
