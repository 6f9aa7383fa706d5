"""`modelgate policy rollback REV`: one new commit whose tree is REV's, on the branch's head.

Only an ancestor of the branch head can be rolled back to: "back" means to a state the branch
had. A commit that never was on the branch (an unmerged pull request, history from before a
forced push) would bring in changes nobody reviewed there; that is a merge or a pull request,
not a rollback. REV's policy must pass `policy check`, and the rollback must change something.

The ref moves by compare-and-swap from the head the plan was made on: if anyone committed
meanwhile, nothing is written and the operator is told to plan again. A rollback is never
replayed on top of another commit, since that would silently undo that commit too.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass, field
from pathlib import Path

from dulwich.diff_tree import tree_changes
from dulwich.graph import can_fast_forward
from dulwich.object_store import tree_lookup_path
from dulwich.objects import Blob, Commit, ObjectID
from dulwich.repo import Repo

from credentials.refs import UNRESTRICTED, AllowedRefs
from policies import git_write
from policies.check import check_files, tree_files
from policies.diff import diff_policies, render_invalid, render_markdown
from policies.diff_words import Change, code
from policies.edit import CommitResult, EditConflict
from policies.loader import load_policy
from policies.models import Policy
from policies.problems import PolicyInvalid, PolicyRepoError, Problem, RevisionNotFound
from policies.repo import open_repo, read_policy_files, resolve

MAX_NAMED_IN_SUBJECT = 3
MAX_LISTED_IN_BODY = 20


class RollbackRefused(PolicyRepoError):
    """The rollback cannot be made as asked (not an ancestor, nothing to undo, no branch)."""


class RollbackRaced(EditConflict):
    """Another commit landed on the branch after the plan was made: nothing was written."""


@dataclass(frozen=True)
class UndoneCommit:
    commit: str
    subject: str
    author: str


@dataclass(frozen=True)
class RollbackPlan:
    """What rolling `ref` back to `target` does, read at `head`; nothing is written."""

    ref: str
    head: str
    target: str
    undone: list[UndoneCommit]
    """The commits on the branch since `target`, newest first."""
    changes: list[Change]
    """The policy diff from the head to the target (empty when the head does not validate)."""
    markdown: str
    """That diff in operators' words, as `policy diff HEAD REV` prints it, plus notes."""
    problems: list[Problem]
    """What `policy check` says about the target: a non-empty list refuses the rollback."""
    notes: list[str] = field(default_factory=list)
    """Consequences the diff does not spell out (old secrets working again)."""
    head_valid: bool = True
    """False when the head does not validate (a rejected commit): `changes` is empty then."""

    @property
    def message(self) -> str:
        """The commit message: what it rolls back to, what it undoes, and what changes."""
        shown = [u.commit[:7] for u in self.undone[:MAX_NAMED_IN_SUBJECT]]
        more = len(self.undone) - len(shown)
        undoes = ", ".join(shown) + (f" and {more} more" if more > 0 else "")
        lines = [f"Roll back to {self.target[:7]} (undoes {undoes})", "", "Undoes:"]
        lines += [f"- {u.commit[:7]} {u.subject}" for u in self.undone[:MAX_LISTED_IN_BODY]]
        if len(self.undone) > MAX_LISTED_IN_BODY:
            lines.append(f"- ... and {len(self.undone) - MAX_LISTED_IN_BODY} more")
        if self.changes:
            lines += ["", "What changes:", *(f"- {c.text}" for c in self.changes)]
        elif not self.head_valid:
            lines += ["", f"{self.head[:7]} does not validate; {self.target[:7]} does."]
        if self.notes:
            lines += ["", *(f"Note: {n}" for n in self.notes)]
        return "\n".join(lines) + "\n"


def branch_ref(name: str) -> str:
    """`main` -> `refs/heads/main`; a full ref (or HEAD) stays as it is."""
    return name if name.startswith("refs/") or name == "HEAD" else f"refs/heads/{name}"


