"""Rolling traffic figures and the row filter, on records with chosen timestamps."""

from __future__ import annotations

from typing import Any

import pytest

from tui.traffic import RequestRecord, RowFilter, TrafficStats, percentile

NOW = 1_800_000_000.0


def record(n: int, ts: float, **fields: Any) -> RequestRecord:
    data = {
        "ts": ts,
        "request_id": f"r{n}",
        "key_id": "alice",
        "model": "gpt-4o-mini",
        "provider": "openai",
        "status": 200,
        "latency_ms": 10.0,
        "prompt_tokens": 3,
        "completion_tokens": 2,
    }
    return RequestRecord.from_event(n, data | fields)


def test_from_event_tolerates_missing_and_extra_fields() -> None:
    r = RequestRecord.from_event(5, {"ts": 1.5, "status": 502, "new_field": [1], "key_id": None})
    assert (r.event_id, r.ts, r.status, r.key_id, r.tokens, r.ttfb_ms) == (
        5,
        1.5,
        502,
        None,
        0,
        None,
    )
    assert r.failed


def test_rates_errors_and_percentiles() -> None:
    stats = TrafficStats(window_s=60, rate_window_s=10)
    latencies = [float(ms) for ms in range(1, 101)]  # 1..100 ms, within the last 10 s
    stats.add(record(i, NOW - 5, latency_ms=ms) for i, ms in enumerate(latencies))
    stats.add([record(200, NOW - 30, status=500), record(201, NOW - 120)])  # old one: gone
    f = stats.figures(NOW)
    assert f.requests_per_s == pytest.approx(100 / 10)
    assert f.tokens_per_s == pytest.approx(100 * 5 / 10)
    assert f.error_rate == pytest.approx(1 / 101)
    assert f.p50_ms == 50.0
    assert f.p99_ms == 99.0
    assert len(f.requests_series) == 60
    assert f.requests_series[55] == 100  # second 55 of the window holds the burst
    assert f.requests_series[30] == 1
    assert sum(f.requests_series) == 101
    assert f.p99_series[55] == 99.0


def test_no_traffic_has_no_rates_to_show() -> None:
    f = TrafficStats().figures(NOW)
    assert (f.requests_per_s, f.error_rate, f.p50_ms, f.p99_ms) == (0, None, None, None)


def test_percentile_nearest_rank() -> None:
    assert percentile([], 0.5) is None
    assert percentile([7.0], 0.99) == 7.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.0


@pytest.mark.parametrize(
    ("text", "matching", "not_matching"),
    [
        ("key:alice", {"key_id": "alice"}, {"key_id": "bob"}),
        ("key=ali*", {"key_id": "alice"}, {"key_id": "malice"}),
        ("model:gpt-*", {"model": "gpt-4o"}, {"model": "claude"}),
        ("status:5xx", {"status": 502}, {"status": 429}),
        ("status:429", {"status": 429}, {"status": 428}),
        ("status:err", {"status": 401}, {"status": 200}),
        ("status:ok", {"status": 204}, {"status": 500}),
        ("openai", {"provider": "openai"}, {"provider": "anthropic"}),
        ("key:alice status:4xx", {"status": 403}, {"key_id": "bob", "status": 403}),
    ],
)
def test_filters(text: str, matching: dict[str, Any], not_matching: dict[str, Any]) -> None:
    f = RowFilter.parse(text)
    assert f.active
    assert f.matches(record(1, NOW, **matching))
    assert not f.matches(record(2, NOW, **not_matching))


def test_empty_filter_matches_everything() -> None:
    f = RowFilter.parse("  ")
    assert not f.active and f.matches(record(1, NOW, status=500, key_id=None))
