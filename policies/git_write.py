"""Commit changed files straight into a repository's object store, and move a ref safely.

No working tree is needed (bare repositories work), and a ref only moves if it still
points where the writer started (compare-and-swap), so two writers cannot overwrite each
other. A non-bare repository whose working tree is clean and checked out on that ref gets
its files and index updated too, so `git status` stays clean.
"""

from __future__ import annotations

import getpass
import io
import os
import re
import stat
import time
from collections.abc import Mapping
from pathlib import Path

from dulwich import porcelain
from dulwich.errors import NotGitRepository
from dulwich.file import FileLocked
from dulwich.objects import Blob, Commit, ObjectID, Tree
from dulwich.refs import Ref
from dulwich.repo import Repo

from policies.problems import PolicyRepoError

FILE_MODE = stat.S_IFREG | 0o644
_AUTHOR = re.compile(r"^\s*([^<>]+?)\s*<([^<>\s]+)>\s*$")


class PushFailed(PolicyRepoError):
    """The commit was made locally but could not be pushed to the remote."""


def parse_author(text: str) -> bytes:
    """`Name <email>` as git wants it; raises ValueError on another shape."""
    match = _AUTHOR.match(text)
    if match is None:
        raise ValueError(f"author '{text}' is not of the form 'Name <email>'")
    return f"{match[1]} <{match[2]}>".encode()


def default_author(repo: Repo) -> bytes:
    """git config user.name/user.email, else `$USER <$USER@localhost>`."""
    config = repo.get_config_stack()
    try:
        name = config.get((b"user",), b"name").decode("utf-8")
        email = config.get((b"user",), b"email").decode("utf-8")
        return f"{name} <{email}>".encode()
    except KeyError:
        pass
    user = os.environ.get("USER") or _login_name()
    return f"{user} <{user}@localhost>".encode()


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "modelgate"


def ref_value(repo: Repo, ref: str) -> str | None:
    """The sha a ref points at (following symbolic refs), or None."""
    sha = repo.refs.as_dict().get(Ref(ref.encode())) if ref.startswith("refs/") else None
    if sha is None and not ref.startswith("refs/"):
        try:
            sha = repo.refs[Ref(ref.encode())]
        except KeyError:
            return None
    return sha.decode("ascii") if sha else None


def build_tree(repo: Repo, base_tree: ObjectID | None, changes: Mapping[str, bytes]) -> ObjectID:
    """A tree like `base_tree` with `changes` (path -> content) written in; returns its id."""
    by_dir: dict[str, dict[str, bytes]] = {}
    for path, content in changes.items():
        directory, _, name = path.rpartition("/")
        by_dir.setdefault(directory, {})[name] = content
    return _write_tree(repo, base_tree, "", by_dir)


def _write_tree(
    repo: Repo, tree_id: ObjectID | None, prefix: str, by_dir: dict[str, dict[str, bytes]]
) -> ObjectID:
    tree = Tree()
    if tree_id is not None:
        existing = repo[tree_id]
        assert isinstance(existing, Tree)
        for entry in existing.iteritems():
            tree.add(entry.path, entry.mode, entry.sha)
    for file_name, content in by_dir.get(prefix.rstrip("/"), {}).items():
        blob = Blob.from_string(content)
        repo.object_store.add_object(blob)
        tree.add(file_name.encode("utf-8"), FILE_MODE, blob.id)
    subdirs = {d[len(prefix) :].split("/", 1)[0] for d in by_dir if d and d.startswith(prefix)}
    for sub in sorted(s for s in subdirs if s):
        name = sub.encode("utf-8")
        current = tree[name][1] if name in tree else None
        tree.add(name, stat.S_IFDIR, _write_tree(repo, current, f"{prefix}{sub}/", by_dir))
    repo.object_store.add_object(tree)
    return tree.id


def make_commit(
    repo: Repo, tree: ObjectID, parent: str | None, message: str, author: bytes
) -> ObjectID:
    commit = Commit()
    commit.tree = tree
    commit.parents = [ObjectID(parent.encode("ascii"))] if parent else []
    commit.author = commit.committer = author
    now = int(time.time())
    offset = time.localtime(now).tm_gmtoff
    commit.author_time = commit.commit_time = now
    commit.author_timezone = commit.commit_timezone = offset
    commit.encoding = b"UTF-8"
    commit.message = (
        message.encode("utf-8") if message.endswith("\n") else (message + "\n").encode()
    )
    repo.object_store.add_object(commit)
    return commit.id


def compare_and_swap(repo: Repo, ref: str, expected: str | None, new: ObjectID, note: str) -> bool:
    """Point `ref` at `new` only if it still points at `expected` (None: must not exist)."""
    name = Ref(ref.encode())
    reason = f"modelgate: {note}".encode()
    try:
        if expected is None:
            return bool(repo.refs.add_if_new(name, new, message=reason))
        old = ObjectID(expected.encode("ascii"))
        return bool(repo.refs.set_if_equals(name, old, new, message=reason))
    except FileLocked:  # another writer holds the ref's lock right now: a lost race
        return False


def checked_out_clean(repo: Repo, ref: str) -> bool:
    """Whether `ref` is checked out in a working tree that has no staged or unstaged changes."""
    if repo.bare:
        return False
    try:
        chain, _ = repo.refs.follow(Ref(b"HEAD"))
    except (KeyError, NotGitRepository):
        return False
    if not chain or chain[-1] != ref.encode():
        return False
    status = porcelain.status(repo, untracked_files="no", optional_locks=False)
    staged = any(status.staged[kind] for kind in ("add", "delete", "modify"))
    return not staged and not status.unstaged


def update_worktree(repo: Repo, changes: Mapping[str, bytes]) -> bool:
    """Write `changes` to the working tree and stage them; whether that worked.

    The commit is already made: a failure here (another writer holds the index) only leaves
    the checkout behind, which `git status` shows and `git reset --hard` fixes.
    """
    root = Path(repo.path)
    try:
        for path, content in changes.items():
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        repo.get_worktree().stage(sorted(changes))
    except (OSError, FileLocked):
        return False
    return True


def push(repo_path: Path, ref: str, remote: str = "origin") -> None:
    """Push `ref` to `remote` (by name from git config, or a URL); raises PushFailed."""
    err = io.BytesIO()
    try:
        porcelain.push(
            str(repo_path), remote, [f"{ref}:{ref}"], outstream=io.BytesIO(), errstream=err
        )
    except Exception as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PushFailed(
            f"the commit is made locally, but pushing {ref} to {remote} failed ({detail}); "
            f"push it yourself with `git push {remote} {ref}`"
        ) from None