def plan_rollback(
    repo_path: Path, rev: str, ref: str = "refs/heads/main", allowed: AllowedRefs = UNRESTRICTED
) -> RollbackPlan:
    """The rollback of `ref` to `rev`; raises RevisionNotFound or RollbackRefused."""
    with open_repo(repo_path) as repo:
        head = git_write.ref_value(repo, ref)
        if head is None:
            raise RollbackRefused(f"{ref} not found in {repo_path}: nothing to roll back")
        target = resolve(repo, rev)
        if target is None:
            raise RevisionNotFound(f"revision '{rev}' not found in {repo_path}")
        head_commit, target_commit = _commit(repo, head), _commit(repo, target)
        if not can_fast_forward(repo, ObjectID(target.encode()), ObjectID(head.encode())):
            raise RollbackRefused(
                f"{rev} ({target[:12]}) is not an ancestor of {ref} ({head[:12]}): a rollback "
                "returns the branch to a state it had. To bring in another commit's policy, "
                "merge it or open a pull request"
            )
        if head_commit.tree == target_commit.tree:
            raise RollbackRefused(
                f"{ref} ({head[:12]}) already has the policy of {rev} ({target[:12]}): "
                "nothing to undo"
            )
        undone = _undone(repo, head, target)
        problems = check_files(tree_files(repo, target), allowed)
        old, new = _load(repo, head), _load(repo, target)
    labels = (f"{head[:7]} ({_short_ref(ref)})", target[:7])
    if isinstance(new, PolicyInvalid):  # the check says so too: the plan is refused
        markdown = render_invalid(labels[1], new)
        return RollbackPlan(ref, head, target, undone, [], markdown, problems)
    notes = _secret_notes(old, new, target) if isinstance(old, Policy) else []
    if isinstance(old, PolicyInvalid):
        return _plan_from_invalid_head(repo_path, ref, head, target, undone, new, problems, old)
    changes = diff_policies(old, new)
    markdown = render_markdown(changes, *labels)
    if notes:
        markdown += "\n#### Rollback notes\n\n" + "".join(f"- {n}\n" for n in notes)
    return RollbackPlan(ref, head, target, undone, changes, markdown, problems, notes)


def commit_rollback(
    repo_path: Path,
    plan: RollbackPlan,
    *,
    author: str | None = None,
    message: str | None = None,
    branch: str | None = None,
) -> CommitResult:
    """Commit the plan on its ref (or on a new `branch` from the head, for a pull request).

    Raises PolicyInvalid when the target fails `policy check`, RollbackRaced when the ref
    moved since the plan was made (nothing written), RollbackRefused for an existing branch.
    """
    if plan.problems:
        raise PolicyInvalid(plan.problems)
    target_ref = f"refs/heads/{branch}" if branch else plan.ref
    with open_repo(repo_path) as repo:
        who = git_write.parse_author(author) if author else git_write.default_author(repo)
        clean = branch is None and git_write.checked_out_clean(repo, target_ref)
        head_tree, tree = _commit(repo, plan.head).tree, _commit(repo, plan.target).tree
        sha = git_write.make_commit(repo, tree, plan.head, message or plan.message, who)
        expected = None if branch else plan.head
        note = f"roll back to {plan.target[:12]}"
        if not git_write.compare_and_swap(repo, target_ref, expected, sha, note):
            if branch:
                raise RollbackRefused(f"branch '{branch}' exists already: choose a new name")
            now = git_write.ref_value(repo, target_ref)
            raise RollbackRaced(
                f"{target_ref} moved to {(now or 'nothing')[:12]} while rolling back (someone "
                f"committed after {plan.head[:12]} was read); nothing was written. Run the "
                "rollback again to see what it would undo now"
            )
        paths = _changed_paths(repo, head_tree, tree)
        updated = clean and _update_worktree(repo, tree, paths)
    return CommitResult(sha.decode("ascii"), target_ref, plan.head, tuple(paths), updated, 0)


# internals --------------------------------------------------------------------------------


