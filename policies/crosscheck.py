"""Checks that span files: names that must exist elsewhere, ids and hashes that must be unique.

Each check runs only when the files it reads validated, so one broken file does not
produce a cascade of follow-on errors about the others.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from policies.model_globs import class_end, glob_regex, is_glob
from policies.models import (
    Admin,
    Key,
    KeysFile,
    LimitsFile,
    ProvidersFile,
    RoutesFile,
    TeamsFile,
    WeightedTarget,
)

Loc = tuple[str | int, ...]
Where = Callable[[str, Loc], str]
"""Renders the position of (file, loc) as `file:line:col`, for messages that point elsewhere."""


@dataclass(frozen=True)
class Issue:
    """A cross-file problem, located by file and pydantic-style location."""

    file: str
    loc: Loc
    message: str
    on_key: bool = False


@dataclass(frozen=True)
class Parsed:
    """The files that validated, by name; None for a file that failed (skip its checks)."""

    providers: tuple[str, ProvidersFile] | None
    routes: tuple[str, RoutesFile] | None
    limits: tuple[str, LimitsFile] | None
    keys: Sequence[tuple[str, KeysFile]]
    providers_file: str = "providers.yaml"
    limits_file: str = "limits.yaml"
    teams: tuple[str, TeamsFile] | None = None
    teams_file: str = "teams.yaml"


def cross_check(parsed: Parsed, where: Where) -> list[Issue]:
    """Every cross-file problem in `parsed`."""
    issues: list[Issue] = []
    glob_errors: dict[str, str | None] = {}
    if parsed.routes is not None:
        issues += _check_routes(parsed, glob_errors)
    issues += _check_keys(parsed, glob_errors)
    issues += _check_teams(parsed, glob_errors)
    issues += _check_unique(parsed, where)
    return issues


def _glob_error(pattern: str, cache: dict[str, str | None]) -> str | None:
    if pattern not in cache:
        cache[pattern] = _glob_problem(pattern)
    return cache[pattern]


def _glob_problem(pattern: str) -> str | None:
    """Why `pattern` is not a usable glob; the glob translation accepts anything silently."""
    start = pattern.find("[")
    while start != -1:
        close = class_end(pattern, start + 1)
        if close == -1:
            return "a '[' is never closed; write '[[]' for a literal '['"
        start = pattern.find("[", close + 1)
    try:
        translated = glob_regex(pattern)
        re.compile(translated)
    except re.error as exc:
        return str(exc.msg)
    if "(?!)" in translated:  # fnmatch's rendering of an empty class such as [z-a]
        return "it can never match: a range such as 'z-a' is reversed"
    return None


def _check_routes(parsed: Parsed, glob_errors: dict[str, str | None]) -> list[Issue]:
    assert parsed.routes is not None
    file, routes = parsed.routes
    providers = parsed.providers[1].providers if parsed.providers is not None else None
    issues: list[Issue] = []
    for name, route in routes.routes.items():
        error = _glob_error(name, glob_errors) if is_glob(name) else None
        if error is not None:
            message = f"route name '{name}' is not a usable glob: {error}"
            issues.append(Issue(file, ("routes", name), message, on_key=True))
        for index, spec in enumerate(route.targets):
            weighted = isinstance(spec, WeightedTarget)
            text = spec.target if isinstance(spec, WeightedTarget) else spec
            loc: Loc = ("routes", name, "targets", index, *(("target",) if weighted else ()))
            provider, _, model = text.partition("/")
            if providers is not None and provider not in providers:
                message = _unknown_provider(provider, text, providers, parsed.providers_file)
                issues.append(Issue(file, loc, message))
            if "*" in model and not is_glob(name):
                message = f"target '{text}' has a '*' but route '{name}' is not a glob: "
                issues.append(Issue(file, loc, message + "name the upstream model exactly"))
    return issues


def _unknown_provider(provider: str, text: str, known: Mapping[str, object], pfile: str) -> str:
    if not known:
        return (
            f"unknown provider '{provider}' in target '{text}': {pfile} defines no "
            "providers; define it there or fix the name"
        )
    names = ", ".join(known)
    return (
        f"unknown provider '{provider}' in target '{text}' (providers: {names}); "
        f"define it in {pfile} or fix the name"
    )


def _check_keys(parsed: Parsed, glob_errors: dict[str, str | None]) -> list[Issue]:
    tiers = parsed.limits[1].tiers if parsed.limits is not None else None
    teams = parsed.teams[1].teams if parsed.teams is not None else None
    issues: list[Issue] = []
    valid_globs: set[tuple[str, ...] | None] = {None}  # keys share a few model lists
    for file, keys_file in parsed.keys:
        for index, key in enumerate(keys_file.keys):
            if tiers is not None and key.tier is not None and key.tier not in tiers:
                known = f" (tiers: {', '.join(tiers)})" if tiers else ""
                message = f"unknown tier '{key.tier}'{known}; add it under 'tiers:' in "
                message += f"{parsed.limits_file} or fix the name"
                issues.append(Issue(file, ("keys", index, "tier"), message))
            if teams is not None and key.team is not None and key.team not in teams:
                message = _unknown_team(key.team, teams, parsed.teams_file)
                issues.append(Issue(file, ("keys", index, "team"), message))
            if key.models in valid_globs:
                continue
            found = len(issues)
            for position, pattern in enumerate(key.models or ()):
                error = _glob_error(pattern, glob_errors)
                if error is not None:
                    message = f"model glob '{pattern}' is not usable: {error}"
                    issues.append(Issue(file, ("keys", index, "models", position), message))
            if len(issues) == found:
                valid_globs.add(key.models)
    return issues


def _unknown_team(name: str, known: Mapping[str, object], tfile: str, what: str = "team") -> str:
    listed = f" (teams: {', '.join(known)})" if known else f" ({tfile} defines no teams)"
    return f"unknown {what} '{name}'{listed}: define it in {tfile} or fix the name"


def _check_teams(parsed: Parsed, glob_errors: dict[str, str | None]) -> list[Issue]:
    """Parents that exist and form no cycle; usable model globs."""
    if parsed.teams is None:
        return []
    file, teams_file = parsed.teams
    teams = teams_file.teams
    issues: list[Issue] = []
    in_a_cycle: set[str] = set()
    for name, team in teams.items():
        for position, pattern in enumerate(team.models or ()):
            error = _glob_error(pattern, glob_errors)
            if error is not None:
                message = f"model glob '{pattern}' is not usable: {error}"
                issues.append(Issue(file, ("teams", name, "models", position), message))
        if team.parent is None:
            continue
        if team.parent not in teams:
            message = _unknown_team(team.parent, teams, file, "parent team")
            issues.append(Issue(file, ("teams", name, "parent"), message))
            continue
        chain = [name]
        parent: str | None = team.parent
        while parent is not None and parent in teams and parent not in chain:
            chain.append(parent)
            parent = teams[parent].parent
        if parent == name and name not in in_a_cycle:  # reported once, at its first team
            in_a_cycle.update(chain)
            path = " -> ".join([*chain, name])
            message = f"teams form a cycle ({path}): a team cannot be its own ancestor; "
            message += "remove or change one of these parents"
            issues.append(Issue(file, ("teams", name, "parent"), message))
    return issues


def _check_unique(parsed: Parsed, where: Where) -> list[Issue]:
    issues: list[Issue] = []
    first_id: dict[tuple[str, str], tuple[str, int]] = {}
    first_hash: dict[str, tuple[str, str, int]] = {}
    for file, keys_file in parsed.keys:
        sections: tuple[tuple[str, str, Sequence[Key | Admin]], ...] = (
            ("keys", "key", keys_file.keys),
            ("admins", "admin", keys_file.admins),
        )
        for section, kind, entries in sections:
            for index, entry in enumerate(entries):
                here = (file, index)
                seen = first_id.setdefault((section, entry.id), here)
                if seen != here:
                    message = f"duplicate {kind} id '{entry.id}' (also at "
                    message += f"{where(seen[0], (section, seen[1], 'id'))}): ids must be "
                    message += "unique across keys.yaml and keys/*.yaml; rename one"
                    issues.append(Issue(file, (section, index, "id"), message))
                other = first_hash.setdefault(entry.hash, (section, file, index))
                if other != (section, file, index):
                    other_kind = "key" if other[0] == "keys" else "admin"
                    other_entries = _entries(parsed, other[1], other[0])
                    other_where = where(other[1], (other[0], other[2], "hash"))
                    message = f"{kind} '{entry.id}' has the same hash as {other_kind} "
                    message += f"'{other_entries[other[2]].id}' (at {other_where}): one secret "
                    message += "cannot serve two entries; rotate one of them"
                    issues.append(Issue(file, (section, index, "hash"), message))
    return issues


def _entries(parsed: Parsed, file: str, section: str) -> Sequence[Key | Admin]:
    keys_file = next(kf for name, kf in parsed.keys if name == file)
    return keys_file.keys if section == "keys" else keys_file.admins
