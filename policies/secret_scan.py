"""Find raw secrets in repository files: provider API keys and ModelGate client keys.

A policy repository names secrets (`env:NAME`, `file:NAME`, `sha256:...`), never holds them.
Every text file is scanned, not only YAML: a key pasted into a README leaks just the same.
Findings carry a position and the kind of secret, never the secret itself.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

from credentials.keys import CLIENT_KEY_PATTERN
from policies.problems import Problem

BINARY_SNIFF_BYTES = 8000

_PROVIDER_ADVICE = (
    "never commit provider secrets: put it in the credentials directory or the gateway's "
    "environment and reference it as file:NAME or env:NAME; revoke it at the provider, it "
    "stays in the git history"
)
_CLIENT_ADVICE = (
    "commit only its hash (sha256:..., as `modelgate keys create` writes it); the secret is "
    "exposed now: rotate it with `modelgate keys rotate ID`"
)
_EDGE = r"(?<![A-Za-z0-9_\-])"
_END = r"(?![A-Za-z0-9_\-])"


@dataclass(frozen=True)
class _Rule:
    kind: str
    pattern: re.Pattern[str]
    advice: str = _PROVIDER_ADVICE
    group: int = 0
    """The regex group that is the secret (0: the whole match)."""


_RULES = (
    _Rule("an Anthropic API key (sk-ant-...)", re.compile(_EDGE + r"sk-ant-[A-Za-z0-9_\-]{20,}")),
    _Rule("an OpenAI API key (sk-...)", re.compile(_EDGE + r"sk-[A-Za-z0-9_\-]{20,}" + _END)),
    _Rule("a Google API key (AIza...)", re.compile(_EDGE + r"AIza[0-9A-Za-z_\-]{35}")),
    _Rule(
        "an AWS access key id",
        re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Z0-9])"),
    ),
    _Rule(
        "an AWS secret access key",
        re.compile(
            r"(?i)aws_?secret_?(?:access_?)?key[\"']?\s*[:=]\s*[\"']?"
            r"([A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])"
        ),
        group=1,
    ),
    _Rule(
        "a GitHub token", re.compile(_EDGE + r"(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_\w{22,})")
    ),
    _Rule("a Slack token", re.compile(_EDGE + r"xox[abprs]-[A-Za-z0-9\-]{10,}")),
    _Rule("a private key", re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")),
    _Rule("a raw ModelGate client key or admin token", CLIENT_KEY_PATTERN, _CLIENT_ADVICE),
)

_SECRET_NAMES = (
    r"api[_\-]?key|apikey|secret|token|passw(?:or)?d|access[_\-]?key|private[_\-]?key"
    r"|auth(?:orization)?|credential"
)
_ASSIGNED = re.compile(
    r"(?i)(?<![A-Za-z0-9])[\w.\-]*(?:" + _SECRET_NAMES + r")[\w.\-]*[\"']?\s*[:=]\s*[\"']?"
    r"(?:(?:Bearer|Basic|Token)\s+)?([^\s\"'#,;{}\[\]()<>`]{16,})"
)
"""`api_key: VALUE`, `"token" = "VALUE"`, `Authorization: Bearer VALUE`..."""
_NOT_A_SECRET = re.compile(
    r"^(?:(?:env|file):|sha256:[0-9a-f]{64}$|https?://|\$|%|\{\{|<)|(?:x{6,}|\.\.\.)", re.I
)
GENERIC_ENTROPY_SHARE = 0.7
"""A generic value counts as random when its entropy per character reaches this share of
the most its length and alphabet allow (random hex or base64 sits near 0.9, words lower)."""
_HEX = frozenset("0123456789abcdefABCDEF")


@dataclass(frozen=True)
class Finding:
    """A secret at a 0-based character offset of a text."""

    offset: int
    kind: str
    advice: str


def is_text(content: bytes) -> bool:
    return b"\x00" not in content[:BINARY_SNIFF_BYTES]


def find_secrets(text: str) -> list[Finding]:
    """Every raw secret in `text`, by offset; overlapping matches are reported once."""
    taken: list[tuple[int, int]] = []
    found: list[Finding] = []

    def claim(start: int, end: int, kind: str, advice: str) -> None:
        if any(start < t_end and t_start < end for t_start, t_end in taken):
            return
        taken.append((start, end))
        found.append(Finding(start, kind, advice))

    for rule in _RULES:
        for match in rule.pattern.finditer(text):
            claim(match.start(rule.group), match.end(rule.group), rule.kind, rule.advice)
    for match in _ASSIGNED.finditer(text):
        value = match.group(1)
        if _looks_random(value):
            kind = "a secret value (a long random string assigned to a secret-like name)"
            claim(match.start(1), match.end(1), kind, _PROVIDER_ADVICE)
    return sorted(found, key=lambda f: f.offset)


def scan_file(path: str, content: bytes) -> list[Problem]:
    """The secrets in one file as problems (`file:line:col`); binary files are skipped."""
    if not is_text(content):
        return []
    text = content.decode("utf-8", "replace")
    problems = []
    for finding in find_secrets(text):
        line = text.count("\n", 0, finding.offset)
        col = finding.offset - (text.rfind("\n", 0, finding.offset) + 1)
        message = f"this looks like {finding.kind}: {finding.advice}"
        problems.append(Problem(path, line + 1, col + 1, message))
    return problems


def _looks_random(value: str) -> bool:
    if _NOT_A_SECRET.search(value):
        return False
    classes = (str.islower, str.isupper, str.isdigit)
    if sum(any(kind(c) for c in value) for kind in classes) < 2:  # words, numbers, CONSTANTS
        return False
    alphabet = 16 if set(value) <= _HEX else 64
    return _entropy(value) >= GENERIC_ENTROPY_SHARE * math.log2(min(len(value), alphabet))


def _entropy(value: str) -> float:
    counts = Counter(value)
    total = len(value)
    return -sum(n / total * math.log2(n / total) for n in counts.values())
