"""From an operator's request to a commit: form, draft, review, secrets shown once, sync.

The app keeps one EditFlow; it owns the Draft of pending edits (tui.policy_ops), so edits
made in several tabs are reviewed and committed together.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from policies.models import Policy
from policies.problems import PolicyRepoError
from tui import policy_ops
from tui.messages import EditRequested
from tui.policy_ops import DEFAULT_TIER, Draft, Edit
from tui.screens.confirm import ConfirmScreen
from tui.screens.key_form import KeyFormScreen
from tui.screens.review import ReviewOutcome, ReviewScreen
from tui.screens.route_forms import RouteFormScreen, TierFormScreen
from tui.screens.secret import SecretScreen
from tui.screens.team_forms import MoveKeyScreen, TeamFormScreen

if TYPE_CHECKING:
    from tui.app import ModelGateApp

READ_ONLY = "Read-only: start with --repo PATH to edit the policy."


class EditFlow:
    def __init__(self, app: ModelGateApp, repo: Path | None, ref: str) -> None:
        self.app, self.repo, self.ref = app, repo, ref
        self.draft: Draft | None = None

    @property
    def pending(self) -> int:
        return len(self.draft) if self.draft is not None else 0

    def request(self, message: EditRequested, policy: Policy | None) -> None:
        """Open the form (or question) for `message`; its answer becomes a pending edit."""
        app = self.app
        if self.repo is None:
            app.notify(READ_ONLY, severity="warning")
            return
        action, subject, key = message.action, message.subject, message.key
        if action in ("key.edit", "key.toggle", "key.rotate") and key is None:
            app.notify(f"Key {subject} is not in the policy at {self.ref}.", severity="warning")
            return
        tiers = sorted(policy.limits.tiers) if policy else []
        if action == "key.create":
            app.push_screen(KeyFormScreen(None, tiers), self._chosen)
        elif action == "key.edit":
            app.push_screen(KeyFormScreen(key, tiers), self._chosen)
        elif action == "key.toggle" and key is not None:
            self.add(policy_ops.set_disabled(key.id, not key.disabled))
        elif action == "key.rotate" and key is not None:
            question = (
                f"Give key {key.id} a new secret? Once committed and applied, the old secret "
                "stops working; the new one is shown once."
            )
            confirm = ConfirmScreen(f"Rotate {key.id}", question, "Rotate", "Cancel")
            app.push_screen(
                confirm, lambda yes: self.add(policy_ops.rotate_key(key.id)) if yes else None
            )
        elif action in ("route.create", "route.edit"):
            route = policy.routes.get(subject) if policy and subject else None
            app.push_screen(RouteFormScreen(subject, route), self._chosen)
        elif action in ("tier.create", "tier.edit"):
            limits = None
            if policy is not None and subject is not None:
                tiers_now = policy.limits.tiers
                limits = (
                    policy.limits.default if subject == DEFAULT_TIER else tiers_now.get(subject)
                )
            app.push_screen(TierFormScreen(subject, limits), self._chosen)
        elif action.startswith("team.") or action == "key.move":
            self._team_form(action, subject, policy)

    def _team_form(self, action: str, subject: str | None, policy: Policy | None) -> None:
        """The Teams tab's forms: a new team, a team's limits, a key into a team."""
        teams = dict(policy.teams) if policy else {}
        if action == "team.create":
            self.app.push_screen(TeamFormScreen(None, None, sorted(teams)), self._chosen)
        elif action == "team.edit" and subject is not None:
            team = teams.get(subject)
            if team is None:
                self.app.notify(
                    f"Team {subject} is not in the policy at {self.ref}.", severity="warning"
                )
                return
            self.app.push_screen(TeamFormScreen(subject, team, sorted(teams)), self._chosen)
        elif action == "key.move":
            keys = list(policy.keys) if policy else []
            chosen = subject if subject in teams else None
            self.app.push_screen(MoveKeyScreen(keys, sorted(teams), chosen), self._chosen)

    def _chosen(self, edit: Edit | None) -> None:
        if edit is not None:
            self.add(edit)

    def add(self, edit: Edit) -> None:
        """Apply `edit` to the draft (in a worker: it reads the repository), then review."""
        self.app.run_worker(self._add(edit), group="edit")

    async def _add(self, edit: Edit) -> None:
        assert self.repo is not None
        try:
            if self.draft is None:
                self.draft = await asyncio.to_thread(Draft, self.repo, self.ref)
            await asyncio.to_thread(self.draft.apply, edit)
        except (PolicyRepoError, ValueError) as exc:
            self.app.notify(str(exc), title=f"Cannot {edit.description}", severity="error")
            return
        self.app.draft_changed()
        await self._review()

    def review(self) -> None:
        """Open the review of the pending edits (after reading who commits, in a worker)."""
        self.app.run_worker(self._review(), group="edit")

    async def _review(self) -> None:
        if self.draft is None or not len(self.draft):
            self.app.notify("No pending edits.", timeout=3)
            return
        assert self.repo is not None
        author = await asyncio.to_thread(policy_ops.operator_author, self.repo)
        can_push = await asyncio.to_thread(policy_ops.has_origin, self.repo)
        self.app.push_screen(ReviewScreen(self.draft, author, can_push), self._reviewed)

    def _reviewed(self, outcome: ReviewOutcome | None) -> None:
        app = self.app
        if outcome is None:  # keep editing: the draft stays
            app.draft_changed()
            return
        self.draft = None
        app.draft_changed()
        if outcome.discarded:
            app.notify("Pending edits discarded; nothing was committed.", timeout=3)
            return
        committed = outcome.committed
        assert committed is not None
        result = committed.result
        where = result.ref.removeprefix("refs/heads/")
        note = f"Committed {result.commit[:12]} on {where} ({', '.join(result.files)})."
        if result.retries:
            note += f" {self.ref} moved meanwhile: the edits were replayed on top."
        if result.ref != self.ref:
            note += f" Open a pull request from {where}."
        app.notify(note, title="Committed", timeout=8)
        if outcome.push_error:
            app.notify(outcome.push_error, title="Not pushed", severity="error", timeout=12)
        for new in reversed(committed.secrets):  # the first ends up on top
            app.push_screen(SecretScreen(new.key_id, new.secret, new.made))
        committed.secrets.clear()  # the screens hold the only copies now
        if result.ref == self.ref:
            app.sync_gateway()
        app.action_refresh()
