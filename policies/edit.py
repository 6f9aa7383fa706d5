"""Change a policy by commit: keys, tiers, routes and teams, as the CLI and the terminal UI do it.

    editor = PolicyEditor(repo_path)                 # reads the watched ref's commit
    secret = editor.create_key("search-team", tier="standard", models=["gpt-4o*"])
    markdown, problems = editor.preview()            # what changes, and what is wrong
    result = editor.commit("keys: create search-team", author="Ann <ann@example.com>")

Edits are surgical (policies.yaml_edit): every byte of a file outside the edited entry is
kept. Nothing is committed unless the result passes `policy check`. The commit is built in
the object store, and the ref moves only if nobody moved it meanwhile; if someone did, the
edits are replayed on top of their commit (a few times), so no writer overwrites another.
Secrets are returned once and never stored: only their hashes enter the files.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any, Final

from dulwich.objects import Commit, ObjectID
from dulwich.repo import Repo

from credentials.keys import generate_secret, hash_secret
from policies import git_write
from policies.check import check_files, tree_files
from policies.diff import diff_policies, render_invalid, render_markdown
from policies.edit_files import EditedFiles, EditFailed, EditRefused
from policies.loader import load_policy
from policies.models import Key, Policy
from policies.problems import PolicyInvalid, PolicyRepoError, Problem
from policies.repo import open_repo

__all__ = [
    "KEEP",
    "CommitResult",
    "EditConflict",
    "EditFailed",
    "EditRefused",
    "PolicyEditor",
    "PolicyInvalid",
    "Unchanged",
]

MAX_RETRIES = 5
LIMIT_FIELDS = ("rpm", "tpm", "max_concurrency", "tokens_per_day", "tokens_per_month")
KEY_FIELDS = ("owner", "description", "models", "tier", "team", "limits", "expires", "disabled")
TEAM_FIELDS = ("owner", "description", "parent", "limits", "models")


class Unchanged(Enum):
    """The default of an optional edit argument: leave that field as the file has it."""

    KEEP = "keep"


KEEP: Final = Unchanged.KEEP


class EditConflict(PolicyRepoError):
    """Someone else kept moving the ref, or their change conflicts with this one."""


@dataclass(frozen=True)
class CommitResult:
    commit: str
    ref: str
    parent: str | None
    files: tuple[str, ...]
    """The files the commit changed."""
    worktree_updated: bool
    """The working tree was clean on that ref, and now has the new files staged."""
    retries: int
    """How many times another writer got there first and the edits were replayed."""


Operation = Callable[[], None]


class PolicyEditor:
    """Pending edits of the policy at `ref`, committed in one go.

    With `branch`, the edits start from that branch when it exists (a pull request being
    built up), else from `ref`, and are committed there unless `commit` names another.
    """

    def __init__(
        self, repo_path: Path, ref: str = "refs/heads/main", branch: str | None = None
    ) -> None:
        self.repo_path = repo_path
        self.ref = ref
        self.branch = branch
        self._ops: list[tuple[str, Operation]] = []
        with open_repo(repo_path) as repo:
            on_branch = git_write.ref_value(repo, f"refs/heads/{branch}") if branch else None
            start = on_branch or git_write.ref_value(repo, ref)
            if start is None:
                raise PolicyRepoError(
                    f"{ref} not found in {repo_path}: commit a policy to it first "
                    "(`modelgate init` makes one)"
                )
            self.base: str = start
            """The commit the edits apply to (it moves when a commit had to be replayed)."""
            self._load(repo, start)

    # reading ------------------------------------------------------------------------------

    @property
    def files(self) -> dict[str, bytes]:
        """The policy files with the pending edits applied (path -> content)."""
        return self._files.current()

    def policy(self) -> Policy:
        """The edited policy; raises PolicyInvalid."""
        return load_policy(self._files.policy_files())

    def list_keys(self) -> list[Key]:
        """The client keys of the edited policy (validated, in file order)."""
        return list(self.policy().keys)

    def problems(self) -> list[Problem]:
        """What `policy check` would say about the edited revision."""
        return check_files({**self._tree, **self._files.current()})

    def preview(self) -> tuple[str, list[Problem]]:
        """(Markdown of what changes, problems); nothing is written."""
        problems = self.problems()
        label = f"{self.base[:7]} + edits"
        try:
            old = load_policy(self._files.original_policy_files())
        except PolicyInvalid as exc:
            return render_invalid(self.base[:7], exc), problems
        try:
            new = self.policy()
        except PolicyInvalid as exc:
            return render_invalid(label, exc), problems
        return render_markdown(diff_policies(old, new), self.base[:7], label), problems

    # keys ---------------------------------------------------------------------------------

    def create_key(
        self,
        key_id: str,
        *,
        models: list[str] | None = None,
        tier: str | None = None,
        limits: dict[str, int | Decimal] | None = None,
        expires: dt.date | None = None,
        owner: str | None = None,
        description: str | None = None,
        file: str | None = None,
        team: str | None = None,
    ) -> str:
        """Add a key; returns its secret (shown once: only the hash is written).

        `limits` may hold budgets (usd_per_day, usd_per_month) as Decimals; `team` names a
        team of teams.yaml (`policy check`, run before committing, refuses an unknown one).
        """
        secret = generate_secret()
        entry: dict[str, Any] = {"id": key_id}
        extra: dict[str, Any] = {
            "owner": owner,
            "description": description,
            "hash": hash_secret(secret),
        }
        budgets = {name: _number(value) for name, value in (limits or {}).items()}
        extra |= {"models": models, "tier": tier, "team": team, "limits": budgets or None}
        extra["expires"] = expires
        entry |= {name: value for name, value in extra.items() if value is not None}
        entry["created"] = dt.datetime.now(dt.UTC).date()

        def op() -> None:
            if self._files.find_key(key_id) is not None:
                raise EditRefused(f"a key with id '{key_id}' exists already: choose another id")
            self._files.append_key(file, entry)

        self._run(f"create key {key_id}", op)
        return secret

    def set_key_fields(self, key_id: str, **fields: Any) -> None:
        """Set fields of a key (owner, description, models, tier, team, limits, expires,
        disabled).

        A field given as None is removed. `limits` merges field by field (None removes one);
        budgets may be Decimals, written as YAML numbers.
        """
        unknown = sorted(set(fields) - set(KEY_FIELDS))
        if unknown:
            raise EditRefused(f"unknown key field(s) {', '.join(unknown)}: use {KEY_FIELDS}")
        changes = {name: ... if value is None else value for name, value in fields.items()}
        if isinstance(fields.get("limits"), dict):
            merged = {k: ... if v is None else _number(v) for k, v in fields["limits"].items()}
            changes["limits"] = merged
        self._run(f"update key {key_id}", lambda: self._files.update_key(key_id, changes))

    def disable_key(self, key_id: str) -> None:
        self.set_key_fields(key_id, disabled=True)

    def enable_key(self, key_id: str) -> None:
        self.set_key_fields(key_id, disabled=None)

    def rotate_key(self, key_id: str) -> str:
        """Give a key a new secret; returns it (the old one stops working once applied)."""
        secret = generate_secret()
        digest = hash_secret(secret)
        self._run(f"rotate key {key_id}", lambda: self._files.update_key(key_id, {"hash": digest}))
        return secret

    def revoke_key(self, key_id: str) -> None:
        """Remove a key entirely."""
        self._run(f"revoke key {key_id}", lambda: self._files.remove_key(key_id))

    # limits and routes --------------------------------------------------------------------

    def set_tier(self, name: str, limits: dict[str, int] | None) -> None:
        """Create or replace a tier's limits; None removes the tier."""
        self._run(f"set tier {name}", lambda: self._files.set_tier(name, limits))

    def set_default_limits(self, limits: dict[str, int]) -> None:
        self._run("set default limits", lambda: self._files.set_tier(None, limits))

    def set_route(
        self,
        name: str,
        targets: Sequence[str | dict[str, Any]] | Unchanged = KEEP,
        strategy: str | Unchanged | None = KEEP,
        description: str | Unchanged | None = KEEP,
        deadline_s: float | Unchanged | None = KEEP,
    ) -> None:
        """Create a route, or change the given fields of an existing one.

        A field left out keeps its value (other fields in the file too); None removes it,
        which means its default. A new route needs `targets`.
        """
        given = {
            "targets": targets if targets is KEEP else list(targets),
            "strategy": strategy or None,
            "description": description or None,
            "deadline_s": deadline_s,
        }
        # `...` is EditedFiles' "remove this field".
        changes = {k: ... if v is None else v for k, v in given.items() if v is not KEEP}
        self._run(f"set route {name}", lambda: self._files.set_route(name, changes))

    def remove_route(self, name: str) -> None:
        self._run(f"remove route {name}", lambda: self._files.set_route(name, None))

    # teams --------------------------------------------------------------------------------

    def create_team(self, name: str, **fields: Any) -> None:
        """Add a team to teams.yaml (made if missing); fields as TEAM_FIELDS, None left out."""
        entry = _team_changes(fields, creating=True)
        self._run(f"create team {name}", lambda: self._files.set_team(name, entry, create=True))

    def set_team_fields(self, name: str, **fields: Any) -> None:
        """Set fields of a team (owner, description, parent, limits, models); None removes
        one. `limits` merges field by field (None removes one), budgets included."""
        changes = _team_changes(fields, creating=False)
        self._run(f"update team {name}", lambda: self._files.set_team(name, changes))

    def remove_team(self, name: str) -> None:
        self._run(f"remove team {name}", lambda: self._files.set_team(name, None))

    # committing ---------------------------------------------------------------------------

    def commit(
        self,
        message: str,
        author: str | None = None,
        branch: str | None = None,
        retries: int = MAX_RETRIES,
    ) -> CommitResult:
        """Commit the edits on the watched ref (or on `branch`, made from it if new).

        Raises PolicyInvalid (nothing committed), EditConflict, or EditRefused.
        """
        branch = branch or self.branch
        if not self._ops:
            raise EditRefused("nothing to commit: no edits were made")
        target = f"refs/heads/{branch}" if branch else self.ref
        replays = 0
        for _ in range(retries + 1):
            with open_repo(self.repo_path) as repo:
                current = git_write.ref_value(repo, target)
                if current is None and target == self.ref:
                    raise EditConflict(f"{target} was deleted while editing; start again")
                if (current or self.base) != self.base:  # another writer got there first
                    self._replay(repo, current or self.base)
                    replays += 1
                result = self._try_commit(repo, target, current, message, author)
                if result is not None:
                    return replace(result, retries=replays)
        raise EditConflict(
            f"{target} kept moving while committing ({retries + 1} tries): other writers are "
            "busy; try again in a moment"
        )

    # internals ----------------------------------------------------------------------------

    def _try_commit(
        self, repo: Repo, target: str, current: str | None, message: str, author: str | None
    ) -> CommitResult | None:
        """One compare-and-swap attempt on top of `self.base`; None when the race was lost."""
        problems = self.problems()
        if problems:
            raise PolicyInvalid(problems)
        changes = {p: self._files.current()[p] for p in self._files.changed()}
        if not changes:
            raise EditRefused("nothing to commit: the edits change no file")
        who = git_write.parse_author(author) if author else git_write.default_author(repo)
        clean = git_write.checked_out_clean(repo, target)
        parent = repo[ObjectID(self.base.encode("ascii"))]
        assert isinstance(parent, Commit)
        tree = git_write.build_tree(repo, parent.tree, changes)
        sha = git_write.make_commit(repo, tree, self.base, message, who)
        note = message.splitlines()[0] if message else "edit"
        if not git_write.compare_and_swap(repo, target, current, sha, note):
            return None
        updated = clean and git_write.update_worktree(repo, changes)
        files = tuple(sorted(changes))
        return CommitResult(sha.decode("ascii"), target, self.base, files, updated, 0)

    def _load(self, repo: Repo, commit: str) -> None:
        self._tree = tree_files(repo, commit)
        self._files = EditedFiles(self._tree)

    def _run(self, what: str, op: Operation) -> None:
        op()  # raises before anything is recorded
        self._ops.append((what, op))

    def _replay(self, repo: Repo, start: str) -> None:
        """Apply the pending edits again on top of `start` (another writer's commit)."""
        self._load(repo, start)
        self.base = start
        for what, op in self._ops:
            try:
                op()
            except (EditRefused, PolicyRepoError) as exc:
                raise EditConflict(
                    f"{self.ref} moved to {start[:12]} while editing, and '{what}' no longer "
                    f"applies there: {exc}"
                ) from None


def _team_changes(fields: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    """Fields as EditedFiles takes them: `...` removes one (a new team just leaves it out)."""
    unknown = sorted(set(fields) - set(TEAM_FIELDS))
    if unknown:
        raise EditRefused(f"unknown team field(s) {', '.join(unknown)}: use {TEAM_FIELDS}")
    changes: dict[str, Any] = {}
    for name, value in fields.items():
        if isinstance(value, dict):
            value = {k: v for k, v in value.items() if v is not None or not creating}
            value = {k: ... if v is None else _number(v) for k, v in value.items()}
            if creating and not value:
                continue
        elif isinstance(value, tuple):
            value = list(value)
        if value is None:
            if not creating:
                changes[name] = ...
        else:
            changes[name] = value
    return changes


def _number(value: Any) -> Any:
    """A Decimal budget as YAML writes it: 25, not a string (Limits reads it back exact)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value
