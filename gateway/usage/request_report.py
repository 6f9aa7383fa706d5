"""Read the request log back: per key and model, requests, errors, tokens and p50 latency."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

_AGO = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

_SUMMARY = """
WITH picked AS (
    SELECT key_id, model, status, error, prompt_tokens, completion_tokens, latency_ms
    FROM requests WHERE ts >= :since AND (:key IS NULL OR key_id = :key)
), ranked AS (
    SELECT *,
        ROW_NUMBER() OVER (PARTITION BY key_id, model ORDER BY latency_ms) AS rn,
        COUNT(*) OVER (PARTITION BY key_id, model) AS n
    FROM picked
)
SELECT key_id, model, COUNT(*),
    SUM(CASE WHEN status >= 400 OR error IS NOT NULL THEN 1 ELSE 0 END),
    SUM(prompt_tokens), SUM(completion_tokens),
    MAX(CASE WHEN rn = (n + 1) / 2 THEN latency_ms END)
FROM ranked GROUP BY key_id, model ORDER BY key_id IS NULL, key_id, model
"""


@dataclass(frozen=True, slots=True)
class SummaryRow:
    key_id: str | None
    model: str | None
    requests: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    p50_latency_ms: float
    """Nearest-rank median."""


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


def summarize(path: Path, since: float = 0.0, key_id: str | None = None) -> list[SummaryRow]:
    """Rows of the request log at `path` (opened read-only), grouped by key and model."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        db.execute("PRAGMA busy_timeout=5000")
        found = db.execute(_SUMMARY, {"since": since, "key": key_id}).fetchall()
    finally:
        db.close()
    return [
        SummaryRow(key, model, n, errors or 0, prompt or 0, completion or 0, p50 or 0.0)
        for key, model, n, errors, prompt, completion, p50 in found
    ]
