"""The watched ref's history and each commit's change in operators' words (policies.diff)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from dulwich.objects import Commit, ObjectID

from policies.diff import diff_policies, diff_revisions, render_invalid, render_markdown
from policies.diff_words import code
from policies.loader import load_policy
from policies.models import Policy
from policies.problems import PolicyInvalid, PolicyRepoError
from policies.repo import open_repo, read_policy_files, ref_sha

MAX_HISTORY = 200


@dataclass(frozen=True)
class HistoryEntry:
    commit: str
    parent: str | None
    author: str
    """The author's name (the email is left out: it rarely fits)."""
    when: dt.datetime
    """Author date, timezone-aware."""
    subject: str
    """The first line of the message."""


def head_of(repo_path: Path, ref: str) -> str | None:
    """The commit `ref` points at now (cheap: reads the ref files)."""
    return ref_sha(repo_path, ref)


def read_history(repo_path: Path, ref: str, limit: int = MAX_HISTORY) -> list[HistoryEntry]:
    """Commits on `ref`, newest first, following first parents (the ref's own story)."""
    entries: list[HistoryEntry] = []
    with open_repo(repo_path) as repo:
        sha = ref_sha(repo_path, ref)
        while sha is not None and len(entries) < limit:
            commit = repo[ObjectID(sha.encode("ascii"))]
            if not isinstance(commit, Commit):
                break
            parent = commit.parents[0].decode("ascii") if commit.parents else None
            entries.append(_entry(sha, parent, commit))
            sha = parent
    return entries


def _entry(sha: str, parent: str | None, commit: Commit) -> HistoryEntry:
    author = commit.author.decode("utf-8", "replace")
    name = author.split("<", 1)[0].strip() or author
    zone = dt.timezone(dt.timedelta(seconds=commit.author_timezone))
    when = dt.datetime.fromtimestamp(commit.author_time, zone)
    message = commit.message.decode("utf-8", "replace").strip()
    subject = message.splitlines()[0] if message else "(no message)"
    return HistoryEntry(sha, parent, name, when, subject)


def commit_diff(repo_path: Path, entry: HistoryEntry) -> str:
    """Markdown: what the commit changed, from its first parent (or from nothing)."""
    try:
        if entry.parent is not None:
            return diff_revisions(repo_path, entry.parent, entry.commit)
        label = entry.commit[:7]
        try:  # reading refuses a commit past the policy bounds, by file, before parsing
            with open_repo(repo_path) as repo:
                files = read_policy_files(repo, entry.commit)
            new = load_policy(files)
        except PolicyInvalid as exc:
            return render_invalid(label, exc)
        return render_markdown(diff_policies(Policy(), new), "(empty)", label)
    except PolicyRepoError as exc:
        return f"> The diff cannot be read: {code(str(exc))}"
