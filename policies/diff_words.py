"""Words and small pieces shared by the sections of `policy diff`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, NamedTuple

from policies.models import Key, Limits, Policy

LIMIT_FIELDS = (
    "rpm",
    "tpm",
    "max_concurrency",
    "tokens_per_day",
    "tokens_per_month",
    "usd_per_day",
    "usd_per_month",
)
LIMIT_WORDS = {"usd_per_day": "daily budget", "usd_per_month": "monthly budget"}
"""How a limit is named in the diff (others: the field with spaces, e.g. tokens per day)."""
Mode = Literal["on", "shadow"]
"""Enforced (`enforce: on`, the default) or shadow (`enforce: shadow`, or a `shadow:` block)."""
MAX_NAMED_KEYS = 10
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


class LimitStep(NamedTuple):
    """One line about a limits block: what it says, how the summary counts it, and which
    (mode, field) pairs it touches (a key overriding all of them is not affected)."""

    touched: tuple[tuple[Mode, str], ...]
    words: str
    kind: str


def limit_steps(was: Limits, now: Limits) -> Iterator[LimitStep]:
    """A step for each limit that differs, enforced and shadow alike.

    A whole block whose `enforce:` flipped between on and shadow, its values kept, is one
    step; a value moving between modes reads "rpm 100 switched to shadow" or "shadow rpm
    50 → enforced"; shadow values added, changed or removed are named as such.
    """
    was_on, was_shadow = was.split()
    now_on, now_shadow = now.split()
    switched = None
    if (was.enforce or "on") != (now.enforce or "on"):  # the author flipped `enforce:`
        switched = _switch(was_on, was_shadow, now_on, now_shadow)
    if switched is not None:
        yield switched
        return
    for field in LIMIT_FIELDS:
        on_a, on_b = getattr(was_on, field), getattr(now_on, field)
        sh_a, sh_b = getattr(was_shadow, field), getattr(now_shadow, field)
        if on_a == on_b and sh_a == sh_b:
            continue
        label = LIMIT_WORDS.get(field, field.replace("_", " "))
        touched: tuple[tuple[Mode, str], ...] = (("on", field), ("shadow", field))
        if on_a is not None and on_b is None and sh_a is None and sh_b is not None:
            to = "shadow" if sh_b == on_a else f"shadow {label} {num(sh_b)}"
            words = f"{label} {num(on_a)} **switched to {to}** (reported, no longer enforced)"
            yield LimitStep(touched, words, "limit switched to shadow")
            continue
        if sh_a is not None and sh_b is None and on_a is None and on_b is not None:
            to = "enforced" if on_b == sh_a else f"enforced {label} {num(on_b)}"
            yield LimitStep(touched, f"shadow {label} {num(sh_a)} → **{to}**", "limit enforced")
            continue
        if on_a != on_b:
            words, kind = _enforced_step(field, label, on_a, on_b)
            yield LimitStep((("on", field),), words, kind)
        if sh_a != sh_b:
            words, kind = _shadow_step(label, sh_a, sh_b)
            yield LimitStep((("shadow", field),), words, kind)


def _switch(
    was_on: Limits, was_shadow: Limits, now_on: Limits, now_shadow: Limits
) -> LimitStep | None:
    """The step of a block whose limits all changed mode, values kept (else None)."""
    if was_shadow == _NONE and now_on == _NONE and was_on == now_shadow != _NONE:
        touched = _touched("shadow", now_shadow)
        words = (
            f"limits **switched to `enforce: shadow`** ({limits_text(now_shadow, plain=True)}: "
            "reported, no longer enforced)"
        )
        return LimitStep(touched, words, "limits switched to shadow")
    if was_on == _NONE and now_shadow == _NONE and was_shadow == now_on != _NONE:
        touched = _touched("on", now_on)
        words = (
            f"limits **switched to `enforce: on`** ({limits_text(now_on, plain=True)}: "
            "now enforced)"
        )
        return LimitStep(touched, words, "limits enforced")
    return None


_NONE = Limits()


def _touched(mode: Mode, limits: Limits) -> tuple[tuple[Mode, str], ...]:
    return tuple((mode, f) for f in LIMIT_FIELDS if getattr(limits, f) is not None)


def _enforced_step(field: str, label: str, a: object, b: object) -> tuple[str, str]:
    raised, lowered = (
        ("budget raised", "budget lowered")
        if field in LIMIT_WORDS
        else ("limit raised", "limit lowered")
    )
    if a is None:
        return f"{label} now limited to {num(b)} (was unlimited)", lowered
    if b is None:
        return f"{label} no longer limited (was {num(a)})", raised
    assert isinstance(a, int | Decimal) and isinstance(b, int | Decimal)
    if b > a:
        return f"{label} **raised** from {num(a)} to {num(b)}", raised
    return f"{label} **lowered** from {num(a)} to {num(b)}", lowered


def _shadow_step(label: str, a: object, b: object) -> tuple[str, str]:
    if a is None:
        return (
            f"{label} {num(b)} shadow limit **added** (reported, not enforced)",
            "shadow limit added",
        )
    if b is None:
        return f"shadow {label} {num(a)} **removed**", "shadow limit removed"
    assert isinstance(a, int | Decimal) and isinstance(b, int | Decimal)
    verb = "**raised**" if b > a else "**lowered**"
    return f"shadow {label} {verb} from {num(a)} to {num(b)}", "shadow limit changed"


def overrides(own: Limits | None, touched: tuple[tuple[Mode, str], ...]) -> bool:
    """A key's own limits set every (mode, field) a step touches: the step leaves it as is."""
    if own is None:
        return False
    own_on, own_shadow = own.split()
    return all(
        getattr(own_on if mode == "on" else own_shadow, field) is not None
        for mode, field in touched
    )


