"""Read the request log back: per key and model, requests, errors, tokens and p50 latency."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

_AGO = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

GROUPINGS: dict[str, tuple[str, ...]] = {
    "key-model": ("key_id", "model"),
    "key": ("key_id",),
    "team": ("team",),
    "model": ("model",),
    "provider": ("provider",),
}
"""What `--by` groups rows by (the default: key and model)."""

_SUMMARY = """
WITH picked AS (
    SELECT {group} AS g1, {second} AS g2, status, error, prompt_tokens, completion_tokens,
        latency_ms, provider, {cost} AS cost_micros
    FROM requests WHERE ts >= :since AND (:key IS NULL OR key_id = :key)
), ranked AS (
    SELECT *,
        ROW_NUMBER() OVER (PARTITION BY g1, g2 ORDER BY latency_ms) AS rn,
        COUNT(*) OVER (PARTITION BY g1, g2) AS n
    FROM picked
)
SELECT g1, g2, COUNT(*),
    SUM(CASE WHEN status >= 400 OR error IS NOT NULL THEN 1 ELSE 0 END),
    SUM(prompt_tokens), SUM(completion_tokens),
    MAX(CASE WHEN rn = (n + 1) / 2 THEN latency_ms END),
    SUM(COALESCE(cost_micros, 0)),
    SUM(CASE WHEN cost_micros IS NULL AND provider IS NOT NULL THEN 1 ELSE 0 END)
FROM ranked GROUP BY g1, g2 ORDER BY g1 IS NULL, g1, g2
"""


@dataclass(frozen=True, slots=True)
class SummaryRow:
    key_id: str | None
    """The first grouping's value (the key, or the team, model or provider with --by)."""
    model: str | None
    """The second grouping's value (the model by default; None with --by)."""
    requests: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    p50_latency_ms: float
    """Nearest-rank median."""
    cost_micros: int = 0
    """Spend of the priced requests."""
    unpriced: int = 0
    """Requests that reached a target with no known price (not in cost_micros)."""


def parse_since(text: str, now: float) -> float:
    """`1h`, `30m`, `7d`, `2w` ago, or an ISO date/time (UTC unless it says otherwise)."""
    match = _AGO.match(text)
    if match:
        return now - float(match.group(1)) * _UNIT_S[match.group(2)]
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"cannot read --since {text!r}: give a duration such as 1h, 30m or 7d, "
            "or a date such as 2026-11-01"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def summarize(
    path: Path, since: float = 0.0, key_id: str | None = None, by: str = "key-model"
) -> list[SummaryRow]:
    """Rows of the request log at `path` (opened read-only), grouped as GROUPINGS[by] says."""
    columns = GROUPINGS[by]
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        db.execute("PRAGMA busy_timeout=5000")
        have = {row[1] for row in db.execute("PRAGMA table_info(requests)")}

        # A log no gateway of this version has opened yet lacks the newer columns.
        def column(name: str) -> str:
            return name if name in have else "NULL"

        query = _SUMMARY.format(
            group=column(columns[0]),
            second=column(columns[1]) if len(columns) > 1 else "NULL",
            cost=column("cost_micros"),
        )
        found = db.execute(query, {"since": since, "key": key_id}).fetchall()
    finally:
        db.close()
    return [
        SummaryRow(g1, g2, n, errors or 0, prompt or 0, completion or 0, p50 or 0.0, cost, unk)
        for g1, g2, n, errors, prompt, completion, p50, cost, unk in found
    ]


_SPEND = """
SELECT {by}, ts >= :day,
    SUM(COALESCE(cost_micros, 0)), COUNT(*),
    SUM(CASE WHEN cost_micros IS NULL AND provider IS NOT NULL THEN 1 ELSE 0 END)
FROM requests WHERE ts >= :month AND {by} IS NOT NULL GROUP BY 1, 2
"""


@dataclass(slots=True)
class PeriodSpend:
    cost_micros: int = 0
    requests: int = 0
    unpriced: int = 0


def spend(
    path: Path, by: str, day_start: float, month_start: float
) -> dict[str, tuple[PeriodSpend, PeriodSpend]]:
    """(today, this month) spend per key_id or team since the given Unix times, read-only;
    empty when there is no log yet."""
    if by not in ("key_id", "team") or not path.exists():
        return {}
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        db.execute("PRAGMA busy_timeout=5000")
        have = {row[1] for row in db.execute("PRAGMA table_info(requests)")}
        if "cost_micros" not in have:
            return {}
        found = db.execute(_SPEND.format(by=by), {"day": day_start, "month": month_start})
        out: dict[str, tuple[PeriodSpend, PeriodSpend]] = {}
        for name, today, cost, requests, unpriced in found.fetchall():
            day, month = out.setdefault(name, (PeriodSpend(), PeriodSpend()))
            for period in (day, month) if today else (month,):
                period.cost_micros += cost or 0
                period.requests += requests
                period.unpriced += unpriced or 0
        return out
    finally:
        db.close()
