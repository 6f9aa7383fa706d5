"""Messages that travel up: from IO workers to the app, and from views to the app."""

from __future__ import annotations

from dataclasses import dataclass, field

from textual.message import Message

from gateway.payloads import Status, Usage
from policies.models import Key, Policy
from tui.policy_history import HistoryEntry


@dataclass
class GatewayPolled(Message):
    """A poll of /admin/api/status and /admin/api/usage; `error` when it failed."""

    status: Status | None
    usage: Usage | None
    error: str | None = None


@dataclass
class RepoLoaded(Message):
    """The watched ref's commit, policy and history (after it moved, or at start)."""

    head: str | None
    policy: Policy | None
    history: list[HistoryEntry] = field(default_factory=list)
    error: str | None = None
    """Why the policy at `head` cannot be shown (it does not validate, or cannot be read)."""


@dataclass
class EditRequested(Message):
    """A view asks for an edit; the app opens the form and keeps the draft."""

    action: str
    """key.create, key.edit, key.toggle, key.rotate, route.create, route.edit,
    tier.create, tier.edit, team.create, team.edit, key.move"""
    subject: str | None = None
    """The key id, route, tier or team name (None for create; key.move: the team)."""
    key: Key | None = None
    """The key as committed, for forms that start from its values."""


@dataclass
class RollbackRequested(Message):
    """The Policy tab asks to roll the watched ref back to `commit` (reviewed first)."""

    commit: str
