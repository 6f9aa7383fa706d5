"""Words and small pieces shared by the sections of `policy diff`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from policies.models import Key, Limits, Policy

LIMIT_FIELDS = ("rpm", "tpm", "max_concurrency", "tokens_per_day", "tokens_per_month")
MAX_NAMED_KEYS = 10
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]")
_BACKTICKS = re.compile(r"`+")


@dataclass(frozen=True)
class Change:
    """One line of the summary."""

    section: str
    subject: str
    """The key id, tier, route or provider it is about (for ordering)."""
    kind: str
    """What it counts as in the summary, e.g. "key added"."""
    text: str
    sensitive: bool = False
    """Where requests and credentials go (a provider's base URL, credentials, headers):
    listed first, under its own heading, for the reviewer."""


def effective_limits(key: Key, policy: Policy) -> Limits:
    """The limits a key is served with (as the gateway compiles them)."""
    base = policy.limits.tiers.get(key.tier, policy.limits.default) if key.tier else None
    base = base if base is not None else policy.limits.default
    return key.limits.merged_over(base) if key.limits else base


def limit_steps(was: Limits, now: Limits) -> Iterator[tuple[str, str, str]]:
    """(field, words, summary kind) for each limit that differs."""
    for field in LIMIT_FIELDS:
        a, b = getattr(was, field), getattr(now, field)
        if a == b:
            continue
        label = field.replace("_", " ")
        if a is None:
            yield field, f"{label} now limited to {num(b)} (was unlimited)", "limit lowered"
        elif b is None:
            yield field, f"{label} no longer limited (was {num(a)})", "limit raised"
        elif b > a:
            yield field, f"{label} **raised** from {num(a)} to {num(b)}", "limit raised"
        else:
            yield field, f"{label} **lowered** from {num(a)} to {num(b)}", "limit lowered"


def affects(key_ids: list[str]) -> str:
    """`, affecting 2 keys: a, b` (the keys whose limits change with a tier or the default)."""
    if not key_ids:
        return ", affecting no key"
    named = codes(key_ids[:MAX_NAMED_KEYS])
    more = f" and {len(key_ids) - MAX_NAMED_KEYS} more" if len(key_ids) > MAX_NAMED_KEYS else ""
    return f", affecting {plural(len(key_ids), 'key')}: {named}{more}"


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def limits_text(limits: Limits) -> str:
    parts = [
        f"{f.replace('_', ' ')} {num(getattr(limits, f))}"
        for f in LIMIT_FIELDS
        if getattr(limits, f) is not None
    ]
    return ", ".join(parts) if parts else "unlimited"


def from_to(a: object, b: object, none: str = "(none)") -> str:
    def show(v: object) -> str:
        return none if v is None else code(num(v) if isinstance(v, int | float) else str(v))

    if a is None:
        return f"set to {show(b)}"
    if b is None:
        return f"removed (was {show(a)})"
    return f"changed from {show(a)} to {show(b)}"


def num(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, float) and not value.is_integer():
        return f"{value:g}"
    return f"{int(value):,}"


def code(text: str) -> str:
    """`text` as a Markdown code span, whatever it holds (names come from policy authors).

    The fence is longer than any run of backticks inside, and line breaks and other control
    characters are shown escaped, so a name cannot end the span, the list item or the comment.
    """
    text = _CONTROL.sub(lambda m: repr(m[0])[1:-1], text)
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith(("`", " ")) or text.endswith(("`", " ")) else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def codes(items: tuple[str, ...] | list[str]) -> str:
    return ", ".join(code(i) for i in items)
