"""A rollback as the review screen sees a draft: a preview, a moved-ref check, a commit.

It holds one policies.rollback plan. When the watched ref moved while the operator was
reviewing, "re-apply" makes the plan again from the new head (what it undoes changes too);
a commit never lands on a head the operator did not review (compare-and-swap).
"""

from __future__ import annotations

from pathlib import Path

from policies import git_write
from policies.edit import EditRefused
from policies.problems import Problem
from policies.repo import open_repo
from policies.rollback import RollbackPlan, commit_rollback, plan_rollback
from tui import policy_ops
from tui.policy_ops import Committed


class RollbackDraft:
    """Rolling `ref` back to `target`; raises RollbackRefused (a PolicyRepoError) when the
    target is no ancestor of the head or has its policy already."""

    def __init__(self, repo_path: Path, ref: str, target: str) -> None:
        self.repo_path, self.ref, self.target = repo_path, ref, target
        self.plan: RollbackPlan = plan_rollback(repo_path, target, ref)

    @property
    def base(self) -> str:
        """The head the rollback is planned on."""
        return self.plan.head

    @property
    def descriptions(self) -> list[str]:
        return [f"roll back to {self.plan.target[:7]}"]

    def __len__(self) -> int:
        return 1

    def review_title(self) -> str:
        undone = len(self.plan.undone)
        return (
            f"Roll back {self.ref} to {self.plan.target[:7]}: undoes {undone} commit(s) "
            f"since, on {self.base[:7]}"
        )

    def commit_message(self) -> str:
        return self.plan.message.splitlines()[0]

    def preview(self) -> tuple[str, list[Problem]]:
        return self.plan.markdown, self.plan.problems

    def moved_to(self) -> str | None:
        with open_repo(self.repo_path) as repo:
            head = git_write.ref_value(repo, self.ref)
        return head if head != self.base else None

    def reapply_on_head(self) -> None:
        self.plan = plan_rollback(self.repo_path, self.target, self.ref)

    def commit(self, message: str, author: str | None, branch: str | None = None) -> Committed:
        """Raises PolicyInvalid, RollbackRaced (the ref moved: nothing written), EditRefused."""
        if branch:
            problem = policy_ops.branch_problem(self.repo_path, branch)
            if problem:
                raise EditRefused(problem)
        # The subject is the operator's (the review's message field); the body says what
        # the rollback undoes and changes, as the CLI's does.
        body = self.plan.message.split("\n", 1)[1] if "\n" in self.plan.message else ""
        full = message.rstrip("\n") + "\n" + body
        result = commit_rollback(
            self.repo_path, self.plan, author=author or None, message=full, branch=branch or None
        )
        return Committed(result, [])
