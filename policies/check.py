"""`modelgate policy check`: everything the gateway would refuse, and what it must never see.

A revision passes when the policy loads (schema and cross-file checks, as the gateway runs
them, including which credential references the operator allows), and no file in the
repository, YAML or not, holds a raw provider secret or client key.

Warnings do not fail a revision: a route target with no known price (neither prices.yaml
nor the genai-prices catalog knows it) is one; its requests' cost is recorded as unknown.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from dulwich.ignore import IgnoreFilterManager
from dulwich.objects import Blob, Commit, ObjectID, Tree
from dulwich.repo import Repo

from credentials.refs import UNRESTRICTED, AllowedRefs
from gateway.pricing import PriceBook
from policies.loader import load_policy
from policies.model_globs import is_glob
from policies.models import Policy, WeightedTarget
from policies.problems import PolicyInvalid, PolicyRepoError, Problem, RevisionNotFound
from policies.repo import KEYS_DIR, POLICY_SUFFIXES, open_repo, resolve
from policies.secret_scan import scan_file
from policies.yaml_positions import SourceMap, YamlSyntaxError

MAX_SCANNED_BYTES = 10 * 1024 * 1024
"""Bigger files are not scanned for secrets (a policy repository has no business with them)."""


def policy_subset(files: Mapping[str, bytes]) -> dict[str, bytes]:
    """The files the gateway reads: *.yaml / *.yml at the root and in keys/."""
    chosen = {}
    for path, content in files.items():
        parts = PurePosixPath(path).parts
        at_root = len(parts) == 1
        in_keys = len(parts) == 2 and parts[0] == KEYS_DIR
        if (at_root or in_keys) and path.endswith(POLICY_SUFFIXES):
            chosen[path] = content
    return chosen


def check_files(files: Mapping[str, bytes], allowed: AllowedRefs = UNRESTRICTED) -> list[Problem]:
    """Every problem in one revision's files (path -> content, all files of the tree)."""
    problems: list[Problem] = []
    try:
        load_policy(policy_subset(files), allowed)
    except PolicyInvalid as exc:
        problems += exc.problems
    for path in sorted(files):
        if len(files[path]) <= MAX_SCANNED_BYTES:
            problems += scan_file(path, files[path])
    return sorted(set(problems))


def warnings_of(files: Mapping[str, bytes]) -> list[Problem]:
    """Warnings about one revision's files (none when the policy does not load)."""
    subset = policy_subset(files)
    try:
        policy = load_policy(subset)
    except PolicyInvalid:
        return []
    routes_file = next((p for p in ("routes.yaml", "routes.yml") if p in subset), "routes.yaml")
    return unpriced_warnings(policy, routes_file, subset.get(routes_file, b""))


def unpriced_warnings(policy: Policy, routes_file: str, routes_text: bytes) -> list[Problem]:
    """One warning per route target that has no known price, at the target in routes.yaml.
    (A glob route's `*` target is priced only once a model name fills it in: skipped.)"""
    book = PriceBook(policy.prices)
    source: SourceMap | None = None
    warnings: list[Problem] = []
    for name, route in policy.routes.items():
        for index, spec in enumerate(route.targets):
            text = spec.target if isinstance(spec, WeightedTarget) else spec
            provider_name, _, model = text.partition("/")
            provider = policy.providers.get(provider_name)
            if provider is None or (is_glob(name) and "*" in model):
                continue
            if book.price(provider_name, provider, model) is not None:
                continue
            if source is None:
                try:
                    source = SourceMap.build(routes_text.decode("utf-8-sig"))
                except (YamlSyntaxError, UnicodeDecodeError):
                    source = SourceMap.build("")
            line, col = source.position(("routes", name, "targets", index))
            warnings.append(
                Problem(
                    routes_file,
                    line + 1,
                    col + 1,
                    f"warning: no known price for {text}: its requests' cost is recorded as "
                    "unknown; price it in prices.yaml (e.g. "
                    f"'{provider_name}/{model}': {{input: 0.5, output: 1.5}}, USD per "
                    "million tokens)",
                )
            )
    return sorted(set(warnings))


def worktree_warnings(root: Path) -> list[Problem]:
    return warnings_of(worktree_files(root))


def revision_warnings(repo_path: Path, rev: str) -> list[Problem]:
    with open_repo(repo_path) as repo:
        sha = resolve(repo, rev)
        if sha is None:
            return []
        files = tree_files(repo, sha)
    return warnings_of(files)


def check_worktree(root: Path, allowed: AllowedRefs = UNRESTRICTED) -> list[Problem]:
    """Problems in the files on disk under `root` (what a pull request's CI checks out)."""
    return check_files(worktree_files(root), allowed)


def check_revision(
    repo_path: Path, rev: str, allowed: AllowedRefs = UNRESTRICTED
) -> tuple[str, list[Problem]]:
    """(commit sha, problems) of a committed revision."""
    with open_repo(repo_path) as repo:
        sha = resolve(repo, rev)
        if sha is None:
            raise RevisionNotFound(
                f"revision '{rev}' not found in {repo_path}: name a branch, ref or commit"
            )
        files = tree_files(repo, sha)
    return sha, check_files(files, allowed)


def tree_files(repo: Repo, commit_sha: str) -> dict[str, bytes]:
    """Every regular file of a commit's tree, by path."""
    commit = repo[ObjectID(commit_sha.encode("ascii"))]
    if not isinstance(commit, Commit):
        raise PolicyRepoError(f"{commit_sha} is not a commit")
    files: dict[str, bytes] = {}
    pending: list[tuple[str, ObjectID]] = [("", commit.tree)]
    while pending:
        prefix, tree_id = pending.pop()
        tree = repo[tree_id]
        assert isinstance(tree, Tree)
        for entry in tree.iteritems():
            path = prefix + entry.path.decode("utf-8", "replace")
            if stat.S_ISDIR(entry.mode):
                pending.append((path + "/", entry.sha))
            elif stat.S_ISREG(entry.mode):
                blob = repo[entry.sha]
                if isinstance(blob, Blob):
                    files[path] = blob.as_raw_string()
    return files


def worktree_files(root: Path) -> dict[str, bytes]:
    """Every regular file under `root` but .git and what .gitignore excludes, by path."""
    ignored = _ignore_filter(root)
    files: dict[str, bytes] = {}
    for directory, subdirs, names in os.walk(root):
        rel_dir = Path(directory).relative_to(root).as_posix()
        prefix = "" if rel_dir == "." else rel_dir + "/"
        subdirs[:] = sorted(
            d for d in subdirs if d != ".git" and not _is_ignored(ignored, prefix + d + "/")
        )
        for name in names:
            path = Path(directory, name)
            if path.is_symlink() or not path.is_file() or _is_ignored(ignored, prefix + name):
                continue
            files[prefix + name] = path.read_bytes()
    return files


def _ignore_filter(root: Path) -> IgnoreFilterManager | None:
    if not (root / ".git").exists():
        return None
    try:
        with open_repo(root) as repo:
            return IgnoreFilterManager.from_repo(repo)
    except PolicyRepoError:
        return None


def _is_ignored(manager: IgnoreFilterManager | None, path: str) -> bool:
    return manager is not None and bool(manager.is_ignored(path))