def _plan_from_invalid_head(
    repo_path: Path,
    ref: str,
    head: str,
    target: str,
    undone: list[UndoneCommit],
    new: Policy,
    problems: list[Problem],
    error: PolicyInvalid,
) -> RollbackPlan:
    """The head does not validate (a rejected commit): what changes is told from the newest
    undone commit that does, since that is the policy the branch last had in working order."""
    intro = render_invalid(f"{head[:7]} ({_short_ref(ref)})", error)
    with open_repo(repo_path) as repo:
        valid = next(
            ((u.commit, p) for u in undone if isinstance(p := _load(repo, u.commit), Policy)),
            None,
        )
    if valid is None:
        restored = f"Rolling back restores {code(target[:7])}, which validates.\n"
        return RollbackPlan(
            ref, head, target, undone, [], "\n".join([intro, restored]), problems, [], False
        )
    since, old = valid
    changes = diff_policies(old, new)
    notes = _secret_notes(old, new, target)
    compared = f"Compared with {code(since[:7])}, the newest undone commit that validates:\n"
    markdown = "\n".join([intro, compared, render_markdown(changes, since[:7], target[:7])])
    if notes:
        markdown += "\n#### Rollback notes\n\n" + "".join(f"- {n}\n" for n in notes)
    return RollbackPlan(ref, head, target, undone, changes, markdown, problems, notes, False)


def _commit(repo: Repo, sha: str) -> Commit:
    commit = repo[ObjectID(sha.encode("ascii"))]
    if not isinstance(commit, Commit):
        raise RollbackRefused(f"{sha[:12]} is not a commit")
    return commit


def _short_ref(ref: str) -> str:
    return ref.removeprefix("refs/heads/")


def _undone(repo: Repo, head: str, target: str) -> list[UndoneCommit]:
    walker = repo.get_walker(include=[ObjectID(head.encode())], exclude=[ObjectID(target.encode())])
    undone = []
    for entry in walker:
        commit = entry.commit
        message = commit.message.decode("utf-8", "replace").strip()
        subject = message.splitlines()[0] if message else "(no message)"
        author = commit.author.decode("utf-8", "replace").split("<", 1)[0].strip()
        undone.append(UndoneCommit(commit.id.decode("ascii"), subject, author))
    return undone


def _load(repo: Repo, sha: str) -> Policy | PolicyInvalid:
    try:
        return load_policy(read_policy_files(repo, sha))
    except PolicyInvalid as exc:
        return exc


def _secret_notes(now: Policy, then: Policy, target: str) -> list[str]:
    """Keys and admin tokens whose older secret works again after the rollback."""
    notes = []
    for kind, before, after in (
        ("key", {k.id: k.hash for k in now.keys}, {k.id: k.hash for k in then.keys}),
        ("admin token", {a.id: a.hash for a in now.admins}, {a.id: a.hash for a in then.admins}),
    ):
        for name in sorted(after):
            if name not in before:
                notes.append(
                    f"{kind.capitalize()} {code(name)} comes back with the secret it had at "
                    f"{target[:7]}: that secret works again."
                )
            elif before[name] != after[name]:
                notes.append(
                    f"{kind.capitalize()} {code(name)} goes back to the secret it had at "
                    f"{target[:7]}: that older secret works again, the current one stops."
                )
    return notes


def _changed_paths(repo: Repo, old_tree: ObjectID, new_tree: ObjectID) -> list[str]:
    paths = set()
    for change in tree_changes(repo.object_store, old_tree, new_tree):
        for entry in (change.old, change.new):
            if entry is not None and entry.path is not None:
                paths.add(entry.path.decode("utf-8", "replace"))
    return sorted(paths)


def _update_worktree(repo: Repo, tree: ObjectID, paths: list[str]) -> bool:
    """Make the clean checkout match `tree`: write, delete and stage `paths`."""
    files = _files_in(repo, tree, paths)
    root = Path(repo.path)
    try:
        for path in paths:
            target = root / path
            if path in files:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(files[path])
            elif target.is_file() or target.is_symlink():
                target.unlink()
        repo.get_worktree().stage(paths)
    except OSError:
        return False  # the commit stands; `git status` shows the checkout is behind
    return True


def _files_in(repo: Repo, tree: ObjectID, paths: list[str]) -> dict[str, bytes]:
    found = {}
    for path in paths:
        try:
            mode, sha = tree_lookup_path(repo.__getitem__, tree, path.encode("utf-8"))
        except KeyError:
            continue  # deleted by the rollback
        blob = repo[sha]
        if stat.S_ISREG(mode) and isinstance(blob, Blob):
            found[path] = blob.as_raw_string()
    return found