def affects(key_ids: list[str]) -> str:
    """`, affecting 2 keys: a, b` (the keys whose limits change with a tier or the default)."""
    if not key_ids:
        return ", affecting no key"
    named = codes(key_ids[:MAX_NAMED_KEYS])
    more = f" and {len(key_ids) - MAX_NAMED_KEYS} more" if len(key_ids) > MAX_NAMED_KEYS else ""
    return f", affecting {plural(len(key_ids), 'key')}: {named}{more}"


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def limits_text(limits: Limits, *, plain: bool = False) -> str:
    """`rpm 100, tpm 2,000; shadow rpm 50`; plain: the values only, whatever their mode."""
    on, shadow = (limits, _NONE) if plain else limits.split()
    parts = [_values(on)] if _values(on) else []
    if _values(shadow):
        parts.append("shadow " + _values(shadow).replace(", ", ", shadow "))
    return "; ".join(parts) if parts else "unlimited"


def _values(limits: Limits) -> str:
    return ", ".join(
        f"{LIMIT_WORDS.get(f, f.replace('_', ' '))} {num(getattr(limits, f))}"
        for f in LIMIT_FIELDS
        if getattr(limits, f) is not None
    )


def from_to(a: object, b: object, none: str = "(none)") -> str:
    def show(v: object) -> str:
        return none if v is None else code(num(v) if isinstance(v, int | float) else str(v))

    if a is None:
        return f"set to {show(b)}"
    if b is None:
        return f"removed (was {show(a)})"
    return f"changed from {show(a)} to {show(b)}"


def num(value: object) -> str:
    """1,200 for counts; $5,000 or $2.50 for US dollars (budgets are Decimals)."""
    if isinstance(value, Decimal):
        return dollars(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, float) and not value.is_integer():
        return f"{value:g}"
    return f"{int(value):,}"


def dollars(amount: Decimal) -> str:
    """$8,000, $2.50, $0.000125: cents shown once there is a fraction."""
    whole, fraction = divmod(amount, 1)
    if not fraction:
        return f"${int(whole):,}"
    digits = f"{fraction:.6f}"[2:].rstrip("0").ljust(2, "0")
    return f"${int(whole):,}.{digits}"


def code(text: str) -> str:
    """`text` as a Markdown code span, whatever it holds (names come from policy authors).

    The fence is longer than any run of backticks inside, and line breaks, control and format
    characters (bidi overrides among them) are shown escaped, so a name can neither end the
    span, the list item or the comment, nor reorder what a reviewer reads.
    """
    if not text.isprintable():  # controls, line breaks, bidi overrides: shown escaped
        text = "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith(("`", " ")) or text.endswith(("`", " ")) else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def codes(items: tuple[str, ...] | list[str]) -> str:
    return ", ".join(code(i) for i in items)
