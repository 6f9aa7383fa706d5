"""The Teams tab at 80x24, compared as text with golden files (tests/tui/snapshots/), and
hostile team names and owners shown literally.

As in test_snapshots.py: a repository with fixed dates, a canned admin API, a fixed clock.
Regenerate with `MG_UPDATE_SNAPSHOTS=1 ./dev pytest tests/tui/test_teams_tab.py`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from tests.support.policy_repo import PolicyRepo, hash_of
from tests.tui.conftest import screen_text, wait_until
from tests.tui.test_hostile_strings import CONTROL, MARKUP
from tests.tui.test_snapshots import NOW, TODAY, assert_snapshot
from tui import cells
from tui.app import ModelGateApp, TuiOptions
from tui.client import OPENED
from tui.screens.team_forms import TeamFormScreen
from tui.sse import SseEvent
from tui.widgets.teams_view import team_tree

MICROS = 1_000_000


def limits_use(
    team: str, day_tokens: tuple[int, int | None], usd_day: tuple[float, float | None]
) -> dict[str, Any]:
    quota = {"requests": 3, "period": "2027-01-15", "resets_at": "2027-01-16T00:00:00Z"}
    used, limit = usd_day
    return {
        "key_id": f"team:{team}",
        "rpm": {"used": 4, "limit": None},
        "tpm": {"used": 900, "limit": None},
        "max_concurrency": {"used": 0, "limit": None},
        "tokens_per_day": {"used": day_tokens[0], "limit": day_tokens[1], **quota},
        "tokens_per_month": {"used": day_tokens[0] * 8, "limit": None, **quota},
        "usd_per_day": {
            "used": round(used * MICROS),
            "limit": round(limit * MICROS) if limit else None,
            "period": "2027-01-15",
            "resets_at": "2027-01-16T00:00:00Z",
        },
        "usd_per_month": {
            "used": round(used * 9 * MICROS),
            "limit": 500 * MICROS if team == "search" else None,
            "period": "2027-01",
            "resets_at": "2027-02-01T00:00:00Z",
        },
    }


def spend(day: float) -> dict[str, Any]:
    period = {"requests": 3, "unpriced_requests": 0}
    return {
        "day": {"period": "2027-01-15", "cost_usd": day, **period},
        "month": {"period": "2027-01", "cost_usd": day * 9, **period},
    }


TEAMS_REPORT: list[dict[str, Any]] = [
    {
        "team": "search",
        "spend": spend(16.0),
        "parent": None,
        "owner": "search-lead@example.com",
        "keys": ["search-team"],
        "limits": limits_use("search", (400_000, 1_000_000), (16.0, 20.0)),
    },
    {
        "team": "search-eu",
        "spend": spend(2.5),
        "parent": "search",
        "owner": "eu@example.com",
        "keys": [],
        "limits": limits_use("search-eu", (40_000, None), (2.5, None)),
    },
    {
        "team": "data",
        "spend": spend(0.75),
        "parent": None,
        "owner": "data@example.com",
        "keys": ["batch-jobs"],
        "limits": limits_use("data", (1_200_000, None), (0.75, None)),
    },
]


class TeamsAdmin:
    """A gateway that always reports the same teams."""

    url = "http://gateway.test"

    def __init__(self, head: str, teams: list[dict[str, Any]]) -> None:
        self.head, self.teams = head, teams

    async def status(self) -> dict[str, Any]:
        return {
            "policy": {"commit": self.head, "state": "synced", "error": None},
            "limits": {"store": "memory", "state": "ok", "mode": "fail-open", "error": None},
            "credentials": [],
            "unavailable_routes": {},
        }

    async def usage(self) -> dict[str, Any]:
        return {"keys": [], "models": [], "teams": self.teams}

    async def sync(self) -> dict[str, Any]:
        return {"changed": False}

    async def events(self, last_event_id: int | None) -> AsyncIterator[SseEvent]:
        yield SseEvent(OPENED, "")
        await asyncio.Event().wait()

    async def aclose(self) -> None:
        return None


TEAMS_YAML = """
teams:
  search:                       # the search product
    owner: search-lead@example.com
    limits: {usd_per_day: 20, usd_per_month: 500, tokens_per_day: 1000000}
    models: ["gpt-4o*"]
  search-eu:
    owner: eu@example.com
    parent: search
  data:
    owner: data@example.com
    limits: {rpm: 600}
