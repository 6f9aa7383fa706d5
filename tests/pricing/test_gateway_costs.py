"""Costs through the real server: the header on whole answers, cost_usd in events, metrics,
the usage API and the request log; streamed and translated answers priced from the upstream's
usage; an unpriced target recorded as unknown, never as $0. The scripted upstream reports
11 prompt and 7 completion tokens for every answer."""

from __future__ import annotations

import sqlite3

from gateway.payloads import RequestEvent
from gateway.pricing import COST_HEADER
from gateway.usage.request_report import summarize
from tests.inprocess.calls import bearer, chat, message
from tests.inprocess.harness import InProcessGateway
from tests.support.policy_repo import PolicyRepo

PRICES = """
prices:
  primary/*: {input: 1000, output: 2000}
  claude/*: {input: 3000, output: 15000, cached_input: 300}
"""
PRIMARY_MICROS = 11 * 1000 + 7 * 2000  # $0.025
CLAUDE_MICROS = 11 * 3000 + 7 * 15000  # $0.138


def _events(gateway: InProcessGateway) -> list[RequestEvent]:
    return [p.event for p in gateway.state.events.since(0).items]


async def _priced(gateway: InProcessGateway, repo: PolicyRepo) -> None:
    repo.write("prices.yaml", PRICES)
    repo.commit("prices")
    assert await gateway.reload()


async def test_an_unpriced_target_costs_unknown_not_zero(
    gateway: InProcessGateway, secrets: dict[str, str]
) -> None:
    status = await gateway.client.get("/admin/api/status", headers=bearer(secrets["admin"]))
    assert "primary/upstream-mini" in status.json()["unpriced_targets"]
    answer = await chat(gateway, secrets["alice"])
    assert answer.status_code == 200
    assert COST_HEADER not in answer.headers
    [event] = _events(gateway)
    assert event["cost_usd"] is None
    totals = gateway.state.recorder.traffic.per_key()["alice"]
    assert (totals.cost_micros, totals.unpriced) == (0, 1)


async def test_whole_streamed_and_translated_answers_are_priced(
    gateway: InProcessGateway, secrets: dict[str, str], repo: PolicyRepo
) -> None:
    await _priced(gateway, repo)
    alice = secrets["alice"]
    status = await gateway.client.get("/admin/api/status", headers=bearer(secrets["admin"]))
    assert "primary/upstream-mini" not in status.json()["unpriced_targets"]

    whole = await chat(gateway, alice)
    assert whole.headers[COST_HEADER] == "0.025000"
    streamed = await chat(gateway, alice, stream=True)
    assert streamed.status_code == 200 and COST_HEADER not in streamed.headers
    translated = await chat(gateway, alice, "claude-sonnet")  # OpenAI client, Anthropic upstream
    assert translated.headers[COST_HEADER] == "0.138000"
    translated_stream = await chat(gateway, alice, "claude-sonnet", stream=True)
    native = await message(gateway, alice)  # Anthropic client, Anthropic upstream
    assert native.headers[COST_HEADER] == "0.138000"
    for answer in (streamed, translated_stream):
        await answer.aclose()

    costs = [e["cost_usd"] for e in _events(gateway)]
    assert costs == [
        PRIMARY_MICROS / 1e6,
        PRIMARY_MICROS / 1e6,
        CLAUDE_MICROS / 1e6,
        CLAUDE_MICROS / 1e6,
        CLAUDE_MICROS / 1e6,
    ]
    totals = gateway.state.recorder.traffic.per_key()["alice"]
    assert totals.cost_micros == 2 * PRIMARY_MICROS + 3 * CLAUDE_MICROS

    metrics = await gateway.client.get("/metrics", headers=bearer(secrets["admin"]))
    line = (
        'modelgate_cost_usd_total{key="alice",model="claude-sonnet",provider="claude",team="none"}'
    )
    found = [row for row in metrics.text.splitlines() if row.startswith(line)]
    assert found and float(found[0].split()[-1]) == 3 * CLAUDE_MICROS / 1e6

    await gateway.state.recorder.request_log.flush()
    path = gateway.state.recorder.request_log.path
    by_key = summarize(path, by="key")
    assert [(r.key_id, r.cost_micros, r.unpriced) for r in by_key] == [
        ("alice", 2 * PRIMARY_MICROS + 3 * CLAUDE_MICROS, 0)
    ]
    by_provider = {r.key_id: r.cost_micros for r in summarize(path, by="provider")}
    assert by_provider == {"primary": 2 * PRIMARY_MICROS, "claude": 3 * CLAUDE_MICROS}
    [team_row] = summarize(path, by="team")
    assert team_row.key_id is None  # no teams yet: one row without a team

    usage = await gateway.client.get("/admin/api/usage", headers=bearer(secrets["admin"]))
    keys = {k["key_id"]: k for k in usage.json()["keys"]}
    spent = keys["alice"]["spend"]
    total_usd = (2 * PRIMARY_MICROS + 3 * CLAUDE_MICROS) / 1e6
    assert spent["month"]["cost_usd"] == total_usd
    assert keys["alice"]["since_start"]["cost_usd"] == total_usd


async def test_an_old_request_log_gains_the_cost_columns(tmp_path: object) -> None:
    from pathlib import Path

    from gateway.usage.request_log import connect

    path = Path(str(tmp_path)) / "old.sqlite3"
    old = sqlite3.connect(path)
    old.execute(  # the table as earlier versions made it
        "CREATE TABLE requests (ts REAL NOT NULL, request_id TEXT NOT NULL, key_id TEXT, "
        "model TEXT, provider TEXT, target TEXT, status INTEGER NOT NULL, error TEXT, "
        "latency_ms REAL NOT NULL, ttfb_ms REAL, prompt_tokens INTEGER NOT NULL, "
        "completion_tokens INTEGER NOT NULL, stream INTEGER NOT NULL, protocol TEXT)"
    )
    old.close()
    assert summarize(path) == []  # readable before any new gateway opened it
    db = connect(path)
    columns = {row[1] for row in db.execute("PRAGMA table_info(requests)")}
    db.close()
    assert {"cost_micros", "team"} <= columns
