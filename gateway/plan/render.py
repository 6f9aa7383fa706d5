"""A plan as Markdown (the pull request comment, beside `policy diff`) or as JSON.

Deterministic: rows sorted by name, so the same trace and change give the same text. Only
ids, names and numbers appear: never key hashes, secrets or prompts.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from gateway.limits.refusals import usd
from gateway.plan.compare import KeyChange, LimitHit, Plan, ShadowHit
from gateway.plan.refusals import GATE_REASONS, Refusal

MAX_ROWS = 50
"""Rows per Markdown table; the rest are counted (GitHub caps a comment at 65,536 chars)."""
DENOMINATOR = "replayed requests the OLD policy admits"
NO_TEAM = "(no team)"


def reason_text(why: Refusal) -> str:
    """`429 rpm of key 'a'`, `403 the key may not use the model`."""
    if why.is_limit:
        return f"{why.status} {why.reason} of {why.scope}" if why.scope else f"429 {why.reason}"
    return f"{why.status} {GATE_REASONS.get(why.reason, why.reason)}"


def signed_usd(micros: int) -> str:
    return ("+" if micros > 0 else "-" if micros < 0 else "±") + usd(abs(micros))


def _utc(ts: float | None) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _peak(hit: LimitHit | ShadowHit) -> tuple[str, int]:
    """The window with the most newly refused requests (the earliest among equals); for a
    shadow limit, the most would-be refusals (none under NEW: no window)."""
    if not hit.windows:
        return "", 0
    return min(hit.windows.items(), key=lambda item: (-item[1], item[0]))


SHADOW_INTRO = (
    "Shadow limits (`enforce: shadow`) never refuse: these requests are served, and are not "
    "counted as refused above. With `enforce: on` they would be refused:"
)
SHADOW_NOTE = (
    "A shadow rpm or tpm counts the requests it lets through, so under sustained overload it "
    "names more requests than enforcing it would refuse; quotas and budgets name exactly those."
)


def _shadow_rows(plan: Plan) -> list[ShadowHit]:
    return [hit for _, hit in sorted(plan.shadow.items()) if hit.would_refuse]


def _shadow_markdown(plan: Plan) -> list[str]:
    hits = _shadow_rows(plan)
    if not hits:
        return []
    rows = []
    for hit in hits:
        window, peak = _peak(hit)
        rows.append(
            [
                _code(hit.limit),
                hit.scope,
                hit.value or "—",
                f"{hit.would_refuse:,}",
                f"{hit.old_would_refuse:,}",
                _utc(hit.first_ts) or "",
                f"{window} ({peak:,})",
            ]
        )
    header = ["Limit", "Scope", "NEW shadow value", "Would refuse", "Under OLD", "First"]
    lines = ["#### Shadow limits: would be refused if enforced", "", SHADOW_INTRO, ""]
    return [*lines, *_table([*header, "Peak window"], rows), f"<sub>{SHADOW_NOTE}</sub>", ""]


def _shadow_json(plan: Plan) -> list[dict[str, Any]]:
    found = []
    for _, hit in sorted(plan.shadow.items()):
        window, peak = _peak(hit)
        found.append(
            {
                "scope": hit.scope,
                "limit": hit.limit,
                "value": hit.value or None,
                "would_refuse": hit.would_refuse,
                "old_would_refuse": hit.old_would_refuse,
                "first": _utc(hit.first_ts) if hit.would_refuse else None,
                "peak_window": window or None,
                "peak_would_refuse": peak,
            }
        )
    return found


@dataclass(slots=True)
class TeamChange:
    team: str
    requests: int = 0
    newly_refused: int = 0
    newly_admitted: int = 0
    old_micros: int = 0
    new_micros: int = 0
    reasons: Counter[Refusal] = field(default_factory=Counter)


def teams_of(plan: Plan) -> list[TeamChange]:
    teams: dict[str, TeamChange] = {}
    for change in plan.keys.values():
        name = change.team or NO_TEAM
        team = teams.get(name)
        if team is None:
            team = teams[name] = TeamChange(name)
        team.requests += change.requests
        team.newly_refused += change.newly_refused.total()
        team.newly_admitted += change.newly_admitted.total()
        team.old_micros += change.old_micros
        team.new_micros += change.new_micros
        team.reasons.update(change.newly_refused)
    return [teams[name] for name in sorted(teams)]


def _reasons(counts: Counter[Refusal]) -> str:
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0].label))
    return "; ".join(f"{reason_text(why)} ({n:,})" for why, n in ordered)


def _changed(change: KeyChange) -> bool:
    return bool(change.newly_refused or change.newly_admitted) or (
        change.old_micros != change.new_micros
    )


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows[:MAX_ROWS]]
    if len(rows) > MAX_ROWS:
        lines.append(f"\n…and {len(rows) - MAX_ROWS:,} more (`--format json` lists all).")
    return [*lines, ""]


def _code(text: str | None) -> str:
    return f"`{text}`" if text else "—"


def render_markdown(plan: Plan, old_label: str, new_label: str) -> str:
    lines = [f"### Policy plan: {_code(old_label)} → {_code(new_label)}", ""]
    if not plan.replayed:
        lines += [f"No recorded requests to replay ({plan.source}, since {_utc(plan.since)}).", ""]
        return "\n".join(lines)
    old_spend = sum(k.old_micros for k in plan.keys.values())
    new_spend = sum(k.new_micros for k in plan.keys.values())
    lines += [
        f"Replayed **{plan.replayed:,}** recorded requests from {_utc(plan.first_ts)} to "
        f"{_utc(plan.last_ts)} ({plan.source}) through both revisions.",
        "",
        f"- **Newly refused: {plan.newly_refused:,}** ({plan.refused_share:.2%} of the "
        f"{plan.old_admitted:,} {DENOMINATOR})",
        f"- **Newly admitted: {plan.newly_admitted:,}**",
        f"- **Spend: {usd(old_spend)} → {usd(new_spend)}** ({signed_usd(new_spend - old_spend)})",
        "",
    ]
    refused = [c for c in sorted(plan.keys.values(), key=lambda c: c.key_id) if c.newly_refused]
    if refused:
        lines += ["#### Newly refused", ""]
        lines += _table(
            ["Key", "Team", "Requests", "Why"],
            [
                [
                    _code(c.key_id),
                    _code(c.team),
                    f"{c.newly_refused.total():,}",
                    _reasons(c.newly_refused),
                ]
                for c in refused
            ],
        )
    if plan.limits:
        lines += ["#### Limits that would refuse", ""]
        rows = []
        for (_, _), hit in sorted(plan.limits.items()):
            window, peak = _peak(hit)
            rows.append(
                [
                    _code(hit.limit),
                    hit.scope,
                    hit.value or "—",
                    f"{hit.refused:,}",
                    _utc(hit.first_ts) or "",
                    f"{window} ({peak:,} refused)",
                ]
            )
        lines += _table(["Limit", "Scope", "NEW value", "Refused", "First", "Peak window"], rows)
    lines += _shadow_markdown(plan)
    if plan.lost:
        lines += ["#### Keys that would lose a model they used", ""]
        lines += _table(
            ["Key", "Model", "Requests", "Why"],
            [
                [
                    _code(lost.key_id),
                    _code(lost.model),
                    f"{lost.requests:,}",
                    reason_text(lost.reason),
                ]
                for _, lost in sorted(plan.lost.items())
            ],
        )
    admitted = [c for c in sorted(plan.keys.values(), key=lambda c: c.key_id) if c.newly_admitted]
    if admitted:
        lines += ["#### Newly admitted", ""]
        lines += _table(
            ["Key", "Team", "Requests", "Refused under OLD by"],
            [
                [
                    _code(c.key_id),
                    _code(c.team),
                    f"{c.newly_admitted.total():,}",
                    _reasons(c.newly_admitted),
                ]
                for c in admitted
            ],
        )
    teams = [t for t in teams_of(plan) if t.newly_refused or t.newly_admitted or _spent(t)]
    if teams:
        lines += ["#### Per team", ""]
        lines += _table(
            ["Team", "Requests", "Newly refused", "Newly admitted", "Spend OLD → NEW", "Change"],
            [
                [
                    _code(t.team),
                    f"{t.requests:,}",
                    f"{t.newly_refused:,}",
                    f"{t.newly_admitted:,}",
                    f"{usd(t.old_micros)} → {usd(t.new_micros)}",
                    signed_usd(t.new_micros - t.old_micros),
                ]
                for t in teams
            ],
        )
    spend = [c for c in sorted(plan.keys.values(), key=lambda c: c.key_id) if _changed(c)]
    spend = [c for c in spend if c.old_micros != c.new_micros]
    if spend:
        lines += ["#### Spend change per key", ""]
        lines += _table(
            ["Key", "Team", "OLD", "NEW", "Change"],
            [
                [
                    _code(c.key_id),
                    _code(c.team),
                    usd(c.old_micros),
                    usd(c.new_micros),
                    signed_usd(c.new_micros - c.old_micros),
                ]
                for c in spend
            ],
        )
    if not (refused or admitted or spend):
        lines += ["No recorded request would be answered differently.", ""]
    lines += _notes(plan)
    return "\n".join(lines)


def _spent(team: TeamChange) -> bool:
    return team.old_micros != team.new_micros


def _notes(plan: Plan) -> list[str]:
    unpriced = sum(k.new_unpriced for k in plan.keys.values())
    notes = [
        f"Each request is replayed at its recorded time with its recorded tokens; limits, "
        f"quotas and budgets count from zero at {_utc(plan.first_ts)}; spend is at each "
        "revision's prices.",
    ]
    if plan.rows > plan.replayed:
        notes.append(
            f"{plan.rows - plan.replayed:,} recorded requests were refused before routing "
            "(no valid key, a malformed body) and are not replayed."
        )
    if unpriced:
        notes.append(f"{unpriced:,} admitted requests reach a target with no known price.")
    return ["<sub>" + " ".join(notes) + "</sub>", ""]


def plan_json(plan: Plan, old_label: str, new_label: str) -> dict[str, Any]:
    old_spend = sum(k.old_micros for k in plan.keys.values())
    new_spend = sum(k.new_micros for k in plan.keys.values())
    limits = []
    for (_, _), hit in sorted(plan.limits.items()):
        window, peak = _peak(hit)
        limits.append(
            {
                "scope": hit.scope,
                "limit": hit.limit,
                "value": hit.value or None,
                "refused": hit.refused,
                "first": _utc(hit.first_ts),
                "peak_window": window,
                "peak_refused": peak,
            }
        )
    return {
        "old": {"rev": old_label, "commit": plan.old_commit},
        "new": {"rev": new_label, "commit": plan.new_commit},
        "source": plan.source,
        "since": _utc(plan.since),
        "from": _utc(plan.first_ts),
        "to": _utc(plan.last_ts),
        "rows": plan.rows,
        "replayed": plan.replayed,
        "old_admitted": plan.old_admitted,
        "newly_refused": plan.newly_refused,
        "newly_admitted": plan.newly_admitted,
        "refused_differently": plan.still_refused_differently,
        "refused_share": round(plan.refused_share, 6),
        "refused_share_of": DENOMINATOR,
        "spend": {
            "old_micros": old_spend,
            "new_micros": new_spend,
            "change_micros": new_spend - old_spend,
            "new_unpriced_requests": sum(k.new_unpriced for k in plan.keys.values()),
        },
        "keys": [_key_json(plan.keys[k]) for k in sorted(plan.keys)],
        "teams": [
            {
                "team": None if t.team == NO_TEAM else t.team,
                "requests": t.requests,
                "newly_refused": t.newly_refused,
                "newly_admitted": t.newly_admitted,
                "old_micros": t.old_micros,
                "new_micros": t.new_micros,
            }
            for t in teams_of(plan)
        ],
        "limits": limits,
        "would_be_refused_if_enforced": _shadow_json(plan),
        "lost_models": [
            {
                "key_id": lost.key_id,
                "model": lost.model,
                "status": lost.reason.status,
                "reason": lost.reason.reason,
                "requests": lost.requests,
            }
            for _, lost in sorted(plan.lost.items())
        ],
    }


def _key_json(change: KeyChange) -> dict[str, Any]:
    return {
        "key_id": change.key_id,
        "team": change.team,
        "requests": change.requests,
        "old_admitted": change.old_admitted,
        "newly_refused": _counts(change.newly_refused),
        "newly_admitted": _counts(change.newly_admitted),
        "old_micros": change.old_micros,
        "new_micros": change.new_micros,
    }


def _counts(counts: Counter[Refusal]) -> list[dict[str, Any]]:
    return [
        {"status": why.status, "reason": why.reason, "scope": why.scope or None, "requests": n}
        for why, n in sorted(counts.items(), key=lambda item: item[0].label)
    ]
