"""Globs over model names, for route names and keys' `models`: no wildcard crosses a `/`.

fnmatch lets `*` match `/`, so a key limited to `gemini-1.5-*` also matched
`gemini-1.5-x/../../gemini-pro`, and a route's `*` carried whole paths into upstream URLs.
Here `*` matches any run of characters but `/`, `?` one character but `/`, and a `[...]`
class (fnmatch's syntax, `!` negates) never matches `/` either. A glob is matched against
the whole name.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Iterable

_ANY_RUN = "[^/]*"
_ONE = "[^/]"


def is_glob(name: str) -> bool:
    return any(ch in name for ch in "*?[")


def glob_regex(pattern: str, capture_first_star: bool = False) -> str:
    """The regular expression for `pattern` (to be full-matched). With `capture_first_star`,
    group 1 is what the first `*` matched (a route's targets substitute it)."""
    out: list[str] = []
    captured = not capture_first_star
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*":
            out.append(_ANY_RUN if captured else f"({_ANY_RUN})")
            captured = True
        elif ch == "?":
            out.append(_ONE)
        elif ch == "[" and (end := class_end(pattern, i)) != -1:
            # fnmatch renders the class itself (ranges, negation, escapes); `/` is kept out.
            out.append("(?!/)" + _class_regex(pattern[i - 1 : end + 1]))
            i = end + 1
        else:
            out.append(re.escape(ch))
    return "".join(out)


def class_end(pattern: str, start: int) -> int:
    """The index of the `]` closing a class opened just before `start`, or -1 (then the `[`
    is a literal, as in fnmatch)."""
    j = start + (pattern[start : start + 1] == "!")
    j += pattern[j : j + 1] == "]"  # a leading ']' is a member, not the end
    return pattern.find("]", j)


def _class_regex(bracketed: str) -> str:
    translated = fnmatch.translate(bracketed)  # "(?s:CLASS)\Z"
    return translated[: translated.rindex(")") + 1]


@functools.lru_cache(maxsize=4096)
def compile_glob(pattern: str) -> re.Pattern[str]:
    """`pattern` compiled, group 1 capturing its first `*` (cached: reloads reuse them)."""
    return re.compile(glob_regex(pattern, capture_first_star=True))


def compile_any(patterns: Iterable[str]) -> re.Pattern[str]:
    """One regex full-matching a name that any of `patterns` matches (none: never)."""
    return re.compile("|".join(f"(?:{glob_regex(p)})" for p in patterns) or "(?!)")
