"""Recorder.record: every sink gets the request, labels stay bounded, nothing raises."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gateway.errors import Protocol
from gateway.metrics import GatewayMetrics
from gateway.request.exchange import Exchange
from gateway.usage.events import EventBus
from gateway.usage.recorder import MAX_EVENT_MODEL, Recorder
from gateway.usage.request_log import RequestLog
from gateway.usage.traffic import Traffic
from policies.reload import PolicyHolder


def recorder(tmp_path: Path) -> Recorder:
    traffic = Traffic()
    log = RequestLog(tmp_path / "requests.sqlite3", 30)  # never opened: record() does no IO
    return Recorder(PolicyHolder(), EventBus(), traffic, GatewayMetrics(traffic), log)


def exchange(model: str | None = "gpt-4o-mini", status: int = 200) -> Exchange:
    ex = Exchange("req-1", Protocol.OPENAI, time.perf_counter(), time.time())
    ex.key_id, ex.model, ex.status = "alice", model, status
    ex.usage.prompt_tokens, ex.usage.completion_tokens = 11, 7
    return ex


def test_one_request_reaches_every_sink(tmp_path: Path) -> None:
    rec = recorder(tmp_path)
    rec.record(exchange())
    assert rec.events.last_id and rec.request_log.pending == 1
    (totals,) = rec.traffic.per_key().values()
    assert (totals.requests, totals.prompt_tokens, totals.completion_tokens) == (1, 11, 7)


def test_client_strings_are_bounded(tmp_path: Path) -> None:
    rec = recorder(tmp_path)
    rec.record(exchange(model="x" * 100_000, status=404))
    (item,) = rec.events.since(rec.events.last_id - 1).items
    assert len(item.event["model"]) == MAX_EVENT_MODEL
    # No snapshot resolves it, so metrics see the "unknown" label, not the client's string.
    assert list(rec.traffic.by_status) == [("alice", "unknown", "none", "4xx")]


def test_a_failing_sink_never_fails_the_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    rec = recorder(tmp_path)

    def broken(*_: object) -> None:
        raise RuntimeError("sink broke")

    monkeypatch.setattr(rec.metrics, "observe", broken)
    rec.record(exchange())  # must not raise
    assert "recording a finished request failed" in caplog.text
