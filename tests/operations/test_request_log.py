"""The request log: batched writes, retention, and the summary `modelgate usage` prints."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.usage.request_log import MAX_TEXT, RequestLog
from gateway.usage.request_report import parse_since, summarize


def event(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "ts": time.time(),
        "request_id": "r1",
        "key_id": "alice",
        "model": "gpt-4o-mini",
        "provider": "fake",
        "target": "fake/upstream-mini",
        "status": 200,
        "latency_ms": 10.0,
        "ttfb_ms": 5.0,
        "prompt_tokens": 11,
        "completion_tokens": 7,
        "stream": False,
        "protocol": "openai",
        "error": None,
    }
    return base | fields


def count(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT COUNT(*) FROM requests").fetchone()[0])


async def test_rows_wait_in_memory_until_a_flush(tmp_path: Path) -> None:
    path = tmp_path / "requests.sqlite3"
    log = RequestLog(path, retention_days=30)
    log.open()
    for n in range(5):
        log.add(event(request_id=f"r{n}"))
    assert log.pending == 5 and count(path) == 0  # add() does no IO
    await log.flush()
    assert log.pending == 0 and count(path) == 5
    log.add(event(model="m" * (MAX_TEXT + 50)))
    await log.close()  # writes the rest
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        longest = db.execute("SELECT MAX(LENGTH(model)) FROM requests").fetchone()[0]
    assert longest == MAX_TEXT


async def test_rows_past_the_retention_are_deleted_at_open(tmp_path: Path) -> None:
    path = tmp_path / "requests.sqlite3"
    first = RequestLog(path, retention_days=30)
    first.open()
    first.add(event(ts=time.time() - 31 * 86400))
    first.add(event(ts=time.time() - 29 * 86400))
    await first.close()
    assert count(path) == 2
    second = RequestLog(path, retention_days=30)
    second.open()
    await second.close()
    assert count(path) == 1


async def test_summary_per_key_and_model_with_nearest_rank_median(tmp_path: Path) -> None:
    path = tmp_path / "requests.sqlite3"
    log = RequestLog(path, retention_days=30)
    log.open()
    for latency in (40.0, 10.0, 30.0, 20.0, 500.0):
        log.add(event(latency_ms=latency))
    log.add(event(status=429, error="rate_limited", prompt_tokens=0, completion_tokens=0))
    log.add(event(key_id="bob", model="other", ts=time.time() - 7200))
    log.add(event(key_id=None, model=None, status=401, error="auth", latency_ms=0.1))
    await log.close()
    rows = {(r.key_id, r.model): r for r in summarize(path)}
    alice = rows[("alice", "gpt-4o-mini")]
    assert (alice.requests, alice.errors) == (6, 1)
    assert (alice.prompt_tokens, alice.completion_tokens) == (55, 35)
    assert alice.p50_latency_ms == 20.0  # of 10, 10 (the 429), 20, 30, 40, 500: the 3rd
    assert rows[(None, None)].errors == 1
    recent = {(r.key_id, r.model) for r in summarize(path, since=time.time() - 3600)}
    assert ("bob", "other") not in recent and ("alice", "gpt-4o-mini") in recent
    assert [r.key_id for r in summarize(path, key_id="bob")] == ["bob"]


def test_since_reads_durations_and_dates() -> None:
    now = 1_800_000_000.0
    assert parse_since("1h", now) == now - 3600
    assert parse_since("30m", now) == now - 1800
    assert parse_since("7d", now) == now - 7 * 86400
    assert parse_since("2026-11-01", now) == 1_793_491_200.0  # midnight UTC
    with pytest.raises(ValueError, match="1h"):
        parse_since("last tuesday", now)
