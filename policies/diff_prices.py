"""`policy diff` for prices.yaml ("price of `openai/gpt-4o-mini` overridden") and alerts.yaml."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from policies.alerts import AlertRule, AlertsFile
from policies.diff_words import Change, code, codes, dollars
from policies.models import TokenPrice

_PARTS = ("input", "output", "cached_input", "cache_write", "reasoning")


def price_changes(old: Mapping[str, TokenPrice], new: Mapping[str, TokenPrice]) -> Iterator[Change]:
    for pattern in sorted(old.keys() | new.keys()):
        was, now = old.get(pattern), new.get(pattern)
        what = f"Price of {code(pattern)}"
        if was is None and now is not None:
            text = f"{what} **overridden**: {_rates(now)} per million tokens."
            yield Change("Prices", pattern, "price overridden", text)
        elif now is None:
            text = f"{what}: override **removed** (the genai-prices catalog's price applies)."
            yield Change("Prices", pattern, "price override removed", text)
        elif was is not None and was != now:
            for part in _PARTS:
                a, b = getattr(was, part), getattr(now, part)
                if a == b:
                    continue
                words = part.replace("_", " ")
                if a is None or b is None:
                    shown = (
                        "(as input)" if part in ("cached_input", "cache_write") else "(as output)"
                    )
                    old_text = dollars(a) if a is not None else shown
                    new_text = dollars(b) if b is not None else shown
                    step = f"changed from {old_text} to {new_text}"
                else:
                    verb = "**raised**" if b > a else "**lowered**"
                    step = f"{verb} from {dollars(a)} to {dollars(b)}"
                yield Change(
                    "Prices",
                    pattern,
                    "price changed",
                    f"{what}: {words} {step} per million tokens.",
                )


def _rates(price: TokenPrice) -> str:
    return ", ".join(
        f"{part.replace('_', ' ')} {dollars(getattr(price, part))}"
        for part in _PARTS
        if getattr(price, part) is not None
    )


def alert_changes(old: AlertsFile, new: AlertsFile) -> Iterator[Change]:
    """Rules added and removed (a changed rule is one removed and one added). A webhook is
    where alert text is sent: its lines are listed with the security-sensitive ones."""
    before = [_rule_text(r) for r in old.alerts]
    after = [_rule_text(r) for r in new.alerts]
    for rule, text in zip(old.alerts, before, strict=True):
        if text not in after:
            yield Change(
                "Alerts",
                text,
                "alert rule removed",
                f"**Removed** alert rule: {text}.",
                sensitive=rule.webhook is not None,
            )
    for rule, text in zip(new.alerts, after, strict=True):
        if text not in before:
            yield Change(
                "Alerts",
                text,
                "alert rule added",
                f"**Added** alert rule: {text}.",
                sensitive=rule.webhook is not None,
            )


def _rule_text(rule: AlertRule) -> str:
    scopes = rule.scopes if isinstance(rule.scopes, str) else codes(rule.scopes)
    percents = ", ".join(f"{t}%" for t in rule.thresholds)
    limits = ", ".join(rule.limits)
    hook = f", webhook {code(rule.webhook)}" if rule.webhook else ""
    return f"{scopes}: {limits} at {percents}{hook}"
