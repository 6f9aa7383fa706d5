"""alerts.yaml's cross-file checks: named scopes must exist, webhook references be lent."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from credentials.refs import AllowedRefs
from policies.alerts import TEAM_PREFIX, AlertsFile
from policies.crosscheck import Issue


def alert_issues(
    file: str,
    alerts: AlertsFile,
    teams: Collection[str] | None,
    key_ids: Collection[str] | None,
    allowed: AllowedRefs,
) -> list[Issue]:
    """Named scopes that do not exist, and webhook references the operator does not lend.
    `teams` / `key_ids` None: that file failed itself (nothing to compare with)."""
    issues = []
    for index, rule in enumerate(alerts.alerts):
        if isinstance(rule.scopes, tuple):
            issues += _unknown_scopes(file, index, rule.scopes, teams, key_ids)
        if rule.webhook is not None:
            reason = allowed.refusal(rule.webhook)
            if reason is not None:
                issues.append(Issue(file, ("alerts", index, "webhook"), reason))
    return issues


def _unknown_scopes(
    file: str,
    index: int,
    names: Sequence[str],
    teams: Collection[str] | None,
    key_ids: Collection[str] | None,
) -> list[Issue]:
    issues = []
    for at, name in enumerate(names):
        loc = ("alerts", index, "scopes", at)
        if name.startswith(TEAM_PREFIX):
            team = name.removeprefix(TEAM_PREFIX)
            if teams is not None and team not in teams:
                known = ", ".join(sorted(teams)) or "none"
                issues.append(
                    Issue(file, loc, f"'{team}' is not a team in teams.yaml (known: {known})")
                )
        elif key_ids is not None and name not in key_ids:
            issues.append(
                Issue(
                    file,
                    loc,
                    f"'{name}' is not a key id in keys.yaml: name a key, or a team as team:NAME",
                )
            )
    return issues
