"""Finished requests as the Traffic tab sees them: records, rolling statistics and filters.

Statistics are bucketed by each event's own timestamp, so events replayed after a reconnect
land in the seconds they happened in, not in the moment they arrived.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase

from gateway.payloads import RequestEvent

WINDOW_S = 60
"""Seconds of history behind error rate, percentiles and the sparklines."""
RATE_WINDOW_S = 10
"""Seconds behind requests/s and tokens/s (short, so a burst shows at once)."""
MAX_KEPT = 100_000
"""Records kept for statistics at most (a very busy gateway samples the newest)."""


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One finished request, from an `event: request` of /admin/api/events."""

    event_id: int
    ts: float
    request_id: str
    key_id: str | None
    model: str | None
    provider: str | None
    target: str | None
    status: int
    latency_ms: float
    ttfb_ms: float | None
    prompt_tokens: int
    completion_tokens: int
    stream: bool
    error: str | None
    cost_usd: float | None = None
    """None: the price is unknown (or the gateway predates prices)."""

    @classmethod
    def from_event(cls, event_id: int, data: RequestEvent) -> RequestRecord:
        """Tolerant of missing, extra and mistyped fields (another gateway version's)."""
        ttfb = data.get("ttfb_ms")
        return cls(
            event_id=event_id,
            ts=_number(data.get("ts")),
            request_id=_text(data.get("request_id")) or "",
            key_id=_text(data.get("key_id")),
            model=_text(data.get("model")),
            provider=_text(data.get("provider")),
            target=_text(data.get("target")),
            status=int(_number(data.get("status"))),
            latency_ms=_number(data.get("latency_ms")),
            ttfb_ms=float(ttfb) if isinstance(ttfb, int | float) else None,
            prompt_tokens=int(_number(data.get("prompt_tokens"))),
            completion_tokens=int(_number(data.get("completion_tokens"))),
            stream=bool(data.get("stream")),
            error=_text(data.get("error")),
            cost_usd=float(cost) if isinstance(cost := data.get("cost_usd"), int | float) else None,
        )

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def failed(self) -> bool:
        return self.status >= 400 or self.error is not None


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


@dataclass(frozen=True)
class TrafficFigures:
    """What the stats line and sparklines show at one moment."""

    requests_per_s: float
    tokens_per_s: float
    error_rate: float | None
    """Failed share of the window's requests; None without requests."""
    p50_ms: float | None
    p99_ms: float | None
    requests_series: list[float]
    """Requests in each second of the window, oldest first."""
    p99_series: list[float]
    """p99 latency (ms) in each second of the window (0 without requests)."""


def percentile(sorted_values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


class TrafficStats:
    """Rolling figures over the last WINDOW_S seconds of finished requests."""

    def __init__(self, window_s: int = WINDOW_S, rate_window_s: int = RATE_WINDOW_S) -> None:
        self.window_s = window_s
        self.rate_window_s = rate_window_s
        self._records: deque[RequestRecord] = deque(maxlen=MAX_KEPT)

    def add(self, records: Iterable[RequestRecord]) -> None:
        self._records.extend(records)

    def figures(self, now: float) -> TrafficFigures:
        start = now - self.window_s
        while self._records and self._records[0].ts < start:
            self._records.popleft()
        recent = [r for r in self._records if start <= r.ts <= now]
        rate_start = now - self.rate_window_s
        in_rate = [r for r in recent if r.ts > rate_start]
        latencies = sorted(r.latency_ms for r in recent)
        per_second: list[list[float]] = [[] for _ in range(self.window_s)]
        for record in recent:
            index = min(self.window_s - 1, int(record.ts - start))
            per_second[index].append(record.latency_ms)
        return TrafficFigures(
            requests_per_s=len(in_rate) / self.rate_window_s,
            tokens_per_s=sum(r.tokens for r in in_rate) / self.rate_window_s,
            error_rate=(sum(r.failed for r in recent) / len(recent)) if recent else None,
            p50_ms=percentile(latencies, 0.50),
            p99_ms=percentile(latencies, 0.99),
            requests_series=[float(len(bucket)) for bucket in per_second],
            p99_series=[percentile(sorted(bucket), 0.99) or 0.0 for bucket in per_second],
        )


STATUS_WORDS = {"ok": (0, 399), "err": (400, 599), "error": (400, 599)}


@dataclass(frozen=True)
class RowFilter:
    """`key:alice model:gpt-* status:5xx word`: globs per field, a bare word matches anywhere.

    Status takes an exact code (429), a class (4xx, 5xx), `ok` or `err`.
    """

    key: str | None = None
    model: str | None = None
    status: str | None = None
    words: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> RowFilter:
        fields: dict[str, str] = {}
        words: list[str] = []
        for term in text.split():
            name, sep, value = term.partition(":") if ":" in term else term.partition("=")
            if sep and name.lower() in ("key", "model", "status") and value:
                fields[name.lower()] = value
            else:
                words.append(term.lower())
        return cls(fields.get("key"), fields.get("model"), fields.get("status"), tuple(words))

    @property
    def active(self) -> bool:
        return bool(self.key or self.model or self.status or self.words)

    def matches(self, record: RequestRecord) -> bool:
        if self.key is not None and not fnmatchcase(record.key_id or "", self.key):
            return False
        if self.model is not None and not fnmatchcase(record.model or "", self.model):
            return False
        if self.status is not None and not _status_matches(record.status, self.status):
            return False
        haystack = " ".join(
            str(part) for part in (record.key_id, record.model, record.provider, record.status)
        ).lower()
        return all(word in haystack for word in self.words)


def _status_matches(status: int, wanted: str) -> bool:
    wanted = wanted.lower()
    if wanted in STATUS_WORDS:
        low, high = STATUS_WORDS[wanted]
        return low <= status <= high
    if len(wanted) == 3 and wanted.endswith("xx") and wanted[0].isdigit():
        return status // 100 == int(wanted[0])
    return wanted.isdigit() and status == int(wanted)
