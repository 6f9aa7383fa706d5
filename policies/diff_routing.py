"""`policy diff` for routes and providers."""

from __future__ import annotations

from collections.abc import Iterator

from policies.diff_words import Change, code, codes, from_to, num
from policies.models import Provider, Route, WeightedTarget

DEADLINE: float = Route.model_fields["deadline_s"].default
"""A route's deadline when it sets none (a new route mentions its own only if different)."""


def route_changes(old: dict[str, Route], new: dict[str, Route]) -> Iterator[Change]:
    for name in sorted(old.keys() | new.keys()):
        was, now = old.get(name), new.get(name)
        label = f"Route {code(name)}"
        if was is None and now is not None:
            text = f"**Added** route {code(name)} → {_targets(now)}"
            notes: list[str] = [now.strategy] if len(now.targets) > 1 else []
            notes += [f"deadline {num(now.deadline_s)} s"] if now.deadline_s != DEADLINE else []
            text += f" ({', '.join(notes)})." if notes else "."
            yield Change("Routes", name, "route added", text)
        elif now is None:
            yield Change("Routes", name, "route removed", f"**Removed** route {code(name)}.")
        elif was is not None:
            yield from _route_changes(name, label, was, now)


def _route_changes(name: str, label: str, was: Route, now: Route) -> Iterator[Change]:
    old_targets, new_targets = _target_map(was), _target_map(now)
    added = [t for t in new_targets if t not in old_targets]
    removed = [t for t in old_targets if t not in new_targets]
    if added:
        yield Change("Routes", name, "route changed", f"{label}: target(s) {codes(added)} added.")
    if removed:
        yield Change(
            "Routes", name, "route changed", f"{label}: target(s) {codes(removed)} removed."
        )
    kept_old = [t for t in old_targets if t in new_targets]
    kept_new = [t for t in new_targets if t in old_targets]
    if kept_old != kept_new:
        yield Change(
            "Routes",
            name,
            "route changed",
            f"{label}: target order changed to {codes(list(new_targets))}.",
        )
    for target in kept_new:
        if old_targets[target] != new_targets[target]:
            change = from_to(old_targets[target], new_targets[target])
            text = f"{label}: weight of {code(target)} {change}."
            yield Change("Routes", name, "route changed", text)
    if was.strategy != now.strategy:
        yield Change(
            "Routes",
            name,
            "route changed",
            f"{label}: strategy {from_to(was.strategy, now.strategy)}.",
        )
    if was.deadline_s != now.deadline_s:
        yield Change(
            "Routes",
            name,
            "route changed",
            f"{label}: deadline (s) {from_to(was.deadline_s, now.deadline_s)}.",
        )
    if was.translation != now.translation:
        yield Change(
            "Routes",
            name,
            "route changed",
            f"{label}: translation {from_to(was.translation, now.translation)}.",
        )


def _target_map(route: Route) -> dict[str, float]:
    return {
        (t.target if isinstance(t, WeightedTarget) else t): (
            t.weight if isinstance(t, WeightedTarget) else 1.0
        )
        for t in route.targets
    }


def _targets(route: Route) -> str:
    return ", ".join(code(t) for t in _target_map(route))


# providers --------------------------------------------------------------------------------

_PROVIDER_FIELDS = {
    "type": "type",
    "base_url": "base URL",
    "selection": "credential selection",
    "cooldown_s": "cooldown after a 429 (s)",
    "max_cooldown_s": "longest upstream Retry-After (s)",
    "timeout_s": "timeout (s)",
    "connect_timeout_s": "connect timeout (s)",
    "first_byte_timeout_s": "first-byte timeout (s)",
    "idle_timeout_s": "stream idle timeout (s)",
    "max_retries": "retries",
    "api_version": "API version",
}


_WHERE_TO = {"base_url"}
"""Provider fields that decide where requests, and the credentials on them, are sent."""


def provider_changes(old: dict[str, Provider], new: dict[str, Provider]) -> Iterator[Change]:
    for name in sorted(old.keys() | new.keys()):
        was, now = old.get(name), new.get(name)
        label = f"Provider {code(name)}"
        if was is None and now is not None:
            refs = codes([str(c) for c in now.credentials]) if now.credentials else "no credentials"
            text = f"**Added** provider {code(name)} ({now.type} at {code(now.base_url)}, {refs})."
            yield Change("Providers", name, "provider added", text, sensitive=True)
        elif now is None:
            yield Change(
                "Providers", name, "provider removed", f"**Removed** provider {code(name)}."
            )
        elif was is not None:
            yield from _provider_changes(name, label, was, now)


def _provider_changes(name: str, label: str, was: Provider, now: Provider) -> Iterator[Change]:
    for field, words in _PROVIDER_FIELDS.items():
        a, b = getattr(was, field), getattr(now, field)
        if a != b:
            text = f"{label}: {words} {from_to(a, b)}."
            yield Change("Providers", name, "provider changed", text, field in _WHERE_TO)
    added = [str(c) for c in now.credentials if c not in was.credentials]
    removed = [str(c) for c in was.credentials if c not in now.credentials]
    if added:
        yield Change(
            "Providers",
            name,
            "provider changed",
            f"{label}: credential(s) {codes(added)} added to the pool.",
            sensitive=True,
        )
    if removed:
        yield Change(
            "Providers",
            name,
            "provider changed",
            f"{label}: credential(s) {codes(removed)} removed from the pool.",
            sensitive=True,
        )
    headers = sorted(
        h
        for h in was.headers.keys() | now.headers.keys()
        if was.headers.get(h) != now.headers.get(h)
    )
    if headers:  # names only: a header value may be sensitive
        yield Change(
            "Providers",
            name,
            "provider changed",
            f"{label}: header(s) {codes(headers)} changed (values not shown).",
            sensitive=True,
        )
