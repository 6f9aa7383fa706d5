"""The terminal UI's pending policy edits, built on policies.edit.PolicyEditor.

A Draft keeps each edit as a small function of a PolicyEditor, so when the watched ref moves
while the operator is still reviewing, the same edits can be re-applied on the new head
(with a fresh diff) instead of committing blind. New secrets are kept only until the commit
that stores their hashes succeeds, then handed out once and forgotten.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dulwich.refs import Ref, check_ref_format

from policies import git_write
from policies.edit import CommitResult, EditConflict, EditRefused, PolicyEditor
from policies.problems import PolicyRepoError, Problem
from policies.repo import open_repo

DEFAULT_TIER = "(default)"
"""How the UI names limits.yaml's `default` among the tiers."""

EditFn = Callable[[PolicyEditor], str | None]
"""Applies one edit; returns a new secret when it made one."""


@dataclass(frozen=True)
class Edit:
    """One operator action, e.g. "create key search-team"."""

    description: str
    apply: EditFn
    secret_of: str | None = None
    """The key id whose new secret `apply` returns (create and rotate)."""
    secret_made: str = "created"
    """How the key got its new secret: created or rotated."""


@dataclass(frozen=True)
class NewSecret:
    key_id: str
    secret: str
    made: str
    """created or rotated"""

    def __repr__(self) -> str:
        return f"NewSecret({self.key_id!r}, <hidden>, {self.made!r})"


@dataclass(frozen=True)
class Committed:
    result: CommitResult
    secrets: list[NewSecret]
    """The secrets of the keys this commit created or rotated: show each once."""


class Draft:
    """Edits pending on top of the watched ref's commit."""

    def __init__(self, repo_path: Path, ref: str) -> None:
        self.repo_path, self.ref = repo_path, ref
        self._editor = PolicyEditor(repo_path, ref)
        self._edits: list[Edit] = []
        self._secrets: dict[str, NewSecret] = {}

    @property
    def base(self) -> str:
        """The commit these edits apply to."""
        return self._editor.base

    @property
    def descriptions(self) -> list[str]:
        return [edit.description for edit in self._edits]

    def __len__(self) -> int:
        return len(self._edits)

    def review_title(self) -> str:
        return f"Review {len(self)} edit(s) on {self.ref} at {self.base[:7]}"

    def commit_message(self) -> str:
        return default_message(self.descriptions)

    def apply(self, edit: Edit) -> None:
        """Apply and remember an edit; raises EditRefused (nothing recorded) when it cannot."""
        secret = edit.apply(self._editor)
        self._edits.append(edit)
        _keep_secret(self._secrets, edit, secret)

    def preview(self) -> tuple[str, list[Problem]]:
        """(Markdown diff in operators' words, what `policy check` says about the result)."""
        return self._editor.preview()

    def moved_to(self) -> str | None:
        """The watched ref's new commit when someone moved it since the edits started."""
        with open_repo(self.repo_path) as repo:
            head = git_write.ref_value(repo, self.ref)
        return head if head != self.base else None

    def reapply_on_head(self) -> None:
        """Start again from the watched ref's current commit and replay every edit.

        Secrets made before are dropped (never committed); the replay makes new ones.
        Raises EditConflict naming the edit that no longer applies.
        """
        editor = PolicyEditor(self.repo_path, self.ref)
        secrets: dict[str, NewSecret] = {}
        for edit in self._edits:
            try:
                secret = edit.apply(editor)
            except (EditRefused, PolicyRepoError, ValueError) as exc:
                raise EditConflict(
                    f"'{edit.description}' no longer applies on {editor.base[:12]}: {exc}"
                ) from None
            _keep_secret(secrets, edit, secret)
        self._editor, self._secrets = editor, secrets

    def commit(self, message: str, author: str | None, branch: str | None = None) -> Committed:
        """Commit on the watched ref, or on a new `branch` for a pull request.

        Raises PolicyInvalid (nothing written), EditConflict or EditRefused. When the ref
        moved in the instant since `moved_to()`, PolicyEditor replays the edits on top
        (`result.retries` says so); the secrets stay the same, as the hashes do.
        """
        if branch:
            problem = branch_problem(self.repo_path, branch)
            if problem:
                raise EditRefused(problem)
        result = self._editor.commit(message, author or None, branch or None)
        secrets, self._secrets = list(self._secrets.values()), {}
        self._edits = []
        return Committed(result, secrets)


def _keep_secret(secrets: dict[str, NewSecret], edit: Edit, secret: str | None) -> None:
    if secret is not None and edit.secret_of is not None:
        # A key created and rotated in one draft: the last secret is the committed one.
        made = secrets[edit.secret_of].made if edit.secret_of in secrets else edit.secret_made
        secrets[edit.secret_of] = NewSecret(edit.secret_of, secret, made)


