"""Review and commit the pending edits: the diff, what `policy check` says, message, branch.

Commit is refused while the check reports problems, so the UI never writes an invalid
policy. If the watched ref moved since the edits started, the operator is told and offered
to re-apply the edits on the new head and review the new diff.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Footer, Input, Label, Markdown, Static

from policies.git_write import PushFailed
from policies.problems import PolicyInvalid, PolicyRepoError, Problem
from tui import cells, policy_ops
from tui.policy_ops import Committed
from tui.screens.confirm import ConfirmScreen

MAX_PROBLEMS_SHOWN = 6


@dataclass(frozen=True)
class ReviewOutcome:
    committed: Committed | None = None
    discarded: bool = False
    push_error: str | None = None


class Reviewable(Protocol):
    """What the review shows and commits: pending edits (policy_ops.Draft) or a rollback
    (tui.policy_rollback.RollbackDraft)."""

    repo_path: Path
    ref: str

    @property
    def base(self) -> str: ...

    @property
    def descriptions(self) -> list[str]: ...

    def __len__(self) -> int: ...

    def review_title(self) -> str: ...

    def commit_message(self) -> str: ...

    def preview(self) -> tuple[str, list[Problem]]: ...

    def moved_to(self) -> str | None: ...

    def reapply_on_head(self) -> None: ...

    def commit(self, message: str, author: str | None, branch: str | None = None) -> Committed: ...


class ReviewScreen(ModalScreen[ReviewOutcome | None]):
    """Dismissed with None to keep editing, or with what was committed or discarded."""

    BINDINGS = [
        Binding("ctrl+s", "commit", "Commit"),
        Binding("escape", "keep", "Keep editing"),
        Binding("ctrl+d", "discard", "Discard edits", priority=True),
    ]

    def __init__(self, draft: Reviewable, author: str, can_push: bool) -> None:
        super().__init__()
        self.draft, self.author, self.can_push = draft, author, can_push
        self.problems: list[Problem] = []
        self.checked = False
        self.committing = False
        """While a commit runs the screen stays: its outcome (and secrets) must be seen."""

    def compose(self) -> ComposeResult:
        branch = self.draft.ref.removeprefix("refs/heads/")
        with Vertical(classes="dialog review"):
            yield Label("", id="review-title", classes="dialog-title")
            with VerticalScroll(id="review-diff"):
                yield Markdown("checking...", id="review-markdown", open_links=False)
            yield Static("", id="review-problems")
            with Grid(classes="form-grid"):
                yield Label("message", classes="form-label")
                yield Input(
                    self.draft.commit_message(),
                    id="f-message",
                    compact=True,
                )
                yield Label("author", classes="form-label")
                yield Input(self.author, id="f-author", compact=True)
                yield Label("branch", classes="form-label")
                yield Input(
                    placeholder=f"empty: commit on {branch}; or a new branch for a pull request",
                    id="f-branch",
                    compact=True,
                )
            with Horizontal(classes="buttons"):
                yield Button(
                    "Commit ^s", variant="success", id="commit", disabled=True, compact=True
                )
                yield Button("Keep editing esc", id="keep", compact=True)
                yield Button("Discard ^d", variant="error", id="discard", compact=True)
                yield Checkbox(
                    "push to origin",
                    value=False,
                    id="push",
                    compact=True,
                )
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#push", Checkbox).display = self.can_push  # no origin: nothing to push
        self.query_one("#f-message", Input).focus()
        self._check()

    # checking -----------------------------------------------------------------------------

    @work(exclusive=True, group="review-check")
    async def _check(self) -> None:
        markdown, problems = await asyncio.to_thread(self.draft.preview)
        self.problems, self.checked = problems, True
        self.query_one("#review-title", Label).update(cells.plain(self.draft.review_title()))
        await self.query_one("#review-markdown", Markdown).update(markdown)
        self._show_problems()

    def _show_problems(self) -> None:
        box = self.query_one("#review-problems", Static)
        if not self.problems:
            box.update(Text("✓ policy check passes: ready to commit", style="green"))
        else:
            text = Text(f"✗ {len(self.problems)} problem(s); commit is blocked:", style="bold red")
            for problem in self.problems[:MAX_PROBLEMS_SHOWN]:
                text.append(f"\n  {cells.message(problem)}", style="red")
            box.update(text)
        self.query_one("#commit", Button).disabled = bool(self.problems)

    # actions ------------------------------------------------------------------------------

    @on(Input.Submitted)
    @on(Button.Pressed, "#commit")
    def action_commit(self) -> None:
        if not self.checked or self.committing:
            return
        if self.problems:
            self.app.bell()
            self.notify("Fix the problems first: nothing was committed.", severity="error")
            return
        message = self.query_one("#f-message", Input).value.strip()
        if not message:
            self.notify("Write a commit message.", severity="warning")
            return
        author = self.query_one("#f-author", Input).value.strip()
        branch = self.query_one("#f-branch", Input).value.strip()
        push = self.query_one("#push", Checkbox).value
        self.committing = True
        self._commit(message, author, branch, push)

    @on(Button.Pressed, "#keep")
    def action_keep(self) -> None:
        if not self.committing:
            self.dismiss(None)

    @on(Button.Pressed, "#discard")
    def action_discard(self) -> None:
        if self.committing:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.dismiss(ReviewOutcome(discarded=True))

        question = f"Throw away {len(self.draft)} pending edit(s)? Nothing was committed."
        self.app.push_screen(ConfirmScreen("Discard edits", question, "Discard", "Keep"), answered)

    @work(exclusive=True, group="review-commit")
    async def _commit(self, message: str, author: str, branch: str, push: bool) -> None:
        try:
            await self._commit_or_explain(message, author, branch, push)
        finally:
            self.committing = False

    async def _commit_or_explain(self, message: str, author: str, branch: str, push: bool) -> None:
        draft = self.draft
        if not branch:
            moved = await asyncio.to_thread(draft.moved_to)
            if moved is not None:
                await self._offer_reapply(moved)
                return
        try:
            committed = await asyncio.to_thread(draft.commit, message, author, branch or None)
        except PolicyInvalid as exc:
            self.problems = exc.problems
            self._show_problems()
            return
        except (PolicyRepoError, ValueError) as exc:
            self.notify(str(exc), title="Not committed", severity="error", timeout=10)
            return
        push_error = None
        if push:
            try:
                await asyncio.to_thread(policy_ops.push_ref, draft.repo_path, committed.result.ref)
            except PushFailed as exc:
                push_error = str(exc)
        self.dismiss(ReviewOutcome(committed=committed, push_error=push_error))

    async def _offer_reapply(self, moved: str) -> None:
        draft = self.draft
        question = (
            f"{draft.ref} moved to {moved[:12]} since these edits started (someone else "
            "committed). Re-apply the edits on the new head and review the new diff?"
        )
        confirm = ConfirmScreen("The watched ref moved", question, "Re-apply", "Not now")
        if not await self.app.push_screen_wait(confirm):
            return
        suggested = draft.commit_message()
        try:
            await asyncio.to_thread(draft.reapply_on_head)
        except PolicyRepoError as exc:
            self.notify(str(exc), title="Cannot re-apply", severity="error", timeout=10)
            return
        message = self.query_one("#f-message", Input)
        if message.value == suggested:  # not the operator's words: say what it does now
            message.value = draft.commit_message()
        self.checked = False
        self.query_one("#commit", Button).disabled = True
        self._check()
        self.notify(f"Re-applied on {draft.base[:12]}: review the new diff, then commit.")
