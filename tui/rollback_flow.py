"""Roll the watched ref back from the terminal UI, through the review screen.

Two ways in: `b` on a Policy tab history row ("roll back to this commit"), and `R` anywhere
while the gateway reports the watched ref's head as rejected: it rolls back to the commit the
gateway still serves, and once the gateway applies the rollback its state is "synced" again.
Either way the review shows what the rollback changes (the policy diff from the head to the
target) and what `policy check` says, and commits only on ctrl+s (or Enter).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from policies.problems import PolicyRepoError
from tui import policy_ops
from tui.policy_rollback import RollbackDraft
from tui.screens.review import ReviewOutcome, ReviewScreen

if TYPE_CHECKING:
    from tui.app import ModelGateApp


class RollbackFlow:
    def __init__(self, app: ModelGateApp, repo: Path | None, ref: str) -> None:
        self.app, self.repo, self.ref = app, repo, ref

    def start(self, target: str) -> None:
        """Plan the rollback to `target` (in a worker: it reads the repository), then review."""
        app = self.app
        if self.repo is None:
            app.notify("Read-only: start with --repo PATH to roll back.", severity="warning")
            return
        if app.edits.pending:
            app.notify(
                f"Commit or discard the {app.edits.pending} pending edit(s) first (c): a "
                "rollback is reviewed and committed on its own.",
                severity="warning",
            )
            return
        app.run_worker(self._review(self.repo, target), group="edit")

    async def _review(self, repo: Path, target: str) -> None:
        try:
            draft = await asyncio.to_thread(RollbackDraft, repo, self.ref, target)
        except PolicyRepoError as exc:
            self.app.notify(str(exc), title="Cannot roll back", severity="error", timeout=10)
            return
        author = await asyncio.to_thread(policy_ops.operator_author, repo)
        can_push = await asyncio.to_thread(policy_ops.has_origin, repo)
        self.app.push_screen(ReviewScreen(draft, author, can_push), self._reviewed)

    def _reviewed(self, outcome: ReviewOutcome | None) -> None:
        app = self.app
        if outcome is None or outcome.discarded:
            app.notify("Rollback cancelled; nothing was committed.", timeout=3)
            return
        assert outcome.committed is not None
        result = outcome.committed.result
        where = result.ref.removeprefix("refs/heads/")
        note = f"Rolled back: commit {result.commit[:12]} on {where}."
        if result.ref != self.ref:
            note += f" Open a pull request from {where}."
        app.notify(note, title="Committed", timeout=8)
        if outcome.push_error:
            app.notify(outcome.push_error, title="Not pushed", severity="error", timeout=12)
        if result.ref == self.ref:
            app.sync_gateway()
        app.action_refresh()