def push_ref(repo_path: Path, ref: str) -> None:
    """Push `ref` to origin; raises PushFailed saying how to do it by hand."""
    git_write.push(repo_path, ref)


# edits ------------------------------------------------------------------------------------


def create_key(key_id: str, **fields: Any) -> Edit:
    """A new key (fields as PolicyEditor.create_key takes them); its secret comes back once."""
    return Edit(f"create key {key_id}", lambda editor: editor.create_key(key_id, **fields), key_id)


def update_key(key_id: str, **fields: Any) -> Edit:
    """Set fields of a key; None removes one, `limits` merges field by field."""
    names = ", ".join(sorted(fields)) or "nothing"

    def apply(editor: PolicyEditor) -> None:
        editor.set_key_fields(key_id, **fields)

    return Edit(f"update key {key_id} ({names})", apply)


def set_disabled(key_id: str, disabled: bool) -> Edit:
    def apply(editor: PolicyEditor) -> None:
        (editor.disable_key if disabled else editor.enable_key)(key_id)

    return Edit(f"{'disable' if disabled else 'enable'} key {key_id}", apply)


def rotate_key(key_id: str) -> Edit:
    return Edit(f"rotate key {key_id}", lambda editor: editor.rotate_key(key_id), key_id, "rotated")


def set_tier(name: str, limits: dict[str, int]) -> Edit:
    def apply(editor: PolicyEditor) -> None:
        editor.set_tier(name, limits)

    return Edit(f"set tier {name}", apply)


def set_default_limits(limits: dict[str, int]) -> Edit:
    def apply(editor: PolicyEditor) -> None:
        editor.set_default_limits(limits)

    return Edit("set default limits", apply)


def set_route(
    name: str,
    targets: list[str] | list[dict[str, Any]],
    strategy: str | None,
    description: str | None = None,
) -> Edit:
    """Create a route, or set these fields of one (its other fields, deadline_s included, stay)."""

    def apply(editor: PolicyEditor) -> None:
        editor.set_route(name, targets, strategy, description)

    return Edit(f"set route {name}", apply)


def create_team(name: str, **fields: Any) -> Edit:
    """A new team in teams.yaml (fields as PolicyEditor.create_team takes them)."""

    def apply(editor: PolicyEditor) -> None:
        editor.create_team(name, **fields)

    return Edit(f"create team {name}", apply)


def update_team(name: str, **fields: Any) -> Edit:
    """Set fields of a team; None removes one, `limits` merges field by field."""
    names = ", ".join(sorted(fields)) or "nothing"

    def apply(editor: PolicyEditor) -> None:
        editor.set_team_fields(name, **fields)

    return Edit(f"update team {name} ({names})", apply)


def move_key(key_id: str, team: str | None) -> Edit:
    """Put a key in `team` (None: in no team)."""

    def apply(editor: PolicyEditor) -> None:
        editor.set_key_fields(key_id, team=team)

    where = f"to team {team}" if team else "out of its team"
    return Edit(f"move key {key_id} {where}", apply)


def default_message(descriptions: list[str]) -> str:
    """A commit subject from the edits, e.g. `tui: create key a; disable key b`."""
    text = "; ".join(descriptions) or "policy edit"
    return "tui: " + (text if len(text) <= 64 else text[:61] + "...")


# the repository ---------------------------------------------------------------------------


def branch_problem(repo_path: Path, branch: str) -> str | None:
    """Why `branch` cannot be a new branch for a pull request, or None."""
    if not check_ref_format(Ref(f"refs/heads/{branch}".encode())):
        return f"'{branch}' is not a valid branch name: use letters, digits, '-', '_', '/'"
    with open_repo(repo_path) as repo:
        if git_write.ref_value(repo, f"refs/heads/{branch}") is not None:
            return f"branch '{branch}' exists already: choose a new name"
    return None


def has_origin(repo_path: Path) -> bool:
    """Whether the repository has a remote named origin to push branches to."""
    with open_repo(repo_path) as repo:
        config = repo.get_config()
        try:
            config.get((b"remote", b"origin"), b"url")
        except KeyError:
            return False
    return True


def operator_author(repo_path: Path) -> str:
    """`Name <email>` from git config (or the login name), as commits will carry it."""
    with open_repo(repo_path) as repo:
        return git_write.default_author(repo).decode("utf-8", "replace")


def parse_date(text: str) -> dt.date | None:
    """YYYY-MM-DD, or None for an empty field; raises ValueError with a usable message."""
    text = text.strip()
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"'{text}' is not a date: use YYYY-MM-DD") from None
