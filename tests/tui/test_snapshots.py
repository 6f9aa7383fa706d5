"""The main screens at 80x24, compared as text with golden files in tests/tui/snapshots/.

Everything on screen is fixed: a repository with fixed dates (so fixed commit ids), a canned
admin API, a fixed clock and UTC. After an intended change of the UI, regenerate with
`MG_UPDATE_SNAPSHOTS=1 ./dev pytest tests/tui/test_snapshots.py` and review the diff.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import difflib
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Markdown

from tests.support.policy_repo import PolicyRepo, hash_of
from tests.tui.conftest import screen_text, wait_until
from tui.app import ModelGateApp, TuiOptions
from tui.client import OPENED
from tui.screens.review import ReviewScreen
from tui.sse import SseEvent

SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE = os.environ.get("MG_UPDATE_SNAPSHOTS") == "1"
NOW = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC
TODAY = dt.date(2027, 1, 15)


def assert_snapshot(app: ModelGateApp, name: str) -> None:
    actual = screen_text(app)
    golden = SNAPSHOTS / f"{name}.txt"
    if UPDATE or not golden.exists():
        SNAPSHOTS.mkdir(exist_ok=True)
        golden.write_text(actual)
        if not UPDATE:
            pytest.fail(f"{golden} was missing and is now written: review it, then run again")
        return
    expected = golden.read_text()
    if actual != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                actual.splitlines(keepends=True),
                f"{name}.txt (golden)",
                f"{name}.txt (now)",
            )
        )
        pytest.fail(f"screen {name} changed (MG_UPDATE_SNAPSHOTS=1 to accept):\n{diff}")


def event(n: int, seconds_ago: float, key: str, model: str, status: int, ms: float) -> SseEvent:
    data = {
        "ts": NOW - seconds_ago,
        "request_id": f"req-{n:04d}",
        "key_id": key,
        "model": model,
        "provider": "openai" if model.startswith("gpt") else "anthropic",
        "target": f"openai/{model}",
        "status": status,
        "latency_ms": ms,
        "ttfb_ms": ms / 2,
        "prompt_tokens": 120 if status < 400 else 0,
        "completion_tokens": 30 * (n % 4) if status < 400 else 0,
        "stream": n % 2 == 0,
        "error": "upstream_error" if status >= 500 else None,
        # priced in micro-dollars; an anthropic target has no price here: its cost is unknown
        "cost_usd": (120 * 3 + 30 * (n % 4) * 12) / 1e6 if model.startswith("gpt") else None,
    }
    return SseEvent("request", json.dumps(data), str(1000 + n))


EVENTS = [
    event(n, 50 - n * 4, key, model, status, ms)
    for n, (key, model, status, ms) in enumerate(
        [
            ("search-team", "gpt-4o-mini", 200, 420.0),
            ("search-team", "gpt-4o-mini", 200, 380.0),
            ("batch-jobs", "claude-sonnet", 200, 1900.0),
            ("search-team", "gpt-4o-mini", 429, 2.0),
            ("batch-jobs", "claude-sonnet", 200, 2300.0),
            ("search-team", "gpt-4o-mini", 200, 510.0),
            ("batch-jobs", "claude-sonnet", 502, 30000.0),
            ("search-team", "gpt-4o-mini", 200, 450.0),
            ("batch-jobs", "claude-sonnet", 200, 2100.0),
            ("search-team", "gpt-4o-mini", 200, 395.0),
            ("search-team", "gpt-4o-mini", 200, 405.0),
            ("batch-jobs", "claude-sonnet", 200, 1750.0),
            ("search-team", "gpt-4o-mini", 200, 440.0),
        ]
    )
]


def usage_of(key: str, rpm: tuple[int, int | None], day: tuple[int, int | None]) -> dict[str, Any]:
    return {
        "key_id": key,
        "rpm": {"used": rpm[0], "limit": rpm[1]},
        "tpm": {"used": 3100, "limit": None},
        "max_concurrency": {"used": 0, "limit": None},
        "tokens_per_day": {"used": day[0], "limit": day[1]},
        "tokens_per_month": {"used": day[0] * 9, "limit": None},
        "owner": None,
        "disabled": False,
        "expires": None,
    }


class CannedAdmin:
    """A gateway that always answers the same."""

    url = "http://gateway.test"

    def __init__(self, head: str) -> None:
        self.head = head

    async def status(self) -> dict[str, Any]:
        return {
            "policy": {
                "commit": self.head,
                "applied_at": "2027-01-15T07:58:00Z",
                "state": "synced",
                "error": None,
                "rejected_commit": None,
            },
            "limits": {"store": "memory", "state": "ok", "mode": "fail-open", "error": None},
            "credentials": [
                {
                    "provider": "anthropic",
                    "credential": "env:ANTHROPIC_API_KEY",
                    "state": "cooling",
                    "reason": "upstream 429",
                    "cooling_down_s": 42.0,
                    "removed": None,
                }
            ],
            "unavailable_routes": {},
        }

    async def usage(self) -> dict[str, Any]:
        return {
            "keys": [
                usage_of("batch-jobs", (7, 600), (1_600_000, 2_000_000)),
                usage_of("search-team", (14, 300), (250_000, None)),
            ]
        }

    async def sync(self) -> dict[str, Any]:
        return {"changed": False}

    async def events(self, last_event_id: int | None) -> AsyncIterator[SseEvent]:
        yield SseEvent(OPENED, "")
        for item in EVENTS:
            yield item
        await asyncio.Event().wait()  # live, but quiet

    async def aclose(self) -> None:
        return None


@pytest.fixture
def fixed_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PolicyRepo:
    repo = PolicyRepo(tmp_path / "policy")
    repo.write(
        "providers.yaml",
        """
        providers:
          openai:
            type: openai
            base_url: https://api.openai.com/v1
            credentials: [env:OPENAI_API_KEY, file:openai-2.key]
          anthropic:
            type: anthropic
            base_url: https://api.anthropic.com
            credentials: [env:ANTHROPIC_API_KEY]
        """,
    )
    repo.write(
        "routes.yaml",
        """
        routes:
          gpt-4o-mini:
            targets: [openai/gpt-4o-mini]
          claude-sonnet:                # failover to OpenAI
            targets: [anthropic/claude-sonnet-4-20250514, openai/gpt-4o]
          fast:
            strategy: weighted
            targets:
              - {target: openai/gpt-4o-mini, weight: 3}
              - {target: anthropic/claude-3-5-haiku, weight: 1}
        """,
    )
    repo.write(
        "limits.yaml",
        """
        default: {rpm: 60}
        tiers:
          standard: {rpm: 300, tpm: 200000}
          batch: {rpm: 600, tokens_per_day: 2000000}
        """,
    )
    repo.write(
        "keys.yaml",
        f"""
        keys:
          - id: search-team
            owner: search@example.com
            hash: {hash_of("mg-snapshot-search-team-0123456789abcdef")}
            models: ["gpt-4o*", "fast"]
            tier: standard
          - id: batch-jobs
            owner: data@example.com
            hash: {hash_of("mg-snapshot-batch-jobs-0123456789abcdef")}
            tier: batch
            expires: 2027-06-30
        admins:
          - id: ops
            hash: {hash_of("mg-snapshot-admin-0123456789abcdefghij")}
        """,
    )
    for name, date in (("GIT_AUTHOR_DATE", "2027-01-10T09:30:00+00:00"),):
        monkeypatch.setenv(name, date)
        monkeypatch.setenv("GIT_COMMITTER_DATE", date)
    repo.commit("initial policy")
    monkeypatch.setenv("GIT_AUTHOR_DATE", "2027-01-14T16:05:00+00:00")
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2027-01-14T16:05:00+00:00")
    text = (repo.path / "limits.yaml").read_text().replace("rpm: 300", "rpm: 400")
    repo.write("limits.yaml", text)
    repo.commit("limits: standard tier to 400 rpm")
    return repo


def fixed_app(repo: PolicyRepo) -> ModelGateApp:
    options = TuiOptions(repo=repo.path, poll_s=60, repo_poll_s=60)
    return ModelGateApp(
        options, CannedAdmin(repo.head()), clock=lambda: NOW, tz=dt.UTC, today=TODAY
    )


async def settled(pilot: Pilot[Any], app: ModelGateApp) -> None:
    await wait_until(pilot, lambda: len(app.traffic_view.shown_records) == len(EVENTS), "rows")
    await wait_until(pilot, lambda: app.traffic_view._figures is not None, "figures")
    await wait_until(pilot, lambda: app.keys_view.usage and app.keys_view.policy, "keys")
    await wait_until(pilot, lambda: len(app.policy_view.entries) == 2, "history")
    diff = app.query_one("#commit-diff", Markdown)
    await wait_until(pilot, lambda: "400" in diff.source, "the newest commit's diff")
    app.traffic_view.show_figures(app.stats.figures(NOW))  # the numbers of all events
    await pilot.pause()


async def test_main_screens(fixed_repo: PolicyRepo) -> None:
    app = fixed_app(fixed_repo)
    async with app.run_test(size=(80, 24)) as pilot:
        await settled(pilot, app)
        assert_snapshot(app, "traffic")
        for key, name in (("2", "keys"), ("3", "routes"), ("4", "policy")):
            await pilot.press(key)
            await pilot.pause()
            assert_snapshot(app, name)
        await pilot.press("question_mark")
        await pilot.pause()
        assert_snapshot(app, "help")


async def test_edit_form_and_review(fixed_repo: PolicyRepo) -> None:
    app = fixed_app(fixed_repo)
    async with app.run_test(size=(80, 24)) as pilot:
        await settled(pilot, app)
        await pilot.press("2", "e")  # search-team, the first key
        await pilot.pause()
        assert_snapshot(app, "key_form")
        app.screen.query_one("#f-rpm", Input).value = "500"
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, ReviewScreen), "the review")
        review = app.screen
        assert isinstance(review, ReviewScreen)
        await wait_until(pilot, lambda: review.checked, "the check")
        await pilot.pause()
        assert_snapshot(app, "review")


async def test_watch_only(fixed_repo: PolicyRepo) -> None:
    """Without --repo: keys from the gateway's usage alone, and no editing."""
    options = TuiOptions(repo=None, poll_s=60)
    client = CannedAdmin(fixed_repo.head())
    app = ModelGateApp(options, client, clock=lambda: NOW, tz=dt.UTC, today=TODAY)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: app.keys_view.usage, "usage")
        await pilot.press("2")
        await pilot.pause()
        assert_snapshot(app, "keys_watch_only")
