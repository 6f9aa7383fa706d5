"""`modelgate policy log`: who changed what and when, from git, in operators' words.

The log follows the branch's first parents, newest first: each entry is one change as it
landed on the branch (a merged pull request is its merge commit), i.e. one state the gateway
served or refused. Each entry carries the lines `policy diff` prints for it (from its first
parent; the first commit from an empty policy).

`--key ID` keeps the commits whose diff names the key: its own lines, and tier or default
limit changes that list it among the keys they affect. `--team T` keeps the commits that
change teams.yaml's entry for T, or any key that is (or was) in T (its own lines, and limit
changes listing it), or whose diff names T.
A commit that does not validate has no diff in operators' words: it is kept when its changed
lines mention the key or team, and says it does not validate.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from dulwich.objects import Commit, ObjectID
from dulwich.repo import Repo

from policies.diff import diff_policies
from policies.diff_words import Change, code
from policies.loader import load_policy
from policies.models import Policy
from policies.problems import PolicyInvalid, RevisionNotFound
from policies.repo import open_repo, read_policy_files, resolve

EMPTY = Policy()


@dataclass(frozen=True)
class LogFilter:
    key: str | None = None
    team: str | None = None

    @property
    def active(self) -> bool:
        return self.key is not None or self.team is not None


@dataclass(frozen=True)
class LogEntry:
    commit: str
    author: str
    """`Name <email>` as the commit carries it."""
    when: dt.datetime
    """Author date, timezone-aware."""
    subject: str
    lines: list[str]
    """The `policy diff` lines of this commit that match the filter (all without one)."""
    invalid: int = 0
    """How many problems make this commit fail validation (0: it validates)."""


def policy_log(
    repo_path: Path,
    ref: str = "refs/heads/main",
    match: LogFilter = LogFilter(),  # frozen: safe as a default
) -> Iterator[LogEntry]:
    """The commits on `ref` that match, newest first; raises RevisionNotFound."""
    with open_repo(repo_path) as repo:
        sha = resolve(repo, ref)
        if sha is None:
            raise RevisionNotFound(f"{ref} not found in {repo_path}")
        loaded: dict[str, Policy | PolicyInvalid] = {}
        while sha is not None:
            commit = repo[ObjectID(sha.encode("ascii"))]
            if not isinstance(commit, Commit):
                return
            parent = commit.parents[0].decode("ascii") if commit.parents else None
            entry = _entry(repo, sha, parent, commit, match, loaded)
            if entry is not None:
                yield entry
            loaded.pop(sha, None)  # only the parent is needed again (as the next one's self)
            sha = parent


def _entry(
    repo: Repo,
    sha: str,
    parent: str | None,
    commit: Commit,
    match: LogFilter,
    loaded: dict[str, Policy | PolicyInvalid],
) -> LogEntry | None:
    new = _policy(repo, sha, loaded)
    old = _policy(repo, parent, loaded) if parent else EMPTY
    author = commit.author.decode("utf-8", "replace")
    zone = dt.timezone(dt.timedelta(seconds=commit.author_timezone))
    when = dt.datetime.fromtimestamp(commit.author_time, zone)
    message = commit.message.decode("utf-8", "replace").strip()
    subject = message.splitlines()[0] if message else "(no message)"
    if isinstance(new, PolicyInvalid) or isinstance(old, PolicyInvalid):
        if match.active and not _raw_mentions(repo, parent, sha, match):
            return None
        problems = len(new.problems) if isinstance(new, PolicyInvalid) else 0
        note = (
            "does not validate: the gateway refuses it"
            if problems
            else "its parent does not validate: no diff in operators' words"
        )
        return LogEntry(sha, author, when, subject, [note], problems)
    changes = [c for c in diff_policies(old, new) if _matches(c, match, old, new)]
    lines = [c.text for c in changes] + _team_lines(old, new, match, changes)
    if match.active and not lines:
        return None
    return LogEntry(sha, author, when, subject, lines or ["No policy changes."])


def _policy(
    repo: Repo, sha: str, loaded: dict[str, Policy | PolicyInvalid]
) -> Policy | PolicyInvalid:
    if sha not in loaded:
        try:
            loaded[sha] = load_policy(read_policy_files(repo, sha))
        except PolicyInvalid as exc:
            loaded[sha] = exc
    return loaded[sha]


def _matches(change: Change, match: LogFilter, old: Policy, new: Policy) -> bool:
    if not match.active:
        return True
    if match.key is not None:
        if change.section == "Keys" and change.subject == match.key:
            return True
        return code(match.key) in change.text  # a tier or default change naming the key
    assert match.team is not None
    if change.section == "Teams" and change.subject == match.team:
        return True
    members = _members(match.team, old, new)
    if change.section == "Keys" and change.subject in members:
        return True
    # a tier or default limit change naming one of its keys changes what the team's keys get
    return code(match.team) in change.text or any(code(k) in change.text for k in members)


def _members(team: str, *policies: Policy) -> set[str]:
    """The keys in `team` in any of `policies` (keys that joined or left it too)."""
    return {k.id for p in policies for k in p.keys if k.team == team}


def _team_lines(old: Policy, new: Policy, match: LogFilter, found: list[Change]) -> list[str]:
    """Team changes `policy diff` has no words for (yet): membership and teams.yaml entries."""
    team = match.team
    if team is None:
        return []
    lines = []
    said = " ".join(c.text for c in found)
    was, now = old.teams.get(team), new.teams.get(team)
    if was != now and f"Team {code(team)}" not in said and f"team {code(team)}" not in said:
        if was is None:
            lines.append(f"**Added** team {code(team)} (teams.yaml).")
        elif now is None:
            lines.append(f"**Removed** team {code(team)} (teams.yaml).")
        else:
            lines.append(f"Team {code(team)}: changed in teams.yaml.")
    before = {k.id: k.team for k in old.keys}
    for key in new.keys:
        if key.id in before and before[key.id] != key.team and team in (before[key.id], key.team):
            about_key = " ".join(c.text for c in found if c.subject == key.id).lower()
            if "team" not in about_key:
                verb = "joined" if key.team == team else "left"
                lines.append(f"Key {code(key.id)} {verb} team {code(team)}.")
    return lines


def _raw_mentions(repo: Repo, parent: str | None, sha: str, match: LogFilter) -> bool:
    """Whether a line changed between the two commits' policy files, or the YAML entry it
    sits in (`- id: bob` above `    tier: x`, `  search:` above `    limits: ...`), names the
    key or team."""
    names = [n for n in (match.key, match.team) if n is not None]
    pattern = re.compile("|".join(rf"(?<![\w-]){re.escape(n)}(?![\w-])" for n in names))
    old, new = _files(repo, parent), _files(repo, sha)
    for path in sorted(old.keys() | new.keys()):
        a, b = old.get(path, "").splitlines(), new.get(path, "").splitlines()
        matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
        for op, a0, a1, b0, b1 in matcher.get_opcodes():
            if op == "equal":
                continue
            changed = [(a, i) for i in range(a0, a1)] + [(b, i) for i in range(b0, b1)]
            if any(pattern.search(line) for line in _with_ancestors(changed)):
                return True
    return False


def _with_ancestors(changed: list[tuple[list[str], int]]) -> Iterator[str]:
    """Each changed line, then the lines above it that are less indented (its YAML parents)."""
    for lines, index in changed:
        yield lines[index]
        depth = _indent(lines[index])
        for above in range(index - 1, -1, -1):
            line = lines[above]
            if line.strip() and not line.lstrip().startswith("#") and _indent(line) < depth:
                yield line
                depth = _indent(line)


def _indent(line: str) -> int:
    """Indentation, counting a list item's `- ` as indentation (its fields line up with it)."""
    stripped = line.lstrip(" ")
    dash = 2 if stripped.startswith("- ") else 0
    return len(line) - len(stripped) + dash - (1 if dash else 0)


def _files(repo: Repo, sha: str | None) -> dict[str, str]:
    if sha is None:
        return {}
    try:
        files = read_policy_files(repo, sha)
    except PolicyInvalid:
        return {}  # past the policy bounds: nothing is read
    return {p: c.decode("utf-8", "replace") for p, c in files.items()}
