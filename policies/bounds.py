"""How much policy input the gateway reads at all: checked before any YAML is parsed.

A commit is hostile until it validates: one pushed 50 MB file, or 100,000 files, must be
refused in milliseconds, not parsed while the watcher waits. The limits are far above any
real policy (a 10,000-key keys.yaml is 1.7 MB) and each refusal names the file.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping

from policies.problems import Problem

MAX_FILE_BYTES = 8 * 1024 * 1024
"""One policy file: about 45,000 keys."""
MAX_TOTAL_BYTES = 64 * 1024 * 1024
"""All policy files of one commit together."""
MAX_FILES = 1000
"""Policy files in one commit (the root and keys/ together)."""
MAX_DEPTH = 32
"""Nesting of mappings and lists; a valid policy needs 7."""
MAX_ALIAS_EVENTS = 250_000
"""YAML nodes that aliases may copy per file (10,000 keys sharing a limits block use 60,000):
an alias bomb ("billion laughs") is refused by the parser instead of expanded."""


def too_many_files(paths: Collection[str]) -> Problem | None:
    """A problem, naming the fullest directory, when there are more than MAX_FILES paths."""
    if len(paths) <= MAX_FILES:
        return None
    directories = Counter(p.rsplit("/", 1)[0] + "/" if "/" in p else "./" for p in paths)
    message = (
        f"{len(paths):,} policy files: a policy holds at most {MAX_FILES:,}; "
        "merge key files (one keys file holds thousands of keys)"
    )
    return Problem(directories.most_common(1)[0][0], 1, 1, message)


def too_big(path: str, size: int, total_before: int) -> Problem | None:
    """A problem when one file, or the commit so far, is bigger than policies ever are."""
    if size > MAX_FILE_BYTES:
        message = (
            f"{size:,} bytes: a policy file holds at most {_mib(MAX_FILE_BYTES)}; "
            "split keys into several files under keys/, or remove what is not policy"
        )
        return Problem(path, 1, 1, message)
    if total_before + size > MAX_TOTAL_BYTES:
        message = (
            f"the policy files reach {_mib(MAX_TOTAL_BYTES)} with this one: "
            "a policy holds at most that much; remove what is not policy"
        )
        return Problem(path, 1, 1, message)
    return None


def out_of_bounds(files: Mapping[str, bytes]) -> list[Problem]:
    """Every bound `files` (path -> content) exceeds; empty when it may be parsed."""
    many = too_many_files(files.keys())
    if many is not None:
        return [many]
    problems, total = [], 0
    for path in sorted(files):
        problem = too_big(path, len(files[path]), total)
        total += len(files[path])
        if problem is not None:
            problems.append(problem)
            if total > MAX_TOTAL_BYTES:
                break
    return problems


def _mib(size: int) -> str:
    return f"{size // (1024 * 1024)} MiB"
