"""`modelgate policy diff`: what changes between two policy revisions, in operators' words.

The output is Markdown for a pull request comment. Order is deterministic (sections in a
fixed order, names sorted), and it never prints a hash or a secret: a rotated key is only
"rotated", a provider's credentials appear as their references. Changes to where requests
and credentials go come first, under "Security-sensitive changes": a commit could otherwise
send the operator's credentials to a new host in a line a reviewer skims past.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from dulwich.repo import Repo

from policies.diff_keys import admin_changes, key_changes
from policies.diff_prices import alert_changes, price_changes
from policies.diff_routing import provider_changes, route_changes
from policies.diff_teams import team_changes
from policies.diff_words import Change, Mode, affects, code, limit_steps, limits_text, overrides
from policies.loader import load_policy
from policies.models import Key, Policy
from policies.problems import PolicyInvalid, RevisionNotFound
from policies.repo import open_repo, read_policy_files, resolve

__all__ = ["Change", "diff_policies", "diff_revisions", "render_invalid", "render_markdown"]

SECTIONS = ("Keys", "Admin tokens", "Teams", "Limits", "Prices", "Routes", "Providers", "Alerts")
SENSITIVE_HEADING = "#### Security-sensitive changes"


def diff_policies(old: Policy, new: Policy) -> list[Change]:
    """Every change from `old` to `new`, in reading order."""
    changes = [
        *key_changes(old, new),
        *admin_changes(old.admins, new.admins),
        *team_changes(old.teams, new.teams, new.keys),
        *_limits(old, new),
        *price_changes(old.prices, new.prices),
        *route_changes(old.routes, new.routes),
        *provider_changes(old.providers, new.providers),
        *alert_changes(old.alerts, new.alerts),
    ]
    # Stable sort: sections in order, subjects by name, a subject's lines as generated.
    return sorted(changes, key=lambda c: (SECTIONS.index(c.section), c.subject))


def render_markdown(changes: list[Change], old_label: str, new_label: str) -> str:
    """The pull request comment for `changes`."""
    lines = [f"### Policy changes: {code(old_label)} → {code(new_label)}", ""]
    if not changes:
        return "\n".join([*lines, "No policy changes.", ""])
    sensitive = [c for c in changes if c.sensitive]
    if sensitive:
        intro = "Where requests and the operator's credentials are sent; review these first:"
        lines += [SENSITIVE_HEADING, "", intro, "", *(f"- {c.text}" for c in sensitive), ""]
    counts = Counter(c.kind for c in changes)
    summary = ", ".join(f"{kind} ({n})" for kind, n in sorted(counts.items()))
    lines += [f"**Summary:** {summary}.", ""]
    for section in SECTIONS:
        mine = [c for c in changes if c.section == section and not c.sensitive]
        if mine:
            lines += [f"#### {section}", "", *(f"- {c.text}" for c in mine), ""]
    return "\n".join(lines)


def render_invalid(label: str, error: PolicyInvalid) -> str:
    """A section saying a revision does not validate, with its problems."""
    lines = [f"> **{code(label)} does not validate** ({len(error.problems)} problem(s)):", ">"]
    lines += [f"> - {code(str(p))}" for p in error.problems]
    return "\n".join([*lines, ""])


def diff_revisions(repo_path: Path, old_rev: str, new_rev: str) -> str:
    """Markdown for the change from `old_rev` to `new_rev`; raises RevisionNotFound."""
    with open_repo(repo_path) as repo:
        shas = []
        for rev in (old_rev, new_rev):
            sha = resolve(repo, rev)
            if sha is None:
                raise RevisionNotFound(f"revision '{rev}' not found in {repo_path}")
            shas.append(sha)
        loaded = [_load(repo, sha) for sha in shas]
    labels = [
        f"{rev} ({sha[:7]})" if not sha.startswith(rev) else sha[:7]
        for rev, sha in zip((old_rev, new_rev), shas, strict=True)
    ]
    policies: list[Policy | None] = []
    notes = []
    for label, outcome in zip(labels, loaded, strict=True):
        if isinstance(outcome, PolicyInvalid):
            policies.append(None)
            notes.append(render_invalid(label, outcome))
        else:
            policies.append(outcome)
    old, new = policies
    if old is None or new is None:
        head = f"### Policy changes: {code(labels[0])} → {code(labels[1])}\n"
        return "\n".join([head, *notes])
    return render_markdown(diff_policies(old, new), labels[0], labels[1])


def _load(repo: Repo, sha: str) -> Policy | PolicyInvalid:
    try:  # reading refuses a commit past the policy bounds, by file, before parsing
        return load_policy(read_policy_files(repo, sha))
    except PolicyInvalid as exc:
        return exc


def _limits(old: Policy, new: Policy) -> Iterator[Change]:
    tiers = new.limits.tiers
    on_default = [k for k in new.keys if not k.tier or k.tier not in tiers]
    for touched, text, kind in limit_steps(old.limits.default, new.limits.default):
        users = _not_overriding(on_default, touched)
        yield Change("Limits", "", kind, f"Default limits: {text}{affects(users)}.")
    before, after = old.limits.tiers, new.limits.tiers
    for tier in sorted(before.keys() | after.keys()):
        was, now = before.get(tier), after.get(tier)
        on_tier = [k for k in new.keys if k.tier == tier]
        name = f"Tier {code(tier)}"
        if was is None and now is not None:
            yield Change(
                "Limits", tier, "tier added", f"**Added** tier {code(tier)}: {limits_text(now)}."
            )
        elif now is None:
            yield Change("Limits", tier, "tier removed", f"**Removed** tier {code(tier)}.")
        elif was is not None:
            for touched, text, kind in limit_steps(was, now):
                users = _not_overriding(on_tier, touched)
                yield Change("Limits", tier, kind, f"{name}: {text}{affects(users)}.")


def _not_overriding(keys: list[Key], touched: tuple[tuple[Mode, str], ...]) -> list[str]:
    """Ids of the keys whose own limits leave some of `touched` (each a limit in a mode:
    enforced or shadow) to their tier (or the default)."""
    return sorted(k.id for k in keys if not overrides(k.limits, touched))