"""


def teams_repo(
    repo: PolicyRepo, monkeypatch: pytest.MonkeyPatch, teams_yaml: str = TEAMS_YAML
) -> PolicyRepo:
    repo.write(
        "providers.yaml",
        """
        providers:
          openai:
            type: openai
            base_url: https://api.openai.com/v1
            credentials: [env:OPENAI_API_KEY]
        """,
    )
    repo.write("routes.yaml", "routes:\n  gpt-4o-mini:\n    targets: [openai/gpt-4o-mini]\n")
    repo.write("teams.yaml", teams_yaml)
    repo.write(
        "keys.yaml",
        f"""
        keys:
          - id: search-team
            hash: {hash_of("mg-snapshot-search-team-0123456789abcdef")}
            team: search
          - id: batch-jobs
            hash: {hash_of("mg-snapshot-batch-jobs-0123456789abcdef")}
            team: data
        admins:
          - id: ops
            hash: {hash_of("mg-snapshot-admin-0123456789abcdefghij")}
        """,
    )
    monkeypatch.setenv("GIT_AUTHOR_DATE", "2027-01-10T09:30:00+00:00")
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2027-01-10T09:30:00+00:00")
    repo.commit("teams")
    return repo


def teams_app(repo: PolicyRepo, teams: list[dict[str, Any]]) -> ModelGateApp:
    options = TuiOptions(repo=repo.path, poll_s=60, repo_poll_s=60)
    client: Any = TeamsAdmin(repo.head(), teams)  # AdminApi's shape, canned
    return ModelGateApp(options, client, clock=lambda: NOW, tz=dt.UTC, today=TODAY)


async def open_teams(pilot: Pilot[Any], app: ModelGateApp) -> None:
    view = app.teams_view
    await wait_until(pilot, lambda: view.policy is not None and view.reports, "teams and use")
    await pilot.press("5")
    await pilot.pause()


async def test_teams_tab(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = teams_repo(PolicyRepo(tmp_path / "policy"), monkeypatch)
    app = teams_app(repo, TEAMS_REPORT)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_teams(pilot, app)
        await pilot.press("down")  # search: budgets and a sub-team
        await pilot.pause()
        assert_snapshot(app, "teams")
        await pilot.press("e")
        await pilot.pause()
        assert isinstance(app.screen, TeamFormScreen)
        assert_snapshot(app, "team_form")


def test_the_tree_nests_sub_teams_under_their_parent() -> None:
    reports: dict[str, Any] = {t["team"]: t for t in TEAMS_REPORT}
    reports["orphan"] = {"team": "orphan", "parent": "gone", "keys": ["k"]}
    rows = [(r.name, r.depth, r.members) for r in team_tree(None, reports)]
    assert rows == [
        ("data", 0, ("batch-jobs",)),
        ("orphan", 0, ("k",)),
        ("search", 0, ("search-team",)),
        ("search-eu", 1, ()),
    ]


async def test_hostile_team_names_and_owners_are_shown_as_written(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Owners come from the repository; names, owners and parents of teams the gateway
    reports may be anything: none is read as markup or reaches the terminal raw."""
    hostile = MARKUP[0] + CONTROL
    owner_yaml = hostile.encode("unicode_escape").decode()  # YAML's escapes in "..."
    teams_yaml = f'teams:\n  search:\n    owner: "{owner_yaml}"\n  data: {{}}\n'
    repo = teams_repo(PolicyRepo(tmp_path / "policy"), monkeypatch, teams_yaml)
    reported = [
        {"team": text, "parent": text, "owner": text, "keys": [text], "spend": spend(1)}
        for text in MARKUP
    ]
    app = teams_app(repo, reported)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_teams(pilot, app)
        assert app.teams_view.policy is not None
        assert app.teams_view.policy.teams["search"].owner == hostile
        table = app.query_one("#teams-table", DataTable)
        for name in ("search", *MARKUP):
            table.move_cursor(row=[r.name for r in app.teams_view.rows].index(name))
            await pilot.pause()
            statics = app.teams_view.query(Static)
            shown = "\n".join([screen_text(app), *(str(w.render()) for w in statics)])
            assert "\x1b" not in shown and "\u202e" not in shown
            if name == "search":
                assert cells.safe(hostile) in screen_text(app)  # the owner, escaped
            else:
                assert name in screen_text(app)  # the name, literally
        assert app.is_running
