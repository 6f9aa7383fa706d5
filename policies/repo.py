"""Read committed policy files through dulwich's object store (never a working tree).

Works with bare and non-bare repositories. Each call opens the repository afresh, so refs
moved and objects packed by other processes (the `git` CLI, `git gc`) are always seen.
"""

from __future__ import annotations

import re
import stat
from pathlib import Path

from dulwich.errors import NotGitRepository
from dulwich.objects import Blob, Commit, Tree
from dulwich.objectspec import AmbiguousShortId, parse_commit
from dulwich.refs import DiskRefsContainer, Ref
from dulwich.repo import Repo

from policies.bounds import too_big, too_many_files
from policies.problems import PolicyInvalid, PolicyRepoError

POLICY_SUFFIXES = (".yaml", ".yml")
KEYS_DIR = "keys"


def open_repo(path: Path) -> Repo:
    """The repository at `path` (bare or not); close it after use (`with open_repo(...)`)."""
    try:
        return Repo(str(path))
    except (NotGitRepository, FileNotFoundError, NotADirectoryError):
        raise PolicyRepoError(
            f"no git repository at {path}: create one with `modelgate init {path}`"
        ) from None


def resolve(repo: Repo, rev: str) -> str | None:
    """The commit sha for a ref, a branch name, HEAD or a full or short sha; None if absent.

    Ancestry suffixes work as in git: `HEAD~2`, `main^`, `HEAD^2` (second parent).
    """
    if not rev:
        return None
    try:
        commit = parse_commit(repo, rev.encode("utf-8"))
    except (KeyError, ValueError, AmbiguousShortId):
        return _resolve_ancestry(repo, rev)
    return commit.id.decode("ascii")


_ANCESTRY = re.compile(r"^(.+?)((?:[~^]\d*)+)$")
_STEP = re.compile(r"([~^])(\d*)")


def _resolve_ancestry(repo: Repo, rev: str) -> str | None:
    match = _ANCESTRY.match(rev)
    sha = resolve(repo, match[1]) if match else None
    if match is None or sha is None:
        return None
    for kind, digits in _STEP.findall(match[2]):
        count = int(digits) if digits else 1
        # `~N` follows the first parent N times; `^N` takes the Nth parent (`^0`: itself).
        hops = [0] * count if kind == "~" else ([count - 1] if count else [])
        for index in hops:
            commit = repo[sha.encode("ascii")]
            parents = commit.parents if isinstance(commit, Commit) else []
            if index >= len(parents):
                return None
            sha = parents[index].decode("ascii")
    return sha


def ref_sha(repo_path: Path, ref: str) -> str | None:
    """The commit a ref points at now (symbolic refs and tags peeled); None if absent.

    Runs on the serving loop every poll, so a branch or HEAD in a plain repository is read
    straight from the ref files (loose, then packed-refs) without opening the repository.
    """
    controldir = _plain_controldir(repo_path)
    if controldir is not None and (ref == "HEAD" or ref.startswith("refs/heads/")):
        try:
            return DiskRefsContainer(controldir)[Ref(ref.encode("utf-8"))].decode("ascii")
        except KeyError:
            return None
    try:
        repo = Repo(str(repo_path))
    except (NotGitRepository, FileNotFoundError, NotADirectoryError):
        return None
    with repo:
        if ref == "HEAD" or ref.startswith("refs/"):
            try:
                return repo.get_peeled(Ref(ref.encode("utf-8"))).decode("ascii")
            except KeyError:
                return None
        return resolve(repo, ref)


def _plain_controldir(repo_path: Path) -> Path | None:
    """The git directory of a non-bare or bare repository; None for anything unusual."""
    dot_git = repo_path / ".git"
    if dot_git.is_dir():
        return dot_git
    if (repo_path / "HEAD").is_file() and (repo_path / "objects").is_dir():
        return repo_path
    return None  # a linked worktree, or no repository: let dulwich's Repo decide


def read_policy_files(repo: Repo, commit_sha: str) -> dict[str, bytes]:
    """Every *.yaml / *.yml at the tree root and in keys/, by path relative to the root.

    Raises PolicyInvalid, naming the file or directory, when the commit holds more policy
    than policies.bounds allows: the count is checked before any blob is read.
    """
    commit = repo[commit_sha.encode("ascii")]
    if not isinstance(commit, Commit):
        raise PolicyRepoError(f"{commit_sha} is not a commit")
    entries: list[tuple[str, bytes]] = []
    root = repo[commit.tree]
    assert isinstance(root, Tree)
    for name, mode, sha in root.iteritems():
        text_name = name.decode("utf-8", "replace")
        if stat.S_ISDIR(mode) and text_name == KEYS_DIR:
            subtree = repo[sha]
            assert isinstance(subtree, Tree)
            for sub_name, sub_mode, sub_sha in subtree.iteritems():
                path = f"{KEYS_DIR}/{sub_name.decode('utf-8', 'replace')}"
                _add_entry(entries, path, sub_mode, sub_sha)
        else:
            _add_entry(entries, text_name, mode, sha)
    many = too_many_files([path for path, _ in entries])
    if many is not None:
        raise PolicyInvalid([many])
    files: dict[str, bytes] = {}
    total = 0
    for path, blob_id in sorted(entries):
        blob = repo[blob_id]
        if not isinstance(blob, Blob):
            continue
        content = blob.as_raw_string()
        problem = too_big(path, len(content), total)
        if problem is not None:
            raise PolicyInvalid([problem])
        files[path] = content
        total += len(content)
    return files


def _add_entry(entries: list[tuple[str, bytes]], path: str, mode: int, sha: bytes) -> None:
    # Regular files only: symlinks and submodules are never policy.
    if stat.S_ISREG(mode) and path.endswith(POLICY_SUFFIXES):
        entries.append((path, sha))
